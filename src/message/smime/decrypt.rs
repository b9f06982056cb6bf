//! Decrypting EnvelopedData and AuthEnvelopedData with our identities.

use cms::enveloped_data::RecipientInfo;
use openssl::error::ErrorStack;

use super::certs::{named_recipients, recipient_strings};
use super::cms::{
    content_type_name, parse, EnvelopedHead, ParseFail, Parsed, CONTENT_CIPHERS,
    OID_AUTH_ENVELOPED_DATA, OID_ENVELOPED_DATA,
};
use super::{count, Decrypted, SmimeError, MAX_KEY_ATTEMPTS, PRIVATE_KEY_TRIES};
use crate::keys::ossl::{self, reasons};
use crate::keys::smime::{legacy_provider, Identity};
use crate::keys::SmimeKeys;

/// At most this many recipients are listed in a "not for us" error.
const MAX_LISTED_RECIPIENTS: usize = 8;

/// What the envelope says before anything is decrypted.
struct Envelope {
    recip_infos: Vec<RecipientInfo>,
    /// The recipients as shown in a "not for us" error.
    recipients: Vec<String>,
    auth_enveloped: bool,
    algorithm: String,
    legacy_algorithm: bool,
}

/// Decrypt EnvelopedData or AuthEnvelopedData (DER or BER). `cap` bounds the
/// plaintext.
pub fn decrypt(keys: &SmimeKeys, der: &[u8], cap: usize) -> Result<Decrypted, SmimeError> {
    let parsed = parse(der).map_err(|e| match e {
        ParseFail::Malformed(m) => SmimeError::Corrupt(m),
        ParseFail::Internal(r) => SmimeError::Internal(r),
    })?;
    let env = envelope(&parsed, cap)?;
    if env.legacy_algorithm {
        legacy_provider();
    }
    let tries = identities_to_try(keys, &env.recip_infos);
    // The first failure of a named identity says why; an internal failure
    // of any try is reported rather than "not for us".
    let mut first_error: Option<(String, ErrorStack)> = None;
    let mut internal: Option<ErrorStack> = None;
    for (id, named) in tries.into_iter().take(MAX_KEY_ATTEMPTS) {
        count(&PRIVATE_KEY_TRIES);
        match parsed.ossl.decrypt(&id.key, &id.cert) {
            Ok(content) => {
                if content.len() > cap {
                    return Err(SmimeError::TooLarge(cap));
                }
                return Ok(Decrypted {
                    content,
                    auth_enveloped: env.auth_enveloped,
                    algorithm: env.algorithm,
                    legacy_algorithm: env.legacy_algorithm,
                });
            }
            Err(e) if named && first_error.is_none() => first_error = Some((id.subject.clone(), e)),
            Err(e) if internal.is_none() && ossl::is_internal(&e) => internal = Some(e),
            Err(_) => {}
        }
    }
    match (first_error, internal) {
        (Some((subject, e)), _) => Err(classify_decrypt_error(
            &e,
            &env.algorithm,
            env.auth_enveloped,
            &subject,
        )),
        (None, Some(e)) => Err(SmimeError::Internal(reasons(&e))),
        (None, None) => Err(SmimeError::NotRecipient {
            recipients: env.recipients,
        }),
    }
}

/// Read the envelope and refuse what cannot be decrypted: not encrypted,
/// malformed, an algorithm OpenSSL's CMS lacks, ciphertext over the cap,
/// detached ciphertext.
fn envelope(parsed: &Parsed<'_>, cap: usize) -> Result<Envelope, SmimeError> {
    let auth_enveloped = match parsed.info.content_type.to_string().as_str() {
        OID_ENVELOPED_DATA => false,
        OID_AUTH_ENVELOPED_DATA => true,
        _ => {
            return Err(SmimeError::Other(format!(
                "not encrypted: the CMS content type is {}",
                content_type_name(&parsed.info.content_type)
            )))
        }
    };
    let head: EnvelopedHead = parsed.info.content.decode_as().map_err(|e| {
        SmimeError::Corrupt(format!(
            "malformed {}: {e}",
            content_type_name(&parsed.info.content_type)
        ))
    })?;
    let (recip_infos, eci) = (head.recip_infos, head.content);
    let alg_oid = eci.content_enc_alg.oid.to_string();
    let known = CONTENT_CIPHERS.iter().find(|(o, ..)| *o == alg_oid);
    let (algorithm, legacy_algorithm) = match known {
        Some((_, name, legacy, _)) => (name.to_string(), *legacy),
        None => (alg_oid.clone(), false),
    };
    if let Some((_, name, _, false)) = known {
        return Err(SmimeError::Unsupported(format!(
            "content encryption {name} is not supported by OpenSSL's CMS"
        )));
    }
    let mut recipients = recipient_strings(&recip_infos);
    if recipients.len() > MAX_LISTED_RECIPIENTS {
        let more = recipients.len() - MAX_LISTED_RECIPIENTS;
        recipients.truncate(MAX_LISTED_RECIPIENTS);
        recipients.push(format!("and {more} more"));
    }
    match &eci.encrypted_content {
        // Block-cipher and AEAD plaintext is never longer than the ciphertext.
        Some(ct) if ct.as_bytes().len() > cap.saturating_add(16) => {
            return Err(SmimeError::TooLarge(cap))
        }
        Some(_) => {}
        None => {
            return Err(SmimeError::Unsupported(
                "detached encrypted content (no encryptedContent)".into(),
            ))
        }
    }
    // The copy of the ciphertext (`eci`) is freed here, before decrypting.
    Ok(Envelope {
        recip_infos,
        recipients,
        auth_enveloped,
        algorithm,
        legacy_algorithm,
    })
}

/// The identities tried with their private key, and whether our reading
/// names each as a recipient.
///
/// Our identities named as recipients are read with the `cms` crate:
/// OpenSSL 3.0's CMS_decrypt returns an empty error queue when the key type
/// fits a RecipientInfo type but the certificate matches none, so "not for
/// us" cannot be told from its errors alone. RecipientInfos for other
/// people cost a comparison each, never a private-key operation; at most
/// [`MAX_KEY_ATTEMPTS`] named identities are tried with their key.
///
/// When our reading names none of them, OpenSSL's own certificate
/// comparison (which may accept an encoding the `cms` crate refuses) gets
/// one try per identity: it uses the key only on a RecipientInfo that names
/// the certificate, so these tries cost no key operation otherwise.
fn identities_to_try<'k>(
    keys: &'k SmimeKeys,
    recip_infos: &[RecipientInfo],
) -> Vec<(&'k Identity, bool)> {
    let named_flags = named_recipients(&keys.identities, recip_infos);
    let named: Vec<&Identity> = keys
        .identities
        .iter()
        .zip(&named_flags)
        .filter(|(_, n)| **n)
        .map(|(id, _)| id)
        .collect();
    if named.len() > MAX_KEY_ATTEMPTS {
        tracing::warn!(
            named = named.len(),
            tried = MAX_KEY_ATTEMPTS,
            "more of our S/MIME identities are named as recipients than are tried"
        );
    }
    if named.is_empty() {
        keys.identities.iter().map(|id| (id, false)).collect()
    } else {
        named.into_iter().map(|id| (id, true)).collect()
    }
}

/// Why a named identity could not decrypt, from OpenSSL's error codes
/// (the reasons' text is only shown, never matched).
fn classify_decrypt_error(
    e: &ErrorStack,
    algorithm: &str,
    auth: bool,
    subject: &str,
) -> SmimeError {
    let r = reasons(e);
    if ossl::is_internal(e) {
        return SmimeError::Internal(r);
    }
    if ossl::any_of(e, &[(ossl::ERR_LIB_CMS, ossl::CMS_R_NO_MATCHING_RECIPIENT)]) {
        // The certificate is named, but OpenSSL has no RecipientInfo type
        // for its key type (e.g. X25519 key agreement in OpenSSL 3.0).
        return SmimeError::Unsupported(format!(
            "the key type of {subject} is not supported for this recipient by OpenSSL's CMS"
        ));
    }
    if ossl::is_unsupported_or_unknown(e) {
        return SmimeError::Unsupported(format!("{algorithm}: {r}"));
    }
    if auth {
        SmimeError::Corrupt(format!(
            "authentication failed ({algorithm}): the message was modified or is not for this key ({r})"
        ))
    } else {
        SmimeError::Corrupt(format!(
            "decryption failed ({algorithm}): corrupt data or not encrypted for this key ({r})"
        ))
    }
}
