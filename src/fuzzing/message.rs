//! Fuzz entry points for the message side: MIME structure helpers, the
//! strict reader, forged-header removal and the whole transform.

use super::{assert_status_first, golden_transformer};
use crate::message::{mime, report, strict};
use crate::pop3::engine::{Disposition, MessageHook};
use crate::pop3::response;

// ---------------------------------------------------------------------------
// (d) MIME structure

/// The header and structure helpers of [`crate::message::mime`] and the
/// forged-header removal on arbitrary bytes: offsets in range, no byte lost
/// by field splitting, no `X-Popcrypt-*` line left after removal.
pub fn mime(data: &[u8]) {
    let h = offsets(data);
    armor(data);
    structure(data);
    strict_reader(data);
    let _ = mime::sender(&data[..h]);
    normalized(data);
    forged_headers(data, h);
}

/// Header fields keep every byte; header end, body start and entity split
/// lie in range. Returns the header end.
fn offsets(data: &[u8]) -> usize {
    let fields = mime::fields(data);
    let joined: Vec<u8> = fields.iter().flat_map(|f| f.raw.iter().copied()).collect();
    assert_eq!(joined, data, "fields lost bytes");
    for f in &fields {
        assert!(!f.raw.is_empty());
        assert_eq!(f.name, f.name.to_ascii_lowercase());
    }

    let h = mime::header_end(data);
    assert!(h <= data.len());
    assert!(h == 0 || data[h - 1] == b'\n' || h == data.len());
    let b = mime::body_start(data);
    assert!(h <= b && b <= data.len() && b - h <= 2);
    let (eh, eb) = mime::entity_split(data);
    assert!(eh <= eb && eb <= data.len());
    if mime::starts_with_header(data) {
        assert_eq!((eh, eb), (h, b));
    }
    let _ = mime::block_mime_type(&data[..h]);
    let _ = mime::is_blank(data);
    h
}

/// Armor spans start at a line start with their BEGIN line.
fn armor(data: &[u8]) {
    for (begin, end) in [
        (
            &b"-----BEGIN PGP MESSAGE-----"[..],
            &b"-----END PGP MESSAGE-----"[..],
        ),
        (
            b"-----BEGIN PGP SIGNED MESSAGE-----",
            b"-----END PGP SIGNATURE-----",
        ),
        (
            b"-----BEGIN PGP SIGNATURE-----",
            b"-----END PGP SIGNATURE-----",
        ),
    ] {
        if let Some((s, e)) = mime::armor_span(data, begin, end) {
            assert!(s < e && e <= data.len());
            assert!(data[s..].starts_with(begin));
            assert!(s == 0 || data[s - 1] == b'\n' || data[s - 1] == b'\r');
        }
    }
}

/// Structure, as the transform reads it: no panic on any part.
fn structure(data: &[u8]) {
    for msg in [mime::parse_structure(data), mime::parse(data)]
        .into_iter()
        .flatten()
    {
        for p in &msg.parts {
            let _ = mime::mime_type(p);
            let _ = mime::param(p, "boundary");
            let _ = mime::param(p, "protocol");
            let _ = mime::children(&msg, p);
            if let Some(span) = mime::part_span(data, p) {
                let _ = mime::entity_split(span);
            }
            if let Some(body) = data.get(p.offset_body as usize..p.offset_end as usize) {
                let _ = mime::transfer_decode(body, p.encoding);
            }
        }
        let _ = mime::from_addresses(&msg);
    }
}

/// The strict RFC 2046 reader: total, parts inside the body, delimiters
/// whole lines only.
fn strict_reader(data: &[u8]) {
    if let Ok(e) = strict::top_entity(data) {
        assert!(e.header_end <= e.body_start && e.body_start <= data.len());
        if let (Some(ct), true) = (&e.content_type, e.mime_type().starts_with("multipart/")) {
            if let Ok(b) = strict::boundary(ct) {
                let dash = format!("--{b}");
                if let Ok(ranges) = strict::part_ranges(e.body(), b) {
                    let body = e.body();
                    for &(s, t) in &ranges {
                        assert!(s <= t && t <= body.len());
                        let part = &body[s..t];
                        assert!(
                            !part.windows(dash.len()).any(|w| w == dash.as_bytes()),
                            "a part of an unambiguous multipart holds its boundary"
                        );
                        let _ = strict::entity(part);
                    }
                }
            }
        }
    }
    let _ = strict::multipart(data);
    let _ = strict::content_type_lines(data);
}

/// Header lines end at CRLF, LF or a lone CR: normalizing is idempotent
/// and leaves only CRLF line ends in the header block.
fn normalized(data: &[u8]) {
    let n = mime::normalize_header_block(data);
    assert_eq!(&mime::normalize_header_block(&n)[..], &n[..], "idempotent");
    let nh = mime::header_end(&n);
    assert!(
        !n[..nh]
            .iter()
            .enumerate()
            .any(|(i, &c)| (c == b'\r' && n.get(i + 1) != Some(&b'\n'))
                || (c == b'\n' && (i == 0 || n[i - 1] != b'\r'))),
        "a lone CR or bare LF left in a normalized header block"
    );
}

/// Forged status headers, read line by line at CR or LF, are all removed.
fn forged_headers(data: &[u8], h: usize) {
    let stripped = report::strip_status_headers(&data[..h]);
    // Each line end may become CRLF, and a last line gains one.
    assert!(stripped.len() <= 2 * h + 2);
    for line in stripped.split(|&c| c == b'\n' || c == b'\r') {
        assert!(
            !(line.len() >= 11 && line[..11].eq_ignore_ascii_case(b"x-popcrypt-")),
            "a forged status header survived"
        );
    }
}

// ---------------------------------------------------------------------------
// (e) the whole message transform

/// Largest plaintext the fuzzed transformer produces.
pub const FUZZ_MAX_PLAINTEXT: usize = 4 << 20;

/// The message (made CRLF, as the engine hands it over) through
/// [`Transformer::transform`] with the golden OpenPGP and S/MIME keys, and
/// through the engine's hook calls on its header block. Checks: no panic,
/// the two status headers first and no other `X-Popcrypt-*` line in the
/// delivered header block, output bounded by the input and the plaintext
/// limit.
pub fn transform(data: &[u8]) {
    let raw = response::crlf_lines(data);
    let t = golden_transformer();
    let head = &raw[..mime::header_end(&raw)];
    match t.classify(head) {
        Disposition::Sniff => {
            let body = &raw[mime::body_start(&raw)..];
            let _ = t.sniff(head, body);
        }
        Disposition::Stream | Disposition::Transform => {}
    }
    let streamed = t.stream_headers(head, None);
    assert_status_first(&streamed);

    let (out, report) = t.transform(&raw);
    assert!(
        out.starts_with(&report.header_lines()),
        "the status headers are not first"
    );
    assert_status_first(&out[..mime::header_end(&out)]);
    assert!(
        out.len() <= 2 * raw.len() + 2 * FUZZ_MAX_PLAINTEXT + 4096,
        "{} octets out of {}",
        out.len(),
        raw.len()
    );
}
