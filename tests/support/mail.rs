//! Small helpers for looking at delivered mail in end-to-end tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `tests/golden/<scheme>`.
pub fn golden(scheme: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(scheme)
}

/// The input of golden case `name` for `scheme`.
pub fn case(scheme: &str, name: &str) -> Vec<u8> {
    let p = golden(scheme).join("cases").join(format!("{name}.eml"));
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// The first value of a header field in a message's header block.
pub fn header(msg: &[u8], name: &str) -> Option<String> {
    let end = popcrypt::message::header_end(msg);
    String::from_utf8_lossy(&msg[..end]).lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}
