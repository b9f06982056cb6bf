//! Client commands (RFC 1939, RFC 1460 LAST, RFC 2449 CAPA, RFC 2595 STLS,
//! RFC 5034 AUTH), parsed from one line without its terminator.

use std::fmt;

use secrecy::{ExposeSecret, SecretSlice};
use zeroize::Zeroizing;

/// Longest accepted single argument (RFC 2449 allows 40; real clients stay
/// far below this). PASS and AUTH initial responses are exempt.
pub const MAX_ARG: usize = 255;

/// Bytes that must never be logged (passwords, SASL payloads, APOP
/// digests): `Debug` prints `[REDACTED]`, and the bytes are zeroed when the
/// value is dropped.
#[derive(Clone)]
pub struct Secret(SecretSlice<u8>);

impl Secret {
    /// Copy `bytes` into an allocation of exactly their size (no spare
    /// capacity, so no reallocation ever leaves a copy behind).
    pub fn new(bytes: &[u8]) -> Secret {
        Secret(SecretSlice::from(Box::<[u8]>::from(bytes)))
    }

    /// The secret bytes, for the upstream write only.
    pub fn expose(&self) -> &[u8] {
        self.0.expose_secret()
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

impl Eq for Secret {}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

/// One parsed client command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(Secret),
    Apop {
        name: String,
        /// MD5 over the greeting's timestamp and the shared secret: replayable
        /// against that greeting, so treated as a secret.
        digest: Secret,
    },
    /// `AUTH` (list mechanisms) or `AUTH mech [initial-response]`.
    Auth {
        mechanism: Option<String>,
        initial: Option<Secret>,
    },
    Capa,
    Stls,
    Stat,
    List(Option<u32>),
    Retr(u32),
    Dele(u32),
    Noop,
    Rset,
    Top(u32, u32),
    Uidl(Option<u32>),
    Last,
    Quit,
}

/// Why a client line was not accepted as a command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// An empty line.
    #[error("empty command")]
    Empty,
    /// A keyword popcrypt does not relay.
    #[error("unknown command")]
    Unknown,
    /// The keyword is known but its arguments are wrong.
    #[error("{0}")]
    BadArguments(&'static str),
}

impl Command {
    /// The keyword, for logs (never includes arguments).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Apop { .. } => "APOP",
            Command::Auth { .. } => "AUTH",
            Command::Capa => "CAPA",
            Command::Stls => "STLS",
            Command::Stat => "STAT",
            Command::List(_) => "LIST",
            Command::Retr(_) => "RETR",
            Command::Dele(_) => "DELE",
            Command::Noop => "NOOP",
            Command::Rset => "RSET",
            Command::Top(..) => "TOP",
            Command::Uidl(_) => "UIDL",
            Command::Last => "LAST",
            Command::Quit => "QUIT",
        }
    }

    /// Parse one line (terminator already removed).
    pub fn parse(line: &[u8]) -> Result<Command, ParseError> {
        let (keyword, rest) = match line.iter().position(|&b| b == b' ') {
            Some(i) => (&line[..i], Some(&line[i + 1..])),
            None => (line, None),
        };
        if keyword.is_empty() {
            return Err(ParseError::Empty);
        }
        if keyword.len() > 8 {
            return Err(ParseError::Unknown);
        }
        let kw = keyword.to_ascii_uppercase();
        // PASS takes the rest of the line verbatim: passwords may hold spaces.
        if kw == b"PASS" {
            return match rest {
                Some(r) => Ok(Command::Pass(Secret::new(r))),
                None => Err(ParseError::BadArguments("PASS needs a password")),
            };
        }
        let args: Vec<&[u8]> = match rest {
            Some(r) => r.split(|&b| b == b' ').filter(|a| !a.is_empty()).collect(),
            None => Vec::new(),
        };
        if kw != b"AUTH" && args.iter().any(|a| a.len() > MAX_ARG) {
            return Err(ParseError::BadArguments("argument too long"));
        }
        let n = args.len();
        match (kw.as_slice(), n) {
            (b"USER", 1) => Ok(Command::User(text(args[0])?)),
            (b"USER", _) => Err(ParseError::BadArguments("USER needs one name")),
            (b"APOP", 2) => Ok(Command::Apop {
                name: text(args[0])?,
                digest: Secret::new(checked_text(args[1])?),
            }),
            (b"APOP", _) => Err(ParseError::BadArguments("APOP needs a name and a digest")),
            (b"AUTH", 0) => Ok(Command::Auth {
                mechanism: None,
                initial: None,
            }),
            (b"AUTH", 1 | 2) => {
                if args[0].len() > 40 {
                    return Err(ParseError::BadArguments("SASL mechanism name too long"));
                }
                Ok(Command::Auth {
                    mechanism: Some(text(args[0])?.to_ascii_uppercase()),
                    initial: args.get(1).map(|a| Secret::new(a)),
                })
            }
            (b"AUTH", _) => Err(ParseError::BadArguments(
                "AUTH takes a mechanism and an optional initial response",
            )),
            (b"CAPA", 0) => Ok(Command::Capa),
            (b"STLS", 0) => Ok(Command::Stls),
            (b"STAT", 0) => Ok(Command::Stat),
            (b"NOOP", 0) => Ok(Command::Noop),
            (b"RSET", 0) => Ok(Command::Rset),
            (b"LAST", 0) => Ok(Command::Last),
            (b"QUIT", 0) => Ok(Command::Quit),
            (b"LIST", 0) => Ok(Command::List(None)),
            (b"LIST", 1) => Ok(Command::List(Some(msg_number(args[0])?))),
            (b"UIDL", 0) => Ok(Command::Uidl(None)),
            (b"UIDL", 1) => Ok(Command::Uidl(Some(msg_number(args[0])?))),
            (b"RETR", 1) => Ok(Command::Retr(msg_number(args[0])?)),
            (b"DELE", 1) => Ok(Command::Dele(msg_number(args[0])?)),
            (b"TOP", 2) => Ok(Command::Top(msg_number(args[0])?, number(args[1])?)),
            (b"CAPA" | b"STLS" | b"STAT" | b"NOOP" | b"RSET" | b"LAST" | b"QUIT", _) => {
                Err(ParseError::BadArguments("this command takes no arguments"))
            }
            (b"LIST" | b"UIDL", _) => {
                Err(ParseError::BadArguments("takes at most one message number"))
            }
            (b"RETR" | b"DELE", _) => Err(ParseError::BadArguments("needs one message number")),
            (b"TOP", _) => Err(ParseError::BadArguments(
                "TOP needs a message number and a line count",
            )),
            _ => Err(ParseError::Unknown),
        }
    }

    /// An upper bound of the length of [`Command::to_wire`], so that the
    /// wire form is written into one allocation that never grows.
    fn wire_capacity(&self) -> usize {
        // The verb (at most 4 octets) and CRLF.
        8 + match self {
            Command::User(u) => u.len() + 1,
            Command::Pass(p) => p.expose().len() + 1,
            Command::Apop { name, digest } => name.len() + digest.expose().len() + 2,
            Command::Auth { mechanism, initial } => {
                2 + mechanism.as_ref().map_or(0, String::len)
                    + initial.as_ref().map_or(0, |i| i.expose().len())
            }
            // Two u32 arguments at most.
            _ => 22,
        }
    }

    /// The canonical wire form sent upstream, CRLF included. It may hold a
    /// password, so it is zeroed when dropped.
    pub fn to_wire(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(self.wire_capacity()));
        out.extend_from_slice(self.verb().as_bytes());
        match self {
            Command::User(u) => push_arg(&mut out, u.as_bytes()),
            Command::Pass(p) => push_arg(&mut out, p.expose()),
            Command::Apop { name, digest } => {
                push_arg(&mut out, name.as_bytes());
                push_arg(&mut out, digest.expose());
            }
            Command::Auth { mechanism, initial } => {
                if let Some(m) = mechanism {
                    push_arg(&mut out, m.as_bytes());
                }
                if let Some(i) = initial {
                    push_arg(&mut out, i.expose());
                }
            }
            Command::List(Some(n))
            | Command::Uidl(Some(n))
            | Command::Retr(n)
            | Command::Dele(n) => push_arg(&mut out, n.to_string().as_bytes()),
            Command::Top(n, l) => {
                push_arg(&mut out, n.to_string().as_bytes());
                push_arg(&mut out, l.to_string().as_bytes());
            }
            _ => {}
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// Whether a positive answer to this command is a multi-line response.
    pub fn multiline_ok(&self) -> bool {
        matches!(
            self,
            Command::Capa
                | Command::List(None)
                | Command::Uidl(None)
                | Command::Retr(_)
                | Command::Top(..)
                | Command::Auth {
                    mechanism: None,
                    ..
                }
        )
    }
}

fn push_arg(out: &mut Vec<u8>, arg: &[u8]) {
    out.push(b' ');
    out.extend_from_slice(arg);
}

fn text(arg: &[u8]) -> Result<String, ParseError> {
    checked_text(arg).map(|t| String::from_utf8_lossy(t).into_owned())
}

/// `arg` if it is UTF-8 without control characters (checked in place, no copy).
fn checked_text(arg: &[u8]) -> Result<&[u8], ParseError> {
    if arg.iter().any(|&b| b < 0x21 || b == 0x7f) {
        return Err(ParseError::BadArguments("control characters in argument"));
    }
    std::str::from_utf8(arg).map_err(|_| ParseError::BadArguments("argument is not UTF-8"))?;
    Ok(arg)
}

fn number(arg: &[u8]) -> Result<u32, ParseError> {
    if arg.is_empty() || !arg.iter().all(u8::is_ascii_digit) {
        return Err(ParseError::BadArguments("not a number"));
    }
    let mut n: u32 = 0;
    for &d in arg {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u32::from(d - b'0')))
            .ok_or(ParseError::BadArguments("number too large"))?;
    }
    Ok(n)
}

fn msg_number(arg: &[u8]) -> Result<u32, ParseError> {
    match number(arg)? {
        0 => Err(ParseError::BadArguments("message numbers start at 1")),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_command() {
        let cases: &[(&[u8], Command)] = &[
            (b"USER alice", Command::User("alice".into())),
            (
                b"pass s3cret with space",
                Command::Pass(Secret::new(b"s3cret with space")),
            ),
            (
                b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
                Command::Apop {
                    name: "mrose".into(),
                    digest: Secret::new(b"c4c9334bac560ecc979e58001b3e22fb"),
                },
            ),
            (
                b"AUTH",
                Command::Auth {
                    mechanism: None,
                    initial: None,
                },
            ),
            (
                b"AUTH plain AGEAYg==",
                Command::Auth {
                    mechanism: Some("PLAIN".into()),
                    initial: Some(Secret::new(b"AGEAYg==")),
                },
            ),
            (b"CAPA", Command::Capa),
            (b"STLS", Command::Stls),
            (b"STAT", Command::Stat),
            (b"LIST", Command::List(None)),
            (b"LIST 2", Command::List(Some(2))),
            (b"RETR 1", Command::Retr(1)),
            (b"DELE 4294967295", Command::Dele(u32::MAX)),
            (b"NOOP", Command::Noop),
            (b"RSET", Command::Rset),
            (b"TOP 1 0", Command::Top(1, 0)),
            (b"UIDL", Command::Uidl(None)),
            (b"uidl 3", Command::Uidl(Some(3))),
            (b"LAST", Command::Last),
            (b"QUIT", Command::Quit),
        ];
        for (line, cmd) in cases {
            assert_eq!(
                &Command::parse(line).unwrap(),
                cmd,
                "{}",
                String::from_utf8_lossy(line)
            );
        }
    }

    #[test]
    fn rejects_bad_input() {
        assert_eq!(Command::parse(b""), Err(ParseError::Empty));
        assert_eq!(Command::parse(b"XTND XMIT"), Err(ParseError::Unknown));
        assert_eq!(
            Command::parse(b"AVERYLONGKEYWORD"),
            Err(ParseError::Unknown)
        );
        assert!(Command::parse(b"RETR").is_err());
        assert!(Command::parse(b"RETR 0").is_err());
        assert!(Command::parse(b"RETR -1").is_err());
        assert!(Command::parse(b"RETR 4294967296").is_err());
        assert!(Command::parse(b"RETR 1x").is_err());
        assert!(Command::parse(b"TOP 1").is_err());
        assert!(Command::parse(b"STAT 1").is_err());
        assert!(Command::parse(b"PASS").is_err());
        assert!(Command::parse(b"USER a\x01b").is_err());
        let long = [b"USER ".as_slice(), &[b'a'; 300]].concat();
        assert!(Command::parse(&long).is_err());
        assert!(Command::parse(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn wire_form_is_canonical_and_secrets_are_redacted_in_debug() {
        assert_eq!(
            *Command::parse(b"retr   7").unwrap().to_wire(),
            b"RETR 7\r\n"
        );
        assert_eq!(
            *Command::parse(b"top 7 010").unwrap().to_wire(),
            b"TOP 7 10\r\n"
        );
        let pass = Command::parse(b"PASS hunter2 x").unwrap();
        assert_eq!(*pass.to_wire(), b"PASS hunter2 x\r\n");
        assert_eq!(format!("{pass:?}"), "Pass(Secret([REDACTED]))");
        let auth = Command::parse(b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=").unwrap();
        assert!(!format!("{auth:?}").contains("AGFsaWNl"));
        assert!(format!("{auth:?}").contains("[REDACTED]"));
        assert_eq!(*auth.to_wire(), b"AUTH PLAIN AGFsaWNlAGh1bnRlcjI=\r\n");
        let apop = Command::parse(b"APOP mrose c4c9334bac560ecc979e58001b3e22fb").unwrap();
        let shown = format!("{apop:?} {:#?}", apop.clone());
        assert!(
            shown.contains("mrose") && shown.contains("[REDACTED]"),
            "{shown}"
        );
        assert!(!shown.contains("c4c9334b"), "{shown}");
        assert_eq!(
            *apop.to_wire(),
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
        );
    }

    #[test]
    fn wire_form_never_outgrows_its_first_allocation() {
        let long_pass = [b"PASS ".as_slice(), &[b'p'; 8000]].concat();
        let long_auth = [b"AUTH XOAUTH2 ".as_slice(), &[b'A'; 8000]].concat();
        for line in [
            b"USER alice".as_slice(),
            b"PASS a b c",
            &long_pass,
            b"APOP mrose c4c9334bac560ecc979e58001b3e22fb",
            b"AUTH",
            b"AUTH PLAIN",
            &long_auth,
            b"TOP 4294967295 4294967295",
            b"LIST 4294967295",
            b"QUIT",
        ] {
            let cmd = Command::parse(line).unwrap();
            let cap = cmd.wire_capacity();
            let wire = cmd.to_wire();
            assert!(wire.len() <= cap, "{}", String::from_utf8_lossy(line));
            // One allocation of exactly the bound (`Vec::with_capacity`
            // gives exactly what it is asked for): it never grew.
            assert_eq!(wire.capacity(), cap);
        }
    }
}
