//! Statements made parts of one, each one's numbered parameters renumbered to follow those of the
//! parts before it, so that binding each part's values in turn binds them all (see
//! `queries::POSTGRES_OPEN_SESSION`).

/// `statements`, each one's parameters `$1…$n` renumbered to follow those of the statements
/// before it. Each statement must number its parameters from `$1` to its highest, and no `$` of
/// ours stands for anything else.
pub(super) fn following<const N: usize>(statements: [&str; N]) -> [String; N] {
    let mut before = 0;
    statements.map(|sql| {
        let mut out = String::with_capacity(sql.len() + 16);
        let mut highest = 0;
        let mut rest = sql;
        while let Some(at) = rest.find('$') {
            out.push_str(&rest[..=at]);
            rest = &rest[at + 1..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(n) = rest[..digits].parse::<usize>() {
                highest = highest.max(n);
                out.push_str(&(n + before).to_string());
                rest = &rest[digits..];
            }
        }
        out.push_str(rest);
        before += highest;
        out
    })
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
}
