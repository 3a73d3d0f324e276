//! The promise of API.md: from the moment Revoke, LogoutAll, a password change, a disable or a
//! detected reuse returns, the verifier refuses the tokens concerned within 1 s. Measured against
//! the greeter, 20 trials of each, on one server.

use crate::helpers::{
    app::spawn_app,
    greeter::{Greeter, trials::measure},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_revocation_reaches_the_greeter_within_a_second() {
    let app = spawn_app().await;
    let greeter = Greeter::start(app.grpc_addr, &[]).await;
    measure(&app, &greeter, 20, "one server").await;
}
