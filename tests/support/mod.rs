//! Shared support code for end-to-end tests.
//!
//! * [`dovecot`] starts a private, throw-away Dovecot POP3 server (plain+STLS
//!   and implicit-TLS listeners, its own test CA) for each test.
//! * [`clients`] drives real POP3 clients (Python `poplib`, `curl`,
//!   `fetchmail`) as subprocesses.

pub mod clients;
pub mod dovecot;
pub mod mail;
pub mod proxy;
