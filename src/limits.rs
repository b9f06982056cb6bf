//! Defaults of the limits, each written once.

/// Largest message held whole for a transform, and largest plaintext a
/// decryption may produce (`--max-message-size`, `max_message_size`).
pub const MAX_MESSAGE_SIZE: usize = 64 << 20;
