//! What the client may do when: reading client lines, the state gate
//! (RFC 1939 AUTHORIZATION / TRANSACTION), commands answered locally, and
//! relaying the rest upstream.

use super::super::command::{Command, ParseError};
use super::super::line::extend_zeroizing;
use super::{CloseReason, Engine, MessageRx, Pending, Phase};

impl Engine {
    pub(super) fn process_client(&mut self) {
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
        if let Err(text) = self.gate(&cmd) {
            tracing::info!(
                command = cmd.verb(),
                outcome = "rejected locally: wrong state"
            );
            self.reply(false, text);
            return;
        }
        if !self.answered_locally(&cmd) {
            self.relay_command(cmd);
        }
    }

    /// Whether `cmd` is allowed in the current state; if not, the answer.
    fn gate(&self, cmd: &Command) -> Result<(), &'static str> {
        let login_cmd = matches!(
            cmd,
            Command::User(_) | Command::Pass(_) | Command::Apop { .. } | Command::Auth { .. }
        );
        let allowed = match self.phase {
            Phase::Authorization => {
                login_cmd || matches!(cmd, Command::Capa | Command::Stls | Command::Quit)
            }
            Phase::Transaction => !login_cmd && *cmd != Command::Stls,
            Phase::Closed => false,
        };
        match (allowed, self.phase) {
            (true, _) => Ok(()),
            (false, Phase::Authorization) => Err("popcrypt: log in first"),
            (false, _) => Err("popcrypt: not allowed after login"),
        }
    }

    /// Answer the commands popcrypt answers itself; true if it did.
    fn answered_locally(&mut self, cmd: &Command) -> bool {
        let verb = cmd.verb();
        match cmd {
            Command::Stls => {
                tracing::info!(command = verb, outcome = "rejected locally: no client TLS");
                self.reply(false, "popcrypt: STLS is not offered on this listener");
                true
            }
            Command::Last if self.last_supported == Some(false) => {
                tracing::info!(command = verb, outcome = "answered locally");
                let n = self.highest_retrieved.to_string();
                self.reply(true, &n);
                true
            }
            _ => false,
        }
    }

    /// Send `cmd` upstream and remember what answer it expects.
    fn relay_command(&mut self, cmd: Command) {
        tracing::debug!(command = cmd.verb(), "relaying");
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
}
