//! From the scheme modules' signature results to one [`Verdict`]: the
//! rules that decide `good` (a signature counts only when it covers the
//! whole message, by a trusted signer who is the sender the client shows).

use super::mime::Sender;
use super::openpgp;
use super::smime;
use super::verdict::{BadReason, Mismatch, OuterSignature, Scheme, Signature, Unknown, Verdict};

/// One signature result, whatever the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sig {
    /// Valid, by a trusted signer; `id` identifies it in the report
    /// (fingerprint, or certificate email if `id` is empty).
    Good {
        id: String,
        emails: Vec<String>,
    },
    Bad(BadReason),
    /// Whose signature it is (issuer, certificate).
    Unknown(Unknown),
    Rejected(String),
    /// The library failed; no verdict on this signature.
    Internal(String),
}

impl From<&smime::SigVerdict> for Sig {
    fn from(v: &smime::SigVerdict) -> Sig {
        match v {
            smime::SigVerdict::Good { emails, .. } => Sig::Good {
                id: String::new(),
                emails: emails.clone(),
            },
            smime::SigVerdict::Bad { reason } => Sig::Bad(BadReason::Library(reason.clone())),
            smime::SigVerdict::UnknownSigner { who } => Sig::Unknown(Unknown::Signer(who.clone())),
            smime::SigVerdict::Rejected { reason } => Sig::Rejected(reason.clone()),
            smime::SigVerdict::Internal { reason } => Sig::Internal(reason.clone()),
        }
    }
}

impl From<&openpgp::SigVerdict> for Sig {
    fn from(v: &openpgp::SigVerdict) -> Sig {
        match v {
            openpgp::SigVerdict::Good { signer, emails, .. } => Sig::Good {
                id: signer.clone(),
                emails: emails.clone(),
            },
            openpgp::SigVerdict::Bad { reason } => Sig::Bad(BadReason::Library(reason.clone())),
            openpgp::SigVerdict::UnknownSigner { issuers } => {
                Sig::Unknown(Unknown::Issuers(issuers.clone()))
            }
            openpgp::SigVerdict::Rejected { reason } => Sig::Rejected(reason.clone()),
        }
    }
}

/// The verdict on OpenPGP signature results.
pub(crate) fn openpgp(sigs: &[openpgp::SigVerdict], from: &Sender, whole: bool) -> Verdict {
    let sigs: Vec<Sig> = sigs.iter().map(Sig::from).collect();
    judge(Scheme::OpenPgp, &sigs, from, whole)
}

/// The verdict on S/MIME signature results.
pub(crate) fn smime(sigs: &[smime::SigVerdict], from: &Sender) -> Verdict {
    let sigs: Vec<Sig> = sigs.iter().map(Sig::from).collect();
    judge(Scheme::Smime, &sigs, from, true)
}

/// The verdict on a set of signature results. `whole` is false when the
/// signature covers only part of the message.
pub(crate) fn judge(scheme: Scheme, sigs: &[Sig], from: &Sender, whole: bool) -> Verdict {
    if sigs.is_empty() {
        return Verdict::None;
    }
    let inner = judge_whole(scheme, sigs, from);
    if whole {
        inner
    } else {
        // Never good: text outside the signed block is not covered.
        Verdict::Partial {
            scheme,
            signed_part: Box::new(inner),
        }
    }
}

/// The label of a good signer: its fingerprint, or its first address.
fn label(id: &str, emails: &[String]) -> String {
    if id.is_empty() {
        emails.first().cloned().unwrap_or_default()
    } else {
        id.to_string()
    }
}

fn judge_whole(scheme: Scheme, sigs: &[Sig], from: &Sender) -> Verdict {
    if let Some(Sig::Bad(reason)) = sigs.iter().find(|s| matches!(s, Sig::Bad(_))) {
        return Verdict::Bad {
            scheme,
            reason: reason.clone(),
        };
    }
    let goods: Vec<(&String, &Vec<String>)> = sigs
        .iter()
        .filter_map(|s| match s {
            Sig::Good { id, emails } => Some((id, emails)),
            _ => None,
        })
        .collect();
    if let Some(v) = judge_goods(scheme, &goods, from) {
        return v;
    }
    if let Some(Sig::Internal(reason)) = sigs.iter().find(|s| matches!(s, Sig::Internal(_))) {
        return Verdict::Internal {
            scheme,
            reason: reason.clone(),
        };
    }
    if let Some(Sig::Rejected(reason)) = sigs.iter().find(|s| matches!(s, Sig::Rejected(_))) {
        return Verdict::Rejected {
            scheme,
            reason: reason.clone(),
        };
    }
    let who = sigs
        .iter()
        .filter_map(|s| match s {
            Sig::Unknown(u) => Some(u.clone()),
            _ => None,
        })
        .collect();
    Verdict::UnknownSigner { scheme, who }
}

/// Good signatures against the sender the client shows.
fn judge_goods(
    scheme: Scheme,
    goods: &[(&String, &Vec<String>)],
    from: &Sender,
) -> Option<Verdict> {
    let (id, emails) = goods.first()?;
    let mismatch = |signer: String, mismatch: Mismatch| Verdict::FromMismatch {
        scheme,
        signer,
        mismatch,
    };
    let (from, unclear) = match from {
        Sender::One(a) => (a, None),
        Sender::Unclear {
            shown,
            why,
            address: Some(_),
        } => (shown, Some(why)),
        Sender::Unclear { shown, why, .. } => {
            let m = Mismatch::Unclear {
                shown: shown.clone(),
                why: why.clone(),
            };
            return Some(mismatch(label(id, emails), m));
        }
    };
    if let Some((id, emails)) = goods
        .iter()
        .find(|(_, e)| e.iter().any(|m| m.eq_ignore_ascii_case(from)))
    {
        if let Some(why) = unclear {
            // The signer is the From address, but the client may show
            // someone else as the sender.
            let m = Mismatch::Unclear {
                shown: from.clone(),
                why: why.clone(),
            };
            // Labelled by the first good signature with this id (for
            // S/MIME, whose ids are empty: the first good signer).
            let first = goods
                .iter()
                .find(|(i, _)| i == id)
                .map_or(*emails, |(_, e)| *e);
            return Some(mismatch(label(id, first), m));
        }
        let signer = if id.is_empty() { from } else { *id };
        return Some(Verdict::Good {
            scheme,
            signer: signer.clone(),
        });
    }
    let m = Mismatch::Addresses {
        signer_emails: (*emails).clone(),
        from: from.clone(),
    };
    Some(mismatch(label(id, emails), m))
}

/// The signature of a message whose signatures are split in two: those
/// inside the outermost decryption judge it; those over the ciphertext
/// (`outside`) are reported as `outer=` (EFAIL: whoever signs a CBC
/// ciphertext need not have encrypted it).
pub(crate) fn with_outer(
    inside: (Scheme, &[Sig]),
    outside: Option<(Scheme, &[Sig])>,
    from: &Sender,
) -> Signature {
    let verdict = judge(inside.0, inside.1, from, true);
    let outer = outside.and_then(|(scheme, sigs)| {
        let (_, word) = judge(scheme, sigs, from, true).word()?;
        let signer = sigs.iter().find_map(|s| match s {
            Sig::Good { id, emails } if id.is_empty() => emails.first().cloned(),
            Sig::Good { id, .. } => Some(id.clone()),
            _ => None,
        });
        Some(OuterSignature { word, signer })
    });
    Signature { verdict, outer }
}

/// Whether any of the results is a good signature.
pub(crate) fn any_good(sigs: &[Sig]) -> bool {
    sigs.iter().any(|s| matches!(s, Sig::Good { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::verdict::Word;

    fn word(v: &Verdict) -> Option<Word> {
        v.word().map(|(_, w)| w)
    }

    fn good(id: &str, email: &str) -> Sig {
        Sig::Good {
            id: id.into(),
            emails: vec![email.into()],
        }
    }

    #[test]
    fn verdicts() {
        let from = Sender::One("a@b".into());
        let s = Scheme::OpenPgp;
        assert_eq!(
            judge(s, &[good("AA", "a@b")], &from, true),
            Verdict::Good {
                scheme: s,
                signer: "AA".into()
            }
        );
        assert!(matches!(
            judge(s, &[good("AA", "x@y")], &from, true),
            Verdict::FromMismatch {
                mismatch: Mismatch::Addresses { .. },
                ..
            }
        ));
        let unclear = Sender::Unclear {
            shown: "none".into(),
            why: "no From".into(),
            address: None,
        };
        assert!(matches!(
            judge(s, &[good("AA", "a@b")], &unclear, true),
            Verdict::FromMismatch {
                mismatch: Mismatch::Unclear { .. },
                ..
            }
        ));
        assert!(matches!(
            judge(s, &[good("AA", "a@b")], &from, false),
            Verdict::Partial { .. }
        ));
        let bad = Sig::Bad(BadReason::Library("tampered".into()));
        assert!(matches!(
            judge(s, &[good("AA", "a@b"), bad], &from, true),
            Verdict::Bad { .. }
        ));
        let internal = Sig::Internal("internal error: x".into());
        assert_eq!(
            word(&judge(s, &[internal], &from, true)),
            Some(Word::Failed)
        );
        let rej = Sig::Rejected("SHA1".into());
        assert_eq!(word(&judge(s, &[rej], &from, true)), Some(Word::Rejected));
        let unk = Sig::Unknown(Unknown::Issuers(vec!["K".into()]));
        assert_eq!(
            judge(s, &[unk], &from, true).to_string(),
            "openpgp; unknown-signer; issuer=K"
        );
        assert_eq!(judge(s, &[], &from, true), Verdict::None);
    }

    #[test]
    fn an_unclear_sender_names_the_first_good_signer() {
        // Two S/MIME signers (no ids); the second is the From address but
        // a display name names someone else: labelled, as always, by the
        // first good signature.
        let from = Sender::Unclear {
            shown: "bob@x".into(),
            why: "the display name names another address".into(),
            address: Some("bob@x".into()),
        };
        let v = judge(
            Scheme::Smime,
            &[good("", "alice@x"), good("", "bob@x")],
            &from,
            true,
        );
        assert_eq!(
            v.to_string(),
            "smime; from-mismatch; signer=alice@x; from=bob@x (the display name names another \
             address)"
        );
    }
}
