//! One message in, one message out; no sockets.
//!
//! [`Transformer`] is the message policy the relay engine consults: it
//! classifies a message from its header block (pass through while streaming,
//! or hold whole and transform) and performs the transform: decrypt and
//! verify OpenPGP, then annotate with the two status headers.
//!
//! Security rules (see DESIGN.md): decrypt only when the encrypted entity is
//! the whole message; a signature counts only when it covers the whole
//! message; a good signature whose signer does not match From is
//! `from-mismatch`; anything that fails is delivered as the original bytes.

pub mod defuse;
pub mod mime;
pub mod openpgp;
pub mod report;
pub mod smime;
pub mod strict;

use std::sync::Arc;

use crate::config::SignaturePolicy;
use crate::keys::Keyring;
use crate::pop3::engine::{Disposition, MessageHook};
use openpgp::SigVerdict;
pub use report::Report;

pub use mime::header_end;

/// Header fields that RFC 9788 protected headers may replace.
const PROTECTABLE: &[&str] = &[
    "subject",
    "from",
    "to",
    "cc",
    "reply-to",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "followup-to",
    "mail-followup-to",
    "keywords",
];

/// How many panics [`Transformer::transform`] caught in this process (each
/// cost its message nothing but is a bug): tests read it.
static CAUGHT_PANICS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// The number of panics inside the message transform caught so far in this
/// process. Zero unless a library or popcrypt itself has a bug.
pub fn caught_panics() -> u64 {
    CAUGHT_PANICS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Message policy and key material for one proxy.
#[derive(Debug, Default)]
pub struct Transformer {
    keys: Arc<Keyring>,
    /// Largest plaintext produced (decompression included).
    max_plaintext: usize,
    policy: SignaturePolicy,
}

/// What processing decided for one message.
struct Processed {
    report: Report,
    replacement: Option<Replacement>,
}

/// A new header part and body replacing the message's MIME content.
struct Replacement {
    /// Protected header fields that replace the outer fields of the same name.
    protected: Vec<u8>,
    /// The entity's own MIME header fields (Content-*).
    mime_headers: Vec<u8>,
    body: Vec<u8>,
}

impl Transformer {
    /// A transformer without keys: it only annotates.
    pub fn new() -> Transformer {
        Transformer::with_keys(Keyring::default(), crate::limits::MAX_MESSAGE_SIZE)
    }

    /// A transformer with key material.
    pub fn with_keys(keys: Keyring, max_plaintext: usize) -> Transformer {
        Transformer {
            keys: Arc::new(keys),
            max_plaintext,
            policy: SignaturePolicy::Annotate,
        }
    }

    /// What to do with messages whose signature is not good.
    pub fn with_signature_policy(mut self, policy: SignaturePolicy) -> Transformer {
        self.policy = policy;
        self
    }

    /// Transform one whole message (CRLF lines, not dot-stuffed).
    ///
    /// Never fails: a message that cannot be processed comes back as the
    /// original bytes with a report that says why.
    pub fn transform(&self, raw: &[u8]) -> (Vec<u8>, Report) {
        // Header lines end at CRLF, LF or a lone CR, for every step below
        // and for the client: one reading of the header block.
        let normalized = mime::normalize_header_block(raw);
        let raw = &normalized[..];
        // Each nesting level needs a Content-Type line: bound them before
        // any recursive parser sees the bytes.
        let processed = if strict::content_type_lines(raw) > strict::MAX_ENTITY_HEADERS {
            Self::none(Report {
                encryption: format!(
                    "none; not-processed (more than {} Content-Type fields: MIME structure \
                     too deep or too large to read safely)",
                    strict::MAX_ENTITY_HEADERS
                ),
                signature: "none".into(),
            })
        } else {
            self.process_caught(raw)
        };
        let out = match &processed.replacement {
            None => annotate_message(raw, &processed.report),
            Some(r) => assemble(raw, &processed.report, r),
        };
        let out = apply_policy(self.policy, out, &processed.report);
        (out, processed.report)
    }

    fn process_caught(&self, raw: &[u8]) -> Processed {
        // The crypto libraries parse attacker-controlled bytes; a panic in
        // one of them (seen: sequoia 2.4.2 on some truncated ciphertexts)
        // must not cost the message.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.process(raw))) {
            Ok(p) => p,
            Err(_) => {
                CAUGHT_PANICS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!(
                    "internal error while processing a message; delivering it unchanged"
                );
                Self::none(Report {
                    encryption: "none; failed (internal error while processing; the original \
                                     message is delivered)"
                        .into(),
                    signature: "none".into(),
                })
            }
        }
    }

    fn none(report: Report) -> Processed {
        Processed {
            report,
            replacement: None,
        }
    }

    fn process(&self, raw: &[u8]) -> Processed {
        let pgp = &self.keys.openpgp;
        let has_pgp = !pgp.certs.is_empty() || !pgp.secrets.is_empty();
        let has_smime = !self.keys.smime.is_empty();
        let head = &raw[..header_end(raw)];
        let top = match strict::top_entity(raw) {
            Ok(top) => top,
            Err(e) => return Self::none(ambiguous_report(head, &e)),
        };
        let Some(msg) = mime::parse_structure(raw) else {
            return Self::none(Report::default());
        };
        let root = &msg.parts[0];
        let ctype = top.mime_type().to_string();
        let protocol = top.param("protocol").unwrap_or("").to_ascii_lowercase();
        let from = mime::sender(head);
        let date = msg.date().map(|d| d.to_timestamp());
        if has_smime && is_pkcs7_mime(root) {
            return self.smime_mime(root, head, date);
        }
        if has_smime
            && ctype == "multipart/signed"
            && matches!(
                protocol.as_str(),
                "application/pkcs7-signature" | "application/x-pkcs7-signature"
            )
        {
            return self.smime_signed(&top, head, &from, date);
        }
        if !has_pgp {
            return Self::none(Report::default());
        }
        match (ctype.as_str(), protocol.as_str()) {
            ("multipart/encrypted", "application/pgp-encrypted") => {
                self.pgp_mime_encrypted(&top, head, date)
            }
            ("multipart/signed", "application/pgp-signature") => {
                let report = Report {
                    encryption: "none".into(),
                    signature: self.pgp_mime_signed(&top, &from, date),
                };
                Self::none(report)
            }
            ("text/plain", _) => self.inline(raw, root, &from, date),
            _ => Self::none(Report::default()),
        }
    }

    fn cap_for(&self, input_len: usize) -> usize {
        // Decompression bombs: plaintext is bounded by the configured
        // maximum and by a generous multiple of the ciphertext.
        self.max_plaintext
            .min(input_len.saturating_mul(200).saturating_add(1 << 20))
    }

    /// RFC 3156 multipart/encrypted as the whole message.
    fn pgp_mime_encrypted(
        &self,
        top: &strict::Entity<'_>,
        head: &[u8],
        date: Option<i64>,
    ) -> Processed {
        let kids = match strict::split(top) {
            Ok(k) => k,
            Err(e) => {
                return Self::none(Report {
                    encryption: format!("openpgp; failed ({e})"),
                    signature: "none".into(),
                })
            }
        };
        let valid = kids.len() == 2
            && kids[0].mime_type() == "application/pgp-encrypted"
            && kids[1].mime_type() == "application/octet-stream";
        let ciphertext = kids.get(1).and_then(strict::Entity::decoded_body);
        let (true, Some(ciphertext)) = (valid, ciphertext) else {
            return Self::none(Report {
                encryption: "openpgp; failed (malformed PGP/MIME structure: expected \
                             application/pgp-encrypted and application/octet-stream parts)"
                    .into(),
                signature: "none".into(),
            });
        };
        let pgp = &self.keys.openpgp;
        let d = match openpgp::decrypt(pgp, &ciphertext, self.cap_for(ciphertext.len())) {
            Ok(d) => d,
            Err(e) => return Self::none(failed(&e)),
        };
        if !d.outcome.was_encrypted {
            return Self::none(Report {
                encryption: "openpgp; failed (the encrypted part holds no encrypted data)".into(),
                signature: "none".into(),
            });
        }
        let sigs = openpgp::check_message_date(d.outcome.sigs, date)
            .iter()
            .map(|v| ("openpgp", Sig::from(v)))
            .collect();
        let outer = Outer::decrypted("openpgp", "openpgp; decrypted".into(), false);
        self.deliver(d.plaintext, sigs, outer, head, date)
    }

    /// Deliver a decrypted or unwrapped MIME entity: look inside it for
    /// signatures and further S/MIME layers, apply protected headers, and
    /// build the replacement and the report. Signatures are verified over
    /// the bytes as decrypted; line ends are normalised only for delivery.
    fn deliver(
        &self,
        entity: Vec<u8>,
        mut sigs: Vec<(&'static str, Sig)>,
        outer: Outer,
        outer_head: &[u8],
        date: Option<i64>,
    ) -> Processed {
        let mut notes = Vec::new();
        if outer.unwrapped {
            notes.push(Layer::Unwrapped);
        }
        let outer_sigs = if outer.sigs_inside { 0 } else { sigs.len() };
        let scheme_of_outer = outer.scheme;
        // Without an outer decryption, the first one found inside names the
        // message's encryption; any further one is an inner layer.
        let mut first_inside_is_top = outer.encryption.is_none();
        let (entity, protected_src) = self.inner_layers(entity, 0, &mut sigs, &mut notes, date);
        // The entity's own header block must read one way only: a second
        // Content-Type, or one hidden behind a lone CR, is never delivered.
        if let Some(why) = notes.iter().find_map(|n| match n {
            Layer::Ambiguous(why) => Some(why.clone()),
            _ => None,
        }) {
            let scheme = scheme_of_outer;
            return Self::none(Report {
                encryption: format!(
                    "{scheme}; failed ({why} in the decrypted message; not delivered)"
                ),
                signature: "none".into(),
            });
        }
        let entity = crate::pop3::response::crlf_lines(&entity);
        let decrypted = outer.encryption.is_some()
            || notes.iter().any(|n| matches!(n, Layer::Decrypted { .. }));
        // Which signatures vouch for the plaintext: only those inside the
        // outermost decryption. A signature over ciphertext does not (EFAIL:
        // whoever signs a CBC ciphertext need not have encrypted it).
        let (mut encryption, no_integrity, inner_from) = match outer.encryption {
            Some(e) => (e, outer.no_integrity, outer_sigs),
            None => match notes.iter().find_map(|n| match n {
                Layer::Decrypted {
                    algorithm,
                    auth,
                    legacy,
                    sigs_before,
                } => Some((algorithm, *auth, *legacy, *sigs_before)),
                _ => None,
            }) {
                Some((algorithm, auth, legacy, before)) => (
                    format!(
                        "smime; decrypted; algorithm={algorithm}{}",
                        if legacy { " (legacy)" } else { "" }
                    ),
                    !auth,
                    before,
                ),
                None => ("none".to_string(), false, 0),
            },
        };

        let (head_end, body_start) = mime::entity_split(&entity);
        let head = &entity[..head_end];
        let body = entity[body_start..].to_vec();
        let protected = protected_src
            .as_deref()
            .map(|src| {
                mime::fields(src)
                    .into_iter()
                    .filter(|f| PROTECTABLE.contains(&f.name.as_str()))
                    .flat_map(|f| f.raw.to_vec())
                    .collect::<Vec<u8>>()
            })
            .unwrap_or_default();
        let protected_names: Vec<String> = mime::fields(&protected)
            .into_iter()
            .map(|f| f.name)
            .collect();
        // The sender as the client will see it: protected fields first,
        // then the outer fields they do not replace.
        let mut view = protected.clone();
        for f in mime::fields(outer_head) {
            if !protected_names.contains(&f.name) && !f.name.starts_with("x-popcrypt-") {
                view.extend_from_slice(f.raw);
            }
        }
        let from = mime::sender(&view);
        let mime_headers: Vec<u8> = mime::fields(head)
            .into_iter()
            .filter(|f| f.name.starts_with("content-"))
            .flat_map(|f| f.raw.to_vec())
            .collect();
        // A signature over a ciphertext vouches for the ciphertext, not for
        // what it says: only signatures inside the outermost decryption
        // judge the plaintext; those outside are reported as `outer=`.
        let split = if decrypted {
            inner_from.min(sigs.len())
        } else {
            0
        };
        let (outside, inside) = sigs.split_at(split);
        let vouched = inside.iter().any(|(_, v)| matches!(v, Sig::Good { .. }));
        let scheme = inside.first().map_or("openpgp", |(s, _)| *s);
        let plain: Vec<Sig> = inside.iter().map(|(_, v)| v.clone()).collect();
        let mut signature = scheme_verdict(scheme, &plain, &from, true);
        if let Some((outer_scheme, _)) = outside.first() {
            let plain: Vec<Sig> = outside.iter().map(|(_, v)| v.clone()).collect();
            let outer_verdict = scheme_verdict(outer_scheme, &plain, &from, true);
            signature.push_str(&format!("; outer={}", verdict_word(&outer_verdict)));
            if let Some(id) = plain.iter().find_map(|s| match s {
                Sig::Good { id, emails } if id.is_empty() => emails.first().cloned(),
                Sig::Good { id, .. } => Some(id.clone()),
                _ => None,
            }) {
                signature.push_str(&format!("; outer-signer={id}"));
            }
        }
        if no_integrity && !vouched {
            encryption.push_str("; integrity=none");
        }
        // EFAIL: nothing decrypted without integrity may load remote content.
        let (mime_headers, body) = match (no_integrity && !vouched)
            .then(|| defuse::defuse(&mime_headers, &body))
            .flatten()
        {
            Some(d) => {
                encryption.push_str(d.change.parameter());
                (d.headers, d.body)
            }
            None => (mime_headers, body),
        };
        let mut unwrapped = false;
        for n in &notes {
            match n {
                Layer::Unwrapped if !unwrapped => {
                    unwrapped = true;
                    encryption.push_str("; signed-data unwrapped");
                }
                Layer::Unwrapped => {}
                // The decryption already named by the first token.
                Layer::Decrypted { .. } if first_inside_is_top => first_inside_is_top = false,
                Layer::Decrypted { algorithm, .. } => {
                    encryption.push_str(&format!("; inner smime decrypted ({algorithm})"))
                }
                Layer::Failed(e) => encryption.push_str(&format!("; inner smime failed ({e})")),
                Layer::Ambiguous(_) => {}
            }
        }
        if !protected_names.is_empty() {
            encryption.push_str(&format!(
                "; protected-headers={}",
                protected_names.join(",")
            ));
        }
        Processed {
            report: Report {
                encryption,
                signature,
            },
            replacement: Some(Replacement {
                protected,
                mime_headers,
                body,
            }),
        }
    }

    /// Signatures and S/MIME layers inside a decrypted entity (RFC 3156
    /// §6.2 multipart/signed, S/MIME sign-then-encrypt and
    /// encrypt-then-sign). Returns the entity to deliver and the header
    /// block that carries protected headers, if any.
    fn inner_layers(
        &self,
        entity: Vec<u8>,
        depth: u8,
        sigs: &mut Vec<(&'static str, Sig)>,
        notes: &mut Vec<Layer>,
        date: Option<i64>,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let entity = drop_legacy_display(entity);
        let mut unwrap: Option<Vec<u8>> = None;
        let mut protected = None;
        if mime::starts_with_header(&entity) {
            if let Err(e) = strict::top_entity(&entity) {
                notes.push(Layer::Ambiguous(e.to_string()));
                return (entity, None);
            }
        }
        {
            let Some(inner) = mime::parse_structure(&entity) else {
                return (entity, None);
            };
            let iroot = &inner.parts[0];
            if is_protected(iroot) {
                protected = Some(entity[..mime::header_end(&entity)].to_vec());
            }
            let itype = mime::mime_type(iroot);
            let proto = mime::param(iroot, "protocol")
                .unwrap_or("")
                .to_ascii_lowercase();
            if itype == "multipart/signed" {
                // Only headers the signature covers (in the signed part)
                // count as protected, not those of the unsigned wrapper.
                protected = None;
            }
            match (itype.as_str(), proto.as_str()) {
                ("multipart/signed", "application/pgp-signature") => {
                    match inner_signed(&entity, |t| t == "application/pgp-signature") {
                        Ok((first, sig)) => {
                            let v = openpgp::verify_detached(&self.keys.openpgp, &sig, first.raw);
                            let v = openpgp::check_message_date(v, date);
                            sigs.extend(v.iter().map(|v| ("openpgp", Sig::from(v))));
                            if is_protected_entity(&first) {
                                protected = Some(first.head().to_vec());
                            }
                        }
                        Err(why) => sigs.push(("openpgp", Sig::Bad(why))),
                    }
                }
                (
                    "multipart/signed",
                    "application/pkcs7-signature" | "application/x-pkcs7-signature",
                ) => match inner_signed(&entity, is_pkcs7_signature_type) {
                    Ok((first, sig)) => {
                        let v = smime::verify_detached(&self.keys.smime, &sig, first.raw);
                        let v = smime::check_message_date(v, date);
                        sigs.extend(v.iter().map(|v| ("smime", Sig::from(v))));
                        if is_protected_entity(&first) {
                            protected = Some(first.head().to_vec());
                        }
                    }
                    Err(why) => sigs.push(("smime", Sig::Bad(why))),
                },
                _ if depth < 3 && is_pkcs7_mime(iroot) => {
                    let der = cms_bytes(iroot);
                    let der = &der[..];
                    match smime_kind(iroot, der).as_str() {
                        "signed-data" => {
                            let cap = self.cap_for(der.len());
                            let (content, v) = smime::verify_opaque(&self.keys.smime, der, cap);
                            let v = smime::check_message_date(v, date);
                            sigs.extend(v.iter().map(|v| ("smime", Sig::from(v))));
                            if let Some(c) = content {
                                notes.push(Layer::Unwrapped);
                                unwrap = Some(c);
                            }
                        }
                        "enveloped-data" | "auth-enveloped-data" => {
                            match smime::decrypt(&self.keys.smime, der, self.cap_for(der.len())) {
                                Ok(d) => {
                                    notes.push(Layer::Decrypted {
                                        algorithm: d.algorithm.clone(),
                                        auth: d.auth_enveloped,
                                        legacy: d.legacy_algorithm,
                                        sigs_before: sigs.len(),
                                    });
                                    unwrap = Some(d.content);
                                }
                                Err(e) => notes.push(Layer::Failed(e.to_string())),
                            }
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        match unwrap {
            Some(c) => self.inner_layers(c, depth + 1, sigs, notes, date),
            None => (entity, protected),
        }
    }

    /// S/MIME application/pkcs7-mime as the whole message.
    fn smime_mime(
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
                let d = match smime::decrypt(keys, der, self.cap_for(der.len())) {
                    Ok(d) => d,
                    Err(e) => {
                        return Self::none(Report {
                            encryption: format!("smime; failed ({e})"),
                            signature: "none".into(),
                        })
                    }
                };
                let encryption = smime_decrypted(&d);
                let outer = Outer::decrypted("smime", encryption, !d.auth_enveloped);
                self.deliver(d.content, Vec::new(), outer, head, date)
            }
            "signed-data" => {
                let (content, v) = smime::verify_opaque(keys, der, self.cap_for(der.len()));
                let v = smime::check_message_date(v, date);
                let sigs: Vec<(&'static str, Sig)> =
                    v.iter().map(|v| ("smime", Sig::from(v))).collect();
                match content {
                    Some(c) => self.deliver(c, sigs, Outer::signed(true), head, date),
                    None => {
                        let plain: Vec<Sig> = sigs.into_iter().map(|(_, v)| v).collect();
                        Self::none(Report {
                            encryption: "none".into(),
                            signature: scheme_verdict("smime", &plain, &mime::sender(head), true),
                        })
                    }
                }
            }
            other => Self::none(Report {
                encryption: format!("smime; failed (unsupported CMS content: {other})"),
                signature: "none".into(),
            }),
        }
    }

    /// S/MIME multipart/signed as the whole message: verified, and passed
    /// unchanged unless the signed part is itself encrypted
    /// (encrypt-then-sign), which is then decrypted: the signature around
    /// the ciphertext is reported as `outer=`, never as the verdict.
    fn smime_signed(
        &self,
        top: &strict::Entity<'_>,
        head: &[u8],
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Processed {
        let signature = |s: &str| {
            Self::none(Report {
                encryption: "none".into(),
                signature: s.into(),
            })
        };
        let kids = match strict::split(top) {
            Ok(k) => k,
            Err(e) => return signature(&format!("smime; bad ({e})")),
        };
        let sig_der = kids.get(1).and_then(strict::Entity::decoded_body);
        let (2, Some(sig_der)) = (kids.len(), sig_der) else {
            return signature(MALFORMED_SMIME_SIGNED);
        };
        if !is_pkcs7_signature_type(kids[1].mime_type()) {
            return signature(MALFORMED_SMIME_SIGNED);
        }
        let span = kids[0].raw;
        let v = smime::verify_detached(&self.keys.smime, &sig_der, span);
        let v = smime::check_message_date(v, date);
        let sigs: Vec<(&'static str, Sig)> = v.iter().map(|v| ("smime", Sig::from(v))).collect();
        if let Some(part) = mime::parse(span) {
            let signed = &part.parts[0];
            if is_pkcs7_mime(signed) {
                // Encrypt-then-sign: decrypt the signed ciphertext.
                let der = cms_bytes(signed);
                if matches!(
                    smime_kind(signed, &der).as_str(),
                    "enveloped-data" | "auth-enveloped-data"
                ) {
                    let plain: Vec<Sig> = sigs.iter().map(|(_, v)| v.clone()).collect();
                    return match smime::decrypt(&self.keys.smime, &der, self.cap_for(der.len())) {
                        Ok(d) => {
                            let encryption = smime_decrypted(&d);
                            let outer = Outer::decrypted("smime", encryption, !d.auth_enveloped);
                            self.deliver(d.content, sigs, outer, head, date)
                        }
                        Err(e) => Self::none(Report {
                            encryption: format!("smime; failed ({e})"),
                            signature: scheme_verdict("smime", &plain, from, true),
                        }),
                    };
                }
            }
        }
        let plain: Vec<Sig> = sigs.into_iter().map(|(_, v)| v).collect();
        signature(&scheme_verdict("smime", &plain, from, true))
    }

    /// RFC 3156 multipart/signed as the whole message: verified, unchanged.
    fn pgp_mime_signed(
        &self,
        top: &strict::Entity<'_>,
        from: &mime::Sender,
        date: Option<i64>,
    ) -> String {
        let kids = match strict::split(top) {
            Ok(k) => k,
            Err(e) => return format!("openpgp; bad ({e})"),
        };
        let sig = kids.get(1).and_then(strict::Entity::decoded_body);
        let (2, Some(sig)) = (kids.len(), sig) else {
            return MALFORMED_PGP_SIGNED.into();
        };
        if kids[1].mime_type() != "application/pgp-signature" {
            return MALFORMED_PGP_SIGNED.into();
        }
        let sigs = openpgp::verify_detached(&self.keys.openpgp, &sig, kids[0].raw);
        let sigs = openpgp::check_message_date(sigs, date);
        verdict(&sigs, from, true)
    }

    /// A text/plain body holding an armored block.
    fn inline(
        &self,
        raw: &[u8],
        root: &mail_parser::MessagePart<'_>,
        from: &mime::Sender,
        date: Option<i64>,
    ) -> Processed {
        // Only the header block was parsed (parse_structure): the body is
        // everything after it.
        let Some(body) = mime::transfer_decode(&raw[mime::body_start(raw)..], root.encoding) else {
            return Self::none(Report::default());
        };
        let pgp = &self.keys.openpgp;
        if let Some((s, e)) = mime::armor_span(
            &body,
            b"-----BEGIN PGP MESSAGE-----",
            b"-----END PGP MESSAGE-----",
        ) {
            if !mime::is_blank(&body[..s]) || !mime::is_blank(&body[e..]) {
                return Self::none(Report {
                    encryption:
                        "openpgp; failed (partly encrypted: the message holds text outside \
                                 the encrypted block; not decrypted, so the plaintext never joins \
                                 text the sender controls)"
                            .into(),
                    signature: "none".into(),
                });
            }
            let block = &body[s..e];
            let d = match openpgp::decrypt(pgp, block, self.cap_for(block.len())) {
                Ok(d) => d,
                Err(e) => return Self::none(failed(&e)),
            };
            let encryption = if d.outcome.was_encrypted {
                "openpgp; decrypted".to_string()
            } else {
                "none".to_string()
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
            return Processed {
                report: Report {
                    encryption,
                    signature: verdict(
                        &openpgp::check_message_date(d.outcome.sigs, date),
                        from,
                        true,
                    ),
                },
                replacement: Some(Replacement {
                    protected: Vec::new(),
                    mime_headers,
                    body: d.plaintext,
                }),
            };
        }
        if let Some((s, _)) = mime::armor_span(
            &body,
            b"-----BEGIN PGP SIGNED MESSAGE-----",
            b"-----END PGP SIGNATURE-----",
        ) {
            // The strict parser decides where the block ends (text after
            // the END marker on its line is outside it), not armor_span.
            let rest = &body[s..];
            let signature = match openpgp::verify_cleartext(pgp, rest, self.cap_for(rest.len())) {
                Ok(v) => {
                    let whole = mime::is_blank(&body[..s]) && mime::is_blank(&rest[v.end..]);
                    verdict(&openpgp::check_message_date(v.sigs, date), from, whole)
                }
                Err(err) => format!("openpgp; bad ({err})"),
            };
            return Self::none(Report {
                encryption: "none".into(),
                signature,
            });
        }
        Self::none(Report::default())
    }
}

fn failed(e: &openpgp::DecryptError) -> Report {
    Report {
        encryption: format!("openpgp; failed ({e})"),
        // Too many signatures is a verdict on the signatures, too.
        signature: match e {
            openpgp::DecryptError::TooManySignatures => format!("openpgp; bad ({e})"),
            _ => "none".into(),
        },
    }
}

/// Remove the legacy display part (RFC 9788 `hp-legacy-display="1"`, or the
/// older `text/rfc822-headers; protected-headers="v1"` / text part of the
/// "memory hole" practice) that repeats the protected headers in the body
/// for clients that cannot show them. The client sees the real headers.
fn drop_legacy_display(plaintext: Vec<u8>) -> Vec<u8> {
    let cut = {
        let Some(inner) = mime::parse_structure(&plaintext) else {
            return plaintext;
        };
        let root = &inner.parts[0];
        // RFC 9788: a single text/plain part marked hp-legacy-display="1"
        // starts with the Legacy Display Element, ended by a blank line.
        if mime::mime_type(root) == "text/plain"
            && mime::param(root, "hp-legacy-display").is_some_and(|v| v == "1")
            && root.encoding == mail_parser::Encoding::None
        {
            let start = mime::body_start(&plaintext);
            let body = &plaintext[start..];
            // The element ends at the first empty line (CRLF or LF ends).
            let mut pos = 0;
            let mut cut = None;
            for line in body.split_inclusive(|&b| b == b'\n') {
                pos += line.len();
                if line == b"\r\n" || line == b"\n" {
                    cut = Some(pos);
                    break;
                }
            }
            let Some(cut) = cut else {
                return plaintext;
            };
            let mut out = plaintext[..start].to_vec();
            out.extend_from_slice(&body[cut..]);
            return out;
        }
        if !is_protected(root) || mime::mime_type(root) != "multipart/mixed" {
            return plaintext;
        }
        let kids = mime::children(&inner, root);
        if kids.len() < 2 {
            return plaintext;
        }
        let first = kids[0];
        let legacy = mime::param(first, "hp-legacy-display").is_some_and(|v| v == "1")
            || (is_protected(first)
                && matches!(
                    mime::mime_type(first).as_str(),
                    "text/rfc822-headers" | "text/plain"
                ));
        if !legacy {
            return plaintext;
        }
        (first.offset_header as usize, kids[1].offset_header as usize)
    };
    if cut.0 >= cut.1 || cut.1 > plaintext.len() {
        return plaintext;
    }
    let mut out = plaintext[..cut.0].to_vec();
    out.extend_from_slice(&plaintext[cut.1..]);
    out
}

/// The report for a message whose own header block reads more than one way:
/// whatever any of its Content-Type fields claims, nothing is decrypted and
/// no signature is good.
fn ambiguous_report(head: &[u8], e: &strict::Ambiguous) -> Report {
    let types: Vec<String> = mime::fields(head)
        .into_iter()
        .filter(|f| f.name == "content-type")
        .map(|f| String::from_utf8_lossy(f.raw).to_ascii_lowercase())
        .collect();
    let any = |needle: &str| types.iter().any(|t| t.contains(needle));
    let scheme = if any("pkcs7") { "smime" } else { "openpgp" };
    if any("multipart/encrypted") || any("pkcs7-mime") || any(".p7m") {
        Report {
            encryption: format!("{scheme}; failed ({e}; not decrypted)"),
            signature: "none".into(),
        }
    } else if any("multipart/signed") || any("pkcs7-signature") {
        Report {
            encryption: "none".into(),
            signature: format!("{scheme}; bad ({e})"),
        }
    } else {
        Report::default()
    }
}

/// The signed part and the decoded signature of a multipart/signed inside a
/// decryption, read strictly; the reason for `bad` otherwise.
fn inner_signed(
    entity: &[u8],
    sig_type: impl Fn(&str) -> bool,
) -> Result<(strict::Entity<'_>, Vec<u8>), String> {
    let (_, kids) = strict::multipart(entity).map_err(|e| e.to_string())?;
    let malformed = || "malformed multipart/signed inside the encryption".to_string();
    let [first, second] = <[strict::Entity<'_>; 2]>::try_from(kids).map_err(|_| malformed())?;
    if !sig_type(second.mime_type()) {
        return Err(malformed());
    }
    let sig = second.decoded_body().ok_or_else(malformed)?;
    Ok((first, sig))
}

fn is_protected_entity(e: &strict::Entity<'_>) -> bool {
    e.param("protected-headers")
        .is_some_and(|v| v.eq_ignore_ascii_case("v1"))
        || e.param("hp").is_some()
}

fn is_protected(p: &mail_parser::MessagePart<'_>) -> bool {
    mime::param(p, "protected-headers").is_some_and(|v| v.eq_ignore_ascii_case("v1"))
        || mime::param(p, "hp").is_some()
}

/// One signature result, whatever the scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sig {
    /// Valid, by a trusted signer; `id` identifies it in the report
    /// (fingerprint, or certificate email if `id` is empty).
    Good {
        id: String,
        emails: Vec<String>,
    },
    Bad(String),
    /// `detail` says whose signature it is (issuer, certificate).
    Unknown(String),
    Rejected(String),
}

impl From<&smime::SigVerdict> for Sig {
    fn from(v: &smime::SigVerdict) -> Sig {
        match v {
            smime::SigVerdict::Good { emails, .. } => Sig::Good {
                id: String::new(),
                emails: emails.clone(),
            },
            smime::SigVerdict::Bad { reason } => Sig::Bad(reason.clone()),
            smime::SigVerdict::UnknownSigner { who } => Sig::Unknown(format!("signer={who}")),
            smime::SigVerdict::Rejected { reason } => Sig::Rejected(reason.clone()),
        }
    }
}

/// The Encryption report of a successful S/MIME decryption.
fn smime_decrypted(d: &smime::Decrypted) -> String {
    format!(
        "smime; decrypted; algorithm={}{}",
        d.algorithm,
        if d.legacy_algorithm { " (legacy)" } else { "" }
    )
}

/// The outermost layer of a message, as its handler found it.
struct Outer {
    /// The scheme of the outermost layer.
    scheme: &'static str,
    /// The signatures handed over with the entity were made inside the
    /// decryption (OpenPGP signed and encrypted), not over the ciphertext.
    sigs_inside: bool,
    /// The Encryption report of a decryption done by the handler, or None
    /// when the outer layer only signed (opaque or detached signature).
    encryption: Option<String>,
    /// That decryption had no integrity protection (S/MIME CBC).
    no_integrity: bool,
    /// The handler unwrapped opaque signed-data.
    unwrapped: bool,
}

impl Outer {
    fn decrypted(scheme: &'static str, encryption: String, no_integrity: bool) -> Outer {
        Outer {
            scheme,
            // OpenPGP verifies signatures while decrypting: they are inside.
            sigs_inside: scheme == "openpgp",
            encryption: Some(encryption),
            no_integrity,
            unwrapped: false,
        }
    }

    fn signed(unwrapped: bool) -> Outer {
        Outer {
            scheme: "smime",
            sigs_inside: false,
            encryption: None,
            no_integrity: false,
            unwrapped,
        }
    }
}

/// A layer found inside a decrypted or unwrapped entity.
#[derive(Debug)]
enum Layer {
    Unwrapped,
    Decrypted {
        algorithm: String,
        auth: bool,
        legacy: bool,
        /// How many signatures were known before this decryption: later
        /// ones are over its plaintext.
        sigs_before: usize,
    },
    Failed(String),
    /// A decrypted or unwrapped entity whose header block reads more than
    /// one way: nothing of it is delivered.
    Ambiguous(String),
}

/// The CMS bytes of a pkcs7-mime part. With a binary transfer encoding the
/// POP3 path (and the server's LF to CRLF conversion) may have added CR
/// before LF; if the bytes do not read as CMS, that is undone.
fn cms_bytes<'a>(p: &'a mail_parser::MessagePart<'_>) -> std::borrow::Cow<'a, [u8]> {
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
fn is_pkcs7_mime(p: &mail_parser::MessagePart<'_>) -> bool {
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

fn is_pkcs7_signature_type(t: &str) -> bool {
    matches!(
        t,
        "application/pkcs7-signature" | "application/x-pkcs7-signature"
    )
}

const MALFORMED_PGP_SIGNED: &str = "openpgp; bad (malformed multipart/signed: expected the \
                                    signed part and an application/pgp-signature part)";
const MALFORMED_SMIME_SIGNED: &str = "smime; bad (malformed multipart/signed: expected the \
                                      signed part and an application/pkcs7-signature part)";

/// The CMS content type, from smime-type or from the DER itself.
fn smime_kind(p: &mail_parser::MessagePart<'_>, der: &[u8]) -> String {
    let from_param = mime::param(p, "smime-type").map(|t| t.to_ascii_lowercase());
    match from_param.as_deref() {
        Some("enveloped-data") => "enveloped-data".into(),
        Some("authenveloped-data") => "auth-enveloped-data".into(),
        Some("signed-data") => "signed-data".into(),
        _ => smime::content_type(der).unwrap_or_else(|| "unreadable".into()),
    }
}

impl From<&SigVerdict> for Sig {
    fn from(v: &SigVerdict) -> Sig {
        match v {
            SigVerdict::Good { signer, emails, .. } => Sig::Good {
                id: signer.clone(),
                emails: emails.clone(),
            },
            SigVerdict::Bad { reason } => Sig::Bad(reason.clone()),
            SigVerdict::UnknownSigner { issuers } => {
                Sig::Unknown(format!("issuer={}", issuers.join("/")))
            }
            SigVerdict::Rejected { reason } => Sig::Rejected(reason.clone()),
        }
    }
}

/// The `X-Popcrypt-Signature` value for OpenPGP signature results.
fn verdict(sigs: &[SigVerdict], from: &mime::Sender, whole: bool) -> String {
    let sigs: Vec<Sig> = sigs.iter().map(Sig::from).collect();
    scheme_verdict("openpgp", &sigs, from, whole)
}

/// The `X-Popcrypt-Signature` value for a set of signature results.
/// `whole` is false when the signature covers only part of the message.
fn scheme_verdict(scheme: &str, sigs: &[Sig], from: &mime::Sender, whole: bool) -> String {
    if sigs.is_empty() {
        return "none".into();
    }
    let inner = verdict_whole(scheme, sigs, from);
    if whole {
        inner
    } else {
        // Never good: text outside the signed block is not covered.
        let prefix = format!("{scheme}; ");
        let detail = inner.strip_prefix(&prefix).unwrap_or(&inner);
        format!(
            "{scheme}; partial (text outside the signed block is not covered); signed-part={detail}"
        )
    }
}

fn verdict_whole(scheme: &str, sigs: &[Sig], from: &mime::Sender) -> String {
    if let Some(Sig::Bad(reason)) = sigs.iter().find(|s| matches!(s, Sig::Bad(_))) {
        return format!("{scheme}; bad ({reason})");
    }
    let goods: Vec<(&String, &Vec<String>)> = sigs
        .iter()
        .filter_map(|s| match s {
            Sig::Good { id, emails } => Some((id, emails)),
            _ => None,
        })
        .collect();
    let label = |id: &String, emails: &Vec<String>| {
        if id.is_empty() {
            emails.first().cloned().unwrap_or_default()
        } else {
            id.clone()
        }
    };
    if let Some((id, emails)) = goods.first() {
        let (from, unclear) = match from {
            mime::Sender::One(a) => (a, None),
            mime::Sender::Unclear {
                shown,
                why,
                address: Some(_),
            } => (shown, Some(why)),
            mime::Sender::Unclear { shown, why, .. } => {
                return format!(
                    "{scheme}; from-mismatch; signer={}; from={shown} ({why})",
                    label(id, emails),
                );
            }
        };
        if let Some((id, _)) = goods
            .iter()
            .find(|(_, e)| e.iter().any(|m| m.eq_ignore_ascii_case(from)))
        {
            if let Some(why) = unclear {
                // The signer is the From address, but the client may show
                // someone else as the sender.
                return format!(
                    "{scheme}; from-mismatch; signer={}; from={from} ({why})",
                    label(id, &emails_of(&goods, id)),
                );
            }
            let shown = if id.is_empty() { from } else { *id };
            return format!("{scheme}; good; signer={shown}");
        }
        return format!(
            "{scheme}; from-mismatch; signer={}; signer-emails={}; from={from}",
            label(id, emails),
            emails.join(","),
        );
    }
    if let Some(Sig::Rejected(reason)) = sigs.iter().find(|s| matches!(s, Sig::Rejected(_))) {
        return format!("{scheme}; rejected (policy: {reason})");
    }
    let who: Vec<&str> = sigs
        .iter()
        .filter_map(|s| match s {
            Sig::Unknown(d) => Some(d.as_str()),
            _ => None,
        })
        .collect();
    format!("{scheme}; unknown-signer; {}", who.join("; "))
}

fn emails_of(goods: &[(&String, &Vec<String>)], id: &String) -> Vec<String> {
    goods
        .iter()
        .find(|(i, _)| *i == id)
        .map(|(_, e)| (*e).clone())
        .unwrap_or_default()
}

/// The verdict word of a signature report: `bad`, `from-mismatch`, ...
fn verdict_word(signature: &str) -> &str {
    let token = signature.split(';').nth(1).unwrap_or("").trim();
    token.split(['(', ' ']).next().unwrap_or("")
}

/// `tag`: prefix the Subject of messages whose signature is not good;
/// `quarantine`: replace a message with a bad signature by a notice with the
/// original attached (nothing is lost).
fn apply_policy(policy: SignaturePolicy, out: Vec<u8>, report: &Report) -> Vec<u8> {
    let word = verdict_word(&report.signature);
    let none = report.signature == "none" || report.signature.starts_with("none;");
    if none || word == "good" || policy == SignaturePolicy::Annotate {
        return out;
    }
    let head_end = header_end(&out);
    let fields = mime::fields(&out[..head_end]);
    match policy {
        SignaturePolicy::Annotate => out,
        SignaturePolicy::Tag => {
            let tag = format!("[popcrypt: signature {word}] ");
            let mut v = Vec::with_capacity(out.len() + tag.len() + 16);
            let mut tagged = false;
            for f in &fields {
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
        SignaturePolicy::Quarantine if word != "bad" => out,
        SignaturePolicy::Quarantine => {
            let boundary = "popcrypt-quarantine-7f3a9c";
            let mut v = Vec::with_capacity(out.len() + 1024);
            for f in &fields {
                if !f.name.starts_with("content-") && f.name != "mime-version" {
                    v.extend_from_slice(f.raw);
                }
            }
            v.extend_from_slice(
                format!(
                    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n\
                     --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                     popcrypt quarantined this message: its signature does not verify\r\n\
                     ({}).\r\nThe original message is attached unchanged.\r\n\r\n\
                     --{boundary}\r\nContent-Type: message/rfc822\r\n\
                     Content-Disposition: attachment; filename=\"original.eml\"\r\n\r\n",
                    report.signature
                )
                .as_bytes(),
            );
            // The attachment is the message as it would otherwise have been
            // delivered, status headers included.
            v.extend_from_slice(&out);
            if !out.ends_with(b"\n") {
                v.extend_from_slice(b"\r\n");
            }
            v.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            v
        }
    }
}

/// Prefix the status headers to a whole message and remove forged ones.
pub fn annotate_message(raw: &[u8], report: &Report) -> Vec<u8> {
    let split = header_end(raw);
    let mut out = report::annotate_header_block(&raw[..split], report);
    out.extend_from_slice(&raw[split..]);
    out
}

/// Outer headers (minus Content-*, forged status headers and fields the
/// protected headers replace) + protected fields + the entity's MIME
/// headers + blank line + the entity's body.
fn assemble(raw: &[u8], report: &Report, r: &Replacement) -> Vec<u8> {
    let outer = &raw[..header_end(raw)];
    let replaced: Vec<String> = mime::fields(&r.protected)
        .into_iter()
        .map(|f| f.name)
        .collect();
    let mut out = report.header_lines();
    for f in mime::fields(outer) {
        let stray_continuation =
            f.name.is_empty() && f.raw.first().is_some_and(|b| *b == b' ' || *b == b'\t');
        if stray_continuation
            || f.name.starts_with("x-popcrypt-")
            || f.name.starts_with("content-")
            || replaced.contains(&f.name)
        {
            continue;
        }
        out.extend_from_slice(f.raw);
    }
    for part in [&r.protected, &r.mime_headers] {
        out.extend_from_slice(part);
        if !part.is_empty() && !part.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(&r.body);
    out
}

impl MessageHook for Transformer {
    fn classify(&self, header_block: &[u8]) -> Disposition {
        if self.keys.is_empty() {
            return Disposition::Stream;
        }
        let pgp = &self.keys.openpgp;
        let has_pgp = !pgp.certs.is_empty() || !pgp.secrets.is_empty();
        let has_smime = !self.keys.smime.is_empty();
        let block = mime::normalize_header_block(header_block);
        let content_types = mime::fields(&block)
            .iter()
            .filter(|f| f.name == "content-type")
            .count();
        if content_types > 1 {
            // Judged (as ambiguous) by the transform, never streamed as if
            // one of them were the type.
            return Disposition::Transform;
        }
        match mime::block_mime_type(&block).as_str() {
            // Inline PGP must be the whole body: the first non-blank bytes
            // of a text body tell (see `sniff`).
            "text/plain" if has_pgp => Disposition::Sniff,
            "multipart/encrypted" | "multipart/signed" => Disposition::Transform,
            "application/pkcs7-mime" | "application/x-pkcs7-mime" | "application/octet-stream"
                if has_smime =>
            {
                Disposition::Transform
            }
            _ => Disposition::Stream,
        }
    }

    fn top_peek_lines(&self) -> u32 {
        let pgp = &self.keys.openpgp;
        if pgp.certs.is_empty() && pgp.secrets.is_empty() {
            0
        } else {
            // Enough for leading blank lines and the armor line, in any
            // transfer encoding.
            20
        }
    }

    fn sniff(&self, header_block: &[u8], body: &[u8]) -> Option<bool> {
        const ARMOR: &[u8] = b"-----BEGIN PGP";
        let window = &body[..body.len().min(crate::pop3::engine::SNIFF_WINDOW)];
        let mut entity = header_block.to_vec();
        entity.extend_from_slice(b"\r\n");
        let base64 = mime::parse(&entity)
            .is_some_and(|m| m.parts[0].encoding == mail_parser::Encoding::Base64);
        let decoded = if base64 {
            // 32 base64 characters make 24 octets, enough to tell; fewer
            // means: look again when more arrive (each call needs new
            // characters, so a sender cannot make this loop long).
            let chars: Vec<u8> = window
                .iter()
                .copied()
                .filter(|b| !b.is_ascii_whitespace())
                .take(32)
                .collect();
            if chars.len() < 32 {
                return (body.len() > crate::pop3::engine::SNIFF_WINDOW).then_some(false);
            }
            match mime::transfer_decode(&chars, mail_parser::Encoding::Base64) {
                Some(d) => d,
                None => return Some(false),
            }
        } else {
            window.to_vec()
        };
        let start = decoded
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(decoded.len());
        let text = &decoded[start..];
        if text.len() >= ARMOR.len() {
            Some(text.starts_with(ARMOR))
        } else if base64 || body.len() > crate::pop3::engine::SNIFF_WINDOW {
            // Blank decoded prefix, or pages of blank lines: not an armored
            // body that is the whole message.
            Some(false)
        } else {
            None
        }
    }

    fn stream_headers(&self, header_block: &[u8], note: Option<&str>) -> Vec<u8> {
        let mut report = Report::default();
        if let Some(note) = note {
            report.encryption = format!("none; not-processed ({note})");
        }
        report::annotate_header_block(header_block, &report)
    }

    fn size_overhead(&self) -> u64 {
        Report::default().header_lines().len() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_transform_adds_status_headers_only() {
        let t = Transformer::new();
        let raw = b"Subject: x\r\nX-Popcrypt-Signature: forged\r\n\r\nbody\r\n.dot\r\n";
        let (out, report) = t.transform(raw);
        assert_eq!(report, Report::default());
        assert_eq!(
            out,
            b"X-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\nSubject: x\r\n\r\nbody\r\n.dot\r\n"
        );
        assert_eq!(header_end(b"A: b\r\n\r\nbody"), 6);
        assert_eq!(header_end(b"A: b\r\n"), 6);
    }

    #[test]
    fn legacy_display_part_is_removed() {
        let inner = b"Content-Type: multipart/mixed; boundary=\"b\"; protected-headers=\"v1\"\r\nSubject: real\r\n\r\n--b\r\nContent-Type: text/rfc822-headers; protected-headers=\"v1\"\r\n\r\nSubject: real\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
        let out = drop_legacy_display(inner.to_vec());
        assert_eq!(
            String::from_utf8_lossy(&out),
            "Content-Type: multipart/mixed; boundary=\"b\"; protected-headers=\"v1\"\r\nSubject: real\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n"
        );
        let plain = b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\nx\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n";
        assert_eq!(drop_legacy_display(plain.to_vec()), plain.to_vec());
    }

    #[test]
    fn signature_policies() {
        let report = Report {
            encryption: "none".into(),
            signature: "openpgp; bad (tampered)".into(),
        };
        let msg = b"X-Popcrypt-Encryption: none\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n".to_vec();
        let tagged = apply_policy(SignaturePolicy::Tag, msg.clone(), &report);
        assert!(
            String::from_utf8_lossy(&tagged).contains("Subject: [popcrypt: signature bad] hi\r\n")
        );
        let q = apply_policy(SignaturePolicy::Quarantine, msg.clone(), &report);
        let qs = String::from_utf8_lossy(&q);
        assert!(qs.contains("multipart/mixed") && qs.contains("message/rfc822"));
        assert!(
            q.windows(msg.len()).any(|w| w == msg.as_slice()),
            "original kept"
        );
        let good = Report {
            encryption: "none".into(),
            signature: "openpgp; good; signer=X".into(),
        };
        assert_eq!(apply_policy(SignaturePolicy::Tag, msg.clone(), &good), msg);
        assert_eq!(
            apply_policy(SignaturePolicy::Annotate, msg.clone(), &report),
            msg
        );
        assert_eq!(
            verdict_word("openpgp; from-mismatch; signer=x"),
            "from-mismatch"
        );
        assert_eq!(verdict_word("openpgp; rejected (policy: SHA1)"), "rejected");
    }

    #[test]
    fn sniffing_text_bodies() {
        let mut ring = Keyring::default();
        let cert = sequoia_openpgp::cert::CertBuilder::general_purpose(Some("a@x.org"))
            .generate()
            .unwrap()
            .0;
        ring.openpgp.certs.push(cert);
        let t = Transformer::with_keys(ring, 1 << 20);
        let head = b"Content-Type: text/plain\r\n";
        assert_eq!(t.classify(head), Disposition::Sniff);
        assert_eq!(
            t.classify(b"Content-Type: text/html\r\n"),
            Disposition::Stream
        );
        assert_eq!(t.sniff(head, b"\r\n  \r\n"), None);
        assert_eq!(
            t.sniff(head, b"\r\n-----BEGIN PGP MESSAGE-----\r\n"),
            Some(true)
        );
        assert_eq!(t.sniff(head, b"Hello, this is plain text\r\n"), Some(false));
        let b64 = b"Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n";
        // "-----BEGIN PGP MESSAGE-----" in base64
        assert_eq!(
            t.sniff(b64, b"LS0tLS1CRUdJTiBQR1AgTUVTU0FHRS0tLS0t\r\n"),
            Some(true)
        );
        assert_eq!(
            t.sniff(b64, b"SGVsbG8gd29ybGQsIHBsYWluIHRleHQ=\r\n"),
            Some(false)
        );
        assert_eq!(t.sniff(head, &vec![b' '; 9000]), Some(false));
    }

    #[test]
    fn verdicts() {
        let good = SigVerdict::Good {
            signer: "AA".into(),
            emails: vec!["a@x.org".into()],
            created: None,
        };
        let from = mime::Sender::One("a@x.org".into());
        assert_eq!(
            verdict(std::slice::from_ref(&good), &from, true),
            "openpgp; good; signer=AA"
        );
        assert!(verdict(
            std::slice::from_ref(&good),
            &mime::Sender::One("b@x.org".into()),
            true
        )
        .starts_with("openpgp; from-mismatch"));
        assert!(verdict(
            std::slice::from_ref(&good),
            &mime::Sender::Unclear {
                shown: "none".into(),
                why: "exactly one From address required".into(),
                address: None,
            },
            true
        )
        .starts_with("openpgp; from-mismatch"));
        assert!(verdict(std::slice::from_ref(&good), &from, false).starts_with("openpgp; partial"));
        let bad = SigVerdict::Bad { reason: "x".into() };
        assert!(verdict(&[good, bad], &from, true).starts_with("openpgp; bad"));
        let rej = SigVerdict::Rejected {
            reason: "SHA1".into(),
        };
        assert!(verdict(&[rej], &from, true).starts_with("openpgp; rejected"));
        let unk = SigVerdict::UnknownSigner {
            issuers: vec!["K".into()],
        };
        assert_eq!(
            verdict(&[unk], &from, true),
            "openpgp; unknown-signer; issuer=K"
        );
        assert_eq!(verdict(&[], &from, true), "none");
    }
}
