//! A notification service's core: follows latchkey's account events (AdminService/WatchEvents)
//! and prints one line per event a user should hear about — a sign-in from a new device, a stolen
//! refresh token caught, every session logged out, a password changed, a lockout — where a real
//! one would send mail. It resumes after a broken stream (a restart, a lost connection) from the
//! last `seq` it received, so no event is missed or told twice.
//!
//! ```text
//! LATCHKEY_ADMIN_TOKEN=<access token holding latchkey.admin> \
//!     cargo run --example notifier -- --latchkey http://127.0.0.1:50051 [--after-seq N]
//! ```
//!
//! Each line is `seq<TAB>user_id<TAB>message`; it prints `notifier following events after N`
//! each time it (re)connects.

use std::time::Duration;

use clap::Parser;
use latchkey::grpc::pb::{self, admin_service_client::AdminServiceClient};
use tonic::{Request, metadata::MetadataValue};

#[derive(Parser)]
struct Args {
    /// latchkey's gRPC address.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    latchkey: String,
    /// Start after this event (0: from the oldest kept).
    #[arg(long, default_value_t = 0)]
    after_seq: u64,
}

/// What the user should be told of `event`, if anything.
fn message(event: &pb::AccountEvent) -> Option<String> {
    let from = |what: &str| match (event.device.as_str(), event.ip.as_str()) {
        ("", ip) => format!("{what} from {ip}"),
        (device, ip) => format!("{what} from {device} at {ip}"),
    };
    Some(match event.kind.as_str() {
        "login" if event.new_device => from("new sign-in"),
        "refresh_ip_changed" => from("your session is now used"),
        "reuse_detected" => from("a stolen session token was caught and the session ended; used"),
        "locked_out" => format!("too many failed sign-ins: {}", event.detail),
        "logout_all" => format!("you were signed out everywhere ({})", event.detail),
        "password_changed" => format!("your password was changed ({})", event.detail),
        "disabled" => "your account was disabled".to_owned(),
        _ => return None,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let token = std::env::var("LATCHKEY_ADMIN_TOKEN")
        .map_err(|_| "set LATCHKEY_ADMIN_TOKEN to an access token holding latchkey.admin")?;
    let bearer: MetadataValue<_> = format!("Bearer {token}").parse()?;
    let mut after = args.after_seq;
    let mut backoff = Duration::from_millis(100);
    loop {
        match follow(&args.latchkey, &bearer, &mut after, &mut backoff).await {
            // A refusal (a bad token) will not get better by retrying.
            Stop::Refused(status) => return Err(status.message().into()),
            Stop::Broken(why) => eprintln!("stream broken ({why}); resuming after {after}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

enum Stop {
    Refused(tonic::Status),
    Broken(String),
}

/// Follows the events after `after` until the stream breaks, moving `after` along; a stream that
/// opened resets the reconnection `backoff`.
async fn follow(
    url: &str,
    bearer: &MetadataValue<tonic::metadata::Ascii>,
    after: &mut u64,
    backoff: &mut Duration,
) -> Stop {
    let mut client = match AdminServiceClient::connect(url.to_owned()).await {
        Ok(client) => client,
        Err(e) => return Stop::Broken(e.to_string()),
    };
    let mut request = Request::new(pb::WatchEventsRequest { after_seq: *after });
    request
        .metadata_mut()
        .insert("authorization", bearer.clone());
    let mut stream = match client.watch_events(request).await {
        Ok(response) => response.into_inner(),
        Err(status) if status.code() == tonic::Code::Unavailable => {
            return Stop::Broken(status.message().to_owned());
        }
        Err(status) => return Stop::Refused(status),
    };
    *backoff = Duration::from_millis(100);
    println!("notifier following events after {after}");
    loop {
        match stream.message().await {
            Ok(Some(event)) => {
                // Heartbeats (no kind) say only that the stream is alive.
                if let Some(line) = message(&event) {
                    println!("{}\t{}\t{line}", event.seq, event.user_id);
                }
                *after = event.seq;
            }
            Ok(None) => return Stop::Broken("the server ended the stream".into()),
            Err(status) => return Stop::Broken(status.message().to_owned()),
        }
    }
}
