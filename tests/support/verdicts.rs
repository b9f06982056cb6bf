//! Verdicts as the tests inspect them: by their types, never by parsing
//! the header value popcrypt writes.
//!
//! Expectation tables (the golden suites, the corpora suites) are written
//! as expected header values or prefixes of them. Their leading tokens
//! (`openpgp; bad`, `smime; decrypted`, `none; failed`, …) are parsed here
//! into the class they name ([`EncKind`], or the scheme and [`Word`] of a
//! signature), and the typed verdict must be of that class; only the
//! details after those tokens are compared as text (they are the exact
//! header value, which is the point of those tables).
#![allow(dead_code)]

use std::fmt::Display;

use popcrypt::message::verdict::{Encryption, Scheme, Signature, Verdict, Word};

/// The class of an `X-Popcrypt-Encryption` verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncKind {
    /// Not encrypted (`none`, or `none; …` with findings).
    Clear,
    /// `<scheme>; decrypted`.
    Decrypted(Scheme),
    /// `<scheme>; failed` or `none; failed` (`None`).
    Failed(Option<Scheme>),
    /// `none; not-processed`.
    NotProcessed,
}

/// The class of a typed encryption verdict.
pub fn enc_kind(e: &Encryption) -> EncKind {
    match e {
        Encryption::None | Encryption::Plain(_) => EncKind::Clear,
        Encryption::Decrypted { decryption, .. } => EncKind::Decrypted(decryption.scheme),
        Encryption::Failed { scheme, .. } => EncKind::Failed(*scheme),
        Encryption::NotProcessed(_) => EncKind::NotProcessed,
    }
}

/// Whether the verdict is a good signature (of any scheme). `partial`
/// with a good signed part, or a good outer signature, is not.
pub fn is_good(s: &Signature) -> bool {
    matches!(s.verdict, Verdict::Good { .. })
}

/// Whether nothing in the signature verdict is good: not the verdict, not
/// the signed part of a partial signature, not an outer signature. What a
/// test means by "never good" (a substring check for `good` could be
/// fooled by a signer or reason text, or miss a verdict worded otherwise).
pub fn never_good(s: &Signature) -> bool {
    fn good(v: &Verdict) -> bool {
        match v {
            Verdict::Good { .. } => true,
            Verdict::Partial { signed_part, .. } => good(signed_part),
            _ => false,
        }
    }
    !good(&s.verdict) && s.outer.as_ref().is_none_or(|o| o.word != Word::Good)
}

/// Splits an expected header value into its first token and the word
/// that follows (`"openpgp; bad (x)"` → `("openpgp", "bad")`).
fn leading(expected: &str) -> (&str, &str) {
    let (first, rest) = expected.split_once("; ").unwrap_or((expected, ""));
    let word = rest.split([' ', ';', '(']).next().unwrap_or("");
    (first, word)
}

fn scheme_of(token: &str, expected: &str) -> Scheme {
    match token {
        "openpgp" => Scheme::OpenPgp,
        "smime" => Scheme::Smime,
        _ => panic!("expectation {expected:?} names no scheme"),
    }
}

/// The class an expected `X-Popcrypt-Encryption` value (or prefix) names.
/// Panics when it names none: the expectation table is wrong.
pub fn expected_enc_kind(expected: &str) -> EncKind {
    match leading(expected) {
        ("none", "failed") => EncKind::Failed(None),
        ("none", "not-processed") => EncKind::NotProcessed,
        ("none", _) => EncKind::Clear,
        (s, "decrypted") => EncKind::Decrypted(scheme_of(s, expected)),
        (s, "failed") => EncKind::Failed(Some(scheme_of(s, expected))),
        _ => panic!("expectation {expected:?} names no encryption verdict"),
    }
}

/// The scheme and verdict word an expected `X-Popcrypt-Signature` value
/// (or prefix) names; `None` for no signature (`none`, `none; outer=…`).
/// Panics when it names none: the expectation table is wrong.
pub fn expected_word(expected: &str) -> Option<(Scheme, Word)> {
    let (first, word) = leading(expected);
    if first == "none" {
        return None;
    }
    let scheme = scheme_of(first, expected);
    let word = match word {
        "good" => Word::Good,
        "bad" => Word::Bad,
        "unknown-signer" => Word::UnknownSigner,
        "from-mismatch" => Word::FromMismatch,
        "rejected" => Word::Rejected,
        "partial" => Word::Partial,
        "failed" => Word::Failed,
        _ => panic!("expectation {expected:?} names no signature verdict"),
    };
    Some((scheme, word))
}

/// A typed status verdict that an expected header value can be held
/// against.
pub trait Status: Display {
    /// Whether the verdict is of the class the leading tokens of
    /// `expected` name.
    fn is_class(&self, expected: &str) -> bool;
    /// Whether it is a good signature (never, for encryption).
    fn is_good(&self) -> bool;
}

impl Status for Encryption {
    fn is_class(&self, expected: &str) -> bool {
        enc_kind(self) == expected_enc_kind(expected)
    }
    fn is_good(&self) -> bool {
        false
    }
}

impl Status for Signature {
    fn is_class(&self, expected: &str) -> bool {
        self.verdict.word() == expected_word(expected)
    }
    fn is_good(&self) -> bool {
        is_good(self)
    }
}
