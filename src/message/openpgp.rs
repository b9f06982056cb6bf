//! OpenPGP with sequoia-openpgp (streaming Decryptor and DetachedVerifier,
//! StandardPolicy). No plaintext leaves this module before the whole
//! message, integrity protection included, has been processed. Cleartext
//! signatures are parsed here, strictly, and verified as detached
//! signatures over the text as parsed.

use std::io::Read;

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::crypto::SessionKey;
use openpgp::packet::{Tag, PKESK, SKESK};
use openpgp::parse::stream::*;
use openpgp::parse::{PacketParser, Parse};
use openpgp::policy::StandardPolicy;
use openpgp::types::{HashAlgorithm, SymmetricAlgorithm};
use openpgp::KeyHandle;

use crate::keys::PgpKeys;

/// The result of checking one signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigVerdict {
    /// Valid signature by a known, valid key.
    Good {
        /// Primary key fingerprint of the signer's certificate.
        signer: String,
        /// Normalised email addresses of the signer's valid User IDs.
        emails: Vec<String>,
        /// The signature's creation time (seconds since the Unix epoch).
        created: Option<i64>,
    },
    /// No certificate for the issuer.
    UnknownSigner { issuers: Vec<String> },
    /// The signature does not verify (tampered) or cannot be parsed.
    Bad { reason: String },
    /// Rejected by policy: weak hash, expired or revoked key, unbound key.
    Rejected { reason: String },
}

/// At most this many signature packets (and as many one-pass signature
/// packets) are examined in one message: a detached signature, a cleartext
/// signature, or an (encrypted or signed-only) OpenPGP message. One more
/// stops sequoia's parse and the message is reported as having too many
/// signatures. Every signature costs a hash context over
/// the signed data (and sequoia's detached verifier matches every signature
/// against every hash context, quadratic in their number), so the number
/// must be bounded before sequoia sees them all.
pub const MAX_SIGNATURES: usize = 16;

/// At most this many private-key operations (PKESK decryption attempts)
/// per message. A PKESK naming a key that is not ours costs nothing and is
/// not counted; an anonymous (wildcard) one costs one attempt per secret
/// key of the same algorithm.
pub const MAX_KEY_OPERATIONS: usize = 32;

/// Raised from [`VerificationHelper::inspect`] when a message holds more
/// than [`MAX_SIGNATURES`] signatures (or one-pass signatures): it stops
/// sequoia's parse at once.
#[derive(Debug, thiserror::Error)]
#[error(
    "too many signatures: more than {MAX_SIGNATURES} signature packets in one message; \
     at most {MAX_SIGNATURES} are examined"
)]
struct TooManySignatures;

/// Raised from [`DecryptionHelper::decrypt`] when the private-key budget
/// is spent before a session key was found.
#[derive(Debug, thiserror::Error)]
#[error(
    "gave up after {MAX_KEY_OPERATIONS} private-key operations; too many recipients could \
     be ours"
)]
struct KeyBudgetExhausted;

/// Raised from [`DecryptionHelper::decrypt`] when no PKESK could be
/// decrypted with our keys.
#[derive(Debug, thiserror::Error)]
#[error("no matching secret key")]
struct NoMatchingKey;

/// What decryption saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub recipients: Vec<String>,
    pub was_encrypted: bool,
    pub compressed: bool,
    pub sigs: Vec<SigVerdict>,
    pub session_key_rejected: bool,
    /// Signature packets sequoia parsed (the parse stops at
    /// `MAX_SIGNATURES + 1`).
    pub signature_packets: usize,
    /// Hash algorithms of the parsed signature packets, in order.
    pub signature_hashes: Vec<HashAlgorithm>,
    /// Private-key operations spent (at most [`MAX_KEY_OPERATIONS`]).
    pub key_operations: usize,
}

/// Why decryption produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum DecryptError {
    #[error("no secret key for {0}")]
    NoSecretKey(String),
    #[error("integrity check failed: {0}")]
    Integrity(String),
    #[error("decrypted content exceeds {0} octets")]
    TooLarge(usize),
    #[error(
        "too many signatures: more than {MAX_SIGNATURES} signature packets in the message; \
         not decrypted"
    )]
    TooManySignatures,
    #[error("no session key found for {0}: {KeyBudgetExhausted}")]
    KeyBudget(String),
    #[error("{0}")]
    Other(String),
}

/// Packets seen by [`Helper::inspect`], kept outside the helper (sequoia
/// drops the helper when its parse fails).
#[derive(Debug, Default)]
struct Counts {
    signatures: std::cell::Cell<usize>,
    one_pass: std::cell::Cell<usize>,
}

impl Counts {
    fn too_many(&self) -> bool {
        self.signatures.get() > MAX_SIGNATURES || self.one_pass.get() > MAX_SIGNATURES
    }
}

struct Helper<'a> {
    keys: &'a PgpKeys,
    counts: &'a Counts,
    out: Outcome,
}

impl<'a> Helper<'a> {
    fn new(keys: &'a PgpKeys, counts: &'a Counts) -> Self {
        Helper {
            keys,
            counts,
            out: Outcome::default(),
        }
    }
}

impl VerificationHelper for Helper<'_> {
    /// Called by sequoia for every packet before it is processed: counts
    /// signatures and stops the parse beyond [`MAX_SIGNATURES`].
    fn inspect(&mut self, pp: &PacketParser<'_>) -> openpgp::Result<()> {
        let counter = match pp.packet.tag() {
            Tag::Signature => &self.counts.signatures,
            Tag::OnePassSig => &self.counts.one_pass,
            _ => return Ok(()),
        };
        counter.set(counter.get() + 1);
        if counter.get() > MAX_SIGNATURES {
            return Err(TooManySignatures.into());
        }
        if let openpgp::Packet::Signature(sig) = &pp.packet {
            self.out.signature_hashes.push(sig.hash_algo());
        }
        Ok(())
    }

    fn get_certs(&mut self, ids: &[KeyHandle]) -> openpgp::Result<Vec<Cert>> {
        Ok(self
            .keys
            .certs
            .iter()
            .filter(|c| {
                c.keys()
                    .any(|k| ids.iter().any(|id| id.aliases(k.key().key_handle())))
            })
            .cloned()
            .collect())
    }

    fn check(&mut self, structure: MessageStructure) -> openpgp::Result<()> {
        for layer in structure.into_iter() {
            match layer {
                MessageLayer::Compression { .. } => self.out.compressed = true,
                MessageLayer::Encryption { .. } => self.out.was_encrypted = true,
                MessageLayer::SignatureGroup { results } => {
                    self.out.sigs.extend(results.into_iter().map(classify));
                }
            }
        }
        Ok(())
    }
}

fn classify(r: VerificationResult<'_>) -> SigVerdict {
    match r {
        Ok(GoodChecksum { ka, sig }) => {
            // Only User IDs validly bound and not revoked (under the policy,
            // now) may vouch for a From address.
            let cert = ka.valid_cert();
            let emails = cert
                .userids()
                .revoked(false)
                .filter_map(|u| u.userid().email_normalized().ok().flatten())
                .collect();
            let created = sig
                .signature_creation_time()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok());
            SigVerdict::Good {
                signer: cert.fingerprint().to_hex(),
                emails,
                created,
            }
        }
        Err(VerificationError::MissingKey { sig }) => SigVerdict::UnknownSigner {
            issuers: sig.get_issuers().iter().map(|h| h.to_hex()).collect(),
        },
        Err(VerificationError::UnknownSignature { sig }) => SigVerdict::Bad {
            reason: format!("unparsable signature: {}", sig.error()),
        },
        Err(VerificationError::MalformedSignature { error, .. }) => SigVerdict::Bad {
            reason: format!("malformed signature: {error}"),
        },
        Err(VerificationError::UnboundKey { cert, error, .. }) => SigVerdict::Rejected {
            reason: format!(
                "signing key not validly bound to {}: {error}",
                cert.fingerprint()
            ),
        },
        Err(VerificationError::BadKey { ka, error, .. }) => SigVerdict::Rejected {
            reason: format!("signing key {} not valid: {error}", ka.key().fingerprint()),
        },
        Err(VerificationError::BadSignature { error, .. }) => {
            match error.downcast_ref::<openpgp::Error>() {
                Some(openpgp::Error::PolicyViolation(what, _)) => SigVerdict::Rejected {
                    reason: format!("{what} signatures are not accepted"),
                },
                _ => SigVerdict::Bad {
                    reason: format!("signature does not verify: {error}"),
                },
            }
        }
        Err(e) => SigVerdict::Bad {
            reason: e.to_string(),
        },
    }
}

impl DecryptionHelper for Helper<'_> {
    fn decrypt(
        &mut self,
        pkesks: &[PKESK],
        _skesks: &[SKESK],
        sym_algo: Option<SymmetricAlgorithm>,
        decrypt: &mut dyn FnMut(Option<SymmetricAlgorithm>, &SessionKey) -> bool,
    ) -> openpgp::Result<Option<Cert>> {
        self.out.recipients = pkesks.iter().map(recipient_name).collect();
        // A sender can list any number of recipients. A PKESK that names a
        // key of someone else is skipped by comparing its key ID (no cost);
        // only private-key operations count against the budget. PKESKs
        // naming one of our keys go first, anonymous ones (which could be
        // for any of our keys of the same algorithm) after them.
        for anonymous in [false, true] {
            for pkesk in pkesks {
                let rcpt = pkesk.recipient();
                if rcpt.is_none() != anonymous {
                    continue;
                }
                for sk in &self.keys.secrets {
                    if sk.key.pk_algo() != pkesk.pk_algo() {
                        continue;
                    }
                    if let Some(r) = &rcpt {
                        if !r.aliases(sk.key.key_handle()) {
                            continue;
                        }
                    }
                    if self.out.key_operations >= MAX_KEY_OPERATIONS {
                        return Err(KeyBudgetExhausted.into());
                    }
                    self.out.key_operations += 1;
                    let Ok(mut pair) = sk.key.clone().into_keypair() else {
                        continue;
                    };
                    if let Some((algo, session_key)) = pkesk.decrypt(&mut pair, sym_algo) {
                        if decrypt(algo, &session_key) {
                            return Ok(Some(sk.cert.clone()));
                        }
                        self.out.session_key_rejected = true;
                    }
                }
            }
        }
        if self.out.session_key_rejected {
            return Err(anyhow_error(
                "the ciphertext is corrupt or was tampered with",
            ));
        }
        Err(NoMatchingKey.into())
    }
}

fn recipient_name(p: &PKESK) -> String {
    match p.recipient() {
        Some(r) => r.to_hex(),
        None => "anonymous recipient".into(),
    }
}

fn anyhow_error(msg: &str) -> openpgp::anyhow::Error {
    openpgp::anyhow::anyhow!(msg.to_string())
}

fn read_capped<R: Read>(r: R, cap: usize) -> Result<Vec<u8>, DecryptError> {
    let mut buf = Vec::new();
    r.take(cap as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| classify_error(&e.to_string()))?;
    if buf.len() > cap {
        return Err(DecryptError::TooLarge(cap));
    }
    Ok(buf)
}

fn classify_error(text: &str) -> DecryptError {
    let lower = text.to_ascii_lowercase();
    if lower.contains("manipulated")
        || lower.contains("corrupt")
        || lower.contains("tampered")
        || lower.contains("mdc")
        || lower.contains("authentication")
    {
        DecryptError::Integrity(text.to_string())
    } else if lower.contains("policy rejected packet type") {
        DecryptError::Other(format!(
            "unsupported or insecure encryption format ({text})"
        ))
    } else {
        DecryptError::Other(text.to_string())
    }
}

/// Decrypted (or, for a signed-only "PGP MESSAGE", unwrapped) content.
#[derive(Debug)]
pub struct Decrypted {
    pub plaintext: Vec<u8>,
    pub outcome: Outcome,
}

/// Decrypt an OpenPGP message (armored or binary), verifying signatures
/// inside it. `cap` bounds the plaintext (decompression included).
pub fn decrypt(keys: &PgpKeys, msg: &[u8], cap: usize) -> Result<Decrypted, DecryptError> {
    let policy = StandardPolicy::new();
    // Recipients are needed for the error message even when with_policy
    // fails and drops the helper: collect them up front.
    let recipients = || recipient_list(&pkesk_recipients(msg));
    let counts = Counts::default();
    let builder =
        DecryptorBuilder::from_bytes(msg).map_err(|e| DecryptError::Other(e.to_string()))?;
    let mut d = match builder.buffer_size(cap.max(64 * 1024)).with_policy(
        &policy,
        None,
        Helper::new(keys, &counts),
    ) {
        Ok(d) => d,
        Err(e) => {
            if counts.too_many() {
                return Err(DecryptError::TooManySignatures);
            }
            if e.downcast_ref::<KeyBudgetExhausted>().is_some() {
                return Err(DecryptError::KeyBudget(recipients()));
            }
            if e.downcast_ref::<NoMatchingKey>().is_some() {
                let r = recipients();
                return Err(DecryptError::NoSecretKey(if r.is_empty() {
                    "any recipient (no public-key encrypted session key)".into()
                } else {
                    r
                }));
            }
            return Err(classify_error(&format!("{e:#}")));
        }
    };
    let plaintext = match read_capped(&mut d, cap) {
        Ok(p) => p,
        Err(_) if counts.too_many() => return Err(DecryptError::TooManySignatures),
        Err(e) => return Err(e),
    };
    if !d.message_processed() {
        return Err(DecryptError::Integrity(
            "message not completely processed".into(),
        ));
    }
    let mut outcome = d.into_helper().out;
    outcome.signature_packets = counts.signatures.get();
    Ok(Decrypted { plaintext, outcome })
}

/// At most this many recipients are named in an error message.
const MAX_NAMED_RECIPIENTS: usize = 8;

fn recipient_list(all: &[String]) -> String {
    if all.len() <= MAX_NAMED_RECIPIENTS {
        return all.join(", ");
    }
    format!(
        "{} and {} more",
        all[..MAX_NAMED_RECIPIENTS].join(", "),
        all.len() - MAX_NAMED_RECIPIENTS
    )
}

fn pkesk_recipients(msg: &[u8]) -> Vec<String> {
    use openpgp::parse::PacketParserResult;
    let mut out = Vec::new();
    let Ok(mut ppr) = PacketParser::from_bytes(msg) else {
        return out;
    };
    while let PacketParserResult::Some(pp) = ppr {
        match &pp.packet {
            openpgp::Packet::PKESK(p) => out.push(recipient_name(p)),
            openpgp::Packet::SKESK(_) => {}
            _ => break,
        }
        ppr = match pp.next() {
            Ok((_, next)) => next,
            Err(_) => break,
        };
    }
    out
}

const BEGIN_SIGNED: &[u8] = b"-----BEGIN PGP SIGNED MESSAGE-----";
const BEGIN_SIGNATURE: &[u8] = b"-----BEGIN PGP SIGNATURE-----";
const END_SIGNATURE: &[u8] = b"-----END PGP SIGNATURE-----";

/// Why a Cleartext Signature Framework block is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CleartextError {
    /// `-----BEGIN PGP SIGNED MESSAGE-----` is not alone on its line.
    #[error("malformed cleartext signature: text after the BEGIN PGP SIGNED MESSAGE marker")]
    BeginLine,
    /// A line in the header is not a `Hash:` line naming known algorithms.
    #[error("malformed cleartext signature header: {0}")]
    Header(String),
    /// A line of the signed text starts with `-` but not with `- `.
    #[error(
        "malformed cleartext signature: line {0} of the signed text starts with '-' and is \
         not dash-escaped"
    )]
    DashEscape(usize),
    /// No `-----BEGIN PGP SIGNATURE-----` line after the signed text.
    #[error("malformed cleartext signature: no BEGIN PGP SIGNATURE line")]
    NoSignature,
    /// The signature armor is not headers, an empty line, base64, an
    /// optional checksum and the END line.
    #[error("malformed cleartext signature armor: {0}")]
    Armor(&'static str),
}

/// A Cleartext Signature Framework block (RFC 4880 section 7), parsed
/// strictly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cleartext<'a> {
    /// The algorithms the `Hash:` header lines name (possibly none).
    pub hashes: Vec<HashAlgorithm>,
    /// The signed text as it is hashed (RFC 4880 section 7.1): dash-escapes
    /// removed, trailing spaces and tabs removed, lines joined with CRLF,
    /// no line end after the last line.
    pub signed: Vec<u8>,
    /// The signature armor, from its BEGIN line to the END marker.
    pub signature: &'a [u8],
    /// Offset just past the block: after the END marker, the spaces and
    /// tabs after it, and its line end if nothing else follows on the
    /// line. Text after the marker on the same line is outside the block.
    pub end: usize,
}

/// One line of `buf` starting at `start`: (end of its content, start of the
/// next line). A line ends at LF, CRLF or a lone CR (what some clients show
/// as a line break), or at the end of `buf`.
fn next_line(buf: &[u8], start: usize) -> (usize, usize) {
    let mut i = start;
    while i < buf.len() {
        match buf[i] {
            b'\n' => return (i, i + 1),
            b'\r' if buf.get(i + 1) == Some(&b'\n') => return (i, i + 2),
            b'\r' => return (i, i + 1),
            _ => i += 1,
        }
    }
    (buf.len(), buf.len())
}

fn is_blank_ws(b: &[u8]) -> bool {
    b.iter().all(|&c| c == b' ' || c == b'\t')
}

fn trim_trailing_ws(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = b {
        b = rest;
    }
    b
}

/// The marker alone on its line (trailing spaces and tabs allowed).
fn is_marker_line(line: &[u8], marker: &[u8]) -> bool {
    line.starts_with(marker) && is_blank_ws(&line[marker.len()..])
}

/// The hash algorithm names of RFC 4880 section 9.4 and RFC 9580 section
/// 9.5, as GnuPG writes and matches them (case-sensitive).
fn hash_by_name(name: &[u8]) -> Option<HashAlgorithm> {
    Some(match name {
        b"MD5" => HashAlgorithm::MD5,
        b"SHA1" => HashAlgorithm::SHA1,
        b"RIPEMD160" => HashAlgorithm::RipeMD,
        b"SHA224" => HashAlgorithm::SHA224,
        b"SHA256" => HashAlgorithm::SHA256,
        b"SHA384" => HashAlgorithm::SHA384,
        b"SHA512" => HashAlgorithm::SHA512,
        b"SHA3-256" => HashAlgorithm::SHA3_256,
        b"SHA3-512" => HashAlgorithm::SHA3_512,
        _ => return None,
    })
}

/// The field name of a `Name: value` line, if it looks like one (for the
/// error message; nothing else of the line is repeated).
fn field_name(line: &[u8]) -> Option<&str> {
    let colon = line.iter().position(|&b| b == b':')?;
    let name = &line[..colon];
    let ok = (1..=32).contains(&name.len())
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| std::str::from_utf8(name).unwrap_or_default())
}

/// Parse a Cleartext Signature Framework block strictly. `input` starts at
/// the BEGIN PGP SIGNED MESSAGE line and may go on past the block (see
/// [`Cleartext::end`]). Between the BEGIN line and the empty line only
/// `Hash:` lines naming known algorithms are allowed (GnuPG rejects
/// anything else as an invalid armor header; a legacy client would show it
/// as if it were signed); every line of the signed text that starts with
/// `-` must be dash-escaped (`- `), so the BEGIN PGP SIGNATURE line is the
/// marker alone; the signature armor is armor headers, an empty line,
/// base64, an optional checksum and the END line.
pub fn parse_cleartext(input: &[u8]) -> Result<Cleartext<'_>, CleartextError> {
    let (ce, mut pos) = next_line(input, 0);
    if !is_marker_line(&input[..ce], BEGIN_SIGNED) {
        return Err(CleartextError::BeginLine);
    }
    // The header: Hash lines up to the first empty line.
    let mut hashes = Vec::new();
    loop {
        if pos >= input.len() {
            return Err(CleartextError::Header(
                "no empty line after the header".into(),
            ));
        }
        let (ce, next) = next_line(input, pos);
        let line = &input[pos..ce];
        pos = next;
        if line.is_empty() {
            break;
        }
        let Some(value) = line.strip_prefix(b"Hash: ") else {
            return Err(CleartextError::Header(match field_name(line) {
                Some("Hash") => "a Hash line without a space after the colon".into(),
                Some(name) => format!("a {name}: line; only Hash: lines are allowed"),
                None if is_blank_ws(line) => {
                    "a line of spaces; the header ends at an empty line".into()
                }
                None => "a text line; only Hash: lines are allowed".into(),
            }));
        };
        for name in value.split(|&b| b == b',') {
            let name = trim_trailing_ws(name);
            let name = &name[name.len() - name.trim_ascii_start().len()..];
            match hash_by_name(name) {
                Some(h) => hashes.push(h),
                None => {
                    return Err(CleartextError::Header(
                        "a Hash: line naming an unknown hash algorithm".into(),
                    ))
                }
            }
        }
    }
    // The dash-escaped signed text, up to the BEGIN PGP SIGNATURE line.
    let mut signed = Vec::new();
    let mut number = 0;
    let sig_start = loop {
        if pos >= input.len() {
            return Err(CleartextError::NoSignature);
        }
        let (ce, next) = next_line(input, pos);
        let line = &input[pos..ce];
        if is_marker_line(line, BEGIN_SIGNATURE) {
            break pos;
        }
        number += 1;
        let text = match line {
            [b'-', b' ', rest @ ..] => rest,
            [b'-', ..] => return Err(CleartextError::DashEscape(number)),
            _ => line,
        };
        if number > 1 {
            signed.extend_from_slice(b"\r\n");
        }
        signed.extend_from_slice(trim_trailing_ws(text));
        pos = next;
    };
    // The signature armor.
    pos = next_line(input, sig_start).1;
    loop {
        if pos >= input.len() {
            return Err(CleartextError::Armor("it ends in its header"));
        }
        let (ce, next) = next_line(input, pos);
        let line = &input[pos..ce];
        pos = next;
        if line.is_empty() {
            break;
        }
        // The armor header keys of RFC 4880 section 6.2 (GnuPG rejects
        // any other).
        let known = [
            &b"Version: "[..],
            b"Comment: ",
            b"MessageID: ",
            b"Hash: ",
            b"Charset: ",
        ]
        .iter()
        .any(|k| line.starts_with(k));
        if !known {
            return Err(CleartextError::Armor(
                "a line before its empty line is not an armor header",
            ));
        }
    }
    let mut data = false;
    let mut checksum = false;
    let is_b64 = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=');
    loop {
        if pos >= input.len() {
            return Err(CleartextError::Armor("no END PGP SIGNATURE line"));
        }
        let (ce, next) = next_line(input, pos);
        let line = &input[pos..ce];
        if let Some(after) = line.strip_prefix(END_SIGNATURE) {
            if !data {
                return Err(CleartextError::Armor("no signature data"));
            }
            let marker_end = pos + END_SIGNATURE.len();
            let ws = after.len() - trim_ascii_ws_start(after).len();
            let end = if ws == after.len() {
                next
            } else {
                marker_end + ws
            };
            return Ok(Cleartext {
                hashes,
                signed,
                signature: &input[sig_start..marker_end],
                end,
            });
        }
        let t = trim_trailing_ws(line);
        if checksum {
            return Err(CleartextError::Armor("a line after the checksum"));
        }
        if t.len() == 5 && t[0] == b'=' && t[1..].iter().all(is_b64) && data {
            checksum = true;
        } else if !t.is_empty() && t[0] != b'=' && t.iter().all(is_b64) {
            data = true;
        } else {
            return Err(CleartextError::Armor("a line that is not base64"));
        }
        pos = next;
    }
}

fn trim_ascii_ws_start(mut b: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = b {
        b = rest;
    }
    b
}

/// What [`verify_cleartext`] found.
#[derive(Debug)]
pub struct ClearVerified {
    /// The signed text (as hashed: CRLF lines, dash-escapes removed).
    pub text: Vec<u8>,
    pub sigs: Vec<SigVerdict>,
    /// Offset in the input just past the block ([`Cleartext::end`]).
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
    let (second, out) = verify_detached_once(keys, sig, &to_crlf(data));
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
            let reason = if counts.too_many() {
                TooManySignatures.to_string()
            } else {
                e
            };
            (vec![SigVerdict::Bad { reason }], Outcome::default())
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
) -> Result<(Vec<SigVerdict>, Outcome), String> {
    let builder = DetachedVerifierBuilder::from_bytes(sig)
        .map_err(|e| format!("unreadable signature: {e}"))?;
    // with_policy parses every signature packet (calling inspect for
    // each, which stops the parse beyond MAX_SIGNATURES) before any data
    // is hashed.
    let mut v = builder
        .with_policy(policy, None, Helper::new(keys, counts))
        .map_err(|e| format!("unreadable signature: {e}"))?;
    v.verify_bytes(data)
        .map_err(|e| format!("verification failed: {e}"))?;
    let mut out = v.into_helper().out;
    let sigs = std::mem::take(&mut out.sigs);
    if sigs.is_empty() {
        return Err("no signature in the signature part".into());
    }
    Ok((sigs, out))
}

fn has_bare_lf(data: &[u8]) -> bool {
    data.iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || data[i - 1] != b'\r'))
}

/// LF or lone CR line ends to CRLF (RFC 3156 canonical form).
pub fn to_crlf(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + data.len() / 16);
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'\r' if data.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 2;
                continue;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Compare each good signature's creation time with the message's Date
/// header, as the S/MIME side does with signingTime: a good signature made
/// more than [`super::smime::DATE_TOLERANCE_SECS`] away from the date the
/// message claims is `Rejected` (an old signed message replayed under a fresh
/// Date: the outer Date is not signed). Without a Date the verdicts are
/// unchanged.
pub fn check_message_date(verdicts: Vec<SigVerdict>, date: Option<i64>) -> Vec<SigVerdict> {
    let Some(date) = date else {
        return verdicts;
    };
    verdicts
        .into_iter()
        .map(|v| match v {
            SigVerdict::Good {
                created: Some(t), ..
            } => match super::smime::redated(t, date) {
                Some(reason) => SigVerdict::Rejected { reason },
                None => v,
            },
            v => v,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG_ARMOR: &str =
        "-----BEGIN PGP SIGNATURE-----\n\niHUEARYIAB0WIQ==\n=AbCd\n-----END PGP SIGNATURE-----";

    /// A well-formed block with `eol` line ends, followed by `after`.
    fn block(eol: &str, header: &[&str], text: &[&str], after: &str) -> Vec<u8> {
        let mut lines = vec!["-----BEGIN PGP SIGNED MESSAGE-----"];
        lines.extend_from_slice(header);
        lines.push("");
        lines.extend_from_slice(text);
        let mut s = lines.join(eol);
        s.push_str(eol);
        s.push_str(&SIG_ARMOR.replace('\n', eol));
        s.push_str(after);
        s.into_bytes()
    }

    #[test]
    fn well_formed_with_every_line_end() {
        for eol in ["\n", "\r\n", "\r"] {
            let text = [
                "Hello,",
                "- - dash-escaped",
                "- -----BEGIN PGP SIGNATURE-----",
                "trailing spaces  \t",
                "",
                "- ",
                "end",
            ];
            let input = block(eol, &["Hash: SHA256"], &text, eol);
            let c = parse_cleartext(&input).unwrap_or_else(|e| panic!("{eol:?}: {e}"));
            assert_eq!(c.hashes, vec![HashAlgorithm::SHA256], "{eol:?}");
            assert_eq!(
                c.signed,
                b"Hello,\r\n- dash-escaped\r\n-----BEGIN PGP SIGNATURE-----\r\ntrailing spaces\r\n\r\n\r\nend",
                "{eol:?}"
            );
            assert_eq!(c.end, input.len(), "{eol:?}: the END line ends the block");
            assert!(c.signature.starts_with(BEGIN_SIGNATURE));
            assert!(c.signature.ends_with(END_SIGNATURE));
        }
    }

    #[test]
    fn hash_lists_and_several_hash_lines() {
        let input = block(
            "\r\n",
            &["Hash: SHA256, SHA512", "Hash: SHA3-256"],
            &["x"],
            "",
        );
        let c = parse_cleartext(&input).unwrap();
        assert_eq!(
            c.hashes,
            vec![
                HashAlgorithm::SHA256,
                HashAlgorithm::SHA512,
                HashAlgorithm::SHA3_256
            ]
        );
        // No Hash line at all is allowed (RFC 9580).
        assert!(parse_cleartext(&block("\n", &[], &["x"], "")).is_ok());
        // The END marker at the very end, without a line end.
        let input = block("\n", &["Hash: SHA256"], &["x"], "");
        assert_eq!(parse_cleartext(&input).unwrap().signed, b"x");
    }

    fn header_err(input: &[u8]) -> String {
        match parse_cleartext(input) {
            Err(CleartextError::Header(why)) => why,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(input)),
        }
    }

    #[test]
    fn only_hash_lines_in_the_header() {
        for eol in ["\n", "\r\n", "\r"] {
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "Comment: approved by the CFO"],
                &["x"],
                "",
            ));
            assert_eq!(why, "a Comment: line; only Hash: lines are allowed");
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "URGENT: the meeting moved"],
                &["x"],
                "",
            ));
            assert_eq!(why, "a URGENT: line; only Hash: lines are allowed");
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "Wire the budget to account 1234 today."],
                &["x"],
                "",
            ));
            assert_eq!(why, "a text line; only Hash: lines are allowed");
            let why = header_err(&block(
                eol,
                &["Hash: SHA256", "Hash: Pay the invoice today"],
                &["x"],
                "",
            ));
            assert_eq!(why, "a Hash: line naming an unknown hash algorithm");
        }
        assert!(header_err(&block("\n", &["Hash: sha256"], &["x"], "")).contains("unknown"));
        assert!(header_err(&block("\n", &["Hash: SHA256,"], &["x"], "")).contains("unknown"));
        assert!(header_err(&block("\n", &["Hash:SHA256"], &["x"], "")).contains("space"));
        assert!(header_err(&block("\n", &["Hash: SHA256", "  "], &["x"], "")).contains("spaces"));
        // A lone CR ends a header line: what follows it is a line of its own.
        assert_eq!(
            header_err(&block("\r\n", &["Hash: SHA256\rComment: x"], &["x"], "")),
            "a Comment: line; only Hash: lines are allowed"
        );
        // A NUL or other bytes in the header: never repeated, still rejected.
        assert_eq!(
            header_err(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\x00\xff: x\n\nx\n"),
            "a text line; only Hash: lines are allowed"
        );
        assert!(
            header_err(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n").contains("empty")
        );
    }

    #[test]
    fn begin_lines_are_whole_lines() {
        let mut input = block("\n", &["Hash: SHA256"], &["x"], "");
        input.splice(34..34, b" extra".iter().copied());
        assert_eq!(parse_cleartext(&input), Err(CleartextError::BeginLine));
        // Trailing whitespace after a marker is allowed.
        let mut input = block("\n", &["Hash: SHA256"], &["x"], "");
        input.splice(34..34, b" \t".iter().copied());
        assert!(parse_cleartext(&input).is_ok());
        // A BEGIN PGP SIGNATURE line with text after it is a line of signed
        // text that starts with '-' and is not dash-escaped.
        let input = b"-----BEGIN PGP SIGNED MESSAGE-----\r\nHash: SHA256\r\n\r\nx\r\n-----BEGIN PGP SIGNATURE----- x\r\n\r\niHUE\r\n-----END PGP SIGNATURE-----\r\n";
        assert_eq!(parse_cleartext(input), Err(CleartextError::DashEscape(2)));
    }

    #[test]
    fn dash_escaping() {
        for eol in ["\n", "\r\n", "\r"] {
            let input = block(eol, &["Hash: SHA256"], &["ok", "- ok", "--not escaped"], "");
            assert_eq!(
                parse_cleartext(&input),
                Err(CleartextError::DashEscape(3)),
                "{eol:?}"
            );
            let input = block(eol, &["Hash: SHA256"], &["-"], "");
            assert_eq!(parse_cleartext(&input), Err(CleartextError::DashEscape(1)));
        }
        // "-\t" is no dash-escape either.
        let input = block("\n", &["Hash: SHA256"], &["-\tx"], "");
        assert_eq!(parse_cleartext(&input), Err(CleartextError::DashEscape(1)));
        // A lone CR inside a line starts a new line for this check.
        let input = block(
            "\r\n",
            &["Hash: SHA256"],
            &["fine\r-----BEGIN PGP SIGNATURE-----x"],
            "",
        );
        assert_eq!(parse_cleartext(&input), Err(CleartextError::DashEscape(2)));
    }

    #[test]
    fn end_line_and_text_after_it() {
        for eol in ["\n", "\r\n", "\r"] {
            let base = block(eol, &["Hash: SHA256"], &["x"], "");
            // Text after the END marker on its line is outside the block.
            let input = block(
                eol,
                &["Hash: SHA256"],
                &["x"],
                &format!(" P.S. wire it{eol}"),
            );
            let c = parse_cleartext(&input).unwrap();
            assert_eq!(c.end, base.len() + 1, "{eol:?}");
            assert_eq!(&input[c.end..], format!("P.S. wire it{eol}").as_bytes());
            assert!(!c.signature.ends_with(b"it"));
            // Trailing whitespace and the line end belong to the END line.
            let input = block(
                eol,
                &["Hash: SHA256"],
                &["x"],
                &format!(" \t{eol}next{eol}"),
            );
            let c = parse_cleartext(&input).unwrap();
            assert_eq!(&input[c.end..], format!("next{eol}").as_bytes());
            // The END marker with text glued to it.
            let input = block(eol, &["Hash: SHA256"], &["x"], "x");
            let c = parse_cleartext(&input).unwrap();
            assert_eq!(&input[c.end..], b"x");
        }
    }

    #[test]
    fn signature_armor_is_strict() {
        let armor = |sig: &str| {
            format!("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n{sig}\n").into_bytes()
        };
        let ok = armor("-----BEGIN PGP SIGNATURE-----\nVersion: x\nComment: y\n\niHUE\niHUE==\n=AbCd\n-----END PGP SIGNATURE-----");
        assert!(parse_cleartext(&ok).is_ok());
        for (sig, why) in [
            (
                "-----BEGIN PGP SIGNATURE-----\nNote: x\n\niHUE\n-----END PGP SIGNATURE-----",
                "not an armor header",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\niHUE\n-----END PGP SIGNATURE-----",
                "not an armor header",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\niHUE\nnot base64!\n-----END PGP SIGNATURE-----",
                "not base64",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\niHUE\n\niHUE\n-----END PGP SIGNATURE-----",
                "not base64",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\niHUE\n=AbCd\niHUE\n-----END PGP SIGNATURE-----",
                "after the checksum",
            ),
            (
                "-----BEGIN PGP SIGNATURE-----\n\n-----END PGP SIGNATURE-----",
                "no signature data",
            ),
            ("-----BEGIN PGP SIGNATURE-----\n\niHUE", "no END"),
        ] {
            match parse_cleartext(&armor(sig)) {
                Err(CleartextError::Armor(w)) => assert!(w.contains(why), "{sig:?}: {w}"),
                other => panic!("{sig:?}: {other:?}"),
            }
        }
        assert_eq!(
            parse_cleartext(b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nx\n"),
            Err(CleartextError::NoSignature)
        );
    }

    #[test]
    fn armor_span_lines_end_at_a_lone_cr() {
        use crate::message::mime::armor_span;
        let (b, e) = (BEGIN_SIGNED, END_SIGNATURE);
        let t = b"Pay now\r-----BEGIN PGP SIGNED MESSAGE-----\r\nx\r\n-----END PGP SIGNATURE-----\rP.S.\r\n";
        let (s, end) = armor_span(t, b, e).unwrap();
        assert_eq!(&t[..s], b"Pay now\r");
        assert_eq!(&t[end..], b"P.S.\r\n");
        let t = b"-----BEGIN PGP SIGNED MESSAGE-----\nx\n-----END PGP SIGNATURE-----\r\nbye";
        assert_eq!(armor_span(t, b, e), Some((0, t.len() - 3)));
        let t = b"-----BEGIN PGP SIGNED MESSAGE-----\nx\n-----END PGP SIGNATURE-----";
        assert_eq!(armor_span(t, b, e), Some((0, t.len())));
        assert_eq!(
            armor_span(b"x -----BEGIN PGP SIGNED MESSAGE-----\n", b, e),
            None
        );
    }

    #[test]
    fn line_splitting() {
        assert_eq!(next_line(b"ab\ncd", 0), (2, 3));
        assert_eq!(next_line(b"ab\r\ncd", 0), (2, 4));
        assert_eq!(next_line(b"ab\rcd", 0), (2, 3));
        assert_eq!(next_line(b"ab\r", 0), (2, 3));
        assert_eq!(next_line(b"ab", 0), (2, 2));
        assert_eq!(next_line(b"ab\ncd", 3), (5, 5));
        assert_eq!(trim_trailing_ws(b"a b \t "), b"a b");
        assert_eq!(recipient_list(&["a".into(), "b".into()]), "a, b");
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        assert_eq!(recipient_list(&many), "0, 1, 2, 3, 4, 5, 6, 7 and 32 more");
    }
}
