//! What popcrypt found in one message, as types. `Display` gives exactly the
//! header values (`X-Popcrypt-Encryption`, `X-Popcrypt-Signature`); nothing
//! else formats or parses a verdict string. Policy and logs match on these.
//!
//! About 540 lines of code and 100 of tests: the whole header grammar stays
//! in one file on purpose, so that every value a reader may see is written
//! in one place.

use std::fmt;

use super::defuse;

/// The two end-to-end schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// OpenPGP (RFC 9580, PGP/MIME RFC 3156, inline).
    OpenPgp,
    /// S/MIME (RFC 8551, CMS).
    Smime,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::OpenPgp => "openpgp",
            Scheme::Smime => "smime",
        })
    }
}

// --- encryption ------------------------------------------------------------

/// `X-Popcrypt-Encryption`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Encryption {
    /// Not encrypted (`none`), possibly with findings such as an unwrapped
    /// opaque signature.
    #[default]
    None,
    /// Not encrypted at the top, with findings inside (`none; …`).
    Plain(Details),
    /// Decrypted.
    Decrypted {
        /// The decryption that names the message.
        decryption: Decryption,
        /// What else was found and done.
        details: Details,
    },
    /// Not decrypted: the original is delivered. `scheme` is `None` when
    /// the failure is not one scheme's (`none; failed (…)`).
    Failed {
        /// The scheme that failed, if one did.
        scheme: Option<Scheme>,
        /// Why.
        reason: Failure,
    },
    /// Passed through without looking (`none; not-processed (…)`).
    NotProcessed(NotProcessed),
}

/// The decryption that names a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decryption {
    /// The scheme.
    pub scheme: Scheme,
    /// S/MIME content-encryption algorithm (`algorithm=` parameter).
    pub algorithm: Option<Algorithm>,
}

/// A content-encryption algorithm as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Algorithm {
    /// Its name, e.g. `aes-256-gcm`.
    pub name: String,
    /// A legacy algorithm (shown as `(legacy)`).
    pub legacy: bool,
}

/// The parameters after the first tokens of `X-Popcrypt-Encryption`, in
/// the order they are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Details {
    /// Decrypted without integrity protection and no signature inside
    /// vouches for it (`integrity=none`).
    pub no_integrity: bool,
    /// HTML changed so that it cannot exfiltrate (EFAIL).
    pub html: Option<defuse::Change>,
    /// Layers found inside, in the order met.
    pub layers: Vec<InnerLayer>,
    /// Protected header fields applied (`protected-headers=`).
    pub protected_headers: Vec<String>,
}

/// A layer inside the message's own decryption or signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InnerLayer {
    /// Opaque S/MIME signed-data was unwrapped.
    Unwrapped,
    /// A further S/MIME decryption.
    Decrypted(Algorithm),
    /// A further S/MIME layer that could not be decrypted.
    Failed(String),
}

/// Why a message was not decrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The scheme's library refused (no key, integrity, size, …): its
    /// reason as the scheme module words it.
    Library(String),
    /// An internal failure, not a verdict on the message: a crypto
    /// library's host failed (allocation, the system), or popcrypt's own
    /// transform could not run. The text says which.
    Internal(String),
    /// A panic caught while processing: the original is delivered.
    Panicked,
    /// The message's own structure reads more than one way.
    Ambiguous(String),
    /// The decrypted entity's structure reads more than one way.
    AmbiguousInside(String),
    /// A multipart/encrypted whose parts are not the two of RFC 3156.
    MalformedPgpMime,
    /// The multipart/encrypted could not be split strictly.
    Split(String),
    /// The encrypted part holds no encrypted data.
    NoEncryptedData,
    /// An armored block with text outside it.
    PartlyEncrypted,
    /// A CMS content type popcrypt does not process.
    UnsupportedCms(String),
}

/// Why a message was passed through without being looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotProcessed {
    /// More Content-Type fields than can be read safely.
    TooManyContentTypes(usize),
    /// The relay streamed it (too large, or a limit): its note.
    Streamed(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Library(r) | Failure::Internal(r) | Failure::Split(r) => f.write_str(r),
            Failure::Panicked => {
                f.write_str("internal error while processing; the original message is delivered")
            }
            Failure::Ambiguous(why) => write!(f, "{why}; not decrypted"),
            Failure::AmbiguousInside(why) => {
                write!(f, "{why} in the decrypted message; not delivered")
            }
            Failure::MalformedPgpMime => f.write_str(
                "malformed PGP/MIME structure: expected application/pgp-encrypted and \
                 application/octet-stream parts",
            ),
            Failure::NoEncryptedData => f.write_str("the encrypted part holds no encrypted data"),
            Failure::PartlyEncrypted => f.write_str(
                "partly encrypted: the message holds text outside the encrypted block; not \
                 decrypted, so the plaintext never joins text the sender controls",
            ),
            Failure::UnsupportedCms(t) => write!(f, "unsupported CMS content: {t}"),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if self.legacy {
            f.write_str(" (legacy)")?;
        }
        Ok(())
    }
}

impl fmt::Display for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.no_integrity {
            f.write_str("; integrity=none")?;
        }
        if let Some(change) = self.html {
            f.write_str(change.parameter())?;
        }
        for layer in &self.layers {
            match layer {
                InnerLayer::Unwrapped => f.write_str("; signed-data unwrapped")?,
                InnerLayer::Decrypted(a) => write!(f, "; inner smime decrypted ({})", a.name)?,
                InnerLayer::Failed(e) => write!(f, "; inner smime failed ({e})")?,
            }
        }
        if !self.protected_headers.is_empty() {
            write!(
                f,
                "; protected-headers={}",
                self.protected_headers.join(",")
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for Encryption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encryption::None => f.write_str("none"),
            Encryption::Plain(d) => write!(f, "none{d}"),
            Encryption::Decrypted {
                decryption,
                details,
            } => {
                write!(f, "{}; decrypted", decryption.scheme)?;
                if let Some(a) = &decryption.algorithm {
                    write!(f, "; algorithm={a}")?;
                }
                write!(f, "{details}")
            }
            Encryption::Failed { scheme, reason } => match scheme {
                Some(s) => write!(f, "{s}; failed ({reason})"),
                None => write!(f, "none; failed ({reason})"),
            },
            Encryption::NotProcessed(n) => match n {
                NotProcessed::TooManyContentTypes(max) => write!(
                    f,
                    "none; not-processed (more than {max} Content-Type fields: MIME structure \
                     too deep or too large to read safely)"
                ),
                NotProcessed::Streamed(note) => write!(f, "none; not-processed ({note})"),
            },
        }
    }
}

impl Encryption {
    /// Whether the message was decrypted.
    pub fn is_decrypted(&self) -> bool {
        matches!(self, Encryption::Decrypted { .. })
    }

    /// The first two tokens (`openpgp; decrypted`, `none`, …): what the
    /// logs record, never the details.
    pub fn summary(&self) -> String {
        match self {
            Encryption::None => "none".into(),
            Encryption::Plain(d) => match (d.layers.first(), d.protected_headers.is_empty()) {
                (Some(InnerLayer::Unwrapped), _) => "none; signed-data unwrapped".into(),
                (Some(InnerLayer::Decrypted(_)), _) => "none; inner smime decrypted".into(),
                (Some(InnerLayer::Failed(_)), _) => "none; inner smime failed".into(),
                (None, false) => {
                    format!("none; protected-headers={}", d.protected_headers.join(","))
                }
                (None, true) => "none".into(),
            },
            Encryption::Decrypted { decryption, .. } => format!("{}; decrypted", decryption.scheme),
            Encryption::Failed {
                scheme: Some(s), ..
            } => format!("{s}; failed"),
            Encryption::Failed { scheme: None, .. } => "none; failed".into(),
            Encryption::NotProcessed(_) => "none; not-processed".into(),
        }
    }
}

// --- signature -------------------------------------------------------------

/// `X-Popcrypt-Signature`: the verdict on what the client will read, and
/// the verdict on a signature around the ciphertext, if any.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Signature {
    /// The verdict that judges the message.
    pub verdict: Verdict,
    /// A signature over the ciphertext: reported, never the verdict.
    pub outer: Option<OuterSignature>,
}

/// A signature over a ciphertext (`outer=`, `outer-signer=`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OuterSignature {
    /// Its verdict word.
    pub word: Word,
    /// Who made it, when it is good.
    pub signer: Option<String>,
}

/// The verdict on a message's signatures.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Verdict {
    /// No signature.
    #[default]
    None,
    /// Valid, by a trusted signer who is the sender the client shows.
    Good {
        /// The scheme.
        scheme: Scheme,
        /// Fingerprint (OpenPGP) or certificate address (S/MIME).
        signer: String,
    },
    /// Does not verify, or cannot be read.
    Bad {
        /// The scheme.
        scheme: Scheme,
        /// Why.
        reason: BadReason,
    },
    /// Valid, but by nobody popcrypt trusts or knows.
    UnknownSigner {
        /// The scheme.
        scheme: Scheme,
        /// Each signature's signer as known (`issuer=…`, `signer=…`).
        who: Vec<Unknown>,
    },
    /// Valid, but the signer is not the sender the client shows.
    FromMismatch {
        /// The scheme.
        scheme: Scheme,
        /// The signer's label.
        signer: String,
        /// How the sender differs.
        mismatch: Mismatch,
    },
    /// Refused by policy (weak hash, expired or revoked key, …).
    Rejected {
        /// The scheme.
        scheme: Scheme,
        /// The policy's reason.
        reason: String,
    },
    /// The signature covers only part of the message: never good.
    Partial {
        /// The scheme.
        scheme: Scheme,
        /// The verdict on the signed part alone.
        signed_part: Box<Verdict>,
    },
    /// A library failed internally while verifying: no verdict on the
    /// signature (`failed (internal error …)`), never `bad`.
    Internal {
        /// The scheme.
        scheme: Scheme,
        /// The library's failure.
        reason: String,
    },
}

/// Whose unknown signature it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unknown {
    /// OpenPGP issuer fingerprints or key IDs.
    Issuers(Vec<String>),
    /// An S/MIME signer as its identifier reads.
    Signer(String),
}

/// How a good signer differs from the sender the client shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mismatch {
    /// The shown sender is unclear (display name, group, several
    /// addresses, …): `from=<shown> (<why>)`.
    Unclear {
        /// What the client shows.
        shown: String,
        /// Why it is unclear.
        why: String,
    },
    /// The signer's addresses do not include From.
    Addresses {
        /// The signer's addresses.
        signer_emails: Vec<String>,
        /// The From address.
        from: String,
    },
}

/// Why a signature is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadReason {
    /// The scheme module's reason (tampered, unreadable, …).
    Library(String),
    /// The multipart/signed does not have the two parts of its scheme.
    Malformed(Scheme),
    /// A multipart/signed inside a decryption is malformed.
    MalformedInside,
    /// The structure reads more than one way.
    Ambiguous(String),
}

impl fmt::Display for BadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadReason::Library(r) | BadReason::Ambiguous(r) => f.write_str(r),
            BadReason::Malformed(s) => write!(
                f,
                "malformed multipart/signed: expected the signed part and an {} part",
                match s {
                    Scheme::OpenPgp => "application/pgp-signature",
                    Scheme::Smime => "application/pkcs7-signature",
                }
            ),
            BadReason::MalformedInside => {
                f.write_str("malformed multipart/signed inside the encryption")
            }
        }
    }
}

/// The verdict word: the second token of the header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Word {
    /// `good`
    Good,
    /// `bad`
    Bad,
    /// `unknown-signer`
    UnknownSigner,
    /// `from-mismatch`
    FromMismatch,
    /// `rejected`
    Rejected,
    /// `partial`
    Partial,
    /// `failed` (internal error)
    Failed,
}

impl fmt::Display for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Word::Good => "good",
            Word::Bad => "bad",
            Word::UnknownSigner => "unknown-signer",
            Word::FromMismatch => "from-mismatch",
            Word::Rejected => "rejected",
            Word::Partial => "partial",
            Word::Failed => "failed",
        })
    }
}

impl Verdict {
    /// The scheme and verdict word; `None` for no signature.
    pub fn word(&self) -> Option<(Scheme, Word)> {
        Some(match self {
            Verdict::None => return None,
            Verdict::Good { scheme, .. } => (*scheme, Word::Good),
            Verdict::Bad { scheme, .. } => (*scheme, Word::Bad),
            Verdict::UnknownSigner { scheme, .. } => (*scheme, Word::UnknownSigner),
            Verdict::FromMismatch { scheme, .. } => (*scheme, Word::FromMismatch),
            Verdict::Rejected { scheme, .. } => (*scheme, Word::Rejected),
            Verdict::Partial { scheme, .. } => (*scheme, Word::Partial),
            Verdict::Internal { scheme, .. } => (*scheme, Word::Failed),
        })
    }

    /// The value without the `<scheme>; ` prefix.
    fn fmt_detail(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::None => f.write_str("none"),
            Verdict::Good { signer, .. } => write!(f, "good; signer={signer}"),
            Verdict::Bad { reason, .. } => write!(f, "bad ({reason})"),
            Verdict::UnknownSigner { who, .. } => {
                f.write_str("unknown-signer; ")?;
                for (i, u) in who.iter().enumerate() {
                    if i > 0 {
                        f.write_str("; ")?;
                    }
                    match u {
                        Unknown::Issuers(ids) => write!(f, "issuer={}", ids.join("/"))?,
                        Unknown::Signer(s) => write!(f, "signer={s}")?,
                    }
                }
                Ok(())
            }
            Verdict::FromMismatch {
                signer, mismatch, ..
            } => match mismatch {
                Mismatch::Unclear { shown, why } => {
                    write!(f, "from-mismatch; signer={signer}; from={shown} ({why})")
                }
                Mismatch::Addresses {
                    signer_emails,
                    from,
                } => write!(
                    f,
                    "from-mismatch; signer={signer}; signer-emails={}; from={from}",
                    signer_emails.join(",")
                ),
            },
            Verdict::Rejected { reason, .. } => write!(f, "rejected (policy: {reason})"),
            Verdict::Partial { signed_part, .. } => {
                f.write_str(
                    "partial (text outside the signed block is not covered); signed-part=",
                )?;
                signed_part.fmt_detail(f)
            }
            Verdict::Internal { reason, .. } => write!(f, "failed ({reason})"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((scheme, _)) = self.word() {
            write!(f, "{scheme}; ")?;
        }
        self.fmt_detail(f)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.verdict)?;
        if let Some(o) = &self.outer {
            write!(f, "; outer={}", o.word)?;
            if let Some(id) = &o.signer {
                write!(f, "; outer-signer={id}")?;
            }
        }
        Ok(())
    }
}

impl Signature {
    /// A signature verdict without an outer signature.
    pub fn of(verdict: Verdict) -> Signature {
        Signature {
            verdict,
            outer: None,
        }
    }

    /// The first two tokens (`openpgp; good`, `none`, `none; outer=good`,
    /// …) for the logs.
    pub fn summary(&self) -> String {
        match (self.verdict.word(), &self.outer) {
            (Some((scheme, word)), _) => format!("{scheme}; {word}"),
            (None, Some(o)) => format!("none; outer={}", o.word),
            (None, None) => "none".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_values() {
        let alg = Algorithm {
            name: "des-ede3-cbc".into(),
            legacy: true,
        };
        let e = Encryption::Decrypted {
            decryption: Decryption {
                scheme: Scheme::Smime,
                algorithm: Some(alg.clone()),
            },
            details: Details {
                no_integrity: true,
                html: Some(defuse::Change::Sanitized),
                layers: vec![InnerLayer::Unwrapped, InnerLayer::Decrypted(alg)],
                protected_headers: vec!["subject".into(), "from".into()],
            },
        };
        assert_eq!(
            e.to_string(),
            "smime; decrypted; algorithm=des-ede3-cbc (legacy); integrity=none; html=sanitized; \
             signed-data unwrapped; inner smime decrypted (des-ede3-cbc); \
             protected-headers=subject,from"
        );
        assert_eq!(e.summary(), "smime; decrypted");
        let f = Encryption::Failed {
            scheme: None,
            reason: Failure::Panicked,
        };
        assert!(f.to_string().starts_with("none; failed (internal error"));
        assert_eq!(
            Encryption::Plain(Details {
                layers: vec![InnerLayer::Unwrapped],
                ..Details::default()
            })
            .to_string(),
            "none; signed-data unwrapped"
        );
        // The logs: the first two tokens of the header value, no reasons.
        let plain = Encryption::Plain(Details {
            layers: vec![InnerLayer::Failed("not for us (x)".into())],
            protected_headers: vec!["subject".into()],
            ..Details::default()
        });
        assert_eq!(plain.summary(), "none; inner smime failed");
        let plain = Encryption::Plain(Details {
            protected_headers: vec!["subject".into(), "from".into()],
            ..Details::default()
        });
        assert_eq!(plain.summary(), "none; protected-headers=subject,from");
    }

    #[test]
    fn signature_values() {
        let good = Verdict::Good {
            scheme: Scheme::OpenPgp,
            signer: "AA".into(),
        };
        assert_eq!(good.to_string(), "openpgp; good; signer=AA");
        let partial = Verdict::Partial {
            scheme: Scheme::OpenPgp,
            signed_part: Box::new(good),
        };
        assert_eq!(
            partial.to_string(),
            "openpgp; partial (text outside the signed block is not covered); \
             signed-part=good; signer=AA"
        );
        let s = Signature {
            verdict: Verdict::None,
            outer: Some(OuterSignature {
                word: Word::Good,
                signer: Some("x@y".into()),
            }),
        };
        assert_eq!(s.to_string(), "none; outer=good; outer-signer=x@y");
        assert_eq!(s.summary(), "none; outer=good");
        let u = Verdict::UnknownSigner {
            scheme: Scheme::Smime,
            who: vec![
                Unknown::Signer("serial=1".into()),
                Unknown::Issuers(vec!["A".into(), "B".into()]),
            ],
        };
        assert_eq!(
            u.to_string(),
            "smime; unknown-signer; signer=serial=1; issuer=A/B"
        );
        assert_eq!(
            Verdict::Bad {
                scheme: Scheme::Smime,
                reason: BadReason::Malformed(Scheme::Smime)
            }
            .to_string(),
            "smime; bad (malformed multipart/signed: expected the signed part and an \
             application/pkcs7-signature part)"
        );
    }
}
