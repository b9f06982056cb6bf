//! Verifying SignedData: the structure, the signature mathematics (for all
//! signers at once), each signer's policy, time and chain, and one complete
//! OpenSSL confirmation of the good signers.

use std::borrow::Cow;

use cms::signed_data::SignerInfo;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::error::ErrorStack;
use openssl::stack::{Stack, StackRef};
use openssl::x509::store::X509StoreRef;
use openssl::x509::{X509StoreContext, X509};

use super::certs::{sid_string, signer_matches};
use super::cms::{
    content_type_name, oid_is, signing_time, Parsed, SignedLite, OID_DATA, UNSUPPORTED_SIGNATURES,
    WEAK_ALGORITHMS,
};
use super::{
    bad, count, format_time, internal, now_secs, SigVerdict, CMS_VERIFY_CALLS, MAX_SIGNER_INFOS,
};
use crate::keys::ossl::{self, reasons};
use crate::keys::x509::{cert_emails, name_string, push_unique};
use crate::keys::SmimeKeys;
use crate::text::{to_crlf, LoneCr};

/// Seconds a signingTime may lie in the future (clock skew) before the
/// signature is rejected.
const FUTURE_SKEW_SECS: i64 = 3600;

/// `CmsContentInfo::verify`, counted.
fn cms_verify(
    cms: &mut CmsContentInfo,
    certs: &StackRef<X509>,
    store: Option<&X509StoreRef>,
    data: Option<&[u8]>,
    flags: CMSOptions,
) -> Result<(), ErrorStack> {
    count(&CMS_VERIFY_CALLS);
    cms.verify(Some(certs), store, data, None, flags)
}

/// `internal(…)` for an OpenSSL failure, else `bad(…)` with `what` before
/// OpenSSL's reasons.
fn failure(what: &str, e: &ErrorStack) -> SigVerdict {
    if ossl::is_internal(e) {
        internal(reasons(e))
    } else {
        bad(format!("{what}: {}", reasons(e)))
    }
}

/// What is known about one SignerInfo before its chain is checked.
struct SignerFacts {
    /// The signer identifier matches more than one certificate.
    ambiguous: bool,
    cert: Option<X509>,
    time: Option<i64>,
    policy: Option<String>,
    unsupported: Option<String>,
}

fn algorithm_policy(si: &SignerInfo) -> (Option<String>, Option<String>) {
    let d = si.digest_alg.oid.to_string();
    let s = si.signature_algorithm.oid.to_string();
    let weak = WEAK_ALGORITHMS
        .iter()
        .find(|(o, _)| *o == d || *o == s)
        .map(|(_, n)| format!("weak signature algorithm {n}"));
    let unsupported = UNSUPPORTED_SIGNATURES
        .iter()
        .find(|(o, _)| *o == s)
        .map(|(_, n)| format!("unsupported signature algorithm {n} (OpenSSL 3.0 CMS)"));
    (weak, unsupported)
}

/// The detached content in canonical CRLF form (bare LF → CRLF, lone CR
/// kept), when that differs from the bytes as given.
fn crlf_form(data: &[u8]) -> Option<Vec<u8>> {
    match to_crlf(data, LoneCr::Content) {
        Cow::Owned(v) => Some(v),
        Cow::Borrowed(_) => None,
    }
}

/// The verdict for every signer when the structure itself is wrong: no
/// SignerInfo, too many, signed content that is not id-data, eContent in a
/// detached signature or none in an opaque one.
fn structure_verdict(sd: &SignedLite, detached: bool) -> Option<Vec<SigVerdict>> {
    let n = sd.signers.len();
    if n == 0 {
        return Some(vec![bad("no signer (the signature holds no SignerInfo)")]);
    }
    if n > MAX_SIGNER_INFOS {
        // Nothing is checked: the cost of a signature must not grow with
        // what the sender writes.
        return Some(vec![bad(format!("too many signers: {n}"))]);
    }
    let eci = &sd.encap;
    if !oid_is(&eci.econtent_type, OID_DATA) {
        return Some(vec![
            bad(format!(
                "the signed content type is {}, not data",
                content_type_name(&eci.econtent_type)
            ));
            n
        ]);
    }
    match (detached, eci.econtent.is_some()) {
        (true, true) => Some(vec![
            bad(
                "a detached signature that also carries signed content (eContent): \
                 the signature does not cover the displayed part",
            );
            n
        ]),
        (false, false) => Some(vec![bad("opaque signature without signed content"); n]),
        _ => None,
    }
}

/// Per signer: the certificates its identifier matches (ours, the
/// candidates, first, then those in the message, as CMS_verify searches
/// them), its signing time and the algorithm policy.
fn signer_facts(
    signers: &[SignerInfo],
    candidates: &[X509],
    embedded: &[X509],
) -> Vec<SignerFacts> {
    signers
        .iter()
        .map(|si| {
            // Every distinct certificate the identifier matches: OpenSSL
            // may pick another one than we would, so more than one means
            // the signer is ambiguous.
            let mut matching: Vec<X509> = Vec::new();
            for c in candidates.iter().chain(embedded.iter()) {
                if signer_matches(c, &si.sid) {
                    push_unique(&mut matching, c.clone());
                }
            }
            let ambiguous = matching.len() > 1;
            let cert = matching.into_iter().next();
            let (policy, unsupported) = algorithm_policy(si);
            SignerFacts {
                ambiguous,
                cert,
                time: signing_time(si),
                policy,
                unsupported,
            }
        })
        .collect()
}

/// A stack holding `certs`; an allocation failure is an internal error.
fn stack_of(certs: &[X509]) -> Result<Stack<X509>, SigVerdict> {
    let mut stack = Stack::new().map_err(|e| internal(reasons(&e)))?;
    for c in certs {
        stack
            .push(c.clone())
            .map_err(|e| internal(format!("cannot build a certificate stack: {}", reasons(&e))))?;
    }
    Ok(stack)
}

/// Verify `sd` (parsed from `parsed`), over `detached` when the signature
/// is detached: one verdict per SignerInfo.
pub(super) fn verify_signed(
    keys: &SmimeKeys,
    parsed: Parsed<'_>,
    sd: &SignedLite,
    detached: Option<&[u8]>,
) -> Vec<SigVerdict> {
    if let Some(v) = structure_verdict(sd, detached.is_some()) {
        return v;
    }
    let n = sd.signers.len();
    let candidates = keys.candidate_certs();
    let embedded: Vec<X509> = sd
        .certs
        .iter()
        .filter_map(|d| X509::from_der(d).ok())
        .collect();
    let facts = signer_facts(&sd.signers, &candidates, &embedded);
    let stacks = stack_of(&candidates).and_then(|c| Ok((c, stack_of(&embedded)?)));
    let (certs_stack, untrusted) = match stacks {
        Ok(s) => s,
        Err(v) => return vec![v; n],
    };
    let raw = parsed.raw;
    // 1. The signature mathematics, for all signers at once.
    let data_used = match check_math(parsed, &certs_stack, detached) {
        Ok(d) => d,
        Err(e) => return math_failure(&e, &facts, &sd.signers),
    };
    // 2. Per signer: policy, signing time, certificate chain. Intermediates
    // come from the message only (as in CMS_verify); nothing outside the
    // trust store is trusted.
    let now = now_secs();
    let mut verdicts: Vec<SigVerdict> = facts
        .iter()
        .zip(&sd.signers)
        .map(|(f, si)| signer_verdict(keys, f, si, &untrusted, now))
        .collect();
    // 3. The good signers, confirmed by OpenSSL's complete check.
    let confirm = Confirm {
        keys,
        raw,
        certs: &certs_stack,
        data: data_used.as_deref(),
        now,
    };
    confirm.run(&facts, &mut verdicts);
    verdicts
}

/// Check the signature mathematics of every signer (no chain, no trust).
/// A detached signature that fails over the bytes as given and verifies in
/// canonical CRLF form (RFC 8551 §3.1.1), as OpenSSL's own S/MIME reader
/// tries, is checked in that form from here on. Returns the detached
/// content used, or the first attempt's error.
fn check_math(
    parsed: Parsed<'_>,
    certs: &StackRef<X509>,
    detached: Option<&[u8]>,
) -> Result<Option<Vec<u8>>, ErrorStack> {
    let flags = CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY;
    let mut ossl = parsed.ossl;
    let e = match cms_verify(&mut ossl, certs, None, detached, flags) {
        Ok(()) => return Ok(detached.map(|d| d.to_vec())),
        Err(e) => e,
    };
    if let Some(canon) = detached.and_then(crlf_form) {
        if let Ok(mut again) = CmsContentInfo::from_der(parsed.raw) {
            if cms_verify(&mut again, certs, None, Some(&canon), flags).is_ok() {
                return Ok(Some(canon));
            }
        }
    }
    Err(e)
}

/// The verdicts when the signature mathematics failed.
fn math_failure(e: &ErrorStack, facts: &[SignerFacts], signers: &[SignerInfo]) -> Vec<SigVerdict> {
    let n = facts.len();
    if ossl::is_internal(e) {
        return vec![internal(reasons(e)); n];
    }
    if ossl::any_of(
        e,
        &[(ossl::ERR_LIB_CMS, ossl::CMS_R_SIGNER_CERTIFICATE_NOT_FOUND)],
    ) {
        return facts
            .iter()
            .zip(signers)
            .map(|(f, si)| match &f.cert {
                None => SigVerdict::UnknownSigner {
                    who: format!("certificate not in the message: {}", sid_string(&si.sid)),
                },
                Some(_) => {
                    bad("not verifiable: another signer's certificate is missing from the message")
                }
            })
            .collect();
    }
    let r = reasons(e);
    facts
        .iter()
        .map(|f| {
            if let Some(u) = &f.unsupported {
                SigVerdict::Rejected { reason: u.clone() }
            } else if n == 1 {
                bad(format!("the signature does not verify: {r}"))
            } else {
                bad(format!(
                    "one of the {n} signatures does not verify and OpenSSL cannot tell which: {r}"
                ))
            }
        })
        .collect()
}

/// One signer whose signature mathematics verified: its certificate,
/// policy, signing time and chain.
fn signer_verdict(
    keys: &SmimeKeys,
    f: &SignerFacts,
    si: &SignerInfo,
    untrusted: &StackRef<X509>,
    now: i64,
) -> SigVerdict {
    let Some(cert) = &f.cert else {
        return SigVerdict::UnknownSigner {
            who: format!("certificate not in the message: {}", sid_string(&si.sid)),
        };
    };
    if f.ambiguous {
        return bad("the signer identifier matches several certificates: the signer is ambiguous");
    }
    if let Some(p) = &f.policy {
        return SigVerdict::Rejected { reason: p.clone() };
    }
    if let Some(t) = f.time {
        if t > now + FUTURE_SKEW_SECS {
            return SigVerdict::Rejected {
                reason: format!("signing time {} is in the future", format_time(t)),
            };
        }
    }
    let at = f.time.unwrap_or(now);
    chain_verdict(keys, cert, untrusted, at, f.time)
}

/// The final check of the good signers with OpenSSL's complete CMS_verify
/// (chain, purpose, time and signature of every signer, with the
/// certificates OpenSSL itself picks): with several signers, our
/// per-signer view and OpenSSL's could otherwise disagree.
struct Confirm<'a> {
    keys: &'a SmimeKeys,
    raw: &'a [u8],
    certs: &'a StackRef<X509>,
    data: Option<&'a [u8]>,
    now: i64,
}

impl Confirm<'_> {
    /// One call covers every signer, so it runs once per message: the
    /// store verifies as of one time, the good signers' signingTime (or
    /// now). Signers with different signing times (not seen in real mail)
    /// are confirmed once per distinct time, at most [`MAX_SIGNER_INFOS`]
    /// calls. A good verdict that is not confirmed becomes `Bad` (or
    /// `Internal` when OpenSSL itself failed).
    fn run(&self, facts: &[SignerFacts], verdicts: &mut [SigVerdict]) {
        let mut times: Vec<i64> = Vec::new();
        for (v, f) in verdicts.iter().zip(facts) {
            let at = f.time.unwrap_or(self.now);
            if matches!(v, SigVerdict::Good { .. }) && !times.contains(&at) {
                times.push(at);
            }
        }
        for at in times {
            let Some(refused) = self.at(at) else {
                continue;
            };
            for (v, f) in verdicts.iter_mut().zip(facts) {
                if matches!(v, SigVerdict::Good { .. }) && f.time.unwrap_or(self.now) == at {
                    if let Some(cert) = &f.cert {
                        tracing::warn!(signer = %name_string(cert.subject_name()), verdict = ?refused,
                            "CMS_verify disagrees with the per-signer checks");
                    }
                    *v = refused.clone();
                }
            }
        }
    }

    /// The verdict for the good signers verified as of `at`, when
    /// OpenSSL's complete check does not confirm them.
    fn at(&self, at: i64) -> Option<SigVerdict> {
        let store = match self.keys.store_at(at) {
            Ok(s) => s,
            Err(e) => return Some(internal(reasons(&e))),
        };
        let mut fresh = match CmsContentInfo::from_der(self.raw) {
            Ok(c) => c,
            // It was read once already: failing now is OpenSSL's fault.
            Err(e) => return Some(internal(reasons(&e))),
        };
        cms_verify(
            &mut fresh,
            self.certs,
            Some(&store),
            self.data,
            CMSOptions::BINARY,
        )
        .err()
        .map(|e| failure("the signature does not verify", &e))
    }
}

// X509_V_ERR_* codes (stable OpenSSL ABI values, include/openssl/x509_vfy.h.in).
const V_ERR_UNABLE_TO_GET_ISSUER_CERT: i32 = 2;
const V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE: i32 = 4;
const V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: i32 = 6;
const V_ERR_CERT_SIGNATURE_FAILURE: i32 = 7;
const V_ERR_CERT_NOT_YET_VALID: i32 = 9;
const V_ERR_CERT_HAS_EXPIRED: i32 = 10;
const V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT: i32 = 18;
const V_ERR_SELF_SIGNED_CERT_IN_CHAIN: i32 = 19;
const V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY: i32 = 20;
const V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE: i32 = 21;
const V_ERR_CERT_UNTRUSTED: i32 = 27;

/// The signer certificate's chain to our trust store, as of `at`.
fn chain_verdict(
    keys: &SmimeKeys,
    cert: &X509,
    untrusted: &StackRef<X509>,
    at: i64,
    signing_time: Option<i64>,
) -> SigVerdict {
    let subject = name_string(cert.subject_name());
    let who = format!(
        "subject={subject}, issuer={}",
        name_string(cert.issuer_name())
    );
    if !keys.has_trust() {
        return SigVerdict::UnknownSigner { who };
    }
    let result = keys.store_at(at).and_then(|store| {
        let mut ctx = X509StoreContext::new()?;
        ctx.init(&store, cert, untrusted, |c| {
            let ok = c.verify_cert()?;
            Ok((ok, c.error(), c.error_depth()))
        })
    });
    // Building the store or the context, or X509_verify_cert returning a
    // negative value: OpenSSL failed, it did not judge the chain.
    let (ok, err, depth) = match result {
        Ok(r) => r,
        Err(e) => return internal(format!("certificate check failed: {}", reasons(&e))),
    };
    if ok {
        return SigVerdict::Good {
            emails: cert_emails(cert),
            subject,
            signing_time,
        };
    }
    let when = format!(
        "{} ({})",
        format_time(at),
        if signing_time.is_some() {
            "signingTime"
        } else {
            "now; no signingTime"
        }
    );
    let what = if depth == 0 {
        "the signer certificate".to_string()
    } else {
        format!("a CA certificate in the chain (depth {depth})")
    };
    match err.as_raw() {
        V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | V_ERR_SELF_SIGNED_CERT_IN_CHAIN
        | V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | V_ERR_CERT_UNTRUSTED => SigVerdict::UnknownSigner { who },
        V_ERR_CERT_HAS_EXPIRED => SigVerdict::Rejected {
            reason: format!("{what} had expired at the signing time {when}"),
        },
        V_ERR_CERT_NOT_YET_VALID => SigVerdict::Rejected {
            reason: format!("{what} was not yet valid at the signing time {when}"),
        },
        V_ERR_CERT_SIGNATURE_FAILURE
        | V_ERR_UNABLE_TO_DECRYPT_CERT_SIGNATURE
        | V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY => bad(format!(
            "{what} has an invalid signature: {}",
            err.error_string()
        )),
        _ => SigVerdict::Rejected {
            reason: format!("{what}: {}", err.error_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_canonicalisation() {
        assert_eq!(crlf_form(b"a\r\nb"), None);
        assert_eq!(crlf_form(b"a\nb\r\n").unwrap(), b"a\r\nb\r\n");
        assert_eq!(crlf_form(b"\n").unwrap(), b"\r\n");
        assert_eq!(crlf_form(b"a\rb\n").unwrap(), b"a\rb\r\n");
    }
}
