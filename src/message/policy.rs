//! What happens to a message whose signature is not good: `annotate`
//! (headers only), `tag` (Subject prefix) or `quarantine` (a notice with
//! the original attached, for `bad` signatures). Matches on verdict types.

use crate::config::SignaturePolicy;

use super::verdict::{Signature, Word};
use super::{header_end, mime, Report};

/// Apply the signature policy to a message as it would be delivered.
pub(super) fn apply(policy: SignaturePolicy, out: Vec<u8>, report: &Report) -> Vec<u8> {
    let word = match report.signature.verdict.word() {
        None | Some((_, Word::Good)) => return out,
        Some((_, word)) => word,
    };
    match policy {
        SignaturePolicy::Annotate => out,
        SignaturePolicy::Tag => tag(out, word),
        SignaturePolicy::Quarantine if word != Word::Bad => out,
        SignaturePolicy::Quarantine => quarantine(out, &report.signature),
    }
}

/// Prefix the Subject (or add one) with `[popcrypt: signature <word>]`.
fn tag(out: Vec<u8>, word: Word) -> Vec<u8> {
    let head_end = header_end(&out);
    let tag = format!("[popcrypt: signature {word}] ");
    let mut v = Vec::with_capacity(out.len() + tag.len() + 16);
    let mut tagged = false;
    for f in mime::fields(&out[..head_end]) {
        if f.name == "subject" && !tagged {
            let colon = f.raw.iter().position(|&b| b == b':').unwrap_or(0);
            v.extend_from_slice(&f.raw[..=colon]);
            v.push(b' ');
            v.extend_from_slice(tag.as_bytes());
            let rest = &f.raw[colon + 1..];
            v.extend_from_slice(rest.strip_prefix(b" ").unwrap_or(rest));
            tagged = true;
        } else {
            v.extend_from_slice(f.raw);
        }
    }
    if !tagged {
        v.extend_from_slice(format!("Subject: {}\r\n", tag.trim_end()).as_bytes());
    }
    v.extend_from_slice(&out[head_end..]);
    v
}

/// Replace the message by a notice with the original attached unchanged
/// (status headers included): nothing is lost.
fn quarantine(out: Vec<u8>, verdict: &Signature) -> Vec<u8> {
    let boundary = boundary_absent_from(&out);
    let mut v = Vec::with_capacity(out.len() + 1024);
    for f in mime::fields(&out[..header_end(&out)]) {
        if !f.name.starts_with("content-") && f.name != "mime-version" {
            v.extend_from_slice(f.raw);
        }
    }
    v.extend_from_slice(
        format!(
            "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
             --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
             popcrypt quarantined this message: its signature does not verify\r\n\
             ({verdict}).\r\nThe original message is attached unchanged.\r\n\r\n\
             --{boundary}\r\nContent-Type: message/rfc822\r\n\
             Content-Disposition: attachment; filename=\"original.eml\"\r\n\r\n"
        )
        .as_bytes(),
    );
    v.extend_from_slice(&out);
    if !out.ends_with(b"\n") {
        v.extend_from_slice(b"\r\n");
    }
    v.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    v
}

/// A boundary random per message and absent from the attached message, so
/// that nothing in it can end the notice's parts early.
fn boundary_absent_from(content: &[u8]) -> String {
    loop {
        let mut random = [0u8; 12];
        // OpenSSL's CSPRNG; should it ever fail, a counter-based fallback
        // still gives a boundary that is checked against the content.
        let boundary = match openssl::rand::rand_bytes(&mut random) {
            Ok(()) => format!("popcrypt-quarantine-{}", hex(&random)),
            Err(_) => {
                tracing::warn!("no random boundary for a quarantine notice; using a counter");
                format!("popcrypt-quarantine-{:x}", fallback_counter())
            }
        };
        if !contains(content, boundary.as_bytes()) {
            return boundary;
        }
    }
}

fn fallback_counter() -> u64 {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::verdict::{BadReason, Scheme, Verdict};

    fn report(verdict: Verdict) -> Report {
        Report {
            signature: Signature::of(verdict),
            ..Report::default()
        }
    }

    #[test]
    fn signature_policies() {
        let bad = report(Verdict::Bad {
            scheme: Scheme::OpenPgp,
            reason: BadReason::Library("tampered".into()),
        });
        let msg = b"X-Popcrypt-Encryption: none\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n".to_vec();
        let tagged = apply(SignaturePolicy::Tag, msg.clone(), &bad);
        assert!(
            String::from_utf8_lossy(&tagged).contains("Subject: [popcrypt: signature bad] hi\r\n")
        );
        let q = apply(SignaturePolicy::Quarantine, msg.clone(), &bad);
        let qs = String::from_utf8_lossy(&q);
        assert!(qs.contains("multipart/mixed") && qs.contains("message/rfc822"));
        assert!(qs.contains("(openpgp; bad (tampered))"));
        assert!(
            q.windows(msg.len()).any(|w| w == msg.as_slice()),
            "original kept"
        );
        let good = report(Verdict::Good {
            scheme: Scheme::OpenPgp,
            signer: "X".into(),
        });
        assert_eq!(apply(SignaturePolicy::Tag, msg.clone(), &good), msg);
        assert_eq!(apply(SignaturePolicy::Annotate, msg.clone(), &bad), msg);
        let internal = report(Verdict::Internal {
            scheme: Scheme::Smime,
            reason: "internal error: x".into(),
        });
        // An internal failure is no verdict on the signature: never
        // quarantined, tagged as failed.
        assert_eq!(
            apply(SignaturePolicy::Quarantine, msg.clone(), &internal),
            msg
        );
        let tagged = apply(SignaturePolicy::Tag, msg.clone(), &internal);
        assert!(String::from_utf8_lossy(&tagged).contains("[popcrypt: signature failed] hi"));
    }

    #[test]
    fn quarantine_boundary_is_random_and_absent_from_the_content() {
        let a = boundary_absent_from(b"x");
        let b = boundary_absent_from(b"x");
        assert_ne!(a, b);
        assert!(a.starts_with("popcrypt-quarantine-") && a.len() == 20 + 24);
        // A message quoting a boundary cannot make the notice end early:
        // the chosen one never occurs in it.
        let body = format!("--{a}--\r\n");
        let c = boundary_absent_from(body.as_bytes());
        assert!(!body.contains(&c));
    }
}
