//! Random and hostile input: what an attacker can send, checked against the contract. Needs
//! nothing: the server in the test process (on SQLite, or PostgreSQL with
//! `LATCHKEY_TEST_BACKEND=postgres`). Run with `cargo test --test api -- hostile::`.

mod found;
