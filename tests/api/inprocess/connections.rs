//! The doors a client on the network leans on without ever making a call: connections held open
//! without a word (slowloris), and more connections than a replica should serve. Both ports close a
//! connection that has not said what it wants in time, and cap the connections open at once.

use std::{
    net::SocketAddr,
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    task::JoinSet,
};
use tokio_stream::StreamExt;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::helpers::{
    app::spawn_app_with,
    client::{http_get, lazy_channel, send},
};

/// Reads `stream` until the server closes it (or resets it); how long after `since` that was, or
/// `None` if it was still open `within` after `since`.
async fn closed(mut stream: TcpStream, since: Instant, within: Duration) -> Option<Duration> {
    let mut sink = Vec::new();
    let read = tokio::time::timeout_at((since + within).into(), stream.read_to_end(&mut sink));
    read.await.ok().map(|_| since.elapsed())
}

/// Opens `n` connections to `addr`, each of which sends `first` (maybe nothing) and then waits.
async fn hold(
    addr: SocketAddr,
    n: usize,
    first: impl Fn(usize) -> &'static [u8],
) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        stream.write_all(first(i)).await.expect("writes");
        held.push(stream);
    }
    held
}

/// `/healthz`, answered or not within a second.
async fn healthz(addr: SocketAddr) -> Option<u16> {
    let answer = tokio::time::timeout(Duration::from_secs(1), send(addr, "/healthz", &[])).await;
    answer
        .ok()
        .and_then(Result::ok)
        .map(|response| response.status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_http_port_answers_beside_500_silent_connections_and_closes_them_after_the_header_timeout()
 {
    let timeout = Duration::from_secs(2);
    let app = spawn_app_with(|a| a.http_header_timeout = Some("2s".into())).await;
    let opened = Instant::now();
    // Half send nothing at all, half half a request line.
    let held = hold(app.http_addr, 500, |i| match i % 2 {
        0 => b"",
        _ => b"GET /heal",
    })
    .await;
    let started = Instant::now();
    assert_eq!(healthz(app.http_addr).await, Some(200));
    eprintln!(
        "/healthz answered in {:?} beside 500 silent connections",
        started.elapsed()
    );
    // A connection that was answered once is held to the same deadline from its response on.
    let mut kept = TcpStream::connect(app.http_addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .unwrap();
    let mut response = vec![0; 1024];
    let mut got = 0;
    while !String::from_utf8_lossy(&response[..got]).ends_with("ok\n") {
        got += kept.read(&mut response[got..]).await.unwrap();
    }
    let answered = Instant::now();

    let mut closing = JoinSet::new();
    for stream in held {
        closing.spawn(closed(stream, opened, timeout + Duration::from_secs(5)));
    }
    while let Some(closed) = closing.join_next().await {
        let after = closed.unwrap().expect("a silent connection was closed");
        assert!(
            after >= timeout - Duration::from_millis(100),
            "closed after {after:?}"
        );
    }
    let after = closed(kept, answered, timeout + Duration::from_secs(5)).await;
    let after = after.expect("an idle kept-alive connection was closed");
    assert!(
        after >= timeout - Duration::from_millis(100),
        "closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_http_port_closes_connections_beyond_its_cap_at_once_and_serves_again_when_one_ends() {
    let app = spawn_app_with(|a| a.http_max_connections = Some(4)).await;
    let held = hold(app.http_addr, 4, |_| b"").await;
    // The server has taken the four once a fifth is refused; until then it may not have.
    let started = Instant::now();
    let mut refused = false;
    while !refused && started.elapsed() < Duration::from_secs(5) {
        let beyond = TcpStream::connect(app.http_addr).await.unwrap();
        refused = closed(beyond, Instant::now(), Duration::from_millis(500))
            .await
            .is_some();
    }
    assert!(refused, "a connection beyond the cap of 4 stayed open");
    assert_ne!(
        healthz(app.http_addr).await,
        Some(200),
        "served beyond the cap"
    );

    drop(held);
    let started = Instant::now();
    while healthz(app.http_addr).await != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no slot came free"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(http_get(app.http_addr, "/readyz").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_connections_beyond_the_cap_are_closed_at_once_and_served_again_when_one_ends() {
    // The test app's own client holds one connection.
    let app = spawn_app_with(|a| a.max_connections = Some(3)).await;
    let mut health = HealthClient::new(lazy_channel(app.grpc_addr));
    let check = || HealthCheckRequest {
        service: String::new(),
    };
    health
        .check(check())
        .await
        .expect("a second connection is served");
    let silent = hold(app.grpc_addr, 1, |_| b"").await;
    let started = Instant::now();
    let mut refused = false;
    while !refused && started.elapsed() < Duration::from_secs(5) {
        let beyond = TcpStream::connect(app.grpc_addr).await.unwrap();
        refused = closed(beyond, Instant::now(), Duration::from_millis(500))
            .await
            .is_some();
    }
    assert!(
        refused,
        "a fourth connection stayed open beyond the cap of 3"
    );
    let mut refused_client = HealthClient::new(lazy_channel(app.grpc_addr));
    // Closed before the HTTP/2 handshake: tonic reports it as UNAVAILABLE, CANCELLED or UNKNOWN,
    // depending on when it notices.
    let refusal = refused_client.check(check()).await;
    refusal.expect_err("served beyond the cap");
    // The connections within the cap are served as before.
    health.check(check()).await.expect("still served");
    app.alice().await;

    drop(silent);
    let started = Instant::now();
    while refused_client.check(check()).await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no slot came free"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_connections_without_an_http2_handshake_in_time_are_closed_and_others_are_not() {
    let timeout = Duration::from_secs(1);
    let app = spawn_app_with(|a| a.grpc_handshake_timeout = Some("1s".into())).await;
    let mut health = HealthClient::new(lazy_channel(app.grpc_addr));
    let request = HealthCheckRequest {
        service: String::new(),
    };
    let mut watch = health.watch(request.clone()).await.unwrap().into_inner();
    assert_eq!(
        watch.next().await.unwrap().unwrap().status(),
        ServingStatus::Serving
    );

    let opened = Instant::now();
    let preface: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    // Nothing; half the preface; the preface without its SETTINGS frame.
    let held = hold(app.grpc_addr, 3, |i| [&b""[..], &preface[..10], preface][i]).await;
    for stream in held {
        let after = closed(stream, opened, timeout + Duration::from_secs(5)).await;
        let after = after.expect("a connection without a handshake was closed");
        assert!(
            after >= timeout - Duration::from_millis(100),
            "closed after {after:?}"
        );
    }
    // The client that shook hands long before is still connected: its stream is still open.
    let next = tokio::time::timeout(Duration::from_millis(300), watch.next()).await;
    assert!(next.is_err(), "the health watch ended: {next:?}");
    health.check(request).await.expect("still served");
    app.alice().await;
}
