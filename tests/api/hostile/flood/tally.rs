//! The flood's tally: what each method answered, how long the slowest call took, and every answer
//! outside the contract, described well enough to replay.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use tonic_types::StatusExt;

use super::contract::{self, Method, Outcome};

/// What came back, by method.
#[derive(Default)]
pub struct Tally {
    pub sent: HashMap<Method, usize>,
    pub answers: BTreeMap<String, usize>,
    pub failures: Vec<String>,
    /// The longest a call took, and which.
    pub slowest: (Duration, Option<Method>),
}

/// One message as sent.
pub struct Shot {
    pub index: usize,
    pub method: Method,
    pub body: Vec<u8>,
    pub authorization: Option<Vec<u8>>,
}

impl Tally {
    /// Counts the answer, and judges it.
    pub fn record(&mut self, shot: &Shot, outcome: &Outcome, took: Duration) {
        let method = shot.method;
        *self.sent.entry(method).or_default() += 1;
        *self.answers.entry(summary(method, outcome)).or_default() += 1;
        if took > self.slowest.0 {
            self.slowest = (took, Some(method));
        }
        if let Err(why) = contract::judge(method, &shot.body, outcome) {
            let shown = &shot.body[..shot.body.len().min(96)];
            let authorization = shot.authorization.as_deref().map(String::from_utf8_lossy);
            self.failures.push(format!(
                "#{} {method:?}: {why}\n  body ({} bytes): {shown:02x?}\n  authorization: {authorization:?}",
                shot.index,
                shot.body.len()
            ));
        }
    }
}

/// One line of the tally: the method and how it answered (the code and reason of a failure).
fn summary(method: Method, outcome: &Outcome) -> String {
    let how = match outcome {
        Outcome::Answered(_) => "OK".to_owned(),
        Outcome::Opened(event) => format!("stream opened, first event: {}", event.is_some()),
        Outcome::Ended => "stream ended".to_owned(),
        Outcome::Hung => "no answer".to_owned(),
        Outcome::Failed(status) => {
            let reason = status.get_details_error_info().map(|i| i.reason);
            format!("{:?} {}", status.code(), reason.unwrap_or_default())
        }
    };
    format!("{method:?}: {how}")
}
