//! Shared support code for end-to-end tests.
//!
//! * [`dovecot`] starts a private, throw-away Dovecot POP3 server (plain+STLS
//!   and implicit-TLS listeners, its own test CA) for each test.
//! * [`clients`] drives real POP3 clients (Python `poplib`, `curl`,
//!   `fetchmail`) as subprocesses.
//! * [`golden`] is the harness of the golden-file suites.

pub mod clients;
pub mod dovecot;
pub mod golden;
pub mod mail;
pub mod proxy;
