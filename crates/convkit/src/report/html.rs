//! Helpers for self-contained HTML reports: text made safe to embed, images inlined as
//! `data:` URIs, so that one file can be mailed or archived and still show everything.

use base64::Engine as _;

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by entities: safe inside element content
/// and inside quoted attribute values.
///
/// ```
/// use convkit::report::html::escape;
///
/// assert_eq!(escape(r#"<a href="x">Tom & Jerry's</a>"#),
///            "&lt;a href=&quot;x&quot;&gt;Tom &amp; Jerry&#39;s&lt;/a&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
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

/// The PNG image `png` as a `data:image/png;base64,...` URI, to put in an `<img src="...">`.
///
/// ```
/// use convkit::report::html::png_data_uri;
///
/// assert_eq!(png_data_uri(b"\x89PNG"), "data:image/png;base64,iVBORw==");
/// ```
pub fn png_data_uri(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character_and_keeps_the_rest() {
        assert_eq!(
            escape("<script>alert('x & y')</script>"),
            "&lt;script&gt;alert(&#39;x &amp; y&#39;)&lt;/script&gt;"
        );
        assert_eq!(escape("a\"b"), "a&quot;b");
        assert_eq!(escape("99.1% — ünïcode"), "99.1% — ünïcode");
        assert_eq!(escape(""), "");
        // Already escaped text is escaped again: escaping is not idempotent by design.
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn a_data_uri_decodes_back_to_the_bytes() {
        let bytes: Vec<u8> = (0..=255).collect();
        let uri = png_data_uri(&bytes);
        let encoded = uri.strip_prefix("data:image/png;base64,").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, bytes);
        assert_eq!(png_data_uri(&[]), "data:image/png;base64,");
    }
}
