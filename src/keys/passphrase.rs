//! Where a key passphrase comes from (a file or an environment variable,
//! never the command line), read into a [`SecretString`] that is zeroed on
//! drop.

use std::io::Read;
use std::path::{Path, PathBuf};

use secrecy::SecretString;
use zeroize::Zeroizing;

use super::KeyError;

/// Where a key passphrase comes from (never the command line).
#[derive(Debug, Clone, Default)]
pub struct PassphraseSource {
    /// A file whose first line is the passphrase.
    pub file: Option<PathBuf>,
    /// An environment variable holding the passphrase.
    pub env: Option<String>,
}

/// Largest passphrase file read (its first line is the passphrase).
pub const MAX_PASSPHRASE_FILE: usize = 64 * 1024;

impl PassphraseSource {
    /// The passphrase, if one is configured: the first line of the file
    /// (CR LF or LF ends it), else the environment variable. Every copy made
    /// on the way is zeroed; the caller drops the result as soon as the keys
    /// are unlocked.
    pub fn read(&self) -> Result<Option<SecretString>, KeyError> {
        if let Some(f) = &self.file {
            return read_passphrase_file(f).map(Some);
        }
        if let Some(var) = &self.env {
            return match std::env::var(var) {
                Ok(v) => {
                    let v = Zeroizing::new(v);
                    Ok(Some(secret_string(&v)))
                }
                Err(_) => Err(KeyError::MissingEnv(var.clone())),
            };
        }
        Ok(None)
    }
}

/// A [`SecretString`] in an allocation of exactly the text's size (going
/// through `String` could leave a copy behind when it shrinks).
fn secret_string(text: &str) -> SecretString {
    SecretString::new(Box::<str>::from(text))
}

fn read_passphrase_file(path: &Path) -> Result<SecretString, KeyError> {
    let io = |source: std::io::Error| KeyError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    // One buffer of fixed size that never grows, zeroed when dropped.
    let mut buf = Zeroizing::new(vec![0u8; MAX_PASSPHRASE_FILE]);
    let mut filled = 0;
    while filled < buf.len() && !buf[..filled].contains(&b'\n') {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    let data = &buf[..filled];
    let line = match data.iter().position(|&b| b == b'\n') {
        Some(i) => &data[..i],
        None if filled == buf.len() => {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the passphrase line is longer than {MAX_PASSPHRASE_FILE} octets"),
            )))
        }
        None => data,
    };
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = std::str::from_utf8(line).map_err(|_| {
        io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the passphrase is not UTF-8",
        ))
    })?;
    Ok(secret_string(text))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::testutil::put;
    use secrecy::ExposeSecret;

    #[test]
    fn passphrase_from_file_is_the_first_line_and_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pp");
        for (content, want) in [
            (&b"correct horse\r\nsecond line\n"[..], "correct horse"),
            (b"correct horse\n", "correct horse"),
            (b"correct horse", "correct horse"),
            (b"", ""),
        ] {
            put(&f, content, 0o600);
            let src = PassphraseSource {
                file: Some(f.clone()),
                env: None,
            };
            let got = src.read().unwrap().unwrap();
            assert_eq!(got.expose_secret(), want);
            let shown = format!("{got:?} {:?} {src:?}", Some(&got));
            assert!(shown.contains("[REDACTED]"), "{shown}");
            assert!(!shown.contains("horse"), "{shown}");
        }
        // Too long a line, or not UTF-8: an error that does not quote it.
        put(&f, &vec![b'h'; MAX_PASSPHRASE_FILE + 10], 0o600);
        let src = PassphraseSource {
            file: Some(f.clone()),
            env: None,
        };
        let e = src.read().unwrap_err().to_string();
        assert!(e.contains("longer than") && !e.contains("hhhh"), "{e}");
        put(&f, b"horse\xff\n", 0o600);
        let e = src.read().unwrap_err().to_string();
        assert!(e.contains("not UTF-8") && !e.contains("horse"), "{e}");
        assert!(PassphraseSource::default().read().unwrap().is_none());
    }

    #[test]
    fn passphrase_from_the_environment() {
        let var = "POPCRYPT_UNIT_TEST_PASSPHRASE_7f3a";
        std::env::set_var(var, "battery staple");
        let src = PassphraseSource {
            file: None,
            env: Some(var.into()),
        };
        let got = src.read().unwrap().unwrap();
        assert_eq!(got.expose_secret(), "battery staple");
        assert!(!format!("{got:?}").contains("staple"));
        std::env::remove_var(var);
        let e = src.read().unwrap_err().to_string();
        assert!(e.contains(var), "{e}");
    }
}
