//! The relay engine's hook: which messages are held whole for the
//! transform, which are streamed, and the headers of streamed ones.

use super::verdict::{Encryption, NotProcessed};
use super::{mime, report, Report, Transformer};
use crate::pop3::engine::{Disposition, MessageHook};

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
            report.encryption = Encryption::NotProcessed(NotProcessed::Streamed(note.to_string()));
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
    use crate::keys::Keyring;

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
}
