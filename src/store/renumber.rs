//! Statements made parts of others: each one's numbered parameters renumbered to follow those of
//! the parts before it, so that binding each part's values in turn binds them all (see
//! `queries::POSTGRES_OPEN_SESSION`), or each replaced by an expression of the statement it is
//! written into (see `postgres_open_session.rs`).

/// `statements`, each one's parameters `$1…$n` renumbered to follow those of the statements
/// before it. Each statement must number its parameters from `$1` to its highest, and no `$` of
/// ours stands for anything else.
pub(super) fn following<const N: usize>(statements: [&str; N]) -> [String; N] {
    let mut before = 0;
    statements.map(|sql| {
        let mut highest = 0;
        let out = replace_parameters(sql, |n| {
            highest = highest.max(n);
            format!("${}", n + before)
        });
        before += highest;
        out
    })
}

/// `sql` with each parameter `$n` replaced by `values[n - 1]`; `None` when `values` has not as
/// many as `sql` numbers.
pub(super) fn substitute(sql: &str, values: &[&str]) -> Option<String> {
    let mut missing = false;
    let out = replace_parameters(sql, |n| {
        match n.checked_sub(1).and_then(|i| values.get(i)) {
            Some(value) => (*value).to_owned(),
            None => {
                missing = true;
                String::new()
            }
        }
    });
    (!missing).then_some(out)
}

/// `sql` with each `$n` replaced by `with(n)`.
fn replace_parameters(sql: &str, mut with: impl FnMut(usize) -> String) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(n) => {
                out.push_str(&with(n));
                rest = &rest[digits..];
            }
            Err(_) => out.push('$'),
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_of_the_parts_follow_on_from_those_before() {
        let parts = following([
            "DELETE FROM t WHERE a = $1",
            "UPDATE t SET b = $2 WHERE a = $1 AND c IN ($2, $3) AND d = '$'",
            "SELECT 1",
            "INSERT INTO u VALUES ($1, $10)",
        ]);
        assert_eq!(
            parts,
            [
                "DELETE FROM t WHERE a = $1",
                "UPDATE t SET b = $3 WHERE a = $2 AND c IN ($3, $4) AND d = '$'",
                "SELECT 1",
                "INSERT INTO u VALUES ($5, $14)",
            ]
        );
    }

    #[test]
    fn each_parameter_is_replaced_by_its_value_and_too_few_values_are_refused() {
        let sql = "UPDATE t SET b = $2 + $1 WHERE a = $12 AND d = '$'";
        let mut values = vec!["x"; 12];
        values[0] = "(v_count)";
        values[1] = "$7";
        values[11] = "$25";
        assert_eq!(
            substitute(sql, &values).as_deref(),
            Some("UPDATE t SET b = $7 + (v_count) WHERE a = $25 AND d = '$'")
        );
        assert_eq!(substitute(sql, &values[..11]), None);
        assert_eq!(substitute("SELECT $0", &values), None);
    }
}
