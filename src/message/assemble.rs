//! Writing the delivered message: the status headers first, forged copies
//! removed, and a decrypted or unwrapped entity in place of the content.

use super::{header_end, mime, report, Replacement, Report};

/// Prefix the status headers to a whole message and remove forged ones.
pub fn annotate_message(raw: &[u8], report: &Report) -> Vec<u8> {
    let split = header_end(raw);
    let mut out = report::annotate_header_block(&raw[..split], report);
    out.extend_from_slice(&raw[split..]);
    out
}

/// Outer headers (minus Content-*, forged status headers and fields the
/// protected headers replace) + protected fields + the entity's MIME
/// headers + blank line + the entity's body.
pub(super) fn assemble(raw: &[u8], report: &Report, r: &Replacement) -> Vec<u8> {
    let outer = &raw[..header_end(raw)];
    let replaced: Vec<String> = mime::fields(&r.protected)
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut out = report.header_lines();
    for f in mime::fields(outer) {
        let stray_continuation =
            f.name.is_empty() && f.raw.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if stray_continuation
            || f.name.starts_with("x-popcrypt-")
            || f.name.starts_with("content-")
            || replaced.contains(&f.name)
        {
            continue;
        }
        out.extend_from_slice(f.raw);
    }
    for part in [&r.protected, &r.mime_headers] {
        out.extend_from_slice(part);
        if !part.is_empty() && !part.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out
}
