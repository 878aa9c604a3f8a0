//! Small text helpers that the planner (whose reasons and findings are
//! sentences stored in the plan), the views and the commands share: counts
//! with their noun, lists joined the way sentences join them, the name of an
//! endpoint mode, quoted lists, ANSI colour. Each exists once here so
//! messages read alike everywhere.
//!
//! Pure functions over strings: nothing here knows a plan, a flag, or where
//! text is written.

/// `1 step`, `3 steps`.
pub fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", noun(n, one, many))
}

/// The noun alone, for sentences that place the count themselves.
pub fn noun<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 {
        one
    } else {
        many
    }
}

/// `a`, `a and b`, `a, b and c`; empty for none.
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

/// At most `shown` items and a count of the rest: `a, b and 3 more`. A list
/// one longer than `shown` is named whole, since `and 1 more` saves nothing.
pub fn some_of<S: AsRef<str>>(items: &[S], shown: usize) -> String {
    if items.len() <= shown + 1 {
        return join_and(items);
    }
    let head: Vec<&str> = items[..shown].iter().map(AsRef::as_ref).collect();
    format!("{} and {} more", head.join(", "), items.len() - shown)
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
pub fn string_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let mut out = String::new();
    push_string_list(&mut out, items);
    out
}

/// [`string_list`] written at the end of `out`.
pub fn push_string_list<T: std::fmt::Display>(
    out: &mut String,
    items: impl IntoIterator<Item = T>,
) {
    use std::fmt::Write as _;
    out.push('[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        // Writing into a `String` cannot fail.
        let _ = write!(out, "\"{item}\"");
    }
    out.push(']');
}

/// Wraps `s` in an ANSI SGR sequence (`1;31`: bold red) when `color` is on.
pub fn paint(color: bool, code: &str, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 12);
    // Writing into a `String` cannot fail.
    let _ = painted(&mut out, color.then_some(code), format_args!("{s}"));
    out
}

/// Writes `args` into `out`, wrapped in the ANSI SGR sequence `code` when
/// there is one: [`paint`] without building a string first.
pub fn painted(
    out: &mut impl std::fmt::Write,
    code: Option<&str>,
    args: std::fmt::Arguments<'_>,
) -> std::fmt::Result {
    match code {
        Some(code) => write!(out, "\x1b[{code}m{args}\x1b[0m"),
        None => out.write_fmt(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_their_noun() {
        for (n, want) in [(0, "0 files"), (1, "1 file"), (2, "2 files")] {
            assert_eq!(plural(n, "file", "files"), want);
        }
        assert_eq!(noun(1, "cluster", "clusters"), "cluster");
        assert_eq!(noun(3, "cluster", "clusters"), "clusters");
    }

    #[test]
    fn lists_read_as_sentences() {
        let cases: [(&[&str], usize, &str, &str); 6] = [
            (&[], 3, "", ""),
            (&["a"], 3, "a", "a"),
            (&["a", "b"], 3, "a and b", "a and b"),
            (&["a", "b", "c"], 2, "a, b and c", "a, b and c"),
            (&["a", "b", "c", "d"], 3, "a, b, c and d", "a, b, c and d"),
            (
                &["a", "b", "c", "d", "e"],
                3,
                "a, b, c, d and e",
                "a, b, c and 2 more",
            ),
        ];
        for (items, shown, joined, some) in cases {
            assert_eq!(join_and(items), joined, "{items:?}");
            assert_eq!(some_of(items, shown), some, "{items:?} {shown}");
        }
        assert_eq!(some_of(&["a", "b", "c", "d"], 2), "a, b and 2 more");
    }

    #[test]
    fn quoted_lists_and_paint() {
        assert_eq!(string_list(Vec::<String>::new()), "[]");
        assert_eq!(
            string_list(["10.0.0.0/8", "sg-1"]),
            "[\"10.0.0.0/8\", \"sg-1\"]"
        );
        assert_eq!(paint(false, "1;31", "error"), "error");
        assert_eq!(paint(true, "1;31", "error"), "\x1b[1;31merror\x1b[0m");
    }
}
