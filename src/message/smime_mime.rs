//! S/MIME as the whole message: application/pkcs7-mime (enveloped or
//! opaque signed-data) and multipart/signed with a detached signature.

use super::judge::{self, Sig};
use super::layers::{Outer, Sigs};
use super::verdict::{
    Algorithm, BadReason, Decryption, Encryption, Failure, Scheme, Signature, Verdict,
};
use super::{mime, smime, strict, Processed, Report, Transformer};

impl Transformer {
    /// S/MIME application/pkcs7-mime as the whole message.
    pub(super) fn smime_mime(
        &self,
        root: &mail_parser::MessagePart<'_>,
        head: &[u8],
        date: Option<i64>,
    ) -> Processed {
        let der = cms_bytes(root);
        let der = &der[..];
        let keys = &self.keys.smime;
        match smime_kind(root, der).as_str() {
            "enveloped-data" | "auth-enveloped-data" => {
                match smime::decrypt(keys, der, self.cap_for(der.len())) {
                    Ok(d) => {
                        let outer = Outer::decrypted(decryption(&d), !d.auth_enveloped);
                        self.deliver(d.content, Vec::new(), outer, head, date)
                    }
                    Err(e) => Transformer::none(Report {
                        encryption: failed(&e),
                        ..Report::default()
                    }),
                }
            }
            "signed-data" => {
                let (content, v) = smime::verify_opaque(keys, der, self.cap_for(der.len()));
                let v = smime::check_message_date(v, date);
                match content {
                    Some(c) => {
                        let sigs = v.iter().map(|v| (Scheme::Smime, Sig::from(v))).collect();
                        self.deliver(c, sigs, Outer::signed(true), head, date)
                    }
                    None => Transformer::none(Report {
                        signature: Signature::of(judge::smime(&v, &mime::sender(head))),
                        ..Report::default()
                    }),
                }
            }
            other => Transformer::none(Report {
                encryption: Encryption::Failed {
                    scheme: Some(Scheme::Smime),
                    reason: Failure::UnsupportedCms(other.to_string()),
                },
                ..Report::default()
            }),
        }
    }

    /// S/MIME multipart/signed as the whole message: verified, and passed
    /// unchanged unless the signed part is itself encrypted
    /// (encrypt-then-sign), which is then decrypted: the signature around
    /// the ciphertext is reported as `outer=`, never as the verdict.
    pub(super) fn smime_signed(
        &self,
        top: &strict::Entity<'_>,
        head: &[u8],
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Processed {
        let signature = |verdict: Verdict| {
            Transformer::none(Report {
                signature: Signature::of(verdict),
                ..Report::default()
            })
        };
        let bad = |reason| Verdict::Bad {
            scheme: Scheme::Smime,
            reason,
        };
        let kids = match strict::split(top) {
            Ok(k) => k,
            Err(e) => return signature(bad(BadReason::Ambiguous(e.to_string()))),
        };
        let sig_der = kids.get(1).and_then(strict::Entity::decoded_body);
        let (2, Some(sig_der)) = (kids.len(), sig_der) else {
            return signature(bad(BadReason::Malformed(Scheme::Smime)));
        };
        if !is_pkcs7_signature_type(kids[1].mime_type()) {
            return signature(bad(BadReason::Malformed(Scheme::Smime)));
        }
        let span = kids[0].raw;
        let v = smime::verify_detached(&self.keys.smime, &sig_der, span);
        let v = smime::check_message_date(v, date);
        let sigs: Sigs = v.iter().map(|v| (Scheme::Smime, Sig::from(v))).collect();
        if let Some(p) = self.encrypt_then_sign(span, sigs, head, from, date) {
            return p;
        }
        signature(judge::smime(&v, from))
    }

    /// Encrypt-then-sign: the signed part is an enveloped entity, which is
    /// decrypted. `None` when the signed part is something else.
    fn encrypt_then_sign(
        &self,
        span: &[u8],
        sigs: Sigs,
        head: &[u8],
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Option<Processed> {
        let part = mime::parse(span)?;
        let signed = &part.parts[0];
        if !is_pkcs7_mime(signed) {
            return None;
        }
        let der = cms_bytes(signed);
        if !matches!(
            smime_kind(signed, &der).as_str(),
            "enveloped-data" | "auth-enveloped-data"
        ) {
            return None;
        }
        Some(
            match smime::decrypt(&self.keys.smime, &der, self.cap_for(der.len())) {
                Ok(d) => {
                    let outer = Outer::decrypted(decryption(&d), !d.auth_enveloped);
                    self.deliver(d.content, sigs, outer, head, date)
                }
                Err(e) => {
                    let plain: Vec<Sig> = sigs.into_iter().map(|(_, v)| v).collect();
                    Transformer::none(Report {
                        encryption: failed(&e),
                        signature: Signature::of(judge::judge(Scheme::Smime, &plain, from, true)),
                    })
                }
            },
        )
    }
}

/// The report on an S/MIME decryption that failed.
fn failed(e: &smime::SmimeError) -> Encryption {
    let reason = match e {
        smime::SmimeError::Internal(_) => Failure::Internal(e.to_string()),
        _ => Failure::Library(e.to_string()),
    };
    Encryption::Failed {
        scheme: Some(Scheme::Smime),
        reason,
    }
}

/// The algorithm of a successful S/MIME decryption, as reported.
pub(super) fn algorithm(d: &smime::Decrypted) -> Algorithm {
    Algorithm {
        name: d.algorithm.clone(),
        legacy: d.legacy_algorithm,
    }
}

/// The decryption of a successful S/MIME decryption, as reported.
fn decryption(d: &smime::Decrypted) -> Decryption {
    Decryption {
        scheme: Scheme::Smime,
        algorithm: Some(algorithm(d)),
    }
}

/// The CMS bytes of a pkcs7-mime part. With a binary transfer encoding the
/// POP3 path (and the server's LF to CRLF conversion) may have added CR
/// before LF; if the bytes do not read as CMS, that is undone.
pub(super) fn cms_bytes<'a>(p: &'a mail_parser::MessagePart<'_>) -> std::borrow::Cow<'a, [u8]> {
    let der = p.contents();
    if smime::content_type(der).is_some() {
        return std::borrow::Cow::Borrowed(der);
    }
    let mut undone = Vec::with_capacity(der.len());
    let mut i = 0;
    while i < der.len() {
        if der[i] == b'\r' && der.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        undone.push(der[i]);
        i += 1;
    }
    if smime::content_type(&undone).is_some() {
        std::borrow::Cow::Owned(undone)
    } else {
        std::borrow::Cow::Borrowed(der)
    }
}

/// application/pkcs7-mime (or the legacy x- name, or an octet-stream .p7m).
pub(super) fn is_pkcs7_mime(p: &mail_parser::MessagePart<'_>) -> bool {
    match mime::mime_type(p).as_str() {
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => true,
        "application/octet-stream" => {
            let name = mime::param(p, "name")
                .map(str::to_string)
                .or_else(|| mail_parser::MimeHeaders::attachment_name(p).map(str::to_string))
                .unwrap_or_default()
                .to_ascii_lowercase();
            name.ends_with(".p7m")
        }
        _ => false,
    }
}

/// The detached signature's media type (or its legacy x- name).
pub(super) fn is_pkcs7_signature_type(t: &str) -> bool {
    matches!(
        t,
        "application/pkcs7-signature" | "application/x-pkcs7-signature"
    )
}

/// The CMS content type, from smime-type or from the DER itself.
pub(super) fn smime_kind(p: &mail_parser::MessagePart<'_>, der: &[u8]) -> String {
    let from_param = mime::param(p, "smime-type").map(|t| t.to_ascii_lowercase());
    match from_param.as_deref() {
        Some("enveloped-data") => "enveloped-data".into(),
        Some("authenveloped-data") => "auth-enveloped-data".into(),
        Some("signed-data") => "signed-data".into(),
        _ => smime::content_type(der).unwrap_or_else(|| "unreadable".into()),
    }
}
