//! The PROXY protocol header (HAProxy's, versions 1 and 2) that a TCP load
//! balancer puts in front of each connection it forwards
//! (`proxy_protocol = true`): read before popcrypt greets, and only the
//! header is read (never a byte of what follows), so the POP3 session
//! starts on the first octet after it.
//!
//! Strict: version 1 is one line of at most 107 octets (CRLF included),
//! single spaces, `TCP4`, `TCP6` or `UNKNOWN`; version 2 is the 16-octet
//! binary header with a bounded length. Anything else is refused, and the
//! reason never quotes the peer's bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12-octet signature that starts a version 2 header.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// The fixed part of a version 2 header: signature, version and command,
/// family and transport, length.
const V2_FIXED: usize = 16;
/// The most address and TLV octets accepted after the fixed part (the
/// protocol allows 65535; a load balancer in front of POP3 sends the
/// addresses and a few TLVs).
pub const MAX_V2_PAYLOAD: usize = 1024;
/// The longest version 1 line, CRLF included (the protocol's own bound).
pub const MAX_V1_LINE: usize = 107;
/// "PROXY UNKNOWN\r\n": no header of either version is shorter.
const MIN_HEADER: usize = 15;

/// What a valid header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Header {
    /// A forwarded connection: the client's address and the address it
    /// connected to.
    Proxied {
        source: SocketAddr,
        destination: SocketAddr,
    },
    /// No client address: version 2 `LOCAL` (the balancer's own health
    /// check), version 1 `UNKNOWN`, or an address family that is not IP.
    /// The socket's peer stands for the client.
    Local,
}

impl Header {
    /// The client's address: the one the header carries, or `peer` (the
    /// socket's) when it carries none.
    pub fn client(&self, peer: SocketAddr) -> SocketAddr {
        match self {
            Header::Proxied { source, .. } => *source,
            Header::Local => peer,
        }
    }
}

/// Why a connection was refused. The text names the problem, never the
/// octets received.
#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    /// The first octets are not the start of a PROXY header.
    #[error("the connection does not start with a PROXY protocol header")]
    Missing,
    /// A header was started but breaks the protocol.
    #[error("malformed PROXY protocol header: {0}")]
    Malformed(&'static str),
    /// Longer than a version 1 line or than [`MAX_V2_PAYLOAD`] allows.
    #[error("PROXY protocol header too long")]
    TooLong,
    /// The peer closed the connection before the header was complete.
    #[error("connection closed before the PROXY protocol header was complete")]
    Truncated,
    /// The header did not arrive in time.
    #[error("no complete PROXY protocol header within {0:?}")]
    Timeout(Duration),
    /// Reading from the socket failed.
    #[error("reading the PROXY protocol header: {0}")]
    Io(std::io::Error),
}

/// Where parsing the octets received so far stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Incomplete: at least this many more octets are needed, and reading
    /// up to this many cannot go past the end of the header.
    Need(usize),
    /// A complete header, which is every octet given.
    Done(Header),
}

/// Parse the start of a connection. `buf` must hold only octets read as
/// [`Step::Need`] asked for (so it never extends past the header).
pub fn parse(buf: &[u8]) -> Result<Step, HeaderError> {
    match buf.first() {
        None => Ok(Step::Need(MIN_HEADER)),
        Some(b'\r') => parse_v2(buf),
        Some(b'P') => parse_v1(buf),
        Some(_) => Err(HeaderError::Missing),
    }
}

fn parse_v2(buf: &[u8]) -> Result<Step, HeaderError> {
    let sig = buf.len().min(V2_SIGNATURE.len());
    if buf[..sig] != V2_SIGNATURE[..sig] {
        return Err(HeaderError::Missing);
    }
    if buf.len() < V2_FIXED {
        return Ok(Step::Need(V2_FIXED - buf.len()));
    }
    let (version, command) = (buf[12] >> 4, buf[12] & 0x0f);
    if version != 2 {
        return Err(HeaderError::Malformed(
            "version 2 signature with another version",
        ));
    }
    if command > 1 {
        return Err(HeaderError::Malformed("unknown version 2 command"));
    }
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    if len > MAX_V2_PAYLOAD {
        return Err(HeaderError::TooLong);
    }
    let total = V2_FIXED + len;
    if buf.len() < total {
        return Ok(Step::Need(total - buf.len()));
    }
    let payload = &buf[V2_FIXED..total];
    if command == 0 {
        // LOCAL: the balancer's own connection; addresses are ignored.
        return Ok(Step::Done(Header::Local));
    }
    let short = HeaderError::Malformed("version 2 addresses shorter than their family");
    let header = match buf[13] {
        // AF_UNSPEC: no addresses the receiver can use.
        0x00 => Header::Local,
        // TCP over IPv4: 4 + 4 address octets, 2 + 2 port octets.
        0x11 => {
            let a = payload.get(..12).ok_or(short)?;
            let ip = |i: usize| IpAddr::V4(Ipv4Addr::new(a[i], a[i + 1], a[i + 2], a[i + 3]));
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Header::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        // TCP over IPv6: 16 + 16 address octets, 2 + 2 port octets.
        0x21 => {
            let a = payload.get(..36).ok_or(short)?;
            let ip = |i: usize| {
                let mut o = [0u8; 16];
                o.copy_from_slice(&a[i..i + 16]);
                IpAddr::V6(Ipv6Addr::from(o))
            };
            let port = |i: usize| u16::from_be_bytes([a[i], a[i + 1]]);
            Header::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        // A UNIX stream socket: 108 + 108 octets, no IP address to log.
        0x31 => {
            payload.get(..216).ok_or(short)?;
            Header::Local
        }
        _ => {
            return Err(HeaderError::Malformed(
                "version 2 family or transport other than TCP over IPv4, IPv6 or a UNIX stream",
            ))
        }
    };
    Ok(Step::Done(header))
}

fn parse_v1(buf: &[u8]) -> Result<Step, HeaderError> {
    const PREFIX: &[u8] = b"PROXY ";
    let p = buf.len().min(PREFIX.len());
    if buf[..p] != PREFIX[..p] {
        return Err(HeaderError::Missing);
    }
    let Some(lf) = buf.iter().position(|&b| b == b'\n') else {
        // The line still needs "\n" after a CR, "\r\n" otherwise.
        let need = if buf.ends_with(b"\r") { 1 } else { 2 };
        if buf.len() + need > MAX_V1_LINE {
            return Err(HeaderError::TooLong);
        }
        return Ok(Step::Need(need));
    };
    if lf + 1 != buf.len() || lf == 0 || buf[lf - 1] != b'\r' {
        return Err(HeaderError::Malformed("version 1 line not ended by CRLF"));
    }
    let line = &buf[..lf - 1];
    if !line.iter().all(|&b| (0x20..0x7f).contains(&b)) {
        return Err(HeaderError::Malformed("version 1 line with control octets"));
    }
    // Printable ASCII, so valid UTF-8.
    let line = std::str::from_utf8(line).map_err(|_| HeaderError::Malformed("not ASCII"))?;
    let fields: Vec<&str> = line.split(' ').collect();
    match fields.get(1).copied() {
        // The receiver ignores whatever follows UNKNOWN.
        Some("UNKNOWN") => Ok(Step::Done(Header::Local)),
        Some(proto @ ("TCP4" | "TCP6")) => {
            let [_, _, src, dst, sport, dport] = fields[..] else {
                return Err(HeaderError::Malformed(
                    "version 1 line needs two addresses and two ports, single spaces",
                ));
            };
            let v6 = proto == "TCP6";
            Ok(Step::Done(Header::Proxied {
                source: SocketAddr::new(v1_ip(src, v6)?, v1_port(sport)?),
                destination: SocketAddr::new(v1_ip(dst, v6)?, v1_port(dport)?),
            }))
        }
        _ => Err(HeaderError::Malformed(
            "version 1 protocol other than TCP4, TCP6 or UNKNOWN",
        )),
    }
}

fn v1_ip(s: &str, v6: bool) -> Result<IpAddr, HeaderError> {
    let ip = if v6 {
        s.parse::<Ipv6Addr>().map(IpAddr::V6)
    } else {
        s.parse::<Ipv4Addr>().map(IpAddr::V4)
    };
    ip.map_err(|_| HeaderError::Malformed("version 1 address not of its protocol's family"))
}

fn v1_port(s: &str) -> Result<u16, HeaderError> {
    let bad = HeaderError::Malformed("version 1 port not a decimal number up to 65535");
    let digits = !s.is_empty() && s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits || (s.len() > 1 && s.starts_with('0')) {
        return Err(bad);
    }
    s.parse().map_err(|_| bad)
}

/// Read the header from the start of `stream` within `limit`: exactly its
/// octets, in reads no longer than what [`parse`] says may still belong to
/// it.
pub async fn read_header<R: AsyncRead + Unpin>(
    stream: &mut R,
    limit: Duration,
) -> Result<Header, HeaderError> {
    let read = async {
        let mut buf = Vec::with_capacity(V2_FIXED + MAX_V2_PAYLOAD);
        loop {
            match parse(&buf)? {
                Step::Done(header) => return Ok(header),
                Step::Need(n) => {
                    let start = buf.len();
                    buf.resize(start + n, 0);
                    let got = stream
                        .read(&mut buf[start..])
                        .await
                        .map_err(HeaderError::Io)?;
                    if got == 0 {
                        return Err(HeaderError::Truncated);
                    }
                    buf.truncate(start + got);
                }
            }
        }
    };
    tokio::time::timeout(limit, read)
        .await
        .unwrap_or(Err(HeaderError::Timeout(limit)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2(command: u8, family: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    fn v2_tcp4() -> Vec<u8> {
        let mut p = vec![192, 0, 2, 7, 10, 0, 0, 1];
        p.extend_from_slice(&40001u16.to_be_bytes());
        p.extend_from_slice(&110u16.to_be_bytes());
        // A TLV (PP2_TYPE_NOOP) after the addresses is skipped.
        p.extend_from_slice(&[0x04, 0, 2, 0, 0]);
        v2(1, 0x11, &p)
    }

    fn v2_tcp6() -> Vec<u8> {
        let src: Ipv6Addr = "2001:db8::7".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let mut p = src.octets().to_vec();
        p.extend_from_slice(&dst.octets());
        p.extend_from_slice(&40002u16.to_be_bytes());
        p.extend_from_slice(&995u16.to_be_bytes());
        v2(1, 0x21, &p)
    }

    fn proxied(src: &str, dst: &str) -> Header {
        Header::Proxied {
            source: src.parse().unwrap(),
            destination: dst.parse().unwrap(),
        }
    }

    /// Feed `input` the way `read_header` does, with reads of at most
    /// `chunk` octets (and never more than asked for); also returns how
    /// many octets were consumed.
    fn feed(input: &[u8], chunk: usize) -> (Result<Header, String>, usize) {
        let mut buf = Vec::new();
        loop {
            match parse(&buf) {
                Err(e) => return (Err(e.to_string()), buf.len()),
                Ok(Step::Done(h)) => return (Ok(h), buf.len()),
                Ok(Step::Need(n)) => {
                    assert!(n > 0);
                    let rest = &input[buf.len()..];
                    if rest.is_empty() {
                        return (Err("truncated".into()), buf.len());
                    }
                    let take = n.min(chunk).min(rest.len());
                    buf.extend_from_slice(&rest[..take]);
                }
            }
        }
    }

    /// Every valid header, in reads of every size from 1 octet up: the same
    /// result, and not one octet of the POP3 bytes after it consumed.
    #[test]
    fn valid_headers_in_chunks_of_every_size() {
        let cases: Vec<(Vec<u8>, Header)> = vec![
            (
                b"PROXY TCP4 192.0.2.7 10.0.0.1 40001 110\r\n".to_vec(),
                proxied("192.0.2.7:40001", "10.0.0.1:110"),
            ),
            (
                b"PROXY TCP6 2001:db8::7 2001:db8::1 40002 995\r\n".to_vec(),
                proxied("[2001:db8::7]:40002", "[2001:db8::1]:995"),
            ),
            (b"PROXY UNKNOWN\r\n".to_vec(), Header::Local),
            (
                b"PROXY UNKNOWN ffff:f...f:ffff 65535 65535\r\n".to_vec(),
                Header::Local,
            ),
            (v2_tcp4(), proxied("192.0.2.7:40001", "10.0.0.1:110")),
            (
                v2_tcp6(),
                proxied("[2001:db8::7]:40002", "[2001:db8::1]:995"),
            ),
            (v2(0, 0x00, &[]), Header::Local),
            (v2(0, 0x11, &[1, 2, 3]), Header::Local),
            (v2(1, 0x00, &[]), Header::Local),
            (v2(1, 0x31, &[0u8; 216]), Header::Local),
        ];
        for (header, want) in cases {
            let mut input = header.clone();
            input.extend_from_slice(b"USER alice\r\n");
            for chunk in 1..=input.len() {
                let (got, used) = feed(&input, chunk);
                assert_eq!(got, Ok(want), "{header:?} in chunks of {chunk}");
                assert_eq!(used, header.len(), "{header:?} in chunks of {chunk}");
            }
        }
    }

    #[test]
    fn bad_headers_are_refused_in_chunks_of_every_size() {
        let long = format!("PROXY TCP4 {} 1 2\r\n", "1".repeat(100));
        let mut over = v2(1, 0x11, &[]);
        over[14..16].copy_from_slice(&((MAX_V2_PAYLOAD + 1) as u16).to_be_bytes());
        let mut v3 = v2_tcp4();
        v3[12] = 0x31;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"USER alice\r\n".to_vec(), "does not start"),
            (b"\r\n".to_vec(), "truncated"),
            (b"\r\nUSER alice\r\n".to_vec(), "does not start"),
            (b"PROXY".to_vec(), "truncated"),
            (
                b"PROXYTCP4 1.2.3.4 1.2.3.4 1 2\r\n".to_vec(),
                "does not start",
            ),
            (
                b"PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n".to_vec(),
                "other than TCP4",
            ),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n".to_vec(), "two ports"),
            (b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n".to_vec(), "two ports"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2 \r\n".to_vec(), "two ports"),
            (b"PROXY TCP4 ::1 ::1 1 2\r\n".to_vec(), "family"),
            (b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n".to_vec(), "family"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n".to_vec(), "port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 +1 2\r\n".to_vec(), "port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n".to_vec(), "port"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n".to_vec(), "CRLF"),
            (b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX\r\n".to_vec(), "control"),
            (b"PROXY TCP4 1.2.3.4\t1.2.3.4 1 2\r\n".to_vec(), "control"),
            (b"PROXY TCP4 1.2.3.\xff 1.2.3.4 1 2\r\n".to_vec(), "control"),
            (long.into_bytes(), "too long"),
            (vec![b'P'; 200], "does not start"),
            (
                b"PROXY "
                    .iter()
                    .chain([b'x'; 200].iter())
                    .copied()
                    .collect(),
                "too long",
            ),
            (v2_tcp4()[..20].to_vec(), "truncated"),
            (v2_tcp4()[..15].to_vec(), "truncated"),
            (over, "too long"),
            (v3, "another version"),
            (v2(2, 0x11, &[0u8; 12]), "unknown version 2 command"),
            (v2(1, 0x11, &[0u8; 11]), "shorter"),
            (v2(1, 0x21, &[0u8; 35]), "shorter"),
            (v2(1, 0x12, &[0u8; 12]), "family or transport"),
            (v2(1, 0x41, &[0u8; 12]), "family or transport"),
        ];
        for (input, want) in cases {
            for chunk in 1..=input.len() {
                let (got, used) = feed(&input, chunk);
                let e = got.expect_err(&format!("{input:?} accepted"));
                assert!(e.contains(want), "{input:?} in chunks of {chunk}: {e}");
                assert!(used <= V2_FIXED + MAX_V2_PAYLOAD);
            }
        }
    }

    #[tokio::test]
    async fn read_header_reads_exactly_the_header() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let mut input = b"PROXY TCP4 192.0.2.7 10.0.0.1 40001 110\r\n".to_vec();
        input.extend_from_slice(b"CAPA\r\n");
        tokio::io::AsyncWriteExt::write_all(&mut a, &input)
            .await
            .unwrap();
        drop(a);
        let h = read_header(&mut b, Duration::from_secs(5)).await.unwrap();
        assert_eq!(h, proxied("192.0.2.7:40001", "10.0.0.1:110"));
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        assert_eq!(h.client(peer), "192.0.2.7:40001".parse().unwrap());
        assert_eq!(Header::Local.client(peer), peer);
        let mut rest = Vec::new();
        b.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, b"CAPA\r\n");
    }

    #[tokio::test]
    async fn a_silent_peer_times_out_and_a_closed_one_is_truncated() {
        let (_a, mut b) = tokio::io::duplex(64);
        let e = read_header(&mut b, Duration::from_millis(20))
            .await
            .unwrap_err();
        assert!(matches!(e, HeaderError::Timeout(_)), "{e}");
        let (a, mut b) = tokio::io::duplex(64);
        drop(a);
        let e = read_header(&mut b, Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(e, HeaderError::Truncated), "{e}");
    }
}
