//! HTML building blocks: escaping, base64 data URIs, tables and the page shell with its inline
//! stylesheet. Everything that comes from a file (names, config values, paths, notes) goes
//! through [`escape_html`] before it reaches the page.

use std::fmt::Write as _;

/// Escapes `&`, `<`, `>`, `"` and `'`, so the text is safe both as element content and inside a
/// quoted attribute value.
///
/// ```
/// assert_eq!(cilp_report::html::escape_html("<b a='1'>&\""), "&lt;b a=&#39;1&#39;&gt;&amp;&quot;");
/// ```
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
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

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 (RFC 4648, with padding).
///
/// ```
/// assert_eq!(cilp_report::html::base64(b"foobar!"), "Zm9vYmFyIQ==");
/// ```
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A `data:` URI of `bytes` with MIME type `mime` (e.g. `image/png`).
pub fn data_uri(mime: &str, bytes: &[u8]) -> String {
    format!("data:{mime};base64,{}", base64(bytes))
}

/// An `<img>` element showing PNG bytes inline. `alt` is escaped.
pub fn img_png(png: &[u8], alt: &str, class: &str) -> String {
    format!("<img class=\"{}\" alt=\"{}\" src=\"{}\">", escape_html(class), escape_html(alt), data_uri("image/png", png))
}

/// A table whose header and cells are plain text (all escaped). Cells that parse as numbers
/// are right-aligned.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><thead><tr>");
    for h in headers {
        let _ = write!(s, "<th>{}</th>", escape_html(h));
    }
    s.push_str("</tr></thead><tbody>");
    for row in rows {
        s.push_str("<tr>");
        for c in row {
            let numeric = looks_numeric(c);
            let _ = write!(s, "<td{}>{}</td>", if numeric { " class=\"num\"" } else { "" }, escape_html(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</tbody></table>");
    s
}

fn looks_numeric(c: &str) -> bool {
    let t = c.trim().trim_end_matches('%').replace(',', "");
    !t.is_empty() && t.parse::<f64>().is_ok()
}

/// A `<ul>` of escaped items (empty string for no items).
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = String::from("<ul>");
    for i in items {
        let _ = write!(s, "<li>{}</li>", escape_html(i));
    }
    s.push_str("</ul>");
    s
}

/// The inline stylesheet shared by every page (no web fonts, no external resources).
pub const STYLE: &str = r#"
:root { --fg:#1d2330; --muted:#5b6473; --line:#d9dee7; --bg:#f6f7f9; --card:#fff; --accent:#3b5bdb; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#1d2330; color:#fff; padding:18px 32px; }
header h1 { margin:0; font-size:22px; font-weight:600; }
header p { margin:4px 0 0; color:#c5cbd6; font-size:13px; }
main { max-width:1220px; margin:0 auto; padding:16px 24px 48px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:16px 20px; margin:18px 0; }
section section { border:none; border-top:1px solid var(--line); border-radius:0; padding:12px 0 0; margin:14px 0 0; }
h2 { font-size:18px; margin:0 0 10px; }
h3 { font-size:15px; margin:16px 0 8px; }
table { border-collapse:collapse; margin:8px 0 12px; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:5px 10px; text-align:left; vertical-align:top; }
th { background:#eef1f6; font-weight:600; white-space:nowrap; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
tbody tr:hover { background:#f3f6fc; }
.muted { color:var(--muted); }
.small { font-size:12px; }
.charts { display:flex; flex-wrap:wrap; gap:16px; align-items:flex-start; }
.chart { border:1px solid var(--line); border-radius:6px; background:#fff; }
.obs li { margin:3px 0; }
.gallery { display:grid; grid-template-columns:repeat(auto-fill, minmax(510px, 1fr)); gap:12px; }
.sample { border:1px solid var(--line); border-radius:6px; padding:8px; }
.sample .cap { font-size:12px; color:var(--muted); margin-bottom:4px; }
.triple { display:flex; gap:6px; }
.triple figure { margin:0; text-align:center; font-size:11px; color:var(--muted); }
img.px { image-rendering:pixelated; width:160px; height:160px; display:block; border:1px solid #333; }
img.studychart { max-width:100%; border:1px solid var(--line); border-radius:4px; }
details { margin:6px 0; }
summary { cursor:pointer; font-weight:600; }
pre { background:#f3f4f7; padding:8px 10px; border-radius:4px; overflow-x:auto; font-size:12px; }
code { font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace; font-size:12px; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px; vertical-align:middle; margin-right:4px; border:1px solid #999; }
.run { border-top:1px solid var(--line); padding-top:10px; margin-top:10px; }
.legend span { margin-right:14px; font-size:12px; }
nav a { color:#c5cbd6; margin-right:14px; font-size:13px; text-decoration:none; }
table.sortable th { cursor:pointer; user-select:none; }
table.sortable th.num { text-align:right; }
table.sortable th[aria-sort=ascending]::after { content:" \25B2"; font-size:10px; }
table.sortable th[aria-sort=descending]::after { content:" \25BC"; font-size:10px; }
.tools { margin:4px 0; }
.tools input { font:inherit; padding:4px 8px; width:320px; border:1px solid var(--line); border-radius:4px; }
"#;

/// A complete HTML page: `title` is escaped, `subtitle_html`, `nav_html` and `body_html` are
/// inserted as they are (callers build them from escaped parts).
pub fn page(title: &str, subtitle_html: &str, nav_html: &str, body_html: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<header><h1>{t}</h1><p>{subtitle_html}</p>{nav}</header>\n\
         <main>\n{body_html}\n</main>\n</body>\n</html>\n",
        t = escape_html(title),
        nav = if nav_html.is_empty() { String::new() } else { format!("<nav>{nav_html}</nav>") },
    )
}

/// Formats a float compactly: up to `digits` significant decimals, scientific for tiny/huge.
pub fn fmt_num(v: f64, digits: usize) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.*e}", digits.saturating_sub(1).max(1));
    }
    let s = format!("{v:.digits$}");
    if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.').to_owned() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (i, o) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE=")] {
            assert_eq!(base64(i.as_bytes()), o);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_html("<script>alert(1)</script>"), "&lt;script&gt;alert(1)&lt;/script&gt;");
        let t = table(&["<h>"], &[vec!["<td>".into()], vec!["1,234".into()]]);
        assert!(!t.contains("<td>&") || t.contains("&lt;td&gt;"));
        assert!(t.contains("<td class=\"num\">1,234</td>"));
        assert!(t.contains("<th>&lt;h&gt;</th>"));
    }

    #[test]
    fn numbers() {
        assert_eq!(fmt_num(0.5, 4), "0.5");
        assert_eq!(fmt_num(12.0, 2), "12");
        assert_eq!(fmt_num(1e-5, 3), "1.00e-5");
    }
}
