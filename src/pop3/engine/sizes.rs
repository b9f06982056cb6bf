//! The size ledger: LIST and STAT report the sizes the client will see on
//! RETR (the server's size plus the status headers, plus what forged-header
//! removal or a transform changed for messages already retrieved).

use std::collections::{HashMap, HashSet};

use super::{Engine, MessageRx};

/// Per-session bookkeeping of delivered sizes and deletions.
#[derive(Debug, Default)]
pub(super) struct SizeLedger {
    /// Per message retrieved (whole) in this session: octets delivered
    /// beyond the server's size plus the standard overhead.
    extra: HashMap<u32, i64>,
    /// Messages marked deleted in this session (for STAT).
    deleted: HashSet<u32>,
}

impl SizeLedger {
    /// DELE `n` succeeded.
    pub(super) fn delete(&mut self, n: u32) {
        self.deleted.insert(n);
    }

    /// RSET succeeded: nothing is deleted any more.
    pub(super) fn undelete_all(&mut self) {
        self.deleted.clear();
    }

    /// Rewrite the size in whitespace-separated field `field` of a STAT or
    /// LIST line, each message counting `overhead` octets more. `msg_field`
    /// names the field holding the message number (LIST); for STAT
    /// (`None`) field 1 is the count. Lines that do not parse pass
    /// unchanged.
    fn rewrite(
        &self,
        line: &[u8],
        field: usize,
        msg_field: Option<usize>,
        overhead: i64,
    ) -> Vec<u8> {
        let Ok(text) = std::str::from_utf8(line) else {
            return line.to_vec();
        };
        let mut parts: Vec<String> = text.split(' ').map(str::to_string).collect();
        let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u64>().ok());
        let (Some(size), Some(n)) = (num(field), num(msg_field.unwrap_or(1))) else {
            return line.to_vec();
        };
        let extra: i64 = match msg_field {
            Some(_) => overhead + self.extra.get(&(n as u32)).copied().unwrap_or(0),
            None => {
                let known: i64 = self
                    .extra
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
}

impl Engine {
    /// After a whole message went out: remember how its size differs from
    /// the server's plus the standard overhead (forged headers removed, a
    /// transform), so LIST and STAT agree with RETR from now on.
    pub(super) fn record_size(&mut self, rx: &MessageRx) {
        if rx.top.is_none() {
            let extra = rx.delivered as i64 - rx.received as i64 - self.hook.size_overhead() as i64;
            self.sizes.extra.insert(rx.msg, extra);
        }
    }

    /// A STAT or LIST line with the sizes the client will see (see
    /// [`SizeLedger::rewrite`]).
    pub(super) fn sized(&self, line: &[u8], field: usize, msg_field: Option<usize>) -> Vec<u8> {
        let overhead = self.hook.size_overhead() as i64;
        self.sizes.rewrite(line, field, msg_field, overhead)
    }
}
