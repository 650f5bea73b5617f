//! Inline styles for a release's body in mail. Gmail and other webmail drop a `<style>`
//! element in some clients and every style on `<body>`, so the mail's HTML carries its
//! styles as `style=""` attributes on the elements themselves: `mail.html` writes them
//! for its own elements, and `styled` adds them to the body's (headings no larger than the
//! mail's section headings, tables with borders, images that fit a phone).
//!
//! The body is HTML that pulldown-cmark or ammonia wrote: every `<` in text is escaped,
//! attribute values are quoted, no comments, scripts or styles. `styled` relies on that
//! and scans tags rather than parsing a document; it runs once per release, not per
//! recipient.

/// The style each kind of element gets, in pixels (Outlook's renderer reads no `rem`).
fn style_for(tag: &str) -> Option<&'static str> {
    Some(match tag {
        // The size of `mail.html`'s section headings (`Presskontakt`): never larger.
        "h1" | "h2" => "font-size:20px;line-height:1.3;margin:24px 0 8px",
        "h3" => "font-size:18px;line-height:1.3;margin:20px 0 8px",
        "h4" | "h5" | "h6" => "font-size:16px;line-height:1.3;margin:16px 0 8px",
        "p" => "margin:0 0 16px",
        "a" => "color:#0645ad",
        "ul" | "ol" => "margin:0 0 16px;padding-left:24px",
        "blockquote" => "margin:16px 0;padding:0 16px;border-left:4px solid #cccccc;color:#333333",
        "table" => "border-collapse:collapse;margin:0 0 16px",
        "th" | "td" => {
            "border:1px solid #cccccc;padding:4px 8px;text-align:left;vertical-align:top"
        }
        "img" => "max-width:100%;height:auto;border:0",
        "hr" => "border:0;border-top:1px solid #cccccc;margin:24px 0",
        "pre" => "white-space:pre-wrap;overflow-wrap:anywhere;background:#f4f4f4;padding:8px",
        "code" => "font-family:monospace",
        _ => return None,
    })
}

/// `html` with a `style` attribute on every element `style_for` names. An element that
/// has one already (pulldown-cmark aligns table cells with `style="text-align: …"`) keeps
/// it after ours, so its own declarations win.
pub fn styled(html: &str) -> String {
    let bytes = html.as_bytes();
    let mut out = String::with_capacity(html.len() + html.len() / 4);
    let mut copied = 0;
    let mut at = 0;
    while let Some(found) = memchr::memchr(b'<', &bytes[at..]) {
        let open = at + found;
        let name_end = bytes[open + 1..]
            .iter()
            .position(|b| !b.is_ascii_alphanumeric())
            .map_or(bytes.len(), |n| open + 1 + n);
        // `</p>`, `<!doctype>`: nothing to style.
        if name_end == open + 1 {
            at = open + 1;
            continue;
        }
        let Some(close) = tag_end(bytes, name_end) else {
            break;
        };
        let name = html[open + 1..name_end].to_ascii_lowercase();
        if let Some(style) = style_for(&name) {
            let attributes = &html[name_end..close];
            match style_value(attributes) {
                Some(Value::Quoted(start)) => {
                    out.push_str(&html[copied..name_end]);
                    out.push_str(&attributes[..start]);
                    out.push_str(style);
                    out.push(';');
                    out.push_str(&attributes[start..]);
                    copied = close;
                }
                // An unquoted style value cannot take ours (it has spaces): left alone.
                Some(Value::Unquoted) => {}
                None => {
                    out.push_str(&html[copied..name_end]);
                    out.push_str(" style=\"");
                    out.push_str(style);
                    out.push('"');
                    copied = name_end;
                }
            }
        }
        at = close;
    }
    out.push_str(&html[copied..]);
    out
}

/// The index of the `>` that closes a tag whose attributes start at `from`: the first one
/// outside quotes (ammonia leaves `>` unescaped inside attribute values).
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut quote = None;
    for (i, &b) in bytes.iter().enumerate().skip(from) {
        match (quote, b) {
            (None, b'"' | b'\'') => quote = Some(b),
            (Some(q), _) if b == q => quote = None,
            (None, b'>') => return Some(i),
            _ => {}
        }
    }
    None
}

enum Value {
    /// The value starts at this index (after its opening quote).
    Quoted(usize),
    Unquoted,
}

/// Where the value of a `style` attribute starts in `attributes` (a tag's text after its
/// name), if it has one.
fn style_value(attributes: &str) -> Option<Value> {
    let bytes = attributes.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Skip to the next attribute name.
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < bytes.len() && !matches!(bytes[i], b'=' | b'/') && !bytes[i].is_ascii_whitespace()
        {
            i += 1;
        }
        let name = &attributes[name_start..i];
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes.get(i) != Some(&b'=') {
            if name.is_empty() {
                i += 1;
            }
            continue;
        }
        i += 1;
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let is_style = name.eq_ignore_ascii_case("style");
        match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) => {
                if is_style {
                    return Some(Value::Quoted(i + 1));
                }
                i += 1;
                while i < bytes.len() && bytes[i] != q {
                    i += 1;
                }
                i += 1;
            }
            _ => {
                if is_style {
                    return Some(Value::Unquoted);
                }
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_that_needs_a_style_carries_one() {
        let html = "<h2>Bakgrund</h2>\n<p>Text med <a href=\"https://example.org/?a=1&amp;b=2\">länk</a>.</p>\n<hr />\n<pre><code>kod</code></pre>\n";
        assert_eq!(
            styled(html),
            format!(
                "<h2 style=\"{}\">Bakgrund</h2>\n<p style=\"{}\">Text med <a style=\"{}\" href=\"https://example.org/?a=1&amp;b=2\">länk</a>.</p>\n<hr style=\"{}\" />\n<pre style=\"{}\"><code style=\"{}\">kod</code></pre>\n",
                style_for("h2").unwrap(),
                style_for("p").unwrap(),
                style_for("a").unwrap(),
                style_for("hr").unwrap(),
                style_for("pre").unwrap(),
                style_for("code").unwrap(),
            )
        );
    }

    #[test]
    fn a_style_already_there_keeps_its_declarations_after_ours() {
        let cell = styled("<td style=\"text-align: center\">1</td>");
        assert_eq!(
            cell,
            format!(
                "<td style=\"{};text-align: center\">1</td>",
                style_for("td").unwrap()
            )
        );
        // A `>` inside a quoted value is not the tag's end; `title="style=x"` is no style.
        let img = styled("<img src=\"a.png\" alt=\"a > b\" title='style=\"x\"'>");
        assert_eq!(
            img,
            format!(
                "<img style=\"{}\" src=\"a.png\" alt=\"a > b\" title='style=\"x\"'>",
                style_for("img").unwrap()
            )
        );
    }

    #[test]
    fn text_and_other_elements_are_left_as_they_are() {
        for html in [
            "",
            "bara text &lt;p&gt;",
            "<strong>fet</strong> <em>kursiv</em><br>",
            "</p></h2>",
            "<p",
            "<param name=\"x\">",
        ] {
            assert_eq!(styled(html), html);
        }
        assert_eq!(
            styled("<P CLASS=x>"),
            format!("<P style=\"{}\" CLASS=x>", style_for("p").unwrap())
        );
    }
}
