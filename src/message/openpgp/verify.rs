//! Signature verification: detached signatures (PGP/MIME), and cleartext
//! signatures verified as detached signatures over the text as parsed.

use sequoia_openpgp as openpgp;

use openpgp::parse::stream::*;
use openpgp::parse::Parse;
use openpgp::policy::StandardPolicy;

use super::cleartext::parse_cleartext;
use super::helper::{Counts, Helper, TooManySignatures};
use super::{DecryptError, Outcome, SigVerdict, MAX_SIGNATURES};
use crate::keys::PgpKeys;
use crate::text::{self, LoneCr};

/// What [`verify_cleartext`] found.
#[derive(Debug)]
pub struct ClearVerified {
    /// The signed text (as hashed: CRLF lines, dash-escapes removed).
    pub text: Vec<u8>,
    pub sigs: Vec<SigVerdict>,
    /// Offset in the input just past the block ([`super::Cleartext::end`]).
    pub end: usize,
}

/// Verify a Cleartext Signature Framework block. `input` starts at its
/// BEGIN line and may go on after the block; the block is parsed strictly
/// by [`parse_cleartext`] and the signature is then verified as a detached
/// signature over the signed text exactly as parsed, so what is verified
/// is what this parser (and a client) takes for the signed text.
pub fn verify_cleartext(
    keys: &PgpKeys,
    input: &[u8],
    cap: usize,
) -> Result<ClearVerified, DecryptError> {
    let block = parse_cleartext(input).map_err(|e| DecryptError::Other(e.to_string()))?;
    if block.signed.len() > cap {
        return Err(DecryptError::TooLarge(cap));
    }
    let (mut sigs, out) = verify_detached_once(keys, block.signature, &block.signed);
    // RFC 4880 section 7: the Hash header names the digests the signatures
    // use. GnuPG rejects a conflict; so does this.
    if !block.hashes.is_empty()
        && out
            .signature_hashes
            .iter()
            .any(|h| !block.hashes.contains(h))
    {
        sigs = vec![SigVerdict::Bad {
            reason: "malformed cleartext signature: a signature uses a hash algorithm the \
                     Hash: header does not name"
                .into(),
        }];
    }
    Ok(ClearVerified {
        text: block.signed,
        sigs,
        end: block.end,
    })
}

/// Verify a detached signature over `data`. If it does not verify over the
/// bytes as they are and they hold bare LF line ends, the RFC 3156
/// canonical (CRLF) form is tried too.
pub fn verify_detached(keys: &PgpKeys, sig: &[u8], data: &[u8]) -> Vec<SigVerdict> {
    verify_detached_counted(keys, sig, data).0
}

/// [`verify_detached`], also returning how many signature packets sequoia
/// parsed in all (at most `MAX_SIGNATURES + 1` per attempt: the parse stops
/// there).
pub fn verify_detached_counted(
    keys: &PgpKeys,
    sig: &[u8],
    data: &[u8],
) -> (Vec<SigVerdict>, usize) {
    let (first, out) = verify_detached_once(keys, sig, data);
    let mut examined = out.signature_packets;
    let all_good = !first.is_empty() && first.iter().all(|v| !matches!(v, SigVerdict::Bad { .. }));
    let too_many = out.signature_packets > MAX_SIGNATURES;
    if all_good || too_many || !has_bare_lf(data) {
        return (first, examined);
    }
    let (second, out) = verify_detached_once(keys, sig, &text::to_crlf(data, LoneCr::Ends));
    examined += out.signature_packets;
    if second.iter().any(|v| matches!(v, SigVerdict::Good { .. })) {
        (second, examined)
    } else {
        (first, examined)
    }
}

fn verify_detached_once(keys: &PgpKeys, sig: &[u8], data: &[u8]) -> (Vec<SigVerdict>, Outcome) {
    let policy = StandardPolicy::new();
    let counts = Counts::default();
    let result = verify_detached_inner(keys, &counts, &policy, sig, data);
    let (sigs, mut out) = match result {
        Ok((sigs, out)) => (sigs, out),
        Err(e) => {
            let verdict = if counts.too_many() {
                SigVerdict::Bad {
                    reason: TooManySignatures.to_string(),
                }
            } else {
                e
            };
            (vec![verdict], Outcome::default())
        }
    };
    out.signature_packets = counts.signatures.get();
    (sigs, out)
}

fn verify_detached_inner(
    keys: &PgpKeys,
    counts: &Counts,
    policy: &StandardPolicy<'_>,
    sig: &[u8],
    data: &[u8],
) -> Result<(Vec<SigVerdict>, Outcome), SigVerdict> {
    let bad = |reason: String| SigVerdict::Bad { reason };
    let builder = DetachedVerifierBuilder::from_bytes(sig)
        .map_err(|e| bad(format!("unreadable signature: {e}")))?;
    // with_policy parses every signature packet (calling inspect for
    // each, which stops the parse beyond MAX_SIGNATURES) before any data
    // is hashed.
    let mut v = builder
        .with_policy(policy, None, Helper::new(keys, counts))
        .map_err(|e| bad(format!("unreadable signature: {e}")))?;
    // Hashing the data: any failure is `bad` (see helper::bad_signature
    // for why nothing on the OpenPGP side is reported as internal).
    v.verify_bytes(data)
        .map_err(|e| bad(format!("verification failed: {e}")))?;
    let mut out = v.into_helper().out;
    let sigs = std::mem::take(&mut out.sigs);
    if sigs.is_empty() {
        return Err(bad("no signature in the signature part".into()));
    }
    Ok((sigs, out))
}

/// Whether a line of `data` ends in LF alone (not CRLF).
fn has_bare_lf(data: &[u8]) -> bool {
    text::lines(data, LoneCr::Content).any(|l| l.end == b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_lf() {
        assert!(has_bare_lf(b"\n"));
        assert!(has_bare_lf(b"a\r\nb\nc"));
        assert!(has_bare_lf(b"a\r\r\nb\r\n\n"));
        assert!(!has_bare_lf(b"a\r\nb\rc\r\n"));
        assert!(!has_bare_lf(b""));
    }
}
