//! Entry points shared by the fuzz targets (`fuzz/fuzz_targets/*.rs`, one
//! line each) and by `tests/fuzz_regressions.rs`, which feeds every file
//! under `fuzz/regressions/<target>/` to the same function.
//!
//! Each entry point takes arbitrary bytes. It must never panic, and it
//! asserts invariants that hold for every input: a failed assertion is a
//! finding, exactly like a crash. See `docs/FUZZING.md`.
//!
//! Not part of the API: hidden from the documentation, and free to change.

use std::sync::{Arc, OnceLock};

mod codec;
mod engine;
mod message;

pub use codec::{command, response};
pub use engine::engine;
pub use message::{mime, transform, FUZZ_MAX_PLAINTEXT};

use crate::keys::{Keyring, PassphraseSource};
use crate::message::Transformer;

/// A fuzz entry point.
pub type Entry = fn(&[u8]);

/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, Entry);

/// Every fuzz target by name (the folder names under `fuzz/regressions/`).
pub const TARGETS: &[Target] = &[
    ("command", command),
    ("response", response),
    ("engine", engine),
    ("mime", mime),
    ("transform", transform),
];

/// The entry point of the target called `name`.
pub fn entry(name: &str) -> Option<Entry> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f)
}

/// For a fuzz target's `init` (after libfuzzer-sys installed its
/// abort-on-panic hook): a panic located in a dependency (a file under the
/// cargo registry: sequoia, mail-parser, ...) is only reported on stderr
/// and unwinds on, so that one popcrypt catches and handles (the
/// transform's `catch_unwind` delivers the original message, as in the
/// proxy) is not counted as a crash. Every other panic still aborts, and
/// libfuzzer-sys aborts on any panic that reaches the target itself.
pub fn tolerate_caught_dependency_panics() {
    let abort = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| match info.location() {
        Some(l) if l.file().contains("/.cargo/registry/") => {
            eprintln!("fuzzing: panic in a dependency at {l}; popcrypt must catch it");
        }
        _ => abort(info),
    }));
}

/// Exactly two `X-Popcrypt-*` lines (split at LF), the first two.
fn assert_status_first(block: &[u8]) {
    let status: Vec<usize> = block
        .split(|&c| c == b'\n')
        .enumerate()
        .filter(|(_, l)| l.len() >= 11 && l[..11].eq_ignore_ascii_case(b"x-popcrypt-"))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(status, [0, 1], "forged or missing status headers");
}

/// A transformer without keys (it only annotates and streams).
fn plain_transformer() -> Arc<Transformer> {
    static T: OnceLock<Arc<Transformer>> = OnceLock::new();
    T.get_or_init(|| Arc::new(Transformer::new())).clone()
}

/// A transformer with the golden OpenPGP and S/MIME keys of
/// `tests/golden/` (loaded once).
pub fn golden_transformer() -> Arc<Transformer> {
    static T: OnceLock<Arc<Transformer>> = OnceLock::new();
    T.get_or_init(|| {
        let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let pgp_dir = golden.join("openpgp/keys");
        let pgp = Keyring::load(
            &pgp_dir,
            &PassphraseSource {
                file: Some(pgp_dir.join("pp-user.passphrase")),
                env: None,
            },
        )
        .expect("golden OpenPGP keys");
        let smime = Keyring::load(&golden.join("smime/keys"), &PassphraseSource::default())
            .expect("golden S/MIME keys");
        let keys = Keyring {
            openpgp: pgp.openpgp,
            smime: smime.smime,
        };
        Arc::new(Transformer::with_keys(keys, FUZZ_MAX_PLAINTEXT))
    })
    .clone()
}
