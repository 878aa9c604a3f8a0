//! Small sentence helpers shared by the planner (whose reasons and findings
//! are sentences stored in the plan), the views and the commands: counts
//! with the right noun, lists joined with "and", the name of an endpoint
//! mode, a TOML-like list. Pure functions over strings; no colour, no I/O.

use std::fmt::Display;

/// `1 step`, `2 steps`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `a`, `a and b`, `a, b and c`.
pub fn join_and<S: AsRef<str>>(items: &[S]) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_string(),
        [init @ .., last] => {
            let init: Vec<&str> = init.iter().map(AsRef::as_ref).collect();
            format!("{} and {}", init.join(", "), last.as_ref())
        }
    }
}

/// Names a few things in backticks: `` `a` ``, `` `a`, `b` and `c` ``, or
/// `` `a`, `b` and 3 more `` past three.
pub fn name_few<T: Display>(names: impl IntoIterator<Item = T>) -> String {
    let names: Vec<String> = names.into_iter().map(|n| format!("`{n}`")).collect();
    if names.len() > 3 {
        format!("{} and {} more", names[..2].join(", "), names.len() - 2)
    } else {
        join_and(&names)
    }
}

/// `public only`, `public and private`, `private only`.
pub fn mode_name(public: bool, private: bool) -> &'static str {
    match (public, private) {
        (true, false) => "public only",
        (true, true) => "public and private",
        (false, true) => "private only",
        (false, false) => "off",
    }
}

/// `["a", "b"]`, the TOML-like form views use.
pub fn string_list<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let quoted: Vec<String> = items.into_iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_read_as_sentences() {
        let cases: [(&[&str], &str, &str); 5] = [
            (&[], "", ""),
            (&["a"], "a", "`a`"),
            (&["a", "b"], "a and b", "`a` and `b`"),
            (&["a", "b", "c"], "a, b and c", "`a`, `b` and `c`"),
            (
                &["a", "b", "c", "d", "e"],
                "a, b, c, d and e",
                "`a`, `b` and 3 more",
            ),
        ];
        for (items, joined, named) in cases {
            assert_eq!(join_and(items), joined);
            assert_eq!(name_few(items.iter()), named);
        }
        assert_eq!(plural(1, "step", "steps"), "1 step");
        assert_eq!(plural(0, "step", "steps"), "0 steps");
        assert_eq!(string_list(["a", "b"]), r#"["a", "b"]"#);
    }
}
