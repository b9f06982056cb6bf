//! THE shared support code of the integration tests (one tree; each test
//! binary says `mod support;` and uses what it needs).
//!
//! * [`tls`]: the test CA and rustls server configurations.
//! * [`fake_server`] and [`mailbox`]: a scriptable in-process POP3 server
//!   for fault injection, and the standard mailbox it falls back to.
//! * [`inproc`]: the real proxy in-process in front of a fake server;
//!   [`logs`] captures its logs and counts panics on runtime threads.
//! * [`pop3_client`]: the raw POP3 test client (async, or blocking).
//! * [`dovecot`] starts a private, throw-away Dovecot POP3 server (plain+STLS
//!   and implicit-TLS listeners, certificates from the test CA) per test.
//! * [`proxy`] runs the `popcrypt serve` binary as a child process.
//! * [`clients`] drives real POP3 clients (Python `poplib`, `curl`,
//!   `fetchmail`) as subprocesses.
//! * [`golden`] is the harness of the golden-file suites; [`mail`] reads
//!   golden cases and header fields.
//! * [`corpora`]: where the published attack-mail corpora are
//!   (`POPCRYPT_CORPORA`), and saying so when they are not.
//! * [`verdicts`]: verdicts inspected by their types, and expectation
//!   strings parsed into the classes they name.

pub mod clients;
pub mod corpora;
pub mod dovecot;
pub mod fake_server;
pub mod golden;
pub mod inproc;
pub mod logs;
pub mod mail;
pub mod mailbox;
pub mod pop3_client;
pub mod proxy;
pub mod tls;
pub mod verdicts;
