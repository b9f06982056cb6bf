//! The Cleartext Signature Framework (RFC 4880 section 7), parsed
//! strictly: only `Hash:` header lines, dash-escaping required, a strict
//! signature armor.

use sequoia_openpgp::types::HashAlgorithm;

use crate::text::{self, LoneCr};

pub(super) const BEGIN_SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
pub(super) const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
pub(super) const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";

/// Why a Cleartext Signature Framework block is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleartextError {
    /// `-----BEGIN PGP SIGNED MESSAGE-----` is not alone on its line.
    #[error("malformed cleartext signature: text after the BEGIN PGP SIGNED MESSAGE marker")]
    BeginLine,
    /// A line in the header is not a `Hash:` line naming known algorithms.
    #[error("malformed cleartext signature header: {0}")]
    Header(String),
    /// A line of the signed text starts with `-` but not with `- `.
    #[error(
        "malformed cleartext signature: line {0} of the signed text starts with '-' and is \
         not dash-escaped"
    )]
    DashEscape(usize),
    /// No `-----BEGIN PGP SIGNATURE-----` line after the signed text.
    #[error("malformed cleartext signature: no BEGIN PGP SIGNATURE line")]
    NoSignature,
    /// The signature armor is not headers, an empty line, base64, an
    /// optional checksum and the END line.
    #[error("malformed cleartext signature armor: {0}")]
    Armor(&'static str),
}

/// A Cleartext Signature Framework block (RFC 4880 section 7), parsed
/// strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleartext<'a> {
    /// The algorithms the `Hash:` header lines name (possibly none).
    pub hashes: Vec<HashAlgorithm>,
    /// The signed text as it is hashed (RFC 4880 section 7.1): dash-escapes
    /// removed, trailing spaces and tabs removed, lines joined with CRLF,
    /// no line end after the last line.
    pub signed: Vec<u8>,
    /// The signature armor, from its BEGIN line to the END marker.
    pub signature: &'a [u8],
    /// Offset just past the block: after the END marker, the spaces and
    /// tabs after it, and its line end if nothing else follows on the
    /// line. Text after the marker on the same line is outside the block.
    pub end: usize,
}

/// The lines of a block and where each starts in the input. A line ends
/// at LF, CRLF or a lone CR (what some clients show as a line break), or at
/// the end of the input: [`LoneCr::Ends`].
struct Cursor<'a> {
    lines: text::Lines<'a>,
    /// Offset of the next line in the input.
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(input: &'a [u8]) -> Self {
        Cursor {
            lines: text::lines(input, LoneCr::Ends),
            pos: 0,
        }
    }

    /// The next line's offset and text (without its line end); `None` at
    /// the end of the input.
    fn next_line(&mut self) -> Option<(usize, &'a [u8])> {
        let line = self.lines.next()?;
        let start = self.pos;
        self.pos += line.len();
        Some((start, line.text))
    }
}

fn is_blank_ws(b: &[u8]) -> bool {
    b.iter().all(|&c| c == b' ' || c == b'\t')
}

fn trim_trailing_ws(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// The marker alone on its line (trailing spaces and tabs allowed).
fn is_marker_line(line: &[u8], marker: &[u8]) -> bool {
    line.starts_with(marker) && is_blank_ws(&line[marker.len()..])
}

/// The hash algorithm names of RFC 4880 section 9.4 and RFC 9580 section
/// 9.5, as GnuPG writes and matches them (case-sensitive).
fn hash_by_name(name: &[u8]) -> Option<HashAlgorithm> {
    Some(match name {
        b"MD5" => HashAlgorithm::MD5,
        b"SHA1" => HashAlgorithm::SHA1,
        b"RIPEMD160" => HashAlgorithm::RipeMD,
        b"SHA224" => HashAlgorithm::SHA224,
        b"SHA256" => HashAlgorithm::SHA256,
        b"SHA384" => HashAlgorithm::SHA384,
        b"SHA512" => HashAlgorithm::SHA512,
        b"SHA3-256" => HashAlgorithm::SHA3_256,
        b"SHA3-512" => HashAlgorithm::SHA3_512,
        _ => return None,
    })
}

/// The field name of a `Name: value` line, if it looks like one (for the
/// error message; nothing else of the line is repeated).
fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let ok = (1..=32).contains(&name.len())
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| std::str::from_utf8(name).unwrap_or_default())
}

/// Parse a Cleartext Signature Framework block strictly. `input` starts at
/// the BEGIN PGP SIGNED MESSAGE line and may go on past the block (see
/// [`Cleartext::end`]). Between the BEGIN line and the empty line only
/// `Hash:` lines naming known algorithms are allowed (GnuPG rejects
/// anything else as an invalid armor header; a legacy client would show it
/// as if it were signed); every line of the signed text that starts with
/// `-` must be dash-escaped (`- `), so the BEGIN PGP SIGNATURE line is the
/// marker alone; the signature armor is armor headers, an empty line,
/// base64, an optional checksum and the END line.
pub fn parse_cleartext(input: &[u8]) -> Result<Cleartext<'_>, CleartextError> {
    let mut cur = Cursor::new(input);
    let first = cur.next_line().map_or(&b""[..], |(_, line)| line);
    if !is_marker_line(first, BEGIN_SIGNED) {
        return Err(CleartextError::BeginLine);
    }
    let hashes = header_hashes(&mut cur)?;
    let (signed, sig_start) = signed_text(&mut cur)?;
    armor_headers(&mut cur)?;
    let (marker_end, end) = armor_body(&mut cur)?;
    Ok(Cleartext {
        hashes,
        signed,
        signature: &input[sig_start..marker_end],
        end,
    })
}

/// The header: `Hash:` lines up to the first empty line; the algorithms
/// they name.
fn header_hashes(cur: &mut Cursor<'_>) -> Result<Vec<HashAlgorithm>, CleartextError> {
    let mut hashes = Vec::new();
    loop {
        let Some((_, line)) = cur.next_line() else {
            return Err(CleartextError::Header(
                "no empty line after the header".into(),
            ));
        };
        if line.is_empty() {
            return Ok(hashes);
        }
        let Some(value) = line.strip_prefix(b"Hash: ") else {
            return Err(CleartextError::Header(match field_name(line) {
                Some("Hash") => "a Hash line without a space after the colon".into(),
                Some(name) => format!("a {name}: line; only Hash: lines are allowed"),
                None if is_blank_ws(line) => {
                    "a line of spaces; the header ends at an empty line".into()
                }
                None => "a text line; only Hash: lines are allowed".into(),
            }));
        };
        for name in value.split(|&b| b == b',') {
            let name = trim_trailing_ws(name);
            let name = &name[name.len() - name.trim_ascii_start().len()..];
            match hash_by_name(name) {
                Some(h) => hashes.push(h),
                None => {
                    return Err(CleartextError::Header(
                        "a Hash: line naming an unknown hash algorithm".into(),
                    ))
                }
            }
        }
    }
}

/// The dash-escaped signed text up to the BEGIN PGP SIGNATURE line: the
/// text as hashed, and the offset of that line (consumed).
fn signed_text(cur: &mut Cursor<'_>) -> Result<(Vec<u8>, usize), CleartextError> {
    let mut signed = Vec::new();
    let mut number = 0;
    loop {
        let Some((start, line)) = cur.next_line() else {
            return Err(CleartextError::NoSignature);
        };
        if is_marker_line(line, BEGIN_SIGNATURE) {
            return Ok((signed, start));
        }
        number += 1;
        let text = match line {
            [b'-', b' ', rest @ ..] => rest,
            [b'-', ..] => return Err(CleartextError::DashEscape(number)),
            _ => line,
        };
        if number > 1 {
            signed.extend_from_slice(b"\r\n");
        }
        signed.extend_from_slice(trim_trailing_ws(text));
    }
}

/// The signature armor's header lines, up to its empty line: only the
/// armor header keys of RFC 4880 section 6.2 (GnuPG rejects any other).
fn armor_headers(cur: &mut Cursor<'_>) -> Result<(), CleartextError> {
    const KNOWN: [&[u8]; 5] = [
        b"Version: ",
        b"Comment: ",
        b"MessageID: ",
        b"Hash: ",
        b"Charset: ",
    ];
    loop {
        let Some((_, line)) = cur.next_line() else {
            return Err(CleartextError::Armor("it ends in its header"));
        };
        if line.is_empty() {
            return Ok(());
        }
        if !KNOWN.iter().any(|k| line.starts_with(k)) {
            return Err(CleartextError::Armor(
                "a line before its empty line is not an armor header",
            ));
        }
    }
}

/// The signature armor's base64 lines, an optional checksum and the END
/// line: the offset just past the END marker and [`Cleartext::end`].
fn armor_body(cur: &mut Cursor<'_>) -> Result<(usize, usize), CleartextError> {
    let mut data = false;
    let mut checksum = false;
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    loop {
        let Some((start, line)) = cur.next_line() else {
            return Err(CleartextError::Armor("no END PGP SIGNATURE line"));
        };
        if let Some(after) = line.strip_prefix(END_SIGNATURE) {
            if !data {
                return Err(CleartextError::Armor("no signature data"));
            }
            let marker_end = start + END_SIGNATURE.len();
            let ws = after.len() - trim_ascii_ws_start(after).len();
            // Only spaces and tabs after the marker: the line end belongs
            // to the block; any other text is outside it.
            let end = if ws == after.len() {
                cur.pos
            } else {
                marker_end + ws
            };
            return Ok((marker_end, end));
        }
        let t = trim_trailing_ws(line);
        if checksum {
            return Err(CleartextError::Armor("a line after the checksum"));
        }
        if t.len() == 5 && t[0] == b'=' && t[1..].iter().all(is_b64) && data {
            checksum = true;
        } else if !t.is_empty() && t[0] != b'=' && t.iter().all(is_b64) {
            data = true;
        } else {
            return Err(CleartextError::Armor("a line that is not base64"));
        }
    }
}

fn trim_ascii_ws_start(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG_ARMOR: &str =
        "-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQ==\n=AbCd\n-----END PGP SIGNATURE-----";

    /// A well-formed block with `eol` line ends, followed by `after`.
    fn block(eol: &str, header: &[&str], text: &[&str], after: &str) -> Vec<u8> {
        let mut lines = vec!["-----BEGIN PGP SIGNED MESSAGE-----"];
        lines.extend_from_slice(header);
        lines.push("");
        lines.extend_from_slice(text);
        let mut s = lines.join(eol);
        s.push_str(eol);
        s.push_str(&SIG_ARMOR.replace('\n', eol));
        s.push_str(after);
        s.into_bytes()
    }

    #[test]
    fn well_formed_with_every_line_end() {
        for eol in ["\n", "\r\n", "\r"] {
            let text = [
                "Hello,",
                "- - dash-escaped",
                "- -----BEGIN PGP SIGNATURE-----",
                "trailing spaces  \t",
                "",
                "- ",
                "end",
            ];
            let input = block(eol, &["Hash: SHA256"], &text, eol);
            let c = parse_cleartext(&input).unwrap_or_else(|e| panic!("{eol:?}: {e}"));
            assert_eq!(c.hashes, vec![HashAlgorithm::SHA256], "{eol:?}");
            assert_eq!(
                c.signed,
                b"Hello,\r\n- dash-escaped\r\n-----BEGIN PGP SIGNATURE-----\r\ntrailing spaces\r\n\r\n\r\nend",
                "{eol:?}"
            );
            assert_eq!(c.end, input.len(), "{eol:?}: the END line ends the block");
            assert!(c.signature.starts_with(BEGIN_SIGNATURE));
            assert!(c.signature.ends_with(END_SIGNATURE));
        }
    }

    #[test]
    fn hash_lists_and_several_hash_lines() {
        let input = block(
            "\r\n",
            &["Hash: SHA256, SHA512", "Hash: SHA3-256"],
            &["x"],
            "",
        );
        let c = parse_cleartext(&input).unwrap();
        assert_eq!(
            c.hashes,
            vec![
                HashAlgorithm::SHA256,
                HashAlgorithm::SHA512,
                HashAlgorithm::SHA3_256
            ]
        );
        // No Hash line at all is allowed (RFC 9580).
        assert!(parse_cleartext(&block("\n", &[], &["x"], "")).is_ok());
        // The END marker at the very end, without a line end.
        let input = block("\n", &["Hash: SHA256"], &["x"], "");
        assert_eq!(parse_cleartext(&input).unwrap().signed, b"x");
    }

    fn header_err(input: &[u8]) -> String {
        match parse_cleartext(input) {
            Err(CleartextError::Header(why)) => why,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn only_hash_lines_in_the_header() {
        for eol in ["\n", "\r\n", "\r"] {
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "Comment: approved by the CFO"],
                &["x"],
                "",
            ));
            assert_eq!(why, "a Comment: line; only Hash: lines are allowed");
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "URGENT: the meeting moved"],
                &["x"],
                "",
            ));
            assert_eq!(why, "a URGENT: line; only Hash: lines are allowed");
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "Wire the budget to account 1234 today."],
                &["x"],
                "",
            ));
            assert_eq!(why, "a text line; only Hash: lines are allowed");
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "Hash: Pay the invoice today"],
                &["x"],
                "",
            ));
            assert_eq!(why, "a Hash: line naming an unknown hash algorithm");
        }
        assert!(header_err(&block("\n", &["Hash: sha256"], &["x"], "")).contains("unknown"));
        assert!(header_err(&block("\n", &["Hash: SHA256,"], &["x"], "")).contains("unknown"));
        assert!(header_err(&block("\n", &["Hash:SHA256"], &["x"], "")).contains("space"));
        assert!(header_err(&block("\n", &["Hash: SHA256", "  "], &["x"], "")).contains("spaces"));
        // A lone CR ends a header line: what follows it is a line of its own.
        assert_eq!(
            header_err(&block("\r\n", &["Hash: SHA256\rComment: x"], &["x"], "")),
            "a Comment: line; only Hash: lines are allowed"
        );
        // A NUL or other bytes in the header: never repeated, still rejected.
        assert_eq!(
            header_err(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\x00\xff: x\n\nx\n"),
            "a text line; only Hash: lines are allowed"
        );
        assert!(
            header_err(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n").contains("empty")
        );
    }

    #[test]
    fn begin_lines_are_whole_lines() {
        let mut input = block("\n", &["Hash: SHA256"], &["x"], "");
        input.splice(34..34, b" extra".iter().copied());
        assert_eq!(parse_cleartext(&input), Err(CleartextError::BeginLine));
        // Trailing whitespace after a marker is allowed.
        let mut input = block("\n", &["Hash: SHA256"], &["x"], "");
        input.splice(34..34, b" \t".iter().copied());
        assert!(parse_cleartext(&input).is_ok());
        // A BEGIN PGP SIGNATURE line with text after it is a line of signed
        // text that starts with '-' and is not dash-escaped.
        let input = b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nx\r\n-----BEGIN PGP SIGNATURE----- x\r\n\r\niHUE\r\n-----END PGP SIGNATURE-----\r\n";
        assert_eq!(parse_cleartext(input), Err(CleartextError::DashEscape(2)));
    }

    #[test]
    fn dash_escaping() {
        for eol in ["\n", "\r\n", "\r"] {
            let input = block(eol, &["Hash: SHA256"], &["ok", "- ok", "--not escaped"], "");
            assert_eq!(
                parse_cleartext(&input),
                Err(CleartextError::DashEscape(3)),
                "{eol:?}"
            );
            let input = block(eol, &["Hash: SHA256"], &["-"], "");
            assert_eq!(parse_cleartext(&input), Err(CleartextError::DashEscape(1)));
        }
        // "-\t" is no dash-escape either.
        let input = block("\n", &["Hash: SHA256"], &["-\tx"], "");
        assert_eq!(parse_cleartext(&input), Err(CleartextError::DashEscape(1)));
        // A lone CR inside a line starts a new line for this check.
        let input = block(
            "\r\n",
            &["Hash: SHA256"],
            &["fine\r-----BEGIN PGP SIGNATURE-----x"],
            "",
        );
        assert_eq!(parse_cleartext(&input), Err(CleartextError::DashEscape(2)));
    }

    #[test]
    fn end_line_and_text_after_it() {
        for eol in ["\n", "\r\n", "\r"] {
            let base = block(eol, &["Hash: SHA256"], &["x"], "");
            // Text after the END marker on its line is outside the block.
            let input = block(
                eol,
                &["Hash: SHA256"],
                &["x"],
                &format!(" P.S. wire it{eol}"),
            );
            let c = parse_cleartext(&input).unwrap();
            assert_eq!(c.end, base.len() + 1, "{eol:?}");
            assert_eq!(&input[c.end..], format!("P.S. wire it{eol}").as_bytes());
            assert!(!c.signature.ends_with(b"it"));
            // Trailing whitespace and the line end belong to the END line.
            let input = block(
                eol,
                &["Hash: SHA256"],
                &["x"],
                &format!(" \t{eol}next{eol}"),
            );
            let c = parse_cleartext(&input).unwrap();
            assert_eq!(&input[c.end..], format!("next{eol}").as_bytes());
            // The END marker with text glued to it.
            let input = block(eol, &["Hash: SHA256"], &["x"], "x");
            let c = parse_cleartext(&input).unwrap();
            assert_eq!(&input[c.end..], b"x");
        }
    }

    #[test]
    fn signature_armor_is_strict() {
        let armor = |sig: &str| {
            format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n{sig}\n").into_bytes()
        };
        let ok = armor("-----BEGIN PGP SIGNATURE-----\nVersion: x\nComment: y\n\niHUE\niHUE==\n=AbCd\n-----END PGP SIGNATURE-----");
        assert!(parse_cleartext(&ok).is_ok());
        for (sig, why) in [
            (
                "-----BEGIN PGP SIGNATURE-----\nNote: x\n\niHUE\n-----END PGP SIGNATURE-----",
                "not an armor header",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\niHUE\n-----END PGP SIGNATURE-----",
                "not an armor header",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\niHUE\nnot base64!\n-----END PGP SIGNATURE-----",
                "not base64",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\niHUE\n\niHUE\n-----END PGP SIGNATURE-----",
                "not base64",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\niHUE\n=AbCd\niHUE\n-----END PGP SIGNATURE-----",
                "after the checksum",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----",
                "no signature data",
            ),
            ("-----BEGIN PGP SIGNATURE-----\n\niHUE", "no END"),
        ] {
            match parse_cleartext(&armor(sig)) {
                Err(CleartextError::Armor(w)) => assert!(w.contains(why), "{sig:?}: {w}"),
                other => panic!("{sig:?}: {other:?}"),
            }
        }
        assert_eq!(
            parse_cleartext(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n"),
            Err(CleartextError::NoSignature)
        );
    }

    #[test]
    fn armor_span_lines_end_at_a_lone_cr() {
        use crate::message::mime::armor_span;
        let (b, e) = (BEGIN_SIGNED, END_SIGNATURE);
        let t = b"Pay now\r-----BEGIN PGP SIGNED MESSAGE-----\r\nx\r\n-----END PGP SIGNATURE-----\rP.S.\r\n";
        let (s, end) = armor_span(t, b, e).unwrap();
        assert_eq!(&t[..s], b"Pay now\r");
        assert_eq!(&t[end..], b"P.S.\r\n");
        let t = b"-----BEGIN PGP SIGNED MESSAGE-----\nx\n-----END PGP SIGNATURE-----\r\nbye";
        assert_eq!(armor_span(t, b, e), Some((0, t.len() - 3)));
        let t = b"-----BEGIN PGP SIGNED MESSAGE-----\nx\n-----END PGP SIGNATURE-----";
        assert_eq!(armor_span(t, b, e), Some((0, t.len())));
        assert_eq!(
            armor_span(b"x -----BEGIN PGP SIGNED MESSAGE-----\n", b, e),
            None
        );
    }

    #[test]
    fn line_splitting() {
        let lines = |data: &'static [u8]| {
            let mut cur = Cursor::new(data);
            std::iter::from_fn(move || cur.next_line().map(|(at, l)| (at, l, cur.pos)))
                .collect::<Vec<_>>()
        };
        assert_eq!(lines(b"ab\ncd"), [(0, &b"ab"[..], 3), (3, b"cd", 5)]);
        assert_eq!(lines(b"ab\r\ncd"), [(0, &b"ab"[..], 4), (4, b"cd", 6)]);
        assert_eq!(lines(b"ab\rcd"), [(0, &b"ab"[..], 3), (3, b"cd", 5)]);
        assert_eq!(lines(b"ab\r"), [(0, &b"ab"[..], 3)]);
        assert_eq!(lines(b"ab"), [(0, &b"ab"[..], 2)]);
        assert!(lines(b"").is_empty());
        assert_eq!(
            parse_cleartext(b""),
            Err(CleartextError::BeginLine),
            "empty input"
        );
        assert_eq!(trim_trailing_ws(b"a b \t "), b"a b");
    }
}
