//! Where the published attack-mail corpora are: the folder named by
//! `POPCRYPT_CORPORA` (`.ci/run` sets it when `../shared/corpora` exists).
//! They are not ours to commit, so a clone without them runs every other
//! test and says which did not run.
#![allow(dead_code)]

use std::io::Write;
use std::path::PathBuf;

/// `None` when it is unset or empty; a value that is not a folder fails.
pub fn corpora_dir() -> Option<PathBuf> {
    let p = PathBuf::from(std::env::var_os("POPCRYPT_CORPORA").filter(|v| !v.is_empty())?);
    assert!(
        p.is_dir(),
        "POPCRYPT_CORPORA={} is not a folder (it names the published test corpora)",
        p.display()
    );
    Some(p)
}

pub fn corpora() -> PathBuf {
    corpora_dir().expect("POPCRYPT_CORPORA is checked by corpora_available()")
}

/// Whether a test of `suite` can run. When the corpora are not there it
/// says so on stderr, past the test harness's output capture, and the test
/// returns (`scripts/test.sh` lists the suite as not run in its summary).
pub fn corpora_available(suite: &str) -> bool {
    if corpora_dir().is_some() {
        return true;
    }
    let thread = std::thread::current();
    let test = thread.name().unwrap_or("?");
    // One write, so the line is not interleaved with the harness's output.
    let line = format!("{suite}::{test}: not run: POPCRYPT_CORPORA is not set\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    false
}
