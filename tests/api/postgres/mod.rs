//! Tests that need PostgreSQL whatever the backend of the run: a fleet of replicas on one
//! database (and its revocation feed, pushed by NOTIFY), a replica killed mid-refresh, store
//! outages on throwaway clusters of their own, the verifier library following one replica of a
//! fleet, and the sweep of the databases test runs leave.
//! The server is `LATCHKEY_TEST_POSTGRES_URL` (a superuser: each test creates its database); the
//! outage tests run `initdb` and `pg_ctl` from `LATCHKEY_PG_BIN`.

mod crash;
mod databases;
mod feed;
mod fleet;
mod outage;
mod tls;
mod verifier;
