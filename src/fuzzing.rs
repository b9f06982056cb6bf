//! Entry points shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`, one
//! line each) and by `tests/fuzz_regressions.rs`, which feeds every file
//! under `fuzz/regressions/<target>/` to the same function.
//!
//! Each entry point takes arbitrary bytes. It must never panic, and it
//! asserts invariants that hold for every input: a failed assertion is a
//! finding, exactly like a crash. See `docs/FUZZING.md`.
//!
//! Not part of the API: hidden from the documentation, and free to change.

use std::sync::{Arc, OnceLock};

use crate::keys::{Keyring, PassphraseSource};
use crate::message::{mime, report, strict, Transformer};
use crate::pop3::command::{Command, Secret};
use crate::pop3::engine::{self, Disposition, Engine, EngineLimits, Event, MessageHook};
use crate::pop3::line::{LineBuffer, LineTooLong};
use crate::pop3::response::{self, DataLine, Status};

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, Entry);

/// Every fuzz target by name (the folder names under `fuzz/regressions/`).
pub const TARGETS: &[Target] = &[
    ("command", command),
    ("response", response),
    ("engine", engine),
    ("mime", mime),
    ("transform", transform),
];

/// The entry point of the target called `name`.
pub fn entry(name: &str) -> Option<Entry> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

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

// ---------------------------------------------------------------------------
// (c) the relay engine, fed from both sides

/// Input: a header byte, then records separated by `0xFF`; each record is
/// an operation byte and its payload:
///
/// | op  | meaning |
/// |-----|---------|
/// | `c` | client bytes |
/// | `s` | server bytes |
/// | `e` | client EOF |
/// | `E` | upstream EOF |
/// | `t` | upstream timeout |
/// | `a` | abort (idle timeout, shutdown) |
/// | `x` | the pending transform completes with the payload as its output |
/// | `X` | the pending transform completes with the message unchanged |
/// | other | client bytes if even, server bytes if odd |
///
/// Header byte: bit 0 set = "free" mode, every operation is applied at once;
/// clear = "proxy" mode, each operation waits until the engine would read
/// that side (as `proxy::session` does), in input order. Bits 1-2 choose
/// the limits, bit 3 a hook with the golden keys (sniff and transform
/// paths) instead of none (streaming only).
///
/// Checks: no panic; output bounded by the input; at most one `Close`
/// event, and `is_closed` agrees with it; nothing at all comes out after
/// the close; closed after a client EOF or an abort; and never more `QUIT`
/// lines upstream than the client sent.
pub fn engine(data: &[u8]) {
    let Some((&header, script)) = data.split_first() else {
        return;
    };
    let free = header & 1 == 1;
    let limits = match (header >> 1) & 3 {
        0 => EngineLimits {
            max_command_line: 32,
            max_response_line: 64,
            max_message_size: 1024,
            max_header_block: 256,
        },
        1 => EngineLimits {
            max_command_line: 256,
            max_response_line: 1024,
            max_message_size: 8192,
            max_header_block: 1024,
        },
        2 => EngineLimits {
            max_command_line: 8192,
            max_response_line: 4096,
            max_message_size: 65536,
            max_header_block: 4096,
        },
        _ => EngineLimits::default(),
    };
    let hook: Arc<dyn MessageHook> = if header & 8 != 0 {
        golden_transformer()
    } else {
        plain_transformer()
    };
    let mut d = Driver::new(limits, hook);
    let mut queue: Vec<(u8, &[u8])> = Vec::new();
    for rec in script.split(|&b| b == 0xFF) {
        let Some((&op, payload)) = rec.split_first() else {
            continue;
        };
        let op = match op {
            b'c' | b's' | b'e' | b'E' | b't' | b'a' | b'x' | b'X' => op,
            o if o % 2 == 0 => b'c',
            _ => b's',
        };
        if free {
            d.apply(op, payload);
        } else {
            queue.push((op, payload));
            d.settle(&mut queue);
        }
    }
    // The end of the script: finish a transform still running, let the
    // engine take what it can, then the client goes away.
    if d.transform.is_some() {
        d.apply(b'X', b"");
    }
    if !free {
        d.settle(&mut queue);
    }
    d.apply(b'e', b"");
    assert!(d.engine.is_closed(), "not closed after the client left");
    d.check_bounds();
}

struct Driver {
    engine: Engine,
    /// Message handed to the transform and not completed yet.
    transform: Option<Vec<u8>>,
    client_in: Vec<u8>,
    server_in: usize,
    transform_in: usize,
    ops: usize,
    to_client: usize,
    to_upstream: Vec<u8>,
    closes: usize,
}

impl Driver {
    fn new(limits: EngineLimits, hook: Arc<dyn MessageHook>) -> Driver {
        let mut engine = Engine::new(limits, hook);
        engine.greeting(b"+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>");
        let mut d = Driver {
            engine,
            transform: None,
            client_in: Vec::new(),
            server_in: 0,
            transform_in: 0,
            ops: 0,
            to_client: 0,
            to_upstream: Vec::new(),
            closes: 0,
        };
        d.collect(false);
        d
    }

    /// Whether the proxy would perform `op` now.
    fn ready(&self, op: u8) -> bool {
        let e = &self.engine;
        if self.transform.is_some() {
            return matches!(op, b'x' | b'X');
        }
        match op {
            b'c' | b'e' => e.wants_client_input(),
            b's' | b'E' | b't' => e.awaiting_upstream(),
            b'a' => !e.is_closed(),
            _ => false,
        }
    }

    /// Proxy mode: apply the earliest queued operation the engine accepts,
    /// until none is accepted.
    fn settle(&mut self, queue: &mut Vec<(u8, &[u8])>) {
        while let Some(i) = queue.iter().position(|(op, _)| self.ready(*op)) {
            let (op, payload) = queue.remove(i);
            self.apply(op, payload);
        }
    }

    fn apply(&mut self, op: u8, payload: &[u8]) {
        let was_closed = self.engine.is_closed();
        self.ops += 1;
        match op {
            b'c' => {
                self.client_in.extend_from_slice(payload);
                self.engine.client_data(payload);
            }
            b's' => {
                self.server_in += payload.len();
                self.engine.upstream_data(payload);
            }
            b'e' => self.engine.client_eof(),
            b'E' => self.engine.upstream_eof(),
            b't' => self.engine.upstream_timeout(),
            b'a' => self.engine.abort("fuzz abort"),
            b'x' | b'X' => {
                let Some(raw) = self.transform.take() else {
                    return;
                };
                let out = if op == b'x' { payload.to_vec() } else { raw };
                self.transform_in += out.len();
                self.engine.transform_done(out);
            }
            _ => unreachable!("operations are normalised"),
        }
        self.collect(was_closed);
        if matches!(op, b'e' | b'a') {
            assert!(self.engine.is_closed(), "still open after client EOF/abort");
        }
    }

    /// Take outputs and events; check the close bookkeeping.
    fn collect(&mut self, was_closed: bool) {
        let c = self.engine.take_client_output();
        let u = self.engine.take_upstream_output();
        if was_closed {
            assert!(c.is_empty() && u.is_empty(), "output after the close");
        }
        self.to_client += c.len();
        self.to_upstream.extend_from_slice(&u);
        while let Some(ev) = self.engine.next_event() {
            match ev {
                Event::Transform(raw) => {
                    assert!(!was_closed, "a transform after the close");
                    assert!(self.transform.is_none(), "two transforms at once");
                    self.transform = Some(raw);
                }
                Event::Close(reason) => {
                    self.closes += 1;
                    assert_eq!(self.closes, 1, "closed twice");
                    if reason == engine::CloseReason::Quit {
                        assert!(quit_lines(&self.to_upstream) > 0, "QUIT close without QUIT");
                    }
                }
            }
        }
        assert_eq!(self.engine.is_closed(), self.closes == 1);
        if self.engine.is_closed() {
            self.transform = None;
        }
        self.check_bounds();
    }

    fn check_bounds(&self) {
        let quits_up = quit_lines(&self.to_upstream);
        let quits_client = quit_lines(&self.client_in);
        assert!(
            quits_up <= quits_client,
            "{quits_up} QUIT upstream, the client sent {quits_client}"
        );
        // Upstream gets at most the client's lines in canonical form, plus
        // one RETR for a TOP that needs the whole message.
        assert!(
            self.to_upstream.len() <= 4 * self.client_in.len() + 64,
            "{} octets upstream from {} client octets",
            self.to_upstream.len(),
            self.client_in.len()
        );
        // The client gets server lines (CRLF, dot-stuffing, sizes
        // rewritten), transform output, and short local answers.
        let bound = 160 * self.client_in.len()
            + 24 * self.server_in
            + 2 * self.transform_in
            + 256 * self.ops
            + 256;
        assert!(
            self.to_client <= bound,
            "{} octets to the client, bound {bound}",
            self.to_client
        );
    }
}

/// Lines (LF-terminated, CR stripped, as a server reads them) that are a
/// QUIT command.
fn quit_lines(b: &[u8]) -> usize {
    b.split(|&c| c == b'\n')
        .filter(|l| Command::parse(l.strip_suffix(b"\r").unwrap_or(l)) == Ok(Command::Quit))
        .count()
}

// ---------------------------------------------------------------------------
// (d) MIME structure

/// The header and structure helpers of [`crate::message::mime`] and the
/// forged-header removal on arbitrary bytes: offsets in range, no byte lost
/// by field splitting, no `X-Popcrypt-*` line left after removal.
pub fn mime(data: &[u8]) {
    // Header fields keep every byte.
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

    // Structure, as the transform reads it.
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

    // The strict RFC 2046 reader: total, parts inside the body, delimiters
    // whole lines only, and the same answer on the header-normalized bytes.
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
    let _ = mime::sender(&data[..h]);

    // Header lines end at CRLF, LF or a lone CR: normalizing is idempotent
    // and leaves only CRLF line ends in the header block.
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

    // Forged status headers, read line by line at CR or LF.
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

/// For a fuzz target's `init` (after libfuzzer-sys installed its
/// abort-on-panic hook): a panic located in a dependency (a file under the
/// cargo registry: sequoia, mail-parser, ...) is only reported on stderr
/// and unwinds on, so that one popcrypt catches and handles (the
/// transform's `catch_unwind` delivers the original message, as in the
/// proxy) is not counted as a crash. Every other panic still aborts, and
/// libfuzzer-sys aborts on any panic that reaches the target itself.
pub fn tolerate_caught_dependency_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match info.location() {
        Some(l) if l.file().contains("/.cargo/registry/") => {
            eprintln!("fuzzing: panic in a dependency at {l}; popcrypt must catch it");
        }
        _ => abort(info),
    }));
}

/// Exactly two `X-Popcrypt-*` lines (split at LF), the first two.
fn assert_status_first(block: &[u8]) {
    let status: Vec<usize> = block
        .split(|&c| c == b'\n')
        .enumerate()
        .filter(|(_, l)| l.len() >= 11 && l[..11].eq_ignore_ascii_case(b"x-popcrypt-"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(status, [0, 1], "forged or missing status headers");
}

/// A transformer without keys (it only annotates and streams).
fn plain_transformer() -> Arc<Transformer> {
    static T: OnceLock<Arc<Transformer>> = OnceLock::new();
    T.get_or_init(|| Arc::new(Transformer::new())).clone()
}

/// A transformer with the golden OpenPGP and S/MIME keys of
/// `tests/golden/` (loaded once).
pub fn golden_transformer() -> Arc<Transformer> {
    static T: OnceLock<Arc<Transformer>> = OnceLock::new();
    T.get_or_init(|| {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let pgp_dir = golden.join("openpgp/keys");
        let pgp = Keyring::load(
            &pgp_dir,
            &PassphraseSource {
                file: Some(pgp_dir.join("pp-user.passphrase")),
                env: None,
            },
        )
        .expect("golden OpenPGP keys");
        let smime = Keyring::load(&golden.join("smime/keys"), &PassphraseSource::default())
            .expect("golden S/MIME keys");
        let keys = Keyring {
            openpgp: pgp.openpgp,
            smime: smime.smime,
        };
        Arc::new(Transformer::with_keys(keys, FUZZ_MAX_PLAINTEXT))
    })
    .clone()
}
