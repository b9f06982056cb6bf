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
//!
//! The rooms: this file holds the engine, its events and its public API;
//! `gate.rs` decides what the client may do when, `replies.rs` relays the
//! server's answers to ordinary commands, `retr.rs` handles RETR and TOP
//! (and the [`MessageHook`] interface to `message`), and `sizes.rs` keeps
//! the LIST/STAT sizes in step with what RETR delivered.

mod gate;
mod replies;
mod retr;
mod sizes;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::command::Command;
use super::line::LineBuffer;
use super::response;

pub use retr::{top_lines, Disposition, MessageHook, SNIFF_WINDOW};

use retr::MessageRx;
use sizes::SizeLedger;

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
            max_message_size: crate::limits::MAX_MESSAGE_SIZE,
            max_header_block: 1 << 20,
        }
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

/// Why a session ended, and which side caused it. Only [`CloseReason::Quit`]
/// lets the server commit deletions; every other ending closes the upstream
/// connection without QUIT, so they roll back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The client said QUIT and the server answered.
    Quit,
    /// The client went away without QUIT.
    ClientGone,
    /// The upstream server closed the connection, timed out, or broke the
    /// protocol (an invalid or over-long line, data nobody asked for).
    Upstream(String),
    /// The client broke the protocol or a limit (an over-long line, idle,
    /// a command line not completed in time).
    Client(String),
    /// popcrypt is shutting down: neither side did anything wrong.
    Shutdown,
    /// popcrypt itself failed (its state machine out of step, a transform
    /// result with nothing waiting for it): a bug, not either peer's doing.
    Internal(String),
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
    /// only through [`super::line::extend_zeroizing`].
    to_upstream: Zeroizing<Vec<u8>>,
    events: VecDeque<Event>,
    sasl_client_turn: bool,
    /// Bytes of the current answer have already gone to the client.
    started: bool,
    highest_retrieved: u32,
    last_supported: Option<bool>,
    implementation: String,
    /// What LIST and STAT report, given what this session delivered.
    sizes: SizeLedger,
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
            sizes: SizeLedger::default(),
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

    /// Bytes from the server.
    pub fn upstream_data(&mut self, data: &[u8]) {
        if self.phase == Phase::Closed {
            return;
        }
        self.upstream_in.push(data);
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

    /// The session must end now because of the client (idle, a command
    /// not completed in time): no QUIT upstream, [`CloseReason::Client`].
    pub fn abort(&mut self, why: &str) {
        self.end(why, CloseReason::Client(why.to_string()));
    }

    /// The server sent octets while no answer was due (out of step, or a
    /// lone "." that was not dot-stuffed): end the session before they can
    /// be taken as the answer to the next command.
    pub fn upstream_unasked(&mut self) {
        let why = "the mail server sent data nobody asked for, closing";
        self.end(why, CloseReason::Upstream(why.to_string()));
    }

    /// popcrypt is shutting down: end the session without QUIT upstream,
    /// [`CloseReason::Shutdown`].
    pub fn shutdown(&mut self) {
        self.end("proxy shutting down", CloseReason::Shutdown);
    }

    /// popcrypt failed itself (`why` names how; it is logged, not sent):
    /// end the session, [`CloseReason::Internal`].
    pub fn internal_error(&mut self, why: &str) {
        tracing::error!(why, "internal error; closing the session");
        self.end("internal error, closing", CloseReason::Internal(why.into()));
    }

    /// End the session, telling the client `why` unless part of an answer
    /// already went out (a partial answer must never look complete).
    fn end(&mut self, why: &str, reason: CloseReason) {
        if self.phase == Phase::Closed {
            return;
        }
        if self.pending.is_none() || !self.started {
            self.reply(false, &format!("[SYS/TEMP] popcrypt: {why}"));
        }
        self.close(reason);
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
            Pending::Single(cmd) => self.single_reply(cmd, line),
            Pending::Last => self.last_reply(line),
            Pending::Multi(cmd) => self.multi_reply(cmd, line),
            Pending::Capa(lines) => self.capa_reply(lines, line),
            Pending::Auth => self.auth_reply(line),
            Pending::Message(rx) => self.message_line(rx, line),
        }
    }
}
