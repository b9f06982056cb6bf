//! OpenSSL errors, read by library and reason code rather than by their
//! text: the codes popcrypt tells apart and the text it shows.
//!
//! `openssl-sys` defines only a few `ERR_LIB_*` and `*_R_*` constants, so
//! the ones used here are defined below, each with the OpenSSL 3 header it
//! comes from. These values are part of OpenSSL's stable ABI.

use openssl::error::{Error, ErrorStack};

/// An OpenSSL library (`ERR_LIB_*`, include/openssl/err.h.in).
pub(crate) type Lib = std::ffi::c_int;
/// A reason code as `Error::reason_code` returns it (`ERR_GET_REASON`: the
/// reason with its `ERR_RFLAG_*` flags, include/openssl/err.h.in).
pub(crate) type Reason = std::ffi::c_int;

// include/openssl/err.h.in
pub(crate) const ERR_LIB_SYS: Lib = 2;
pub(crate) const ERR_LIB_RSA: Lib = 4;
pub(crate) const ERR_LIB_EVP: Lib = 6;
pub(crate) const ERR_LIB_PEM: Lib = 9;
pub(crate) const ERR_LIB_X509: Lib = 11;
pub(crate) const ERR_LIB_ASN1: Lib = 13;
pub(crate) const ERR_LIB_EC: Lib = 16;
pub(crate) const ERR_LIB_PKCS12: Lib = 35;
pub(crate) const ERR_LIB_CMS: Lib = 46;
pub(crate) const ERR_LIB_PROV: Lib = 57;

/// `ERR_RFLAGS_OFFSET` (include/openssl/err.h.in).
const ERR_RFLAGS_OFFSET: u32 = 18;
/// `ERR_RFLAG_FATAL` (include/openssl/err.h.in): "the reason code is
/// considered fatal", set on allocation failures, internal errors, calls
/// that should not have been made, disabled features, failed
/// initialisation and lock failures (`ERR_R_MALLOC_FAILURE`,
/// `ERR_R_INTERNAL_ERROR`, …).
pub(crate) const ERR_RFLAG_FATAL: Reason = 0x1 << ERR_RFLAGS_OFFSET;
/// `ERR_RFLAG_COMMON` (include/openssl/err.h.in): a reason common to all
/// libraries (`ERR_R_*`), whatever library raised it.
pub(crate) const ERR_RFLAG_COMMON: Reason = 0x2 << ERR_RFLAGS_OFFSET;
/// `ERR_R_MALLOC_FAILURE` (include/openssl/err.h.in): `256 | ERR_R_FATAL`.
pub(crate) const ERR_R_MALLOC_FAILURE: Reason = 256 | ERR_RFLAG_FATAL | ERR_RFLAG_COMMON;
/// `ERR_R_UNSUPPORTED` (include/openssl/err.h.in), text "unsupported".
pub(crate) const ERR_R_UNSUPPORTED: Reason = 268 | ERR_RFLAG_COMMON;

// include/openssl/evperr.h, include/openssl/pemerr.h, include/openssl/proverr.h
pub(crate) const EVP_R_BAD_DECRYPT: Reason = 100;
pub(crate) const PEM_R_BAD_DECRYPT: Reason = 101;
pub(crate) const PROV_R_BAD_DECRYPT: Reason = 100;
// include/openssl/cmserr.h
pub(crate) const CMS_R_NO_MATCHING_RECIPIENT: Reason = 132;
pub(crate) const CMS_R_SIGNER_CERTIFICATE_NOT_FOUND: Reason = 138;
// include/openssl/pkcs12err.h
pub(crate) const PKCS12_R_MAC_VERIFY_FAILURE: Reason = 113;

/// OpenSSL 3.0's reasons whose text says "unsupported", in the libraries
/// that PKCS#12 loading and CMS decryption reach (RSA, EVP, PEM, X509,
/// ASN1, EC, PKCS12, CMS, PROV); the common `ERR_R_UNSUPPORTED` is matched
/// separately, from whichever library. Each row names its constant in
/// include/openssl/<lib>err.h and the text OpenSSL gives it.
const UNSUPPORTED: &[(Lib, Reason)] = &[
    (ERR_LIB_RSA, 144), // RSA_R_ILLEGAL_OR_UNSUPPORTED_PADDING_MODE "illegal or unsupported padding mode"
    (ERR_LIB_RSA, 153), // RSA_R_UNSUPPORTED_MASK_ALGORITHM "unsupported mask algorithm"
    (ERR_LIB_RSA, 154), // RSA_R_UNSUPPORTED_MASK_PARAMETER "unsupported mask parameter"
    (ERR_LIB_RSA, 155), // RSA_R_UNSUPPORTED_SIGNATURE_TYPE "unsupported signature type"
    (ERR_LIB_RSA, 162), // RSA_R_UNSUPPORTED_ENCRYPTION_TYPE "unsupported encryption type"
    (ERR_LIB_RSA, 163), // RSA_R_UNSUPPORTED_LABEL_SOURCE "unsupported label source"
    (ERR_LIB_EVP, 107), // EVP_R_UNSUPPORTED_CIPHER "unsupported cipher"
    (ERR_LIB_EVP, 108), // EVP_R_UNSUPPORTED_KEY_SIZE "unsupported key size"
    (ERR_LIB_EVP, 118), // EVP_R_UNSUPPORTED_PRIVATE_KEY_ALGORITHM "unsupported private key algorithm"
    (ERR_LIB_EVP, 123), // EVP_R_UNSUPPORTED_KEYLENGTH "unsupported keylength"
    (ERR_LIB_EVP, 124), // EVP_R_UNSUPPORTED_KEY_DERIVATION_FUNCTION "unsupported key derivation function"
    (ERR_LIB_EVP, 125), // EVP_R_UNSUPPORTED_PRF "unsupported prf"
    (ERR_LIB_EVP, 126), // EVP_R_UNSUPPORTED_SALT_TYPE "unsupported salt type"
    (ERR_LIB_EVP, 135), // EVP_R_UNSUPPORTED_NUMBER_OF_ROUNDS "unsupported number of rounds"
    (ERR_LIB_EVP, 156), // EVP_R_UNSUPPORTED_ALGORITHM "unsupported algorithm"
    (ERR_LIB_EVP, 224), // EVP_R_UNSUPPORTED_KEY_TYPE "unsupported key type"
    (ERR_LIB_PEM, 110), // PEM_R_UNSUPPORTED_PUBLIC_KEY_TYPE "unsupported public key type"
    (ERR_LIB_PEM, 113), // PEM_R_UNSUPPORTED_CIPHER "unsupported cipher"
    (ERR_LIB_PEM, 114), // PEM_R_UNSUPPORTED_ENCRYPTION "unsupported encryption"
    (ERR_LIB_PEM, 126), // PEM_R_UNSUPPORTED_KEY_COMPONENTS "unsupported key components"
    (ERR_LIB_X509, 111), // X509_R_UNSUPPORTED_ALGORITHM "unsupported algorithm"
    (ERR_LIB_ASN1, 164), // ASN1_R_UNSUPPORTED_ANY_DEFINED_BY_TYPE "unsupported any defined by type"
    (ERR_LIB_ASN1, 167), // ASN1_R_UNSUPPORTED_PUBLIC_KEY_TYPE "unsupported public key type"
    (ERR_LIB_ASN1, 196), // ASN1_R_UNSUPPORTED_TYPE "unsupported type"
    (ERR_LIB_ASN1, 228), // ASN1_R_UNSUPPORTED_CIPHER "unsupported cipher"
    (ERR_LIB_EC, 131),  // EC_R_UNSUPPORTED_FIELD "unsupported field"
    (ERR_LIB_PKCS12, 119), // PKCS12_R_UNSUPPORTED_PKCS12_MODE "unsupported pkcs12 mode"
    (ERR_LIB_CMS, 151), // CMS_R_UNSUPPORTED_COMPRESSION_ALGORITHM "unsupported compression algorithm"
    (ERR_LIB_CMS, 152), // CMS_R_UNSUPPORTED_CONTENT_TYPE "unsupported content type"
    (ERR_LIB_CMS, 153), // CMS_R_UNSUPPORTED_KEK_ALGORITHM "unsupported kek algorithm"
    (ERR_LIB_CMS, 154), // CMS_R_UNSUPPORTED_RECIPIENT_TYPE "unsupported recipient type"
    (ERR_LIB_CMS, 155), // CMS_R_UNSUPPORTED_RECIPIENTINFO_TYPE "unsupported recipientinfo type"
    (ERR_LIB_CMS, 156), // CMS_R_UNSUPPORTED_TYPE "unsupported type"
    (ERR_LIB_CMS, 179), // CMS_R_UNSUPPORTED_KEY_ENCRYPTION_ALGORITHM "unsupported key encryption algorithm"
    (ERR_LIB_CMS, 192), // CMS_R_UNSUPPORTED_ENCRYPTION_TYPE "unsupported encryption type"
    (ERR_LIB_CMS, 193), // CMS_R_UNSUPPORTED_LABEL_SOURCE "unsupported label source"
    (ERR_LIB_CMS, 194), // CMS_R_UNSUPPORTED_CONTENT_ENCRYPTION_ALGORITHM "unsupported content encryption algorithm"
    (ERR_LIB_CMS, 195), // CMS_R_UNSUPPORTED_SIGNATURE_ALGORITHM "unsupported signature algorithm"
    (ERR_LIB_CMS, 196), // CMS_R_ERROR_UNSUPPORTED_STATIC_KEY_AGREEMENT "error unsupported static key agreement"
    (ERR_LIB_PROV, 137), // PROV_R_UNSUPPORTED_MAC_TYPE "unsupported mac type"
    (ERR_LIB_PROV, 145), // PROV_R_UNSUPPORTED_CEK_ALG "unsupported cek alg"
    (ERR_LIB_PROV, 152), // PROV_R_UNSUPPORTED_NUMBER_OF_ROUNDS "unsupported number of rounds"
    (ERR_LIB_PROV, 153), // PROV_R_UNSUPPORTED_KEY_SIZE "unsupported key size"
    (ERR_LIB_PROV, 165), // PROV_R_ILLEGAL_OR_UNSUPPORTED_PADDING_MODE "illegal or unsupported padding mode"
    (ERR_LIB_PROV, 223), // PROV_R_URI_AUTHORITY_UNSUPPORTED "uri authority unsupported"
];

/// OpenSSL 3.0's reasons in the same libraries whose text says "not
/// supported", "unknown cipher", "unknown digest" or "unknown algorithm":
/// what CMS decryption reports when an algorithm or key type is missing.
const NOT_SUPPORTED_OR_UNKNOWN: &[(Lib, Reason)] = &[
    (ERR_LIB_RSA, 117),    // RSA_R_UNKNOWN_ALGORITHM_TYPE "unknown algorithm type"
    (ERR_LIB_RSA, 130),    // RSA_R_RSA_OPERATIONS_NOT_SUPPORTED "rsa operations not supported"
    (ERR_LIB_RSA, 148), // RSA_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE "operation not supported for this keytype"
    (ERR_LIB_RSA, 166), // RSA_R_UNKNOWN_DIGEST "unknown digest"
    (ERR_LIB_EVP, 144), // EVP_R_METHOD_NOT_SUPPORTED "method not supported"
    (ERR_LIB_EVP, 147), // EVP_R_COMMAND_NOT_SUPPORTED "command not supported"
    (ERR_LIB_EVP, 150), // EVP_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE "operation not supported for this keytype"
    (ERR_LIB_EVP, 160), // EVP_R_UNKNOWN_CIPHER "unknown cipher"
    (ERR_LIB_EVP, 161), // EVP_R_UNKNOWN_DIGEST "unknown digest"
    (ERR_LIB_EVP, 213), // EVP_R_LOCKING_NOT_SUPPORTED "locking not supported"
    (ERR_LIB_X509, 124), // X509_R_METHOD_NOT_SUPPORTED "method not supported"
    (ERR_LIB_ASN1, 198), // ASN1_R_DIGEST_AND_KEY_TYPE_NOT_SUPPORTED "digest and key type not supported"
    (ERR_LIB_ASN1, 202), // ASN1_R_STREAMING_NOT_SUPPORTED "streaming not supported"
    (ERR_LIB_ASN1, 229), // ASN1_R_UNKNOWN_DIGEST "unknown digest"
    (ERR_LIB_EC, 127),   // EC_R_EXPLICIT_PARAMS_NOT_SUPPORTED "explicit params not supported"
    (ERR_LIB_EC, 147),   // EC_R_GF2M_NOT_SUPPORTED "gf2m not supported"
    (ERR_LIB_EC, 152),   // EC_R_OPERATION_NOT_SUPPORTED "operation not supported"
    (ERR_LIB_PKCS12, 118), // PKCS12_R_UNKNOWN_DIGEST_ALGORITHM "unknown digest algorithm"
    (ERR_LIB_CMS, 125),  // CMS_R_NOT_SUPPORTED_FOR_THIS_KEY_TYPE "not supported for this key type"
    (ERR_LIB_CMS, 148),  // CMS_R_UNKNOWN_CIPHER "unknown cipher"
    (ERR_LIB_CMS, 149),  // CMS_R_UNKNOWN_DIGEST_ALGORITHM "unknown digest algorithm"
    (ERR_LIB_PROV, 136), // PROV_R_NOT_SUPPORTED "not supported"
    (ERR_LIB_PROV, 178), // PROV_R_OPERATION_NOT_SUPPORTED_FOR_THIS_KEYTYPE "operation not supported for this keytype"
];

/// Whether the stack says an algorithm, key type or mode is unsupported
/// (`ERR_R_UNSUPPORTED` or a library's own `*_R_UNSUPPORTED_*`).
pub(crate) fn is_unsupported(e: &ErrorStack) -> bool {
    e.errors()
        .iter()
        .any(|e| e.reason_code() == ERR_R_UNSUPPORTED)
        || any_of(e, UNSUPPORTED)
}

/// [`is_unsupported`], or a reason saying an algorithm is not supported or
/// unknown.
pub(crate) fn is_unsupported_or_unknown(e: &ErrorStack) -> bool {
    is_unsupported(e) || any_of(e, NOT_SUPPORTED_OR_UNKNOWN)
}

/// Whether the error is `reason` raised by `lib`.
pub(crate) fn is(e: &Error, lib: Lib, reason: Reason) -> bool {
    e.library_code() == lib && e.reason_code() == reason
}

/// Whether any error on the stack is one of `codes` (library, reason).
pub(crate) fn any_of(e: &ErrorStack, codes: &[(Lib, Reason)]) -> bool {
    e.errors()
        .iter()
        .any(|e| codes.iter().any(|&(lib, reason)| is(e, lib, reason)))
}

/// Whether the stack says OpenSSL's host failed rather than OpenSSL judged
/// the input: an allocation failure or an operating-system error, with
/// nothing on the stack but such errors and the common reasons that only
/// pass them on (`ERR_R_*_LIB`, flagged common) or are fatal.
///
/// Fails closed: one library-specific reason (a verification failure, an
/// ASN.1 decoding error, …) anywhere on the stack makes it a verdict on
/// the input, because such a verdict may be `bad`, and an "internal" one
/// is never quarantined. Other fatal reasons alone (`ERR_R_INTERNAL_ERROR`,
/// `ERR_R_DISABLED`, …) are not enough either: OpenSSL raises some of them
/// on malformed input, and a sender chooses which algorithm is disabled.
pub(crate) fn is_internal(e: &ErrorStack) -> bool {
    let errors = e.errors();
    let host =
        |e: &Error| e.reason_code() == ERR_R_MALLOC_FAILURE || e.library_code() == ERR_LIB_SYS;
    let passes_on =
        |e: &Error| host(e) || e.reason_code() & (ERR_RFLAG_COMMON | ERR_RFLAG_FATAL) != 0;
    errors.iter().any(host) && errors.iter().all(passes_on)
}

/// The reason texts of the stack, joined with `; ` (consecutive duplicates
/// once), for messages and logs.
pub(crate) fn reasons(e: &ErrorStack) -> String {
    let mut v: Vec<&str> = e.errors().iter().filter_map(|e| e.reason()).collect();
    v.dedup();
    if v.is_empty() {
        "unknown OpenSSL error".into()
    } else {
        v.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_library_text() {
        // A PEM key read with the wrong passphrase: OpenSSL's own
        // reasons, read by code.
        // CBC with the wrong key passes the padding check about once in
        // 256 tries (the key then fails to parse instead): every try is a
        // verdict on the input, and bad padding is read as such.
        let key = openssl::rsa::Rsa::generate(1024).unwrap();
        let mut bad_decrypt = false;
        for _ in 0..16 {
            let pem = key
                .private_key_to_pem_passphrase(openssl::symm::Cipher::aes_128_cbc(), b"right")
                .unwrap();
            let e =
                openssl::pkey::PKey::private_key_from_pem_passphrase(&pem, b"wrong").unwrap_err();
            assert!(!is_internal(&e), "{e:?}");
            let codes = [
                (ERR_LIB_EVP, EVP_R_BAD_DECRYPT),
                (ERR_LIB_PEM, PEM_R_BAD_DECRYPT),
                (ERR_LIB_PROV, PROV_R_BAD_DECRYPT),
            ];
            if any_of(&e, &codes) {
                assert!(reasons(&e).contains("bad decrypt"), "{}", reasons(&e));
                bad_decrypt = true;
                break;
            }
        }
        assert!(
            bad_decrypt,
            "16 wrong-passphrase reads, none read as bad decrypt"
        );
    }
}
