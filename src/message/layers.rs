//! A decrypted or unwrapped entity: the signatures and S/MIME layers
//! inside it, protected headers, and the report on it.

use super::judge::{self, Sig};
use super::verdict::{
    Algorithm, BadReason, Decryption, Details, Encryption, Failure, InnerLayer, Scheme, Signature,
};
use super::{defuse, mime, openpgp, smime, smime_mime, strict};
use super::{Processed, Replacement, Report, Transformer, PROTECTABLE};

/// The outermost layer of a message, as its handler found it.
pub(super) struct Outer {
    /// The scheme of the outermost layer.
    pub scheme: Scheme,
    /// The signatures handed over with the entity were made inside the
    /// decryption (OpenPGP signed and encrypted), not over the ciphertext.
    pub sigs_inside: bool,
    /// The decryption done by the handler, or None when the outer layer
    /// only signed (opaque or detached signature).
    pub decryption: Option<Decryption>,
    /// That decryption had no integrity protection (S/MIME CBC).
    pub no_integrity: bool,
    /// The handler unwrapped opaque signed-data.
    pub unwrapped: bool,
}

impl Outer {
    pub fn decrypted(decryption: Decryption, no_integrity: bool) -> Outer {
        Outer {
            scheme: decryption.scheme,
            // OpenPGP verifies signatures while decrypting: they are inside.
            sigs_inside: decryption.scheme == Scheme::OpenPgp,
            decryption: Some(decryption),
            no_integrity,
            unwrapped: false,
        }
    }

    pub fn signed(unwrapped: bool) -> Outer {
        Outer {
            scheme: Scheme::Smime,
            sigs_inside: false,
            decryption: None,
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
        algorithm: Algorithm,
        auth: bool,
        /// How many signatures were known before this decryption: later
        /// ones are over its plaintext.
        sigs_before: usize,
    },
    Failed(String),
    /// A decrypted or unwrapped entity whose header block reads more than
    /// one way: nothing of it is delivered.
    Ambiguous(String),
}

/// Signature results with the scheme that made them.
pub(super) type Sigs = Vec<(Scheme, Sig)>;

/// The header fields of a delivered entity.
struct Headers {
    /// Protected fields that replace the outer fields of the same name.
    protected: Vec<u8>,
    /// Their names.
    protected_names: Vec<String>,
    /// The entity's own Content-* fields.
    mime: Vec<u8>,
    /// The sender as the client will see it.
    from: mime::Sender,
}

impl Transformer {
    /// Deliver a decrypted or unwrapped MIME entity: look inside it for
    /// signatures and further S/MIME layers, apply protected headers, and
    /// build the replacement and the report. Signatures are verified over
    /// the bytes as decrypted; line ends are normalised only for delivery.
    pub(super) fn deliver(
        &self,
        entity: Vec<u8>,
        mut sigs: Sigs,
        outer: Outer,
        outer_head: &[u8],
        date: Option<i64>,
    ) -> Processed {
        let mut notes = Vec::new();
        if outer.unwrapped {
            notes.push(Layer::Unwrapped);
        }
        let outer_sigs = if outer.sigs_inside { 0 } else { sigs.len() };
        let (entity, protected_src) = self.inner_layers(entity, 0, &mut sigs, &mut notes, date);
        // The entity's own header block must read one way only: a second
        // Content-Type, or one hidden behind a lone CR, is never delivered.
        if let Some(why) = notes.iter().find_map(|n| match n {
            Layer::Ambiguous(why) => Some(why.clone()),
            _ => None,
        }) {
            return Transformer::none(Report {
                encryption: Encryption::Failed {
                    scheme: Some(outer.scheme),
                    reason: Failure::AmbiguousInside(why),
                },
                ..Report::default()
            });
        }
        let entity = crate::pop3::response::crlf_lines(&entity);
        let first_inside_is_top = outer.decryption.is_none();
        let (decryption, no_integrity, inner_from) = top_decryption(outer, outer_sigs, &notes);
        let (head_end, body_start) = mime::entity_split(&entity);
        let headers = entity_headers(&entity[..head_end], protected_src.as_deref(), outer_head);
        // A signature over a ciphertext vouches for the ciphertext, not for
        // what it says: only signatures inside the outermost decryption
        // judge the plaintext; those outside are reported as `outer=`.
        let split = if decryption.is_some() {
            inner_from.min(sigs.len())
        } else {
            0
        };
        let (signature, vouched) = split_signatures(&sigs, split, &headers.from);
        let mut details = Details {
            no_integrity: no_integrity && !vouched,
            ..Details::default()
        };
        let mut body = entity[body_start..].to_vec();
        let mut mime_headers = headers.mime;
        // EFAIL: nothing decrypted without integrity may load remote content.
        if details.no_integrity {
            if let Some(d) = defuse::defuse(&mime_headers, &body) {
                details.html = Some(d.change);
                (mime_headers, body) = (d.headers, d.body);
            }
        }
        details.layers = inner_report(&notes, first_inside_is_top);
        details.protected_headers = headers.protected_names;
        let encryption = match decryption {
            Some(decryption) => Encryption::Decrypted {
                decryption,
                details,
            },
            None if details == Details::default() => Encryption::None,
            None => Encryption::Plain(details),
        };
        Processed {
            report: Report {
                encryption,
                signature,
            },
            replacement: Some(Replacement {
                protected: headers.protected,
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
        sigs: &mut Sigs,
        notes: &mut Vec<Layer>,
        date: Option<i64>,
    ) -> (Vec<u8>, Option<Vec<u8>>) {
        let entity = drop_legacy_display(entity);
        if mime::starts_with_header(&entity) {
            if let Err(e) = strict::top_entity(&entity) {
                notes.push(Layer::Ambiguous(e.to_string()));
                return (entity, None);
            }
        }
        let (unwrap, protected) = {
            let Some(inner) = mime::parse_structure(&entity) else {
                return (entity, None);
            };
            let iroot = &inner.parts[0];
            let mut protected =
                is_protected(iroot).then(|| entity[..mime::header_end(&entity)].to_vec());
            let itype = mime::mime_type(iroot);
            let proto = mime::param(iroot, "protocol")
                .unwrap_or("")
                .to_ascii_lowercase();
            if itype == "multipart/signed" {
                // Only headers the signature covers (in the signed part)
                // count as protected, not those of the unsigned wrapper.
                protected = None;
                let signed = self.inner_multipart_signed(&entity, &proto, sigs, date);
                (None, signed.or(protected))
            } else if depth < 3 && smime_mime::is_pkcs7_mime(iroot) {
                let der = smime_mime::cms_bytes(iroot);
                let kind = smime_mime::smime_kind(iroot, &der);
                (self.inner_cms(&der, &kind, sigs, notes, date), protected)
            } else {
                (None, protected)
            }
        };
        match unwrap {
            Some(c) => self.inner_layers(c, depth + 1, sigs, notes, date),
            None => (entity, protected),
        }
    }

    /// A multipart/signed inside a decryption: its signatures, and the
    /// header block of the signed part when it carries protected headers.
    fn inner_multipart_signed(
        &self,
        entity: &[u8],
        proto: &str,
        sigs: &mut Sigs,
        date: Option<i64>,
    ) -> Option<Vec<u8>> {
        let scheme = match proto {
            "application/pgp-signature" => Scheme::OpenPgp,
            "application/pkcs7-signature" | "application/x-pkcs7-signature" => Scheme::Smime,
            _ => return None,
        };
        let sig_type = |t: &str| match scheme {
            Scheme::OpenPgp => t == "application/pgp-signature",
            Scheme::Smime => smime_mime::is_pkcs7_signature_type(t),
        };
        let (first, sig) = match inner_signed(entity, sig_type) {
            Ok(split) => split,
            Err(why) => {
                sigs.push((scheme, Sig::Bad(why)));
                return None;
            }
        };
        match scheme {
            Scheme::OpenPgp => {
                let v = openpgp::verify_detached(&self.keys.openpgp, &sig, first.raw);
                let v = openpgp::check_message_date(v, date);
                sigs.extend(v.iter().map(|v| (scheme, Sig::from(v))));
            }
            Scheme::Smime => {
                let v = smime::verify_detached(&self.keys.smime, &sig, first.raw);
                let v = smime::check_message_date(v, date);
                sigs.extend(v.iter().map(|v| (scheme, Sig::from(v))));
            }
        }
        is_protected_entity(&first).then(|| first.head().to_vec())
    }

    /// An S/MIME layer inside a decryption: verified or decrypted; the
    /// content to look into next.
    fn inner_cms(
        &self,
        der: &[u8],
        kind: &str,
        sigs: &mut Sigs,
        notes: &mut Vec<Layer>,
        date: Option<i64>,
    ) -> Option<Vec<u8>> {
        match kind {
            "signed-data" => {
                let cap = self.cap_for(der.len());
                let (content, v) = smime::verify_opaque(&self.keys.smime, der, cap);
                let v = smime::check_message_date(v, date);
                sigs.extend(v.iter().map(|v| (Scheme::Smime, Sig::from(v))));
                if content.is_some() {
                    notes.push(Layer::Unwrapped);
                }
                content
            }
            "enveloped-data" | "auth-enveloped-data" => {
                match smime::decrypt(&self.keys.smime, der, self.cap_for(der.len())) {
                    Ok(d) => {
                        notes.push(Layer::Decrypted {
                            algorithm: smime_mime::algorithm(&d),
                            auth: d.auth_enveloped,
                            sigs_before: sigs.len(),
                        });
                        Some(d.content)
                    }
                    Err(e) => {
                        notes.push(Layer::Failed(e.to_string()));
                        None
                    }
                }
            }
            _ => None,
        }
    }
}

/// The signature verdict when the first `split` results are over the
/// ciphertext, and whether a good signature inside vouches for the text.
fn split_signatures(sigs: &Sigs, split: usize, from: &mime::Sender) -> (Signature, bool) {
    let (outside, inside) = sigs.split_at(split);
    let inside_scheme = inside.first().map_or(Scheme::OpenPgp, |(s, _)| *s);
    let inside: Vec<Sig> = inside.iter().map(|(_, v)| v.clone()).collect();
    let outside_scheme = outside.first().map(|(s, _)| *s);
    let outside: Vec<Sig> = outside.iter().map(|(_, v)| v.clone()).collect();
    let signature = judge::with_outer(
        (inside_scheme, &inside),
        outside_scheme.map(|s| (s, &outside[..])),
        from,
    );
    (signature, judge::any_good(&inside))
}

/// The decryption that names the message, whether it had integrity
/// protection, and how many signatures were made before it (over its
/// ciphertext). Without an outer decryption, the first one found inside
/// names the message's encryption.
fn top_decryption(
    outer: Outer,
    outer_sigs: usize,
    notes: &[Layer],
) -> (Option<Decryption>, bool, usize) {
    if let Some(d) = outer.decryption {
        return (Some(d), outer.no_integrity, outer_sigs);
    }
    notes
        .iter()
        .find_map(|n| match n {
            Layer::Decrypted {
                algorithm,
                auth,
                sigs_before,
            } => Some((
                Some(Decryption {
                    scheme: Scheme::Smime,
                    algorithm: Some(algorithm.clone()),
                }),
                !auth,
                *sigs_before,
            )),
            _ => None,
        })
        .unwrap_or((None, false, 0))
}

/// The inner layers as reported, in the order met: the first inner
/// decryption is left out when it names the message.
fn inner_report(notes: &[Layer], mut first_inside_is_top: bool) -> Vec<InnerLayer> {
    let mut out = Vec::new();
    for n in notes {
        match n {
            Layer::Unwrapped if !out.contains(&InnerLayer::Unwrapped) => {
                out.push(InnerLayer::Unwrapped)
            }
            Layer::Unwrapped => {}
            Layer::Decrypted { .. } if first_inside_is_top => first_inside_is_top = false,
            Layer::Decrypted { algorithm, .. } => {
                out.push(InnerLayer::Decrypted(algorithm.clone()))
            }
            Layer::Failed(e) => out.push(InnerLayer::Failed(e.clone())),
            Layer::Ambiguous(_) => {}
        }
    }
    out
}

/// The protected fields, the entity's MIME fields and the sender as the
/// client will see it: protected fields first, then the outer fields they
/// do not replace.
fn entity_headers(head: &[u8], protected_src: Option<&[u8]>, outer_head: &[u8]) -> Headers {
    let protected = protected_src
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
    let mut view = protected.clone();
    for f in mime::fields(outer_head) {
        if !protected_names.contains(&f.name) && !f.name.starts_with("x-popcrypt-") {
            view.extend_from_slice(f.raw);
        }
    }
    let from = mime::sender(&view);
    let mime = mime::fields(head)
        .into_iter()
        .filter(|f| f.name.starts_with("content-"))
        .flat_map(|f| f.raw.to_vec())
        .collect();
    Headers {
        protected,
        protected_names,
        mime,
        from,
    }
}

/// Remove the legacy display part (RFC 9788 `hp-legacy-display="1"`, or the
/// older `text/rfc822-headers; protected-headers="v1"` / text part of the
/// "memory hole" practice) that repeats the protected headers in the body
/// for clients that cannot show them. The client sees the real headers.
pub(super) fn drop_legacy_display(plaintext: Vec<u8>) -> Vec<u8> {
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
            return drop_legacy_element(&plaintext).unwrap_or(plaintext);
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

/// The text/plain entity without its Legacy Display Element, which ends at
/// the first empty line (CRLF or LF ends); `None` without one.
fn drop_legacy_element(plaintext: &[u8]) -> Option<Vec<u8>> {
    let start = mime::body_start(plaintext);
    let body = &plaintext[start..];
    let mut pos = 0;
    let cut = crate::text::lines(body, crate::text::LoneCr::Content).find_map(|l| {
        pos += l.len();
        (l.text.is_empty() && !l.end.is_empty()).then_some(pos)
    })?;
    let mut out = plaintext[..start].to_vec();
    out.extend_from_slice(&body[cut..]);
    Some(out)
}

/// The signed part and the decoded signature of a multipart/signed inside a
/// decryption, read strictly; the reason for `bad` otherwise.
fn inner_signed(
    entity: &[u8],
    sig_type: impl Fn(&str) -> bool,
) -> Result<(strict::Entity<'_>, Vec<u8>), BadReason> {
    let (_, kids) = strict::multipart(entity).map_err(|e| BadReason::Ambiguous(e.to_string()))?;
    let [first, second] =
        <[strict::Entity<'_>; 2]>::try_from(kids).map_err(|_| BadReason::MalformedInside)?;
    if !sig_type(second.mime_type()) {
        return Err(BadReason::MalformedInside);
    }
    let sig = second.decoded_body().ok_or(BadReason::MalformedInside)?;
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn legacy_display_element_ends_at_the_first_empty_line() {
        let e =
            b"Content-Type: text/plain; hp-legacy-display=\"1\"\r\n\r\nSubject: s\r\n\r\nbody\r\n";
        assert_eq!(
            drop_legacy_display(e.to_vec()),
            b"Content-Type: text/plain; hp-legacy-display=\"1\"\r\n\r\nbody\r\n".to_vec()
        );
        let none = b"Content-Type: text/plain; hp-legacy-display=\"1\"\r\n\r\nSubject: s\r\n";
        assert_eq!(drop_legacy_display(none.to_vec()), none.to_vec());
    }
}
