//! The POP3 protocol without I/O: line framing, commands, responses and the
//! relay state machine. Everything here works on byte slices.

pub mod command;
pub mod engine;
pub mod line;
pub mod response;
