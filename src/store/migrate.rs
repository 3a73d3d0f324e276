//! The schema of each backend, from its `migrations/<backend>/` files embedded in the binary.

/// The schema of a backend, its `migrations/<backend>/` files in order (numbered from 1), embedded
/// in the binary (the runtime `Migrator` rather than the `migrate!` macro, which would compile the
/// drivers twice). Each backend lists its files by name: both folders hold the same names.
pub(super) fn migrator(migrations: &[(&'static str, &'static str)]) -> sqlx::migrate::Migrator {
    use sqlx::{
        SqlSafeStr,
        migrate::{Migration, MigrationType, Migrator},
    };
    Migrator::with_migrations(
        (1..)
            .zip(migrations)
            .map(|(version, &(name, sql))| {
                Migration::new(
                    version,
                    std::borrow::Cow::Borrowed(name),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}
