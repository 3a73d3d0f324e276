//! Statements of `queries.rs` run through rusqlite (see `login_writes.rs`), bound as sqlx binds
//! them: `$1` to the first value.

use rusqlite::{Connection, Row, Statement, ToSql, types::FromSql};

use super::StoreResult;

/// The first of the next `count` numbers of a counter (`sql.rs`'s `take_seqs`).
pub(super) fn take_seqs(tx: &Connection, counter: &str, count: usize) -> StoreResult<i64> {
    let count = i64::try_from(count).unwrap_or(i64::MAX);
    let values: [&dyn ToSql; 1] = [&count];
    let last: Vec<i64> = column(tx, counter, &values)?;
    let last = last.first().ok_or(rusqlite::Error::QueryReturnedNoRows)?;
    Ok(last - count + 1)
}

/// Runs a statement that returns no rows; how many rows it changed.
pub(super) fn execute(tx: &Connection, sql: &str, values: &[&dyn ToSql]) -> StoreResult<usize> {
    let mut statement = tx.prepare_cached(sql)?;
    bind(&mut statement, values)?;
    Ok(statement.raw_execute()?)
}

/// The first column of every row a statement returns (`RETURNING`).
pub(super) fn column<T: FromSql>(
    tx: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
) -> StoreResult<Vec<T>> {
    let mut statement = tx.prepare_cached(sql)?;
    bind(&mut statement, values)?;
    let mut rows = statement.raw_query();
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        found.push(row.get(0)?);
    }
    Ok(found)
}

/// The first row a statement returns, if any, as `map` reads it.
pub(super) fn first_row<T>(
    tx: &Connection,
    sql: &str,
    values: &[&dyn ToSql],
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> StoreResult<Option<T>> {
    let mut statement = tx.prepare_cached(sql)?;
    bind(&mut statement, values)?;
    let mut rows = statement.raw_query();
    Ok(rows.next()?.map(map).transpose()?)
}

/// Binds `values` to a statement of numbered parameters, `$1` to the first, as sqlx does. SQLite
/// takes `$1` for a name and numbers the names in the order they first appear in the text
/// (`LOCK_USER_AS_CHECKED` names `$3` first), so each is bound by its name's number.
fn bind(statement: &mut Statement<'_>, values: &[&dyn ToSql]) -> rusqlite::Result<()> {
    let count = statement.parameter_count();
    if count != values.len() {
        return Err(rusqlite::Error::InvalidParameterCount(values.len(), count));
    }
    for index in 1..=count {
        let value = statement
            .parameter_name(index)
            .and_then(|name| name.strip_prefix('$')?.parse::<usize>().ok())
            .and_then(|n| values.get(n.checked_sub(1)?))
            .ok_or(rusqlite::Error::InvalidParameterCount(values.len(), count))?;
        statement.raw_bind_parameter(index, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, ToSql};

    use super::{bind, column};

    /// `$n` is bound to the n-th value wherever it first appears, and however often it appears.
    #[test]
    fn numbered_parameters_are_bound_by_their_number() {
        let conn = Connection::open_in_memory().unwrap();
        let values: [&dyn ToSql; 3] = [&"one", &"two", &"three"];
        let found: Vec<String> = column(&conn, "SELECT $3 || $1 || $2 || $3", &values).unwrap();
        assert_eq!(found, ["threeonetwothree"]);
    }

    /// A statement given more or fewer values than it has parameters is refused, not half bound.
    #[test]
    fn a_wrong_number_of_values_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        let mut statement = conn.prepare("SELECT $1, $2").unwrap();
        assert!(bind(&mut statement, &[&1]).is_err());
        assert!(bind(&mut statement, &[&1, &2, &3]).is_err());
        let mut gap = conn.prepare("SELECT $1, $3").unwrap();
        assert!(bind(&mut gap, &[&1, &2]).is_err(), "$3 has no value");
    }
}
