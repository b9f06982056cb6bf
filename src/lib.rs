//! popcrypt: a POP3 proxy that speaks verified TLS upstream and, on RETR and
//! TOP, decrypts and verifies OpenPGP and S/MIME mail for legacy clients.
#![forbid(unsafe_code)]

pub mod message;
pub mod pop3;
