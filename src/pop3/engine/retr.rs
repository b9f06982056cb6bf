//! RETR and TOP: the message hook `message` implements, and how a message
//! is streamed, held for the transform, sniffed, or cut to TOP's lines.

use super::super::command::Command;
use super::super::line::extend_zeroizing;
use super::super::response::{self, DataLine, Status};
use super::{Engine, Event, Pending};
use crate::text::{self, LoneCr};

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

#[derive(Debug)]
pub(super) struct MessageRx {
    pub(super) msg: u32,
    /// `Some(n)` for TOP n.
    pub(super) top: Option<u32>,
    /// True once a TOP was turned into a RETR to transform the whole message.
    internal_retr: bool,
    /// Octets of the message as received and as delivered, CRLF counted,
    /// dot-stuffing not (for LIST/STAT bookkeeping).
    pub(super) received: usize,
    pub(super) delivered: usize,
    /// Body lines sent so far (TOP n stops at n).
    body_lines: u32,
    status: Option<Vec<u8>>,
    pub(super) state: MsgState,
}

#[derive(Debug)]
pub(super) enum MsgState {
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

impl MessageRx {
    pub(super) fn new(msg: u32, top: Option<u32>) -> MessageRx {
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

    fn verb(&self) -> &'static str {
        if self.top.is_some() {
            "TOP"
        } else {
            "RETR"
        }
    }

    /// A TOP answer, not the whole message fetched in its place.
    fn is_plain_top(&self) -> bool {
        self.top.is_some() && !self.internal_retr
    }
}

impl Engine {
    pub(super) fn awaiting_transform(&self) -> bool {
        matches!(&self.pending, Some(Pending::Message(m)) if matches!(m.state, MsgState::AwaitTransform))
    }

    pub(super) fn message_line(&mut self, mut rx: MessageRx, line: &[u8]) -> Option<Pending> {
        if matches!(rx.state, MsgState::Status) {
            return self.message_status(rx, line);
        }
        let content = match response::unstuff(line) {
            DataLine::End => None,
            DataLine::Content(c) => {
                rx.received += c.len() + 2;
                Some(c)
            }
        };
        match (&mut rx.state, content) {
            // Handled above / never fed while a transform runs; should it
            // happen, the session is no longer trustworthy: end it.
            (MsgState::Status | MsgState::AwaitTransform, _) => {
                // The answer is still pending (and may be half sent): put
                // it back, so that no error line is written into it.
                self.pending = Some(Pending::Message(rx));
                self.internal_error("message state machine out of step");
                return None;
            }
            (MsgState::Headers(_), Some(c)) => self.header_line(&mut rx, c),
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
                    command = rx.verb(),
                    msg = rx.msg,
                    outcome = "+OK",
                    mode = "streamed"
                );
                return None;
            }
            (MsgState::Buffering { .. }, Some(c)) => return self.buffer_line(rx, c),
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

    /// The status line of a RETR or TOP answer.
    fn message_status(&mut self, mut rx: MessageRx, line: &[u8]) -> Option<Pending> {
        let Some(st) = response::status(line).filter(|s| *s != Status::Continue) else {
            return self.garbage();
        };
        if st == Status::Err {
            tracing::info!(command = rx.verb(), msg = rx.msg, outcome = "-ERR");
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
        Some(Pending::Message(rx))
    }

    /// One line of the header block, before the message is classified.
    fn header_line(&mut self, rx: &mut MessageRx, c: &[u8]) {
        let MsgState::Headers(block) = &mut rx.state else {
            return;
        };
        if c.is_empty() {
            let block = std::mem::take(block);
            self.classified(rx, block, true);
        } else if block.len() + c.len() + 2 > self.limits.max_header_block {
            let block = std::mem::take(block);
            self.header_block_too_large(rx, block, c);
        } else {
            block.extend_from_slice(c);
            block.extend_from_slice(b"\r\n");
        }
    }

    /// The header block outgrew its limit: pass the message through,
    /// still refusing forged status headers.
    fn header_block_too_large(&mut self, rx: &mut MessageRx, block: Vec<u8>, c: &[u8]) {
        tracing::warn!(
            msg = rx.msg,
            "header block exceeds the limit; passing the message through"
        );
        self.emit_status(rx);
        let headers = self
            .hook
            .stream_headers(&block, Some("header block too large to classify"));
        rx.delivered += response::wire_len(&headers);
        response::stuff_message(&mut self.to_client, &headers);
        // Continuation lines of a forged status field cut by the limit must
        // not fold onto popcrypt's headers.
        let last_field = text::lines(&block, LoneCr::Content)
            .map(|l| l.text)
            .filter(|t| !t.is_empty() && t[0] != b' ' && t[0] != b'\t')
            .last()
            .unwrap_or(b"");
        let dropping = text::field_name_starts_with(last_field, "x-popcrypt-");
        rx.state = MsgState::Streaming {
            in_headers: true,
            dropping,
        };
        self.stream_line(rx, c);
    }

    /// One line of a message held for the transform (or being sniffed).
    fn buffer_line(&mut self, mut rx: MessageRx, c: &[u8]) -> Option<Pending> {
        let MsgState::Buffering {
            raw,
            header_len,
            sniffing,
        } = &mut rx.state
        else {
            return Some(Pending::Message(rx));
        };
        if *header_len == usize::MAX && c.is_empty() {
            *header_len = raw.len();
        }
        raw.extend_from_slice(c);
        raw.extend_from_slice(b"\r\n");
        // Ask only when something new can be seen: a line with content, or
        // the body passing the sniffing window (blank lines alone cannot
        // make a sender cost us a call each).
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
            Disposition::Transform if rx.is_plain_top() => {
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
            } if rx.is_plain_top() => {
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
        let MsgState::Streaming {
            in_headers,
            dropping,
        } = &mut rx.state
        else {
            return;
        };
        if !*in_headers {
            if let Some(n) = rx.top {
                // popcrypt may have asked the server for more lines than
                // the client wants (to look at the body): cut at n.
                if rx.body_lines >= n {
                    return;
                }
                rx.body_lines += 1;
            }
        } else if c.is_empty() {
            // Past the classification limit we still refuse forged status
            // headers, up to the blank line.
            *in_headers = false;
        } else if c[0] == b' ' || c[0] == b'\t' {
            if *dropping {
                return;
            }
        } else {
            *dropping = text::field_name_starts_with(c, "x-popcrypt-");
            if *dropping {
                return;
            }
        }
        rx.delivered += c.len() + 2;
        response::stuff_line(&mut self.to_client, c);
    }

    /// The transformed message for the pending RETR/TOP.
    pub fn transform_done(&mut self, message: Vec<u8>) {
        if self.is_closed() {
            return;
        }
        let Some(Pending::Message(mut rx)) = self.pending.take() else {
            self.internal_error("a transform result arrived with no message waiting for it");
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
            command = rx.verb(),
            msg = rx.msg,
            outcome = "+OK",
            mode = "transformed"
        );
        self.pump();
    }
}

/// The header block and the first `n` body lines of a message (TOP semantics).
pub fn top_lines(message: &[u8], n: u32) -> &[u8] {
    let mut pos = 0;
    let mut in_body = false;
    let mut body_lines = 0u32;
    for line in text::lines(message, LoneCr::Content) {
        if in_body && body_lines == n {
            return &message[..pos];
        }
        if in_body {
            body_lines += 1;
        } else if line.text.is_empty() {
            in_body = true;
        }
        pos += line.len();
    }
    message
}
