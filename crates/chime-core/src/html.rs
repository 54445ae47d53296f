//! Text into HTML: what the email's HTML part and the action pages put around user text.

/// Escapes text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_escapes_the_five_special_characters() {
        assert_eq!(
            escape(r#"<b>&"it's"</b>"#),
            "&lt;b&gt;&amp;&quot;it&#39;s&quot;&lt;/b&gt;"
        );
        assert_eq!(escape("plain é"), "plain é");
    }
}
