//! HTML escaping, one way for the whole binary: the catalog's descriptions, the pages'
//! template output, search snippets, the sitemap.

use std::fmt::Write;

/// Writes `s` into `out` with `& < > " '` escaped, without building a copy: the unchanged
/// runs between special characters are written as they are.
pub fn write_escaped(out: &mut impl Write, s: &str) -> std::fmt::Result {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.write_str(&s[start..i])?;
        out.write_str(rep)?;
        start = i + 1;
    }
    out.write_str(&s[start..])
}

/// Appends `s`, escaped, to `out`.
pub fn push_escaped(out: &mut String, s: &str) {
    // Writing into a String cannot fail.
    let _ = write_escaped(out, s);
}

/// `s`, escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_five_special_characters_are_escaped_and_nothing_else() {
        for (s, want) in [
            ("", ""),
            ("plain", "plain"),
            ("a & b", "a &amp; b"),
            (
                "<script>alert('x')</script>",
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;",
            ),
            (
                "\"quoted\" — ünïcode <>",
                "&quot;quoted&quot; — ünïcode &lt;&gt;",
            ),
            ("&&<<>>", "&amp;&amp;&lt;&lt;&gt;&gt;"),
            ("trailing &", "trailing &amp;"),
        ] {
            assert_eq!(escape(s), want, "{s}");
        }
    }
}
