//! Tests that need PostgreSQL whatever the backend of the run: a fleet of replicas on one
//! database, a replica killed mid-refresh, and store outages on throwaway clusters of their own.
//! The server is `LATCHKEY_TEST_POSTGRES_URL` (a superuser: each test creates its database); the
//! outage tests run `initdb` and `pg_ctl` from `LATCHKEY_PG_BIN`.

mod crash;
mod fleet;
mod outage;
mod tls;
