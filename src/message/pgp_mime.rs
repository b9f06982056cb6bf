//! OpenPGP as the whole message: PGP/MIME (RFC 3156) encrypted and signed,
//! and an inline armored block that is the whole text body.

use super::judge::{self, Sig};
use super::layers::Outer;
use super::verdict::{BadReason, Decryption, Encryption, Failure, Scheme, Signature, Verdict};
use super::{mime, openpgp, strict, Processed, Replacement, Report, Transformer};

impl Transformer {
    /// RFC 3156 multipart/encrypted as the whole message.
    pub(super) fn pgp_mime_encrypted(
        &self,
        top: &strict::Entity<'_>,
        head: &[u8],
        date: Option<i64>,
    ) -> Processed {
        let failure = |reason| {
            Transformer::none(Report {
                encryption: Encryption::Failed {
                    scheme: Some(Scheme::OpenPgp),
                    reason,
                },
                ..Report::default()
            })
        };
        let kids = match strict::split(top) {
            Ok(k) => k,
            Err(e) => return failure(Failure::Split(e.to_string())),
        };
        let valid = kids.len() == 2
            && kids[0].mime_type() == "application/pgp-encrypted"
            && kids[1].mime_type() == "application/octet-stream";
        let ciphertext = kids.get(1).and_then(strict::Entity::decoded_body);
        let (true, Some(ciphertext)) = (valid, ciphertext) else {
            return failure(Failure::MalformedPgpMime);
        };
        let pgp = &self.keys.openpgp;
        let d = match openpgp::decrypt(pgp, &ciphertext, self.cap_for(ciphertext.len())) {
            Ok(d) => d,
            Err(e) => return Transformer::none(failed(&e)),
        };
        if !d.outcome.was_encrypted {
            return failure(Failure::NoEncryptedData);
        }
        let sigs = openpgp::check_message_date(d.outcome.sigs, date)
            .iter()
            .map(|v| (Scheme::OpenPgp, Sig::from(v)))
            .collect();
        let outer = Outer::decrypted(decryption(), false);
        self.deliver(d.plaintext, sigs, outer, head, date)
    }

    /// RFC 3156 multipart/signed as the whole message: verified, unchanged.
    pub(super) fn pgp_mime_signed(
        &self,
        top: &strict::Entity<'_>,
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Verdict {
        let bad = |reason| Verdict::Bad {
            scheme: Scheme::OpenPgp,
            reason,
        };
        let kids = match strict::split(top) {
            Ok(k) => k,
            Err(e) => return bad(BadReason::Ambiguous(e.to_string())),
        };
        let sig = kids.get(1).and_then(strict::Entity::decoded_body);
        let (2, Some(sig)) = (kids.len(), sig) else {
            return bad(BadReason::Malformed(Scheme::OpenPgp));
        };
        if kids[1].mime_type() != "application/pgp-signature" {
            return bad(BadReason::Malformed(Scheme::OpenPgp));
        }
        let sigs = openpgp::verify_detached(&self.keys.openpgp, &sig, kids[0].raw);
        let sigs = openpgp::check_message_date(sigs, date);
        judge::openpgp(&sigs, from, true)
    }

    /// A text/plain body holding an armored block.
    pub(super) fn inline(
        &self,
        raw: &[u8],
        root: &mail_parser::MessagePart<'_>,
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Processed {
        // Only the header block was parsed (parse_structure): the body is
        // everything after it.
        let Some(body) = mime::transfer_decode(&raw[mime::body_start(raw)..], root.encoding) else {
            return Transformer::none(Report::default());
        };
        if let Some((s, e)) = mime::armor_span(
            &body,
            b"-----BEGIN PGP MESSAGE-----",
            b"-----END PGP MESSAGE-----",
        ) {
            if !mime::is_blank(&body[..s]) || !mime::is_blank(&body[e..]) {
                return Transformer::none(Report {
                    encryption: Encryption::Failed {
                        scheme: Some(Scheme::OpenPgp),
                        reason: Failure::PartlyEncrypted,
                    },
                    ..Report::default()
                });
            }
            return self.inline_message(raw, &body[s..e], from, date);
        }
        if let Some((s, _)) = mime::armor_span(
            &body,
            b"-----BEGIN PGP SIGNED MESSAGE-----",
            b"-----END PGP SIGNATURE-----",
        ) {
            // The strict parser decides where the block ends (text after
            // the END marker on its line is outside it), not armor_span.
            let rest = &body[s..];
            let pgp = &self.keys.openpgp;
            let verdict = match openpgp::verify_cleartext(pgp, rest, self.cap_for(rest.len())) {
                Ok(v) => {
                    let whole = mime::is_blank(&body[..s]) && mime::is_blank(&rest[v.end..]);
                    judge::openpgp(&openpgp::check_message_date(v.sigs, date), from, whole)
                }
                Err(err) => Verdict::Bad {
                    scheme: Scheme::OpenPgp,
                    reason: BadReason::Library(err.to_string()),
                },
            };
            return Transformer::none(Report {
                signature: Signature::of(verdict),
                ..Report::default()
            });
        }
        Transformer::none(Report::default())
    }

    /// An armored OpenPGP message that is the whole text body: decrypted
    /// (or, signed only, verified) and delivered as the new body.
    fn inline_message(
        &self,
        raw: &[u8],
        block: &[u8],
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Processed {
        let pgp = &self.keys.openpgp;
        let d = match openpgp::decrypt(pgp, block, self.cap_for(block.len())) {
            Ok(d) => d,
            Err(e) => return Transformer::none(failed(&e)),
        };
        let encryption = if d.outcome.was_encrypted {
            Encryption::Decrypted {
                decryption: decryption(),
                details: Default::default(),
            }
        } else {
            Encryption::None
        };
        let mut mime_headers: Vec<u8> = mime::fields(&raw[..mime::header_end(raw)])
            .into_iter()
            .filter(|f| f.name == "content-type")
            .flat_map(|f| f.raw.to_vec())
            .collect();
        let cte: &[u8] = if d.plaintext.is_ascii() {
            b"7bit"
        } else {
            b"8bit"
        };
        mime_headers.extend_from_slice(b"Content-Transfer-Encoding: ");
        mime_headers.extend_from_slice(cte);
        mime_headers.extend_from_slice(b"\r\n");
        let sigs = openpgp::check_message_date(d.outcome.sigs, date);
        Processed {
            report: Report {
                encryption,
                signature: Signature::of(judge::openpgp(&sigs, from, true)),
            },
            replacement: Some(Replacement {
                protected: Vec::new(),
                mime_headers,
                body: d.plaintext,
            }),
        }
    }
}

/// An OpenPGP decryption, as reported.
fn decryption() -> Decryption {
    Decryption {
        scheme: Scheme::OpenPgp,
        algorithm: None,
    }
}

/// The report on an OpenPGP decryption that failed.
fn failed(e: &openpgp::DecryptError) -> Report {
    let signature = match e {
        // Too many signatures is a verdict on the signatures, too.
        openpgp::DecryptError::TooManySignatures => Signature::of(Verdict::Bad {
            scheme: Scheme::OpenPgp,
            reason: BadReason::Library(e.to_string()),
        }),
        _ => Signature::default(),
    };
    Report {
        encryption: Encryption::Failed {
            scheme: Some(Scheme::OpenPgp),
            reason: Failure::Library(e.to_string()),
        },
        signature,
    }
}
