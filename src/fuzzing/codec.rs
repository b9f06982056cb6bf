//! Fuzz entry points for the POP3 codec: the command parser, responses
//! and the multi-line framing.

use crate::pop3::command::{Command, Secret};
use crate::pop3::engine;
use crate::pop3::line::{LineBuffer, LineTooLong};
use crate::pop3::response::{self, DataLine, Status};

// ---------------------------------------------------------------------------
// (a) the POP3 command parser

/// Every LF-separated line of `data` (and `data` as a whole, LF included)
/// through [`Command::parse`]: a parsed command's wire form is one
/// CRLF-terminated line that parses back to the same command, and its
/// `Debug` form never shows a secret.
pub fn command(data: &[u8]) {
    for line in data.split(|&b| b == b'\n') {
        check_command(line.strip_suffix(b"\r").unwrap_or(line));
    }
    check_command(data);
}

fn check_command(line: &[u8]) {
    let Ok(cmd) = Command::parse(line) else {
        return;
    };
    let wire = cmd.to_wire();
    assert!(wire.ends_with(b"\r\n"), "wire form without CRLF");
    let body = &wire[..wire.len() - 2];
    assert!(body.starts_with(cmd.verb().as_bytes()));
    if !line.contains(&b'\n') {
        assert!(!body.contains(&b'\n'), "wire form of one line has two");
    }
    assert_eq!(
        Command::parse(body).as_ref(),
        Ok(&cmd),
        "the wire form does not parse back to the same command"
    );
    let _ = cmd.multiline_ok();
    // Secrets are redacted: the Debug form does not depend on them.
    let redacted = match &cmd {
        Command::Pass(_) => Some(Command::Pass(Secret::new(b"x"))),
        Command::Auth {
            mechanism,
            initial: Some(_),
        } => Some(Command::Auth {
            mechanism: mechanism.clone(),
            initial: Some(Secret::new(b"x")),
        }),
        _ => None,
    };
    if let Some(r) = redacted {
        assert_eq!(format!("{cmd:?}"), format!("{r:?}"), "a secret in Debug");
    }
}

// ---------------------------------------------------------------------------
// (b) responses and the multi-line framing

/// Input: one byte for the line limit, one for the chunking, then server
/// bytes. Checks that line framing does not depend on how the bytes arrive
/// and loses no byte, that status lines and multi-line answers decode
/// without panicking, and that dot-stuffing round-trips.
pub fn response(data: &[u8]) {
    let (max, seed, payload) = match data {
        [a, b, rest @ ..] => (1 + usize::from(*a) * 4, *b, rest),
        _ => return,
    };

    // Framing: the same lines (and the same verdict) in any chunking.
    let whole = frame(payload, &mut std::iter::repeat(payload.len().max(1)), max);
    let mut sizes = chunk_sizes(seed);
    let chunked = frame(payload, &mut sizes, max);
    assert_eq!(whole, chunked, "line framing depends on the chunking");

    let (lines, err, rest) = &whole;
    if err.is_none() {
        // Nothing lost: the lines and the unfinished rest are the input
        // with each CRLF read as LF.
        let mut joined = Vec::with_capacity(payload.len());
        for l in lines {
            assert!(l.len() <= max);
            joined.extend_from_slice(l);
            joined.push(b'\n');
        }
        joined.extend_from_slice(rest);
        assert_eq!(joined, replace_crlf(payload), "line framing lost bytes");
    }

    // Decode as a server answer: status line, then a multi-line body.
    let mut it = lines.iter();
    if let Some(first) = it.next() {
        let st = response::status(first);
        let text = response::status_text(first);
        assert!(first.ends_with(text));
        if st == Some(Status::Ok) {
            for l in it {
                match response::unstuff(l) {
                    DataLine::End => {
                        assert_eq!(l.as_slice(), b".");
                        break;
                    }
                    DataLine::Content(c) => {
                        assert!(l.ends_with(c) && l.len() - c.len() <= 1);
                    }
                }
            }
        }
    }

    // Encoding: stuff the payload as a message, decode it again.
    let mut wire = Vec::new();
    response::stuff_message(&mut wire, payload);
    let crlf = response::crlf_lines(payload);
    assert_eq!(response::wire_len(payload), crlf.len());
    wire.extend_from_slice(response::TERMINATOR);
    let (wlines, werr, wrest) = frame(&wire, &mut chunk_sizes(seed), usize::MAX);
    assert!(werr.is_none() && wrest.is_empty());
    let mut decoded = Vec::with_capacity(crlf.len());
    let mut ended = false;
    for l in &wlines {
        assert!(!ended, "lines after the terminator");
        match response::unstuff(l) {
            DataLine::End => ended = true,
            DataLine::Content(c) => {
                decoded.extend_from_slice(c);
                decoded.extend_from_slice(b"\r\n");
            }
        }
    }
    assert!(ended, "stuffed message without its terminator");
    assert_eq!(decoded, crlf, "dot-stuffing does not round-trip");

    // TOP: a prefix, growing with n.
    let mut prev = 0;
    for n in [0, 1, 2, 5, u32::MAX] {
        let t = engine::top_lines(payload, n);
        assert!(payload.starts_with(t) && t.len() >= prev);
        prev = t.len();
    }
}

type Framed = (Vec<Vec<u8>>, Option<LineTooLong>, Vec<u8>);

/// Push `input` in chunks through a [`LineBuffer`]: lines, the error that
/// ended the framing (if any) and the unfinished rest.
fn frame(input: &[u8], sizes: &mut dyn Iterator<Item = usize>, max: usize) -> Framed {
    let mut lb = LineBuffer::new(max);
    let mut lines = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        lb.push(&rest[..n]);
        rest = &rest[n..];
        loop {
            match lb.next_line() {
                Ok(Some(l)) => lines.push(l),
                Ok(None) => break,
                Err(e) => return (lines, Some(e), Vec::new()),
            }
        }
    }
    let tail = lb.take_rest();
    (lines, None, tail)
}

/// Chunk sizes 1..=17 from a seed (a small linear congruential sequence).
fn chunk_sizes(seed: u8) -> impl Iterator<Item = usize> {
    let mut x = u32::from(seed) | 1;
    std::iter::from_fn(move || {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        Some(1 + ((x >> 16) % 17) as usize)
    })
}

fn replace_crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\r' && b.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}
