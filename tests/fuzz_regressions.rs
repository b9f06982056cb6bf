//! Every input under `fuzz/regressions/<target>/` (crashes, hangs and
//! out-of-memory inputs the fuzzers found, minimised, plus a few seeds per
//! target) goes through the same entry point as the fuzz target of that
//! name (`popcrypt::fuzzing`). A folder for a target that does not exist
//! fails the test, so an input cannot be dropped by a typo or a rename.
//!
//! The transform catches panics itself (and counts them,
//! `popcrypt::message::caught_panics`), so each input is also checked not
//! to have made it catch one, except the inputs named `*-panic-*`: those
//! reproduce a panic inside a dependency that popcrypt must catch. The
//! counter is process-wide, so the targets run one at a time ([`ONE_AT_A_TIME`]).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use popcrypt::fuzzing;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions")
}

fn sorted(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    v.sort();
    v
}

/// Held by [`run`]: one target's inputs at a time, so a caught panic is
/// blamed on the input that caused it.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[test]
fn every_folder_names_a_fuzz_target() {
    let root = root();
    assert!(root.is_dir(), "{}: missing", root.display());
    for p in sorted(&root) {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if p.is_file() && name == "README.md" {
            continue;
        }
        assert!(
            p.is_dir() && fuzzing::entry(name).is_some(),
            "{}: not a folder named after a fuzz target (known: {:?})",
            p.display(),
            fuzzing::TARGETS.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        );
    }
}

/// Feed every file of `fuzz/regressions/<target>/` (there must be some);
/// returns how many.
fn run(target: &str) -> usize {
    let f = fuzzing::entry(target).expect("known target");
    let dir = root().join(target);
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut failed = Vec::new();
    let mut n = 0;
    for p in sorted(&dir) {
        assert!(p.is_file(), "{}: not a file", p.display());
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
        let caught_before = popcrypt::message::caught_panics();
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(p.display().to_string());
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if popcrypt::message::caught_panics() != caught_before && !name.contains("-panic-") {
            failed.push(format!("{} (a panic caught by the transform)", p.display()));
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail: {failed:#?}"
    );
    assert!(n > 0, "{}: no regression inputs", dir.display());
    eprintln!("{target}: {n} regression inputs pass");
    n
}

#[test]
fn command() {
    run("command");
}

#[test]
fn response() {
    run("response");
}

#[test]
fn engine() {
    run("engine");
}

#[test]
fn mime() {
    run("mime");
}

#[test]
fn transform() {
    run("transform");
}

#[test]
fn every_target_is_covered_here() {
    // A new target in `fuzzing::TARGETS` needs its own test above.
    let names: Vec<&str> = fuzzing::TARGETS.iter().map(|(n, _)| *n).collect();
    assert_eq!(
        names,
        ["command", "response", "engine", "mime", "transform"]
    );
}
