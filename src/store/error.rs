//! The store's one error type. Callers branch on its kind (retry on `Unavailable`, report a taken
//! name on `Conflict`); the driver's error stays attached as the source, so whoever logs it shows
//! the whole chain instead of a flattened string.

type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is busy past its timeout: safe to retry.
    #[error("store unavailable")]
    Unavailable(#[source] Cause),
    /// A unique key is taken (a username, a key id).
    #[error("already exists")]
    Conflict,
    #[error("store failure")]
    Other(#[source] Cause),
    /// The store could not be set up: `step` names what failed (a bad URL, the data directory, the
    /// migration).
    #[error("{step}")]
    Open {
        step: String,
        #[source]
        source: Cause,
    },
    #[error("unsupported database URL scheme {0:?}: expected sqlite:// or postgres://")]
    UnsupportedUrl(String),
    /// Only `serve` and `migrate` create a database.
    #[error("no SQLite database at {0}: run `latchkey migrate` (or `latchkey serve`) first")]
    Missing(std::path::PathBuf),
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    pub(super) fn open(step: impl Into<String>, source: impl Into<Cause>) -> Self {
        Self::Open {
            step: step.into(),
            source: source.into(),
        }
    }
}

/// Sorts a driver error by what the caller can do about it, for both backends at once: SQLite
/// codes are decimal numbers of at most four digits, PostgreSQL SQLSTATEs exactly five characters.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        let code = match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => return Self::Conflict,
            sqlx::Error::Database(db) => db.code(),
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Tls(_) => return Self::Unavailable(e.into()),
            _ => None,
        };
        if code.as_deref().is_some_and(transient) {
            Self::Unavailable(e.into())
        } else {
            Self::Other(e.into())
        }
    }
}

/// The same for the SQLite connection a login writes on (see `login_writes.rs`), by the same codes.
impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        let code = match &e {
            rusqlite::Error::SqliteFailure(failure, _) => failure.extended_code,
            _ => return Self::Other(e.into()),
        };
        match code {
            rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Self::Conflict,
            code if transient(&code.to_string()) => Self::Unavailable(e.into()),
            _ => Self::Other(e.into()),
        }
    }
}

/// Whether a database error code means "not now" rather than "never".
fn transient(code: &str) -> bool {
    if code.len() == 5 {
        // PostgreSQL class 08 (connection exception), 53 (insufficient resources), 57P (operator
        // intervention: shutdown, admin shutdown, cannot connect now); and a statement that ran
        // past `statement_timeout` (57014: busy past its timeout, as SQLite's busy below), lost a
        // serialization or deadlock check (40001, 40P01) or could not take a lock (55P03).
        ["08", "53", "57P", "57014", "40001", "40P01", "55P03"]
            .iter()
            .any(|class| code.starts_with(class))
    } else {
        // SQLITE_BUSY / SQLITE_LOCKED (and their extended codes) past the busy timeout.
        matches!(code, "5" | "6" | "261" | "517")
    }
}

#[cfg(test)]
mod tests {
    use std::{borrow::Cow, error::Error, fmt};

    use super::*;

    /// A database error with just a code (and whether it is a unique violation), as either driver
    /// reports one.
    #[derive(Debug)]
    struct Coded(&'static str, bool);

    impl fmt::Display for Coded {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "code {}", self.0)
        }
    }

    impl Error for Coded {}

    impl sqlx::error::DatabaseError for Coded {
        fn message(&self) -> &str {
            self.0
        }
        fn code(&self) -> Option<Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            if self.1 {
                sqlx::error::ErrorKind::UniqueViolation
            } else {
                sqlx::error::ErrorKind::Other
            }
        }
    }

    fn kind_of(code: &'static str) -> &'static str {
        match StoreError::from(sqlx::Error::Database(Box::new(Coded(code, false)))) {
            StoreError::Unavailable(_) => "unavailable",
            StoreError::Other(_) => "other",
            _ => "unexpected",
        }
    }

    #[test]
    fn busy_sqlite_and_unreachable_or_timed_out_postgres_are_unavailable_and_nothing_else_is() {
        for code in [
            "5", "6", "261", "517", "08006", "53300", "57P01", "57P03", "57014", "40001", "40P01",
            "55P03",
        ] {
            assert_eq!(kind_of(code), "unavailable", "{code}");
        }
        // 531 (a SQLite constraint) and 5386 (a SQLite I/O error) only look like PostgreSQL classes.
        for code in [
            "1", "19", "2067", "531", "5386", "23505", "57000", "42P01", "40000",
        ] {
            assert_eq!(kind_of(code), "other", "{code}");
        }
    }

    #[test]
    fn a_unique_violation_is_a_conflict_and_the_cause_stays_attached() {
        let taken = sqlx::Error::Database(Box::new(Coded("2067", true)));
        assert!(matches!(StoreError::from(taken), StoreError::Conflict));
        let gone = StoreError::from(sqlx::Error::PoolTimedOut);
        assert!(matches!(gone, StoreError::Unavailable(_)));
        assert!(gone.source().is_some());
    }

    /// rusqlite's errors (a login's writes on SQLite) are sorted by the same codes as sqlx's.
    #[test]
    fn rusqlite_errors_are_sorted_as_sqlx_errors_are() {
        let failure = |code| rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None);
        for busy in [5, 6, 261, 517] {
            let e = StoreError::from(failure(busy));
            assert!(matches!(e, StoreError::Unavailable(_)), "{busy}: {e:?}");
            assert!(e.source().is_some());
        }
        for taken in [2067, 1555] {
            assert!(
                matches!(StoreError::from(failure(taken)), StoreError::Conflict),
                "{taken}"
            );
        }
        for other in [1, 19, 787, 5386] {
            let e = StoreError::from(failure(other));
            assert!(matches!(e, StoreError::Other(_)), "{other}: {e:?}");
        }
        let misuse = StoreError::from(rusqlite::Error::InvalidParameterCount(2, 1));
        assert!(matches!(misuse, StoreError::Other(_)));
    }
}
