//! Byte-oriented line splitting with a hard length bound.
//!
//! POP3 lines end in CRLF. Broken servers send bare LF; both are accepted as a
//! line end. A lone CR that is not followed by LF is kept as content, so it can
//! never end a line early and desynchronise the session.

/// A line was longer than the configured maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("line longer than {max} octets")]
pub struct LineTooLong {
    /// The configured maximum, terminator excluded.
    pub max: usize,
}

/// Accumulates bytes and hands out complete lines, never buffering more than
/// `max` octets of an unfinished line.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
    max: usize,
}

impl LineBuffer {
    /// `max` is the largest accepted line length, without its terminator.
    pub fn new(max: usize) -> Self {
        LineBuffer {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            max,
        }
    }

    /// Append received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            self.scanned = 0;
        } else if self.start > 64 * 1024 && self.start * 2 > self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
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
    /// `Ok(None)` means more bytes are needed.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, LineTooLong> {
        match self.find_lf() {
            Some(lf) => {
                let mut end = lf;
                if end > self.start && self.buf[end - 1] == b'\r' {
                    end -= 1;
                }
                if end - self.start > self.max {
                    return Err(LineTooLong { max: self.max });
                }
                let line = self.buf[self.start..end].to_vec();
                self.start = lf + 1;
                self.scanned = self.start;
                Ok(Some(line))
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
        self.buf.clear();
        self.start = 0;
        self.scanned = 0;
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
