//! Byte-oriented line splitting with a hard length bound.
//!
//! POP3 lines end in CRLF. Broken servers send bare LF; both are accepted as a
//! line end. A lone CR that is not followed by LF is kept as content, so it can
//! never end a line early and desynchronise the session.
//!
//! Client lines carry passwords and SASL payloads, so the buffer leaves no
//! copy behind: consumed bytes are zeroed when the buffer is compacted or
//! emptied, it never lets the allocator free a block that still holds data
//! (see [`extend_zeroizing`]), and it is zeroed when dropped.

use zeroize::{Zeroize, Zeroizing};

/// A line was longer than the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {max} octets")]
pub struct LineTooLong {
    /// The configured maximum, terminator excluded.
    pub max: usize,
}

/// Append `data` to `buf` without leaving a copy of `buf`'s contents in
/// freed memory: when the capacity does not suffice, the bytes move to a new
/// allocation and the old one is zeroed before it is released (a plain
/// `extend_from_slice` would let `realloc` free it as it is).
///
/// Invariant kept for [`LineBuffer`]: the spare capacity of `buf` never holds
/// data (it is zero or was never written).
pub fn extend_zeroizing(buf: &mut Vec<u8>, data: &[u8]) {
    let needed = buf.len().saturating_add(data.len());
    if needed > buf.capacity() {
        let mut grown = Vec::with_capacity(needed.max(buf.capacity().saturating_mul(2)).max(64));
        grown.extend_from_slice(buf);
        grown.extend_from_slice(data);
        buf.zeroize();
        *buf = grown;
    } else {
        buf.extend_from_slice(data);
    }
}

/// Move `buf[start..]` to the front and zero every byte after it; returns
/// the length of the moved part (what the caller truncates to). The consumed
/// bytes `buf[..start]` are overwritten or zeroed, so nothing consumed
/// stays behind in the buffer's spare capacity.
pub fn compact_front(buf: &mut [u8], start: usize) -> usize {
    let start = start.min(buf.len());
    let kept = buf.len() - start;
    buf.copy_within(start.., 0);
    buf[kept..].zeroize();
    kept
}

/// Accumulates bytes and hands out complete lines, never buffering more than
/// `max` octets of an unfinished line. Zeroed when dropped.
pub struct LineBuffer {
    buf: Zeroizing<Vec<u8>>,
    start: usize,
    scanned: usize,
    max: usize,
}

impl std::fmt::Debug for LineBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The buffered bytes may be a password: only the counts.
        f.debug_struct("LineBuffer")
            .field("buffered", &self.buffered())
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl LineBuffer {
    /// `max` is the largest accepted line length, without its terminator.
    pub fn new(max: usize) -> Self {
        LineBuffer {
            buf: Zeroizing::new(Vec::new()),
            start: 0,
            scanned: 0,
            max,
        }
    }

    /// Append received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.clear();
        } else if self.start > 0
            && ((self.start > 64 * 1024 && self.start * 2 > self.buf.len())
                || self.buf.len() + data.len() > self.buf.capacity())
        {
            // Compact (also before a growth: fewer bytes to move, and the
            // consumed ones are zeroed rather than copied).
            let kept = compact_front(&mut self.buf, self.start);
            self.buf.truncate(kept);
            self.scanned = self.scanned.saturating_sub(self.start);
            self.start = 0;
        }
        extend_zeroizing(&mut self.buf, data);
    }

    /// Zero what was used and forget it (the allocation stays). The spare
    /// capacity holds no data (see [`extend_zeroizing`]), so zeroing the
    /// used part is enough and costs no more than the bytes it held.
    fn clear(&mut self) {
        self.buf.as_mut_slice().zeroize();
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
    }

    /// Number of buffered bytes not yet handed out.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// True when a complete line is waiting.
    pub fn has_line(&mut self) -> bool {
        self.find_lf().is_some()
    }

    fn find_lf(&mut self) -> Option<usize> {
        let from = self.scanned.max(self.start);
        match self.buf[from..].iter().position(|&b| b == b'\n') {
            Some(i) => Some(from + i),
            None => {
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// The next complete line without its terminator (CRLF or bare LF).
    /// `Ok(None)` means more bytes are needed. For lines that may carry a
    /// secret, use [`LineBuffer::next_secret_line`].
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        Ok(self
            .next_span()?
            .map(|(from, to)| self.buf[from..to].to_vec()))
    }

    /// As [`LineBuffer::next_line`], but the line is zeroed when dropped
    /// (client lines: passwords, SASL responses).
    pub fn next_secret_line(&mut self) -> Result<Option<Zeroizing<Vec<u8>>>, LineTooLong> {
        Ok(self
            .next_span()?
            .map(|(from, to)| Zeroizing::new(self.buf[from..to].to_vec())))
    }

    /// Consume the next complete line; its span in `buf`.
    fn next_span(&mut self) -> Result<Option<(usize, usize)>, LineTooLong> {
        match self.find_lf() {
            Some(lf) => {
                let mut end = lf;
                if end > self.start && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                if end - self.start > self.max {
                    return Err(LineTooLong { max: self.max });
                }
                let from = self.start;
                self.start = lf + 1;
                self.scanned = self.start;
                Ok(Some((from, end)))
            }
            None => {
                // A trailing CR may still become part of the terminator.
                let pending = self.buffered();
                let allowance = if self.buf.last() == Some(&b'\r') {
                    1
                } else {
                    0
                };
                // Saturating: a configured maximum of usize::MAX is allowed.
                if pending > self.max.saturating_add(allowance) {
                    Err(LineTooLong { max: self.max })
                } else {
                    Ok(None)
                }
            }
        }
    }

    /// Take every buffered byte (used when the stream changes hands, e.g. STLS).
    pub fn take_rest(&mut self) -> Vec<u8> {
        let rest = self.buf[self.start..].to_vec();
        self.clear();
        rest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(input: &[u8], chunk: usize, max: usize) -> Result<Vec<Vec<u8>>, LineTooLong> {
        let mut lb = LineBuffer::new(max);
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            lb.push(c);
            while let Some(l) = lb.next_line()? {
                out.push(l);
            }
        }
        Ok(out)
    }

    #[test]
    fn crlf_lf_and_lone_cr_in_every_chunking() {
        let input = b"+OK hi\r\nbare lf\nlone\rcr\r\n\r\n.\r\n";
        for chunk in 1..=input.len() {
            let lines = split_all(input, chunk, 100).unwrap();
            assert_eq!(
                lines,
                vec![
                    b"+OK hi".to_vec(),
                    b"bare lf".to_vec(),
                    b"lone\rcr".to_vec(),
                    b"".to_vec(),
                    b".".to_vec()
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn too_long_is_reported_without_unbounded_buffering() {
        let mut lb = LineBuffer::new(8);
        lb.push(b"12345678");
        assert_eq!(lb.next_line(), Ok(None));
        lb.push(b"\r");
        assert_eq!(lb.next_line(), Ok(None));
        lb.push(b"\n");
        assert_eq!(lb.next_line(), Ok(Some(b"12345678".to_vec())));
        lb.push(b"123456789");
        assert_eq!(lb.next_line(), Err(LineTooLong { max: 8 }));
        for chunk in 1..12 {
            assert!(split_all(b"0123456789abc\r\n", chunk, 8).is_err());
        }
    }

    #[test]
    fn compaction_moves_the_rest_and_zeroes_the_tail() {
        let mut buf = *b"PASS hunter2\r\nUSER a";
        let kept = compact_front(&mut buf, 14);
        assert_eq!(kept, 6);
        assert_eq!(&buf[..kept], b"USER a");
        assert!(buf[kept..].iter().all(|&b| b == 0), "{buf:?}");
        // Everything consumed: all zero.
        let mut buf = *b"PASS hunter2\r\n";
        assert_eq!(compact_front(&mut buf, 14), 0);
        assert_eq!(buf, [0u8; 14]);
        // Nothing consumed: unchanged.
        let mut buf = *b"abc";
        assert_eq!(compact_front(&mut buf, 0), 3);
        assert_eq!(&buf, b"abc");
        // A start past the end is clamped.
        let mut buf = *b"abc";
        assert_eq!(compact_front(&mut buf, 9), 0);
        assert_eq!(buf, [0u8; 3]);
    }

    #[test]
    fn extend_zeroizing_keeps_the_bytes_and_grows_once() {
        let mut v = Vec::new();
        extend_zeroizing(&mut v, b"PASS ");
        let cap = v.capacity();
        assert!(cap >= 64);
        extend_zeroizing(&mut v, b"hunter2\r\n");
        assert_eq!(v.capacity(), cap, "fits: no new allocation");
        let big = vec![b'x'; 1000];
        extend_zeroizing(&mut v, &big);
        assert_eq!(&v[..14], b"PASS hunter2\r\n");
        assert_eq!(&v[14..], &big[..]);
        assert!(v.capacity() >= 1014);
    }

    #[test]
    fn consumed_lines_do_not_stay_in_the_buffer() {
        let mut lb = LineBuffer::new(100);
        lb.push(b"PASS hunter2\r\nUS");
        assert_eq!(*lb.next_secret_line().unwrap().unwrap(), b"PASS hunter2");
        // Enough to need more room: the consumed line is compacted away.
        let cap = lb.buf.capacity();
        let more = vec![b'E'; cap];
        lb.push(&more);
        assert!(!lb.buf.windows(7).any(|w| w == b"hunter2"));
        assert!(lb.buf.starts_with(b"USEEE"));
        assert_eq!(lb.buffered(), 2 + cap);
        // Emptied: cleared (the used part zeroed, see `clear`).
        let mut lb = LineBuffer::new(100);
        lb.push(b"PASS hunter2\r\n");
        lb.next_secret_line().unwrap();
        lb.push(b"QUIT\r\n");
        assert_eq!(&lb.buf[..], b"QUIT\r\n");
        assert_eq!(*lb.next_secret_line().unwrap().unwrap(), b"QUIT");
    }

    #[test]
    fn debug_shows_counts_not_content() {
        let mut lb = LineBuffer::new(100);
        lb.push(b"PASS hunter2\r\nAUTH PLAIN AGFsaWNl");
        let line = lb.next_secret_line().unwrap().unwrap();
        let shown = format!("{lb:?} {lb:#?} {line:?}");
        assert!(!shown.contains("hunter2") && !shown.contains("AGFsaWNl"));
        assert!(!shown.contains("104, 117"), "no byte lists: {shown}");
        assert!(shown.contains("buffered: 19"), "{shown}");
    }

    #[test]
    fn secret_and_plain_lines_agree() {
        let input = b"+OK hi\r\nbare lf\nlone\rcr\r\n";
        let mut a = LineBuffer::new(100);
        let mut b = LineBuffer::new(100);
        a.push(input);
        b.push(input);
        while let Some(l) = a.next_line().unwrap() {
            assert_eq!(*b.next_secret_line().unwrap().unwrap(), l);
        }
        assert_eq!(b.next_secret_line(), Ok(None));
    }

    #[test]
    fn the_largest_maximum_does_not_overflow() {
        let mut lb = LineBuffer::new(usize::MAX);
        lb.push(b"unfinished\r");
        assert_eq!(lb.next_line(), Ok(None));
        lb.push(b"\n");
        assert_eq!(lb.next_line(), Ok(Some(b"unfinished".to_vec())));
    }

    #[test]
    fn take_rest_returns_unconsumed_bytes() {
        let mut lb = LineBuffer::new(100);
        lb.push(b"+OK\r\nextra");
        assert_eq!(lb.next_line().unwrap(), Some(b"+OK".to_vec()));
        assert_eq!(lb.take_rest(), b"extra".to_vec());
        assert_eq!(lb.buffered(), 0);
    }
}
