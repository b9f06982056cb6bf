//! The relay state machine, without I/O.
//!
//! The engine is fed bytes from the client and from the upstream server and
//! produces bytes for each side plus events for the I/O layer (a message to
//! transform, the end of the session). It answers in order, one command at a
//! time, so pipelined client commands are answered in the order they came.
//!
//! RFC 1939 states: AUTHORIZATION until a login succeeds, then TRANSACTION;
//! the UPDATE state (deletions committed) is reached only through the
//! client's own QUIT, which the engine forwards. Every other ending closes
//! the upstream connection without QUIT so the server rolls deletions back.

use std::collections::VecDeque;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::command::{Command, ParseError};
use super::line::{extend_zeroizing, LineBuffer};
use super::response::{self, DataLine, Status};

/// Limits the engine enforces.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Longest client line (command or SASL response), CRLF excluded.
    pub max_command_line: usize,
    /// Longest server line, CRLF excluded.
    pub max_response_line: usize,
    /// Largest message held whole in memory for transformation.
    pub max_message_size: usize,
    /// Largest header block held while classifying a message.
    pub max_header_block: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            max_command_line: 8192,
            max_response_line: 1 << 20,
            max_message_size: 64 << 20,
            max_header_block: 1 << 20,
        }
    }
}

/// Body octets after which a sniffed message is decided (see
/// [`MessageHook::sniff`]).
pub const SNIFF_WINDOW: usize = 8192;

/// How a message must be handled once its header block is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// Pass the body through as it arrives; only the header block changes.
    Stream,
    /// Hold the whole message and hand it to the transform.
    Transform,
    /// Hold the message while [`MessageHook::sniff`] looks at the start of
    /// the body; stream it as soon as that says no transform is needed.
    Sniff,
}

/// The message-level policy the engine consults (implemented by `message`).
pub trait MessageHook: Send + Sync {
    /// Decide from the header block (CRLF lines, no blank line) how to proceed.
    fn classify(&self, header_block: &[u8]) -> Disposition;
    /// The header block to send for a message passed through untransformed:
    /// status headers first, forged status headers removed. `note` explains
    /// why a message that needed a transform was not transformed.
    fn stream_headers(&self, header_block: &[u8], note: Option<&str>) -> Vec<u8>;
    /// Octets every delivered message gains (the status headers), added to
    /// the sizes STAT and LIST report.
    fn size_overhead(&self) -> u64;
    /// For [`Disposition::Sniff`]: given the header block and the body so
    /// far (CRLF lines), `Some(true)` to hold the message for the
    /// transform, `Some(false)` to stream it, `None` to look at more.
    fn sniff(&self, _header_block: &[u8], _body: &[u8]) -> Option<bool> {
        Some(true)
    }
    /// TOP asks the server for at least this many body lines, so that a
    /// sniffed message can be judged from the TOP answer itself.
    fn top_peek_lines(&self) -> u32 {
        0
    }
}

/// What the I/O layer must do besides moving bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum Event {
    /// Transform this whole message (unstuffed, CRLF lines) and call
    /// [`Engine::transform_done`] with the result.
    Transform(Vec<u8>),
    /// End the session. Close the upstream connection without sending
    /// anything more (the engine already forwarded QUIT if there was one).
    Close(CloseReason),
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client said QUIT and the server answered.
    Quit,
    /// The client went away without QUIT: deletions roll back.
    ClientGone,
    /// The upstream closed or broke the protocol.
    Upstream(String),
    /// The client broke the protocol or a limit.
    Client(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Authorization,
    Transaction,
    Closed,
}

#[derive(Debug)]
enum Pending {
    /// A single-line answer is relayed as is.
    Single(Command),
    /// A multi-line answer relayed line by line.
    Multi(Command),
    /// CAPA: collected, filtered, then sent.
    Capa(Vec<Vec<u8>>),
    /// RETR or TOP.
    Message(MessageRx),
    /// SASL exchange in progress.
    Auth,
    /// LAST, possibly answered locally.
    Last,
}

#[derive(Debug)]
struct MessageRx {
    msg: u32,
    /// `Some(n)` for TOP n.
    top: Option<u32>,
    /// True once a TOP was turned into a RETR to transform the whole message.
    internal_retr: bool,
    /// Octets of the message as received and as delivered, CRLF counted,
    /// dot-stuffing not (for LIST/STAT bookkeeping).
    received: usize,
    delivered: usize,
    /// Body lines sent so far (TOP n stops at n).
    body_lines: u32,
    status: Option<Vec<u8>>,
    state: MsgState,
}

#[derive(Debug)]
enum MsgState {
    /// Waiting for the status line.
    Status,
    /// Multi-line response started: but the multi-line flag may be off.
    Headers(Vec<u8>),
    /// Passing lines through; `in_headers` while still before the blank line.
    Streaming { in_headers: bool, dropping: bool },
    /// Holding the whole message for the transform.
    Buffering {
        raw: Vec<u8>,
        header_len: usize,
        /// Still asking [`MessageHook::sniff`] whether to keep holding.
        sniffing: bool,
    },
    /// Discarding a TOP answer to be replaced by a RETR.
    Draining,
    /// Waiting for the I/O layer's transform.
    AwaitTransform,
}

/// The relay engine for one session.
pub struct Engine {
    phase: Phase,
    limits: EngineLimits,
    hook: Arc<dyn MessageHook>,
    client_in: LineBuffer,
    upstream_in: LineBuffer,
    pending: Option<Pending>,
    to_client: Vec<u8>,
    /// Carries passwords and SASL responses: zeroed when dropped, and grown
    /// only through [`extend_zeroizing`].
    to_upstream: Zeroizing<Vec<u8>>,
    events: VecDeque<Event>,
    sasl_client_turn: bool,
    /// Bytes of the current answer have already gone to the client.
    started: bool,
    highest_retrieved: u32,
    last_supported: Option<bool>,
    implementation: String,
    /// Per message retrieved (whole) in this session: octets delivered
    /// beyond the server's size plus the standard overhead (a transform
    /// changes the size). LIST and STAT report sizes with this applied.
    size_extra: std::collections::HashMap<u32, i64>,
    /// Messages marked deleted in this session (for STAT).
    deleted: std::collections::HashSet<u32>,
}

impl Engine {
    /// A new engine; call [`Engine::greeting`] with the server's greeting next.
    pub fn new(limits: EngineLimits, hook: Arc<dyn MessageHook>) -> Engine {
        Engine {
            phase: Phase::Authorization,
            client_in: LineBuffer::new(limits.max_command_line),
            upstream_in: LineBuffer::new(limits.max_response_line),
            limits,
            hook,
            pending: None,
            to_client: Vec::new(),
            to_upstream: Zeroizing::new(Vec::new()),
            events: VecDeque::new(),
            sasl_client_turn: false,
            started: false,
            highest_retrieved: 0,
            last_supported: None,
            implementation: format!("popcrypt-{}", env!("CARGO_PKG_VERSION")),
            size_extra: Default::default(),
            deleted: Default::default(),
        }
    }

    /// Relay the server greeting unchanged (it carries the APOP timestamp).
    pub fn greeting(&mut self, line: &[u8]) {
        self.to_client.extend_from_slice(line);
        self.to_client.extend_from_slice(b"\r\n");
    }

    /// Bytes queued for the client.
    pub fn take_client_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.to_client)
    }

    /// Bytes queued for the server (zeroed when dropped: they may hold a
    /// password).
    pub fn take_upstream_output(&mut self) -> Zeroizing<Vec<u8>> {
        std::mem::take(&mut self.to_upstream)
    }

    /// The next event for the I/O layer.
    pub fn next_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the I/O layer should read more from the client now. Reading
    /// stops while a command is in flight, which bounds buffered pipelining.
    pub fn wants_client_input(&self) -> bool {
        self.phase != Phase::Closed
            && (self.sasl_client_turn || self.pending.is_none())
            && self.client_in.buffered() <= self.limits.max_command_line + 2
    }

    /// Whether a server answer is outstanding.
    pub fn awaiting_upstream(&self) -> bool {
        self.phase != Phase::Closed && self.pending.is_some() && !self.sasl_client_turn
    }

    /// Octets received from the server and not yet consumed. Any left
    /// while no answer is due were sent unasked.
    pub fn upstream_buffered(&self) -> usize {
        self.upstream_in.buffered()
    }

    /// Whether the session has ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Whether the client has logged in.
    pub fn is_authenticated(&self) -> bool {
        self.phase == Phase::Transaction
    }

    fn close(&mut self, reason: CloseReason) {
        if self.phase != Phase::Closed {
            self.phase = Phase::Closed;
            self.pending = None;
            self.events.push_back(Event::Close(reason));
        }
    }

    fn reply(&mut self, ok: bool, text: &str) {
        self.to_client
            .extend_from_slice(&response::status_line(ok, text));
    }

    /// Bytes from the client.
    pub fn client_data(&mut self, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.client_in.push(data);
        self.pump();
    }

    /// Work through buffered client and server lines until neither side can
    /// make progress.
    fn pump(&mut self) {
        loop {
            let before = (self.client_in.buffered(), self.upstream_in.buffered());
            self.process_client();
            self.process_upstream();
            if self.phase == Phase::Closed
                || before == (self.client_in.buffered(), self.upstream_in.buffered())
            {
                return;
            }
        }
    }

    /// The client closed its side.
    pub fn client_eof(&mut self) {
        tracing::info!("client disconnected without QUIT; upstream will be closed without QUIT");
        self.close(CloseReason::ClientGone);
    }

    /// The upstream closed its side.
    pub fn upstream_eof(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.pending.is_none() {
            tracing::warn!("upstream closed the connection");
        } else if self.started {
            // A partial answer must never look complete: no terminator.
            tracing::warn!(
                "upstream dropped in the middle of a response; closing the client connection"
            );
        } else {
            tracing::warn!("upstream closed the connection before answering");
            self.reply(
                false,
                "[SYS/TEMP] popcrypt: the mail server closed the connection",
            );
        }
        self.close(CloseReason::Upstream(
            "upstream closed the connection".into(),
        ));
    }

    /// The upstream did not answer in time.
    pub fn upstream_timeout(&mut self) {
        if self.phase == Phase::Closed {
            return;
        }
        tracing::warn!("upstream did not answer in time");
        if !self.started {
            self.reply(
                false,
                "[SYS/TEMP] popcrypt: the mail server did not answer in time",
            );
        }
        self.close(CloseReason::Upstream("upstream timed out".into()));
    }

    /// The session must end now (idle client, shutdown): no QUIT upstream.
    pub fn abort(&mut self, why: &str) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.pending.is_none() || !self.started {
            self.reply(false, &format!("[SYS/TEMP] popcrypt: {why}"));
        }
        self.close(CloseReason::Client(why.to_string()));
    }

    fn process_client(&mut self) {
        while self.phase != Phase::Closed && (self.pending.is_none() || self.sasl_client_turn) {
            let line = match self.client_in.next_secret_line() {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("client line too long");
                    self.reply(false, &format!("popcrypt: command {e}"));
                    self.close(CloseReason::Client(format!("client {e}")));
                    return;
                }
            };
            if self.sasl_client_turn {
                // A SASL response (or "*" to cancel): relayed, never parsed or logged.
                self.sasl_client_turn = false;
                extend_zeroizing(&mut self.to_upstream, &line);
                extend_zeroizing(&mut self.to_upstream, b"\r\n");
                continue;
            }
            self.handle_command(&line);
        }
    }

    fn handle_command(&mut self, line: &[u8]) {
        let cmd = match Command::parse(line) {
            Ok(c) => c,
            Err(ParseError::Unknown) => {
                tracing::info!(command = "(unknown)", outcome = "rejected locally");
                self.reply(false, "popcrypt: unknown command");
                return;
            }
            Err(e) => {
                tracing::info!(command = "(invalid)", outcome = "rejected locally");
                self.reply(false, &format!("popcrypt: {e}"));
                return;
            }
        };
        let verb = cmd.verb();
        let login_cmd = matches!(
            cmd,
            Command::User(_) | Command::Pass(_) | Command::Apop { .. } | Command::Auth { .. }
        );
        let allowed = match self.phase {
            Phase::Authorization => {
                login_cmd || matches!(cmd, Command::Capa | Command::Stls | Command::Quit)
            }
            Phase::Transaction => !login_cmd && cmd != Command::Stls,
            Phase::Closed => false,
        };
        if !allowed {
            tracing::info!(command = verb, outcome = "rejected locally: wrong state");
            let text = if self.phase == Phase::Authorization {
                "popcrypt: log in first"
            } else {
                "popcrypt: not allowed after login"
            };
            self.reply(false, text);
            return;
        }
        match cmd {
            Command::Stls => {
                tracing::info!(command = verb, outcome = "rejected locally: no client TLS");
                self.reply(false, "popcrypt: STLS is not offered on this listener");
                return;
            }
            Command::Last if self.last_supported == Some(false) => {
                tracing::info!(command = verb, outcome = "answered locally");
                let n = self.highest_retrieved.to_string();
                self.reply(true, &n);
                return;
            }
            _ => {}
        }
        tracing::debug!(command = verb, "relaying");
        let wire = match cmd {
            // Ask for enough body lines to see whether the message needs
            // the transform; the extra lines are cut before the client.
            Command::Top(m, n) if n < self.hook.top_peek_lines() => {
                Command::Top(m, self.hook.top_peek_lines()).to_wire()
            }
            _ => cmd.to_wire(),
        };
        extend_zeroizing(&mut self.to_upstream, &wire);
        self.started = false;
        self.pending = Some(match cmd {
            Command::Capa => Pending::Capa(Vec::new()),
            Command::Auth {
                mechanism: Some(_), ..
            } => Pending::Auth,
            Command::Last => Pending::Last,
            Command::Retr(n) => Pending::Message(MessageRx::new(n, None)),
            Command::Top(n, l) => Pending::Message(MessageRx::new(n, Some(l))),
            c if c.multiline_ok() => Pending::Multi(c),
            c => Pending::Single(c),
        });
    }

    /// Bytes from the server.
    pub fn upstream_data(&mut self, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.upstream_in.push(data);
        self.pump();
    }

    fn process_upstream(&mut self) {
        loop {
            if self.phase == Phase::Closed || self.awaiting_transform() || self.sasl_client_turn {
                return;
            }
            if self.pending.is_none() {
                // Nothing asked: whatever the server sent early waits here
                // (the I/O layer reads the server only while an answer is due).
                return;
            }
            let line = match self.upstream_in.next_line() {
                Ok(Some(l)) => l,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("upstream {e}");
                    if !self.started {
                        self.reply(
                            false,
                            "[SYS/TEMP] popcrypt: the mail server sent an over-long line",
                        );
                    }
                    self.close(CloseReason::Upstream(format!("upstream {e}")));
                    return;
                }
            };
            let Some(pending) = self.pending.take() else {
                return;
            };
            self.pending = self.upstream_line(pending, &line);
        }
    }

    fn awaiting_transform(&self) -> bool {
        matches!(&self.pending, Some(Pending::Message(m)) if matches!(m.state, MsgState::AwaitTransform))
    }

    /// A status line that is not one: the session cannot be trusted any more.
    fn garbage(&mut self) -> Option<Pending> {
        tracing::warn!("upstream sent an invalid status line");
        if !self.started {
            self.reply(
                false,
                "[SYS/TEMP] popcrypt: the mail server sent an invalid response",
            );
        }
        self.close(CloseReason::Upstream(
            "invalid response from upstream".into(),
        ));
        None
    }

    fn relay_line(&mut self, line: &[u8]) {
        self.started = true;
        self.to_client.extend_from_slice(line);
        self.to_client.extend_from_slice(b"\r\n");
    }

    /// Handle one server line for the pending command; returns what is still pending.
    fn upstream_line(&mut self, pending: Pending, line: &[u8]) -> Option<Pending> {
        match pending {
            Pending::Single(cmd) => {
                let Some(st) = response::status(line).filter(|s| *s != Status::Continue) else {
                    return self.garbage();
                };
                let ok = st == Status::Ok;
                tracing::info!(
                    command = cmd.verb(),
                    outcome = if ok { "+OK" } else { "-ERR" }
                );
                match (&cmd, ok) {
                    (Command::Pass(_) | Command::Apop { .. }, true) => {
                        self.phase = Phase::Transaction
                    }
                    (Command::Rset, true) => {
                        self.highest_retrieved = 0;
                        self.deleted.clear();
                    }
                    (Command::Dele(n), true) => {
                        self.deleted.insert(*n);
                    }
                    _ => {}
                }
                match (&cmd, ok) {
                    (Command::Stat, true) => {
                        let l = self.sized(line, 2, None);
                        self.relay_line(&l)
                    }
                    (Command::List(Some(_)), true) => {
                        let l = self.sized(line, 2, Some(1));
                        self.relay_line(&l)
                    }
                    _ => self.relay_line(line),
                }
                if cmd == Command::Quit {
                    self.close(CloseReason::Quit);
                }
                None
            }
            Pending::Last => match response::status(line) {
                Some(Status::Ok) => {
                    tracing::info!(command = "LAST", outcome = "+OK");
                    self.last_supported = Some(true);
                    self.relay_line(line);
                    None
                }
                Some(Status::Err) => {
                    tracing::info!(
                        command = "LAST",
                        outcome = "answered locally: upstream has no LAST"
                    );
                    self.last_supported = Some(false);
                    let n = self.highest_retrieved.to_string();
                    self.reply(true, &n);
                    None
                }
                _ => self.garbage(),
            },
            Pending::Multi(cmd) => {
                if !self.started {
                    let Some(st) = response::status(line).filter(|s| *s != Status::Continue) else {
                        return self.garbage();
                    };
                    tracing::info!(
                        command = cmd.verb(),
                        outcome = if st == Status::Ok { "+OK" } else { "-ERR" }
                    );
                    self.relay_line(line);
                    return (st == Status::Ok).then_some(Pending::Multi(cmd));
                }
                if matches!(cmd, Command::List(None)) && line != b"." {
                    let l = self.sized(line, 1, Some(0));
                    self.relay_line(&l);
                } else {
                    self.relay_line(line);
                }
                (line != b".").then_some(Pending::Multi(cmd))
            }
            Pending::Capa(mut lines) => {
                if lines.is_empty() {
                    match response::status(line) {
                        Some(Status::Ok) => {}
                        Some(Status::Err) => {
                            // No CAPA upstream: say what popcrypt itself guarantees.
                            tracing::info!(
                                command = "CAPA",
                                outcome = "answered locally: upstream has no CAPA"
                            );
                            let out = capa_response(&[], &self.implementation);
                            self.to_client.extend_from_slice(&out);
                            return None;
                        }
                        _ => return self.garbage(),
                    }
                    lines.push(line.to_vec());
                    return Some(Pending::Capa(lines));
                }
                if line == b"." {
                    tracing::info!(command = "CAPA", outcome = "+OK");
                    let out = capa_response(&lines[1..], &self.implementation);
                    self.to_client.extend_from_slice(&out);
                    return None;
                }
                // A capability list is short: bound it in lines and octets.
                if lines.len() > 256 || lines.iter().map(Vec::len).sum::<usize>() > 64 * 1024 {
                    return self.garbage();
                }
                lines.push(line.to_vec());
                Some(Pending::Capa(lines))
            }
            Pending::Auth => match response::status(line) {
                Some(Status::Continue) => {
                    // Relay the challenge; the client's next line is a SASL response.
                    self.relay_line(line);
                    self.started = false;
                    self.sasl_client_turn = true;
                    Some(Pending::Auth)
                }
                Some(st) => {
                    let ok = st == Status::Ok;
                    tracing::info!(command = "AUTH", outcome = if ok { "+OK" } else { "-ERR" });
                    if ok {
                        self.phase = Phase::Transaction;
                    }
                    self.relay_line(line);
                    None
                }
                None => self.garbage(),
            },
            Pending::Message(rx) => self.message_line(rx, line),
        }
    }

    fn message_line(&mut self, mut rx: MessageRx, line: &[u8]) -> Option<Pending> {
        let verb = if rx.top.is_some() { "TOP" } else { "RETR" };
        let content = match rx.state {
            MsgState::Status => {
                let Some(st) = response::status(line).filter(|s| *s != Status::Continue) else {
                    return self.garbage();
                };
                if st == Status::Err {
                    tracing::info!(command = verb, msg = rx.msg, outcome = "-ERR");
                    self.relay_line(line);
                    return None;
                }
                if rx.status.is_none() {
                    rx.status = Some(line.to_vec());
                }
                rx.state = if rx.internal_retr {
                    MsgState::Buffering {
                        raw: Vec::new(),
                        header_len: usize::MAX,
                        sniffing: false,
                    }
                } else {
                    MsgState::Headers(Vec::new())
                };
                return Some(Pending::Message(rx));
            }
            _ => match response::unstuff(line) {
                DataLine::End => None,
                DataLine::Content(c) => {
                    rx.received += c.len() + 2;
                    Some(c)
                }
            },
        };
        match (&mut rx.state, content) {
            // Handled above / never fed while a transform runs; should it
            // happen, the session is no longer trustworthy: end it.
            (MsgState::Status | MsgState::AwaitTransform, _) => {
                tracing::error!("message state machine out of step; closing the session");
                return self.garbage();
            }
            (MsgState::Headers(block), Some(c)) => {
                if c.is_empty() {
                    let block = std::mem::take(block);
                    self.classified(&mut rx, block, true);
                } else if block.len() + c.len() + 2 > self.limits.max_header_block {
                    tracing::warn!(
                        msg = rx.msg,
                        "header block exceeds the limit; passing the message through"
                    );
                    let block = std::mem::take(block);
                    self.emit_status(&mut rx);
                    let headers = self
                        .hook
                        .stream_headers(&block, Some("header block too large to classify"));
                    rx.delivered += response::wire_len(&headers);
                    response::stuff_message(&mut self.to_client, &headers);
                    // Continuation lines of a forged status field cut by
                    // the limit must not fold onto popcrypt's headers.
                    let last_field = block
                        .split(|&b| b == b'\n')
                        .rfind(|l| !l.is_empty() && l[0] != b' ' && l[0] != b'\t')
                        .unwrap_or(b"");
                    let dropping = last_field.len() >= 11
                        && last_field[..11].eq_ignore_ascii_case(b"x-popcrypt-");
                    rx.state = MsgState::Streaming {
                        in_headers: true,
                        dropping,
                    };
                    self.stream_line(&mut rx, c);
                } else {
                    block.extend_from_slice(c);
                    block.extend_from_slice(b"\r\n");
                }
            }
            (MsgState::Headers(block), None) => {
                // The message ended inside its header block (e.g. TOP n 0 of a
                // message without a body).
                let block = std::mem::take(block);
                self.classified(&mut rx, block, false);
                return self.message_end(rx);
            }
            (MsgState::Streaming { .. }, Some(c)) => self.stream_line(&mut rx, c),
            (MsgState::Streaming { .. }, None) => {
                self.to_client.extend_from_slice(response::TERMINATOR);
                self.record_size(&rx);
                tracing::info!(
                    command = verb,
                    msg = rx.msg,
                    outcome = "+OK",
                    mode = "streamed"
                );
                return None;
            }
            (
                MsgState::Buffering {
                    raw,
                    header_len,
                    sniffing,
                },
                Some(c),
            ) => {
                if *header_len == usize::MAX && c.is_empty() {
                    *header_len = raw.len();
                }
                raw.extend_from_slice(c);
                raw.extend_from_slice(b"\r\n");
                // Ask only when something new can be seen: a line with
                // content, or the body passing the sniffing window (blank
                // lines alone cannot make a sender cost us a call each).
                let body_len = raw.len() - (*header_len).min(raw.len());
                let worth_asking = !c.trim_ascii().is_empty()
                    || (body_len > SNIFF_WINDOW && body_len - c.len() - 2 <= SNIFF_WINDOW);
                if *sniffing && worth_asking {
                    let (head, body) = (&raw[..*header_len], &raw[*header_len + 2..]);
                    match self.hook.sniff(head, body) {
                        Some(true) if rx.top.is_some() && !rx.internal_retr => {
                            // Needs the transform: fetch the whole message.
                            rx.state = MsgState::Draining;
                            return Some(Pending::Message(rx));
                        }
                        Some(true) => *sniffing = false,
                        Some(false) => {
                            // No transform needed: stream from here on.
                            let raw = std::mem::take(raw);
                            let header_len = *header_len;
                            self.release_held(&mut rx, raw, header_len, None);
                            return Some(Pending::Message(rx));
                        }
                        None => {}
                    }
                }
                if raw.len() > self.limits.max_message_size {
                    tracing::warn!(
                        msg = rx.msg,
                        limit = self.limits.max_message_size,
                        "message exceeds max_message_size; passing it through untransformed"
                    );
                    let raw = std::mem::take(raw);
                    self.overflow(&mut rx, raw);
                }
            }
            (MsgState::Buffering { .. }, None) => return self.message_end(rx),
            (MsgState::Draining, Some(_)) => {}
            (MsgState::Draining, None) => {
                // Fetch the whole message so the transform can see all of it.
                extend_zeroizing(&mut self.to_upstream, &Command::Retr(rx.msg).to_wire());
                rx.internal_retr = true;
                rx.received = 0;
                rx.state = MsgState::Status;
            }
        }
        Some(Pending::Message(rx))
    }

    /// The header block is complete: decide how to go on.
    fn classified(&mut self, rx: &mut MessageRx, block: Vec<u8>, blank_seen: bool) {
        match self.hook.classify(&block) {
            Disposition::Stream => {
                self.emit_status(rx);
                let headers = self.hook.stream_headers(&block, None);
                rx.delivered += response::wire_len(&headers);
                response::stuff_message(&mut self.to_client, &headers);
                if blank_seen {
                    rx.delivered += 2;
                    self.to_client.extend_from_slice(b"\r\n");
                }
                rx.state = MsgState::Streaming {
                    in_headers: false,
                    dropping: false,
                };
            }
            Disposition::Transform if rx.top.is_some() && !rx.internal_retr => {
                rx.state = MsgState::Draining;
            }
            d @ (Disposition::Transform | Disposition::Sniff) => {
                let mut raw = block;
                let header_len = raw.len();
                if blank_seen {
                    raw.extend_from_slice(b"\r\n");
                }
                rx.state = MsgState::Buffering {
                    raw,
                    header_len,
                    sniffing: d == Disposition::Sniff && blank_seen,
                };
            }
        }
    }

    fn message_end(&mut self, mut rx: MessageRx) -> Option<Pending> {
        match std::mem::replace(&mut rx.state, MsgState::AwaitTransform) {
            MsgState::Buffering {
                raw,
                header_len,
                sniffing: true,
            } if rx.top.is_some() && !rx.internal_retr => {
                // The TOP answer ended before its body showed anything that
                // needs the transform: it goes out as it is.
                let header_len = header_len.min(raw.len());
                self.release_held(&mut rx, raw, header_len, None);
                self.to_client.extend_from_slice(response::TERMINATOR);
                None
            }
            MsgState::Buffering { raw, .. } => {
                self.events.push_back(Event::Transform(raw));
                Some(Pending::Message(rx))
            }
            MsgState::Draining => {
                rx.state = MsgState::Draining;
                self.message_line(rx, b".")
            }
            _ => {
                self.to_client.extend_from_slice(response::TERMINATOR);
                self.record_size(&rx);
                tracing::info!(msg = rx.msg, outcome = "+OK", mode = "streamed");
                None
            }
        }
    }

    fn overflow(&mut self, rx: &mut MessageRx, raw: Vec<u8>) {
        let header_len = match rx.state {
            MsgState::Buffering { header_len, .. } => header_len.min(raw.len()),
            _ => raw.len(),
        };
        let note = format!(
            "message larger than the {} octet limit, not processed",
            self.limits.max_message_size
        );
        self.release_held(rx, raw, header_len, Some(&note));
    }

    /// Send a held message as it is (status, annotated header block, what
    /// arrived of the body) and stream the rest. For TOP n only the first n
    /// body lines go out, here and while streaming.
    fn release_held(
        &mut self,
        rx: &mut MessageRx,
        raw: Vec<u8>,
        header_len: usize,
        note: Option<&str>,
    ) {
        self.emit_status(rx);
        let headers = self.hook.stream_headers(&raw[..header_len], note);
        let mut rest = &raw[header_len..];
        if let Some(n) = rx.top {
            let kept = top_lines(&raw, n);
            rest = &kept[header_len.min(kept.len())..];
            let lines = rest.iter().filter(|&&b| b == b'\n').count();
            // The first line of `rest` is the blank separator.
            rx.body_lines = u32::try_from(lines.saturating_sub(1)).unwrap_or(u32::MAX);
        }
        rx.delivered += response::wire_len(&headers) + response::wire_len(rest);
        response::stuff_message(&mut self.to_client, &headers);
        response::stuff_message(&mut self.to_client, rest);
        rx.state = MsgState::Streaming {
            in_headers: false,
            dropping: false,
        };
    }

    fn emit_status(&mut self, rx: &mut MessageRx) {
        if let Some(status) = rx.status.take() {
            if rx.top.is_none() {
                self.highest_retrieved = self.highest_retrieved.max(rx.msg);
            }
            self.relay_line(&status);
        }
    }

    fn stream_line(&mut self, rx: &mut MessageRx, c: &[u8]) {
        let body_line = matches!(
            rx.state,
            MsgState::Streaming {
                in_headers: false,
                ..
            }
        );
        if body_line {
            if let Some(n) = rx.top {
                // popcrypt may have asked the server for more lines than
                // the client wants (to look at the body): cut at n.
                if rx.body_lines >= n {
                    return;
                }
                rx.body_lines += 1;
            }
        }
        if let MsgState::Streaming {
            in_headers,
            dropping,
        } = &mut rx.state
        {
            if *in_headers {
                // Past the classification limit we still refuse forged status headers.
                if c.is_empty() {
                    *in_headers = false;
                } else if c[0] == b' ' || c[0] == b'\t' {
                    if *dropping {
                        return;
                    }
                } else {
                    *dropping = c.len() >= 11 && c[..11].eq_ignore_ascii_case(b"x-popcrypt-");
                    if *dropping {
                        return;
                    }
                }
            }
        }
        rx.delivered += c.len() + 2;
        response::stuff_line(&mut self.to_client, c);
    }

    /// After a whole message went out: remember how its size differs from
    /// the server's plus the standard overhead (forged headers removed, a
    /// transform), so LIST and STAT agree with RETR from now on.
    fn record_size(&mut self, rx: &MessageRx) {
        if rx.top.is_none() {
            let extra = rx.delivered as i64 - rx.received as i64 - self.hook.size_overhead() as i64;
            self.size_extra.insert(rx.msg, extra);
        }
    }

    /// Rewrite the size in whitespace-separated field `field` of a STAT or
    /// LIST line: the server's size plus the status headers, plus what a
    /// transform added for messages already retrieved in this session.
    /// `msg_field` names the field holding the message number (LIST); for
    /// STAT (`None`) field 1 is the count. Lines that do not parse pass
    /// unchanged.
    fn sized(&self, line: &[u8], field: usize, msg_field: Option<usize>) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(line) else {
            return line.to_vec();
        };
        let mut parts: Vec<String> = text.split(' ').map(str::to_string).collect();
        let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
        let (Some(size), Some(n)) = (num(field), num(msg_field.unwrap_or(1))) else {
            return line.to_vec();
        };
        let overhead = self.hook.size_overhead() as i64;
        let extra: i64 = match msg_field {
            Some(_) => overhead + self.size_extra.get(&(n as u32)).copied().unwrap_or(0),
            None => {
                let known: i64 = self
                    .size_extra
                    .iter()
                    .filter(|(m, _)| !self.deleted.contains(m))
                    .fold(0i64, |acc, (_, e)| acc.saturating_add(*e));
                i64::try_from(n)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(overhead)
                    .saturating_add(known)
            }
        };
        parts[field] = i64::try_from(size)
            .unwrap_or(i64::MAX)
            .saturating_add(extra)
            .max(0)
            .to_string();
        parts.join(" ").into_bytes()
    }

    /// The transformed message for the pending RETR/TOP.
    pub fn transform_done(&mut self, message: Vec<u8>) {
        let Some(Pending::Message(mut rx)) = self.pending.take() else {
            return;
        };
        self.emit_status(&mut rx);
        rx.delivered = response::wire_len(&message);
        self.record_size(&rx);
        let out = match rx.top {
            Some(n) => top_lines(&message, n),
            None => &message[..],
        };
        response::stuff_message(&mut self.to_client, out);
        self.to_client.extend_from_slice(response::TERMINATOR);
        tracing::info!(
            command = if rx.top.is_some() { "TOP" } else { "RETR" },
            msg = rx.msg,
            outcome = "+OK",
            mode = "transformed"
        );
        self.pump();
    }
}

impl MessageRx {
    fn new(msg: u32, top: Option<u32>) -> MessageRx {
        MessageRx {
            msg,
            top,
            internal_retr: false,
            received: 0,
            delivered: 0,
            body_lines: 0,
            status: None,
            state: MsgState::Status,
        }
    }
}

/// The header block and the first `n` body lines of a message (TOP semantics).
pub fn top_lines(message: &[u8], n: u32) -> &[u8] {
    let mut pos = 0;
    let mut in_body = false;
    let mut body_lines = 0u32;
    while pos < message.len() {
        if in_body && body_lines == n {
            return &message[..pos];
        }
        let end = match message[pos..].iter().position(|&b| b == b'\n') {
            Some(i) => pos + i + 1,
            None => message.len(),
        };
        let line = &message[pos..end];
        if in_body {
            body_lines += 1;
        } else if line == b"\r\n" || line == b"\n" {
            in_body = true;
        }
        pos = end;
    }
    message
}

/// Capabilities popcrypt passes on, and how.
fn capa_response(upstream: &[Vec<u8>], implementation: &str) -> Vec<u8> {
    let mut out = b"+OK Capability list follows\r\n".to_vec();
    for line in upstream {
        let text = String::from_utf8_lossy(line);
        let mut words = text.split_ascii_whitespace();
        let Some(name) = words.next() else { continue };
        let name = name.to_ascii_uppercase();
        match name.as_str() {
            "TOP" | "USER" | "UIDL" | "RESP-CODES" | "AUTH-RESP-CODE" | "LOGIN-DELAY"
            | "EXPIRE" => {
                out.extend_from_slice(line);
                out.extend_from_slice(b"\r\n");
            }
            "SASL" => {
                // Channel-binding mechanisms cannot work across the proxy.
                let mechs: Vec<&str> = words
                    .filter(|m| !m.to_ascii_uppercase().ends_with("-PLUS"))
                    .collect();
                if !mechs.is_empty() {
                    out.extend_from_slice(format!("SASL {}\r\n", mechs.join(" ")).as_bytes());
                }
            }
            // STLS: popcrypt offers no TLS to the client. IMPLEMENTATION: ours
            // below. PIPELINING: ours below. Anything else: not relayed.
            _ => {}
        }
    }
    out.extend_from_slice(b"PIPELINING\r\n");
    out.extend_from_slice(format!("IMPLEMENTATION {implementation}\r\n").as_bytes());
    out.extend_from_slice(response::TERMINATOR);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Streams everything except messages with an `X-Transform: yes` header;
    /// the "transform" upper-cases the message.
    struct TestHook;

    impl MessageHook for TestHook {
        fn classify(&self, block: &[u8]) -> Disposition {
            if block.windows(14).any(|w| w == b"X-Transform: y") {
                Disposition::Transform
            } else if block.windows(10).any(|w| w == b"X-Sniff: y") {
                Disposition::Sniff
            } else {
                Disposition::Stream
            }
        }
        fn sniff(&self, _block: &[u8], body: &[u8]) -> Option<bool> {
            let body = body.trim_ascii_start();
            match body.first() {
                Some(b'A') => Some(true),
                Some(_) => Some(false),
                None => None,
            }
        }
        fn stream_headers(&self, block: &[u8], note: Option<&str>) -> Vec<u8> {
            let mut v = format!("X-S: {}\r\n", note.unwrap_or("n")).into_bytes();
            // Like forged status headers, "X-Drop" fields are removed.
            for l in block.split_inclusive(|&b| b == b'\n') {
                if !l.starts_with(b"X-Drop") {
                    v.extend_from_slice(l);
                }
            }
            v
        }
        fn size_overhead(&self) -> u64 {
            8
        }
    }

    struct Run {
        to_client: Vec<u8>,
        to_upstream: Vec<u8>,
        closed: Option<CloseReason>,
    }

    fn drive(engine: &mut Engine, run: &mut Run) {
        run.to_client.extend(engine.take_client_output());
        run.to_upstream
            .extend_from_slice(&engine.take_upstream_output());
        while let Some(ev) = engine.next_event() {
            match ev {
                Event::Transform(raw) => {
                    engine.transform_done(raw.to_ascii_uppercase());
                    run.to_client.extend(engine.take_client_output());
                    run.to_upstream
                        .extend_from_slice(&engine.take_upstream_output());
                }
                Event::Close(r) => run.closed = Some(r),
            }
        }
    }

    /// Feed a client script and the server's answers in chunks of `chunk`
    /// octets, interleaving the two sides, and collect what each side gets.
    fn script(client: &[u8], server: &[u8], chunk: usize, limits: EngineLimits) -> Run {
        let mut e = Engine::new(limits, Arc::new(TestHook));
        e.greeting(b"+OK POP3 ready <1.2@host>");
        let mut run = Run {
            to_client: Vec::new(),
            to_upstream: Vec::new(),
            closed: None,
        };
        let mut c = client.chunks(chunk).peekable();
        let mut s = server.chunks(chunk).peekable();
        // The server speaks only when asked, as a real one does; the client
        // may run ahead (pipelining).
        loop {
            if e.awaiting_upstream() && s.peek().is_some() {
                e.upstream_data(s.next().unwrap_or_default());
            } else if let Some(a) = c.next() {
                e.client_data(a);
            } else if let Some(b) = s.next() {
                e.upstream_data(b);
            } else {
                break;
            }
            drive(&mut e, &mut run);
        }
        run
    }

    fn every_chunking(client: &[u8], server: &[u8], want_client: &[u8], want_upstream: &[u8]) {
        for chunk in 1..=client.len().max(server.len()) + 1 {
            let run = script(client, server, chunk, EngineLimits::default());
            assert_eq!(
                String::from_utf8_lossy(&run.to_client),
                String::from_utf8_lossy(want_client),
                "client side, chunk {chunk}"
            );
            assert_eq!(
                String::from_utf8_lossy(&run.to_upstream),
                String::from_utf8_lossy(want_upstream),
                "upstream side, chunk {chunk}"
            );
        }
    }

    #[test]
    fn login_stat_list_retr_dele_quit_pipelined() {
        let client = b"USER bob\r\nPASS pw with space\r\nSTAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n";
        let server = b"+OK\r\n+OK Logged in.\r\n+OK 2 40\r\n+OK 1 messages\r\n1 40\r\n.\r\n+OK 1 40\r\n+OK\r\n1 abc\r\n.\r\n+OK 40 octets\r\nSubject: a\r\n\r\n..leading dot\r\n..\r\nbare\r\n.\r\n+OK Marked to be deleted.\r\n+OK\r\n+OK\r\n+OK Logging out.\r\n";
        let want_client = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK Logged in.\r\n+OK 2 56\r\n+OK 1 messages\r\n1 48\r\n.\r\n+OK 1 48\r\n+OK\r\n1 abc\r\n.\r\n+OK 40 octets\r\nX-S: n\r\nSubject: a\r\n\r\n..leading dot\r\n..\r\nbare\r\n.\r\n+OK Marked to be deleted.\r\n+OK\r\n+OK\r\n+OK Logging out.\r\n";
        let want_upstream = b"USER bob\r\nPASS pw with space\r\nSTAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\nDELE 1\r\nNOOP\r\nRSET\r\nQUIT\r\n";
        every_chunking(client, server, want_client, want_upstream);
        let run = script(client, server, 7, EngineLimits::default());
        assert_eq!(run.closed, Some(CloseReason::Quit));
    }

    #[test]
    fn bare_lf_and_lone_cr_from_server_do_not_desynchronise() {
        let client = b"USER a\r\nPASS b\r\nRETR 1\r\nNOOP\r\n";
        let server = b"+OK\n+OK\r\n+OK\nA: b\n\nx\ry\n.\n+OK\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-S: n\r\nA: b\r\n\r\nx\ry\r\n.\r\n+OK\r\n";
        every_chunking(
            client,
            server,
            want,
            b"USER a\r\nPASS b\r\nRETR 1\r\nNOOP\r\n",
        );
    }

    #[test]
    fn transform_path_and_top_turned_into_retr() {
        let client = b"USER a\r\nPASS b\r\nRETR 2\r\nTOP 2 1\r\nTOP 3 0\r\n";
        let server = b"+OK\r\n+OK\r\n+OK\r\nX-Transform: yes\r\n\r\nl1\r\n..l2\r\n.\r\n\
+OK\r\nX-Transform: yes\r\n\r\nl1\r\n.\r\n+OK\r\nX-Transform: yes\r\n\r\nl1\r\n..l2\r\n.\r\n\
+OK\r\nX-Other: 1\r\n\r\n.\r\n";
        let want_client = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-TRANSFORM: YES\r\n\r\nL1\r\n..L2\r\n.\r\n\
+OK\r\nX-TRANSFORM: YES\r\n\r\nL1\r\n.\r\n+OK\r\nX-S: n\r\nX-Other: 1\r\n\r\n.\r\n";
        let want_upstream = b"USER a\r\nPASS b\r\nRETR 2\r\nTOP 2 1\r\nRETR 2\r\nTOP 3 0\r\n";
        every_chunking(client, server, want_client, want_upstream);
    }

    #[test]
    fn sizes_agree_with_what_retr_delivered() {
        let client =
            b"USER a\r\nPASS b\r\nRETR 2\r\nLIST 2\r\nSTAT\r\nDELE 2\r\nSTAT\r\nLIST 1\r\n";
        let server = b"+OK\r\n+OK\r\n+OK\r\nX-Transform: yes\r\n\r\nl1\r\n.\r\n+OK 2 24\r\n+OK 3 100\r\n+OK\r\n+OK 2 76\r\n+OK 1 30\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-TRANSFORM: YES\r\n\r\nL1\r\n.\r\n+OK 2 24\r\n+OK 3 116\r\n+OK\r\n+OK 2 92\r\n+OK 1 38\r\n";
        every_chunking(
            client,
            server,
            want,
            b"USER a\r\nPASS b\r\nRETR 2\r\nLIST 2\r\nSTAT\r\nDELE 2\r\nSTAT\r\nLIST 1\r\n",
        );
    }

    #[test]
    fn sizes_follow_streamed_messages_with_forged_headers_removed() {
        // The hook adds 8 octets ("X-S: n") and removes "X-Drop: 1" (11).
        let client = b"USER a\r\nPASS b\r\nLIST 1\r\nRETR 1\r\nLIST 1\r\nLIST\r\n";
        let server = b"+OK\r\n+OK\r\n+OK 1 23\r\n+OK\r\nA: b\r\nX-Drop: 1\r\n\r\nxy\r\n.\r\n+OK 1 23\r\n+OK\r\n1 23\r\n.\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK 1 31\r\n+OK\r\nX-S: n\r\nA: b\r\n\r\nxy\r\n.\r\n+OK 1 20\r\n+OK\r\n1 20\r\n.\r\n";
        every_chunking(
            client,
            server,
            want,
            b"USER a\r\nPASS b\r\nLIST 1\r\nRETR 1\r\nLIST 1\r\nLIST\r\n",
        );
    }

    #[test]
    fn sniffed_messages_stream_or_transform() {
        let client = b"USER a\r\nPASS b\r\nRETR 1\r\nRETR 2\r\nLIST 1\r\n";
        let server = b"+OK\r\n+OK\r\n+OK\r\nX-Sniff: y\r\n\r\n\r\nplain\r\n..dot\r\n.\r\n\
+OK\r\nX-Sniff: y\r\n\r\nArmor\r\nx\r\n.\r\n+OK 1 30\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n\
+OK\r\nX-S: n\r\nX-Sniff: y\r\n\r\n\r\nplain\r\n..dot\r\n.\r\n\
+OK\r\nX-SNIFF: Y\r\n\r\nARMOR\r\nX\r\n.\r\n+OK 1 38\r\n";
        every_chunking(
            client,
            server,
            want,
            b"USER a\r\nPASS b\r\nRETR 1\r\nRETR 2\r\nLIST 1\r\n",
        );
    }

    /// TestHook, but TOP peeks at 3 body lines.
    struct PeekHook;

    impl MessageHook for PeekHook {
        fn classify(&self, block: &[u8]) -> Disposition {
            TestHook.classify(block)
        }
        fn stream_headers(&self, block: &[u8], note: Option<&str>) -> Vec<u8> {
            TestHook.stream_headers(block, note)
        }
        fn size_overhead(&self) -> u64 {
            TestHook.size_overhead()
        }
        fn sniff(&self, block: &[u8], body: &[u8]) -> Option<bool> {
            TestHook.sniff(block, body)
        }
        fn top_peek_lines(&self) -> u32 {
            3
        }
    }

    #[test]
    fn top_peeks_at_the_body_and_cuts_to_what_the_client_asked() {
        // TOP 1 0 of plain text: TOP 1 3 upstream, streamed, cut to 0 lines.
        // TOP 2 1 of an "armored" text: drained, RETR, transformed, cut.
        // TOP 3 1 of a multipart-like streamed message: cut to 1 line.
        let client = b"USER a\r\nPASS b\r\nTOP 1 0\r\nTOP 2 1\r\nTOP 3 1\r\nTOP 4 5\r\n";
        let server = b"+OK\r\n+OK\r\n\
+OK\r\nX-Sniff: y\r\n\r\nplain\r\nmore\r\n.\r\n\
+OK\r\nX-Sniff: y\r\n\r\nArmor\r\nb\r\nc\r\n.\r\n+OK\r\nX-Sniff: y\r\n\r\nArmor\r\nb\r\nc\r\nd\r\n.\r\n\
+OK\r\nA: b\r\n\r\n1\r\n2\r\n3\r\n.\r\n\
+OK\r\nX-Sniff: y\r\n\r\n\r\n.\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n\
+OK\r\nX-S: n\r\nX-Sniff: y\r\n\r\n.\r\n\
+OK\r\nX-SNIFF: Y\r\n\r\nARMOR\r\n.\r\n\
+OK\r\nX-S: n\r\nA: b\r\n\r\n1\r\n.\r\n\
+OK\r\nX-S: n\r\nX-Sniff: y\r\n\r\n\r\n.\r\n";
        let want_up = b"USER a\r\nPASS b\r\nTOP 1 3\r\nTOP 2 3\r\nRETR 2\r\nTOP 3 3\r\nTOP 4 5\r\n";
        for chunk in 1..=server.len() {
            let mut e = Engine::new(EngineLimits::default(), Arc::new(PeekHook));
            e.greeting(b"+OK POP3 ready <1.2@host>");
            let mut run = Run {
                to_client: Vec::new(),
                to_upstream: Vec::new(),
                closed: None,
            };
            e.client_data(client);
            drive(&mut e, &mut run);
            for c in server.chunks(chunk) {
                e.upstream_data(c);
                drive(&mut e, &mut run);
            }
            assert_eq!(
                String::from_utf8_lossy(&run.to_client),
                String::from_utf8_lossy(want),
                "chunk {chunk}"
            );
            assert_eq!(
                String::from_utf8_lossy(&run.to_upstream),
                String::from_utf8_lossy(want_up)
            );
        }
    }

    #[test]
    fn capa_is_filtered() {
        let client = b"CAPA\r\n";
        let server = b"+OK\r\nCAPA\r\nTOP\r\nUIDL\r\nSTLS\r\nRESP-CODES\r\nPIPELINING\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN SCRAM-SHA-256-PLUS\r\nIMPLEMENTATION Dovecot\r\nUTF8 USER\r\n.\r\n";
        let want = format!(
            "+OK POP3 ready <1.2@host>\r\n+OK Capability list follows\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nUSER\r\nSASL PLAIN LOGIN\r\nPIPELINING\r\nIMPLEMENTATION popcrypt-{}\r\n.\r\n",
            env!("CARGO_PKG_VERSION")
        );
        every_chunking(client, server, want.as_bytes(), b"CAPA\r\n");
    }

    #[test]
    fn sasl_exchange_with_continuations_and_cancel() {
        let client = b"AUTH LOGIN\r\nYWxpY2U=\r\n*\r\nAUTH PLAIN\r\nAGFsaWNlAHB3\r\nSTAT\r\n";
        let server = b"+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n-ERR [AUTH] cancelled\r\n+ \r\n+OK Logged in.\r\n+OK 0 0\r\n";
        let want_client = b"+OK POP3 ready <1.2@host>\r\n+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n-ERR [AUTH] cancelled\r\n+ \r\n+OK Logged in.\r\n+OK 0 0\r\n";
        let want_upstream =
            b"AUTH LOGIN\r\nYWxpY2U=\r\n*\r\nAUTH PLAIN\r\nAGFsaWNlAHB3\r\nSTAT\r\n";
        every_chunking(client, server, want_client, want_upstream);
    }

    #[test]
    fn secrets_in_flight_are_redacted_and_relayed_exactly() {
        let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
        e.client_data(b"USER a\r\n");
        e.upstream_data(b"+OK\r\n");
        e.client_data(b"PASS hunter2 x\r\n");
        let shown = format!("{:?}", e.pending);
        assert_eq!(shown, "Some(Single(Pass(Secret([REDACTED]))))");
        let up = e.take_upstream_output();
        assert_eq!(&up[..], b"USER a\r\nPASS hunter2 x\r\n");
        assert!(!format!("{up:?} {:?}", e.client_in).contains("hunter2"));
        e.upstream_data(b"-ERR [AUTH] no\r\n");
        e.client_data(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n");
        assert!(!format!("{:?}", e.pending).contains("c4c9334b"));
        assert_eq!(
            &e.take_upstream_output()[..],
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
        );
    }

    #[test]
    fn last_is_answered_locally_when_upstream_lacks_it() {
        let client = b"USER a\r\nPASS b\r\nRETR 2\r\nLAST\r\nLAST\r\nRSET\r\nLAST\r\n";
        let server = b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\n.\r\n-ERR Unknown command: LAST\r\n+OK\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-S: n\r\nA: b\r\n\r\n.\r\n+OK 2\r\n+OK 2\r\n+OK\r\n+OK 0\r\n";
        every_chunking(
            client,
            server,
            want,
            b"USER a\r\nPASS b\r\nRETR 2\r\nLAST\r\nRSET\r\n",
        );
        // Relayed when the server supports it.
        let run = script(
            b"USER a\r\nPASS b\r\nLAST\r\n",
            b"+OK\r\n+OK\r\n+OK 7\r\n",
            3,
            EngineLimits::default(),
        );
        assert!(run.to_client.ends_with(b"+OK 7\r\n"));
    }

    #[test]
    fn state_gate_and_local_errors() {
        let client = b"RETR 1\r\nSTLS\r\nXTND\r\nRETR x\r\nUSER a\r\nPASS b\r\nUSER c\r\nQUIT\r\n";
        let server = b"+OK\r\n+OK\r\n+OK bye\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n-ERR popcrypt: log in first\r\n-ERR popcrypt: STLS is not offered on this listener\r\n-ERR popcrypt: unknown command\r\n-ERR popcrypt: not a number\r\n+OK\r\n+OK\r\n-ERR popcrypt: not allowed after login\r\n+OK bye\r\n";
        every_chunking(client, server, want, b"USER a\r\nPASS b\r\nQUIT\r\n");
    }

    #[test]
    fn responses_pass_unchanged_including_resp_codes() {
        let client = b"USER a\r\nPASS b\r\nPASS c\r\n";
        let server = b"+OK\r\n-ERR [AUTH] Authentication failed.\r\n-ERR [IN-USE] locked\r\n";
        let want = b"+OK POP3 ready <1.2@host>\r\n+OK\r\n-ERR [AUTH] Authentication failed.\r\n-ERR [IN-USE] locked\r\n";
        every_chunking(client, server, want, b"USER a\r\nPASS b\r\nPASS c\r\n");
    }

    #[test]
    fn upstream_drop_mid_message_never_sends_terminator() {
        let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
        e.client_data(b"USER a\r\nPASS b\r\nRETR 1\r\n");
        e.upstream_data(b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\npartial body\r\n");
        e.upstream_eof();
        let out = e.take_client_output();
        assert!(out.ends_with(b"partial body\r\n"));
        assert!(!out.ends_with(b".\r\n"));
        assert!(matches!(
            e.next_event(),
            Some(Event::Close(CloseReason::Upstream(_)))
        ));
        // Before any byte of the answer: a clear -ERR.
        let mut e = Engine::new(EngineLimits::default(), Arc::new(TestHook));
        e.client_data(b"USER a\r\n");
        e.upstream_eof();
        let out = e.take_client_output();
        assert!(
            out.starts_with(b"-ERR [SYS/TEMP]"),
            "{}",
            String::from_utf8_lossy(&out)
        );
    }

    #[test]
    fn garbage_and_oversize_lines_close_cleanly() {
        let limits = EngineLimits {
            max_response_line: 16,
            max_command_line: 16,
            ..Default::default()
        };
        let run = script(
            b"USER a\r\n",
            b"HTTP/1.1 400 Bad Request\r\n",
            3,
            limits.clone(),
        );
        assert!(run
            .to_client
            .ends_with(b"-ERR [SYS/TEMP] popcrypt: the mail server sent an over-long line\r\n"));
        let run = script(b"USER a\r\n", b"garbage\r\n", 3, limits.clone());
        assert!(run
            .to_client
            .ends_with(b"-ERR [SYS/TEMP] popcrypt: the mail server sent an invalid response\r\n"));
        assert!(matches!(run.closed, Some(CloseReason::Upstream(_))));
        let run = script(
            b"USER aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n",
            b"",
            3,
            limits.clone(),
        );
        assert!(run
            .to_client
            .ends_with(b"-ERR popcrypt: command line longer than 16 octets\r\n"));
        assert!(run.to_upstream.is_empty());
        assert!(matches!(run.closed, Some(CloseReason::Client(_))));
        let run = script(
            b"USER a\r\nPASS b\r\nRETR 1\r\n",
            b"+OK\r\n+OK\r\n+OK\r\nA: b\r\n\r\n0123456789012345678\r\n.\r\n",
            5,
            limits,
        );
        assert!(!run.to_client.ends_with(b".\r\n"));
        assert!(matches!(run.closed, Some(CloseReason::Upstream(_))));
    }

    #[test]
    fn oversize_transform_falls_back_to_streaming_without_loss() {
        let limits = EngineLimits {
            max_message_size: 40,
            ..Default::default()
        };
        let body: Vec<u8> = (0..10)
            .flat_map(|i| format!("line {i}\r\n").into_bytes())
            .collect();
        let server = [
            b"+OK\r\n+OK\r\n+OK\r\nX-Transform: yes\r\n\r\n".as_slice(),
            &body,
            b".\r\n",
        ]
        .concat();
        for chunk in [1, 3, 64] {
            let run = script(
                b"USER a\r\nPASS b\r\nRETR 1\r\n",
                &server,
                chunk,
                limits.clone(),
            );
            let want = [
                b"+OK POP3 ready <1.2@host>\r\n+OK\r\n+OK\r\n+OK\r\nX-S: message larger than the 40 octet limit, not processed\r\nX-Transform: yes\r\n\r\n".as_slice(),
                &body,
                b".\r\n",
            ]
            .concat();
            assert_eq!(
                String::from_utf8_lossy(&run.to_client),
                String::from_utf8_lossy(&want)
            );
        }
    }

    #[test]
    fn forged_status_headers_after_header_limit_are_dropped() {
        let limits = EngineLimits {
            max_header_block: 20,
            ..Default::default()
        };
        let server = b"+OK\r\n+OK\r\n+OK\r\nA: 0123456789\r\nB: 0123456789\r\nX-Popcrypt-Signature: good\r\n folded\r\nC: d\r\n\r\nX-Popcrypt-Body: stays\r\n.\r\n";
        let run = script(b"USER a\r\nPASS b\r\nRETR 1\r\n", server, 4, limits);
        let out = String::from_utf8_lossy(&run.to_client);
        assert!(out.ends_with("+OK\r\nX-S: header block too large to classify\r\nA: 0123456789\r\nB: 0123456789\r\nC: d\r\n\r\nX-Popcrypt-Body: stays\r\n.\r\n"), "{out}");
    }

    #[test]
    fn forged_status_continuations_cut_by_the_header_limit_are_dropped() {
        let limits = EngineLimits {
            max_header_block: 40,
            ..Default::default()
        };
        let server = b"+OK\r\n+OK\r\n+OK\r\nA: 1\r\nX-Popcrypt-Signature: x\r\n 0123456789\r\n ; good\r\nC: d\r\n\r\nbody\r\n.\r\n";
        let run = script(b"USER a\r\nPASS b\r\nRETR 1\r\n", server, 3, limits);
        let out = String::from_utf8_lossy(&run.to_client);
        assert!(!out.contains("good"), "{out}");
        assert!(out.contains("C: d\r\n\r\nbody\r\n.\r\n"), "{out}");
    }

    #[test]
    fn absurd_sizes_from_the_server_do_not_overflow() {
        let client = b"USER a\r\nPASS b\r\nRETR 1\r\nSTAT\r\nLIST 1\r\n";
        let server = b"+OK\r\n+OK\r\n+OK\r\nX-Drop: 1\r\n\r\n.\r\n+OK 9223372036854775807 18446744073709551615\r\n+OK 1 18446744073709551615\r\n";
        let run = script(client, server, 5, EngineLimits::default());
        let out = String::from_utf8_lossy(&run.to_client);
        assert!(
            out.contains("+OK 9223372036854775807 9223372036854775807\r\n"),
            "{out}"
        );
    }

    #[test]
    fn top_lines_cuts_body() {
        assert_eq!(
            top_lines(b"A: b\r\n\r\n1\r\n2\r\n3\r\n", 2),
            b"A: b\r\n\r\n1\r\n2\r\n"
        );
        assert_eq!(top_lines(b"A: b\r\n\r\n1\r\n", 0), b"A: b\r\n\r\n");
        assert_eq!(top_lines(b"A: b\r\n\r\n1\r\n", 9), b"A: b\r\n\r\n1\r\n");
        assert_eq!(top_lines(b"A: b\r\n", 0), b"A: b\r\n");
    }
}
