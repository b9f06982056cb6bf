//! The server's answers to every command but RETR and TOP: single-line
//! answers (with the state changes they cause), multi-line lists, CAPA
//! (filtered), SASL exchanges and LAST (answered locally when the server
//! lacks it).

use super::super::command::Command;
use super::super::response::{self, Status};
use super::{CloseReason, Engine, Pending, Phase};

impl Engine {
    pub(super) fn single_reply(&mut self, cmd: Command, line: &[u8]) -> Option<Pending> {
        let Some(st) = response::status(line).filter(|s| *s != Status::Continue) else {
            return self.garbage();
        };
        let ok = st == Status::Ok;
        tracing::info!(
            command = cmd.verb(),
            outcome = if ok { "+OK" } else { "-ERR" }
        );
        match (&cmd, ok) {
            (Command::Pass(_) | Command::Apop { .. }, true) => self.phase = Phase::Transaction,
            (Command::Rset, true) => {
                self.highest_retrieved = 0;
                self.sizes.undelete_all();
            }
            (Command::Dele(n), true) => self.sizes.delete(*n),
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

    pub(super) fn last_reply(&mut self, line: &[u8]) -> Option<Pending> {
        match response::status(line) {
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
        }
    }

    pub(super) fn multi_reply(&mut self, cmd: Command, line: &[u8]) -> Option<Pending> {
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

    pub(super) fn capa_reply(&mut self, mut lines: Vec<Vec<u8>>, line: &[u8]) -> Option<Pending> {
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

    pub(super) fn auth_reply(&mut self, line: &[u8]) -> Option<Pending> {
        match response::status(line) {
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
        }
    }
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
