//! Fuzz entry point for the relay engine, fed from both sides.

use std::sync::Arc;

use super::{golden_transformer, plain_transformer};
use crate::pop3::command::Command;
use crate::pop3::engine::{self, Engine, EngineLimits, Event, MessageHook};

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
