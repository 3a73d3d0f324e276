//! `keys rotate` reaches running verifiers: a token signed by a key rotated in after the greeter
//! started is accepted, without a restart (an unknown `kid` makes the verifier fetch the keys).

use std::time::Duration;

use crate::helpers::{
    app::spawn_app,
    client::key_id,
    greeter::{Answer, Greeter, invalid},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_of_a_key_rotated_in_after_start_is_accepted_without_a_restart() {
    let app = spawn_app().await;
    let old = app.alice().await;
    let mut greeter = Greeter::start(app.grpc_addr, &[]).await;
    assert_eq!(greeter.answer(&old.access_token).await, Answer::Accepted);

    let new_kid = app.service.rotate_keys().await.unwrap();
    let fresh = app.login("alice", "correct horse").await;
    assert_eq!(key_id(&fresh.access_token), new_kid);
    assert_ne!(key_id(&old.access_token), new_kid);
    // The first sight of the new kid starts one refetch (that call may be refused); then it holds.
    let (took, answer) = greeter
        .next_answer(&fresh.access_token, &invalid(), Duration::from_secs(3))
        .await;
    assert_eq!(
        answer,
        Answer::Accepted,
        "after {took:?}:\n{}",
        greeter.log()
    );
    eprintln!("a token of the rotated-in key accepted after {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    // The old key stays published while its tokens live, and the greeter is the one started.
    assert_eq!(greeter.answer(&old.access_token).await, Answer::Accepted);
    assert!(greeter.running());
}
