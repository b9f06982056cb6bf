//! Every input under `fuzz/regressions/<target>/` (crashes, hangs and
//! out-of-memory inputs the fuzzers found, minimised, plus a few seeds per
//! target) goes through the same entry point as the fuzz target of that
//! name (`popcrypt::fuzzing`). A folder for a target that does not exist
//! fails the test, so an input cannot be dropped by a typo or a rename.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

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

#[test]
fn every_folder_names_a_fuzz_target() {
    let root = root();
    if !root.exists() {
        return;
    }
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

/// Feed every file of `fuzz/regressions/<target>/`; returns how many.
fn run(target: &str) -> usize {
    let f = fuzzing::entry(target).expect("known target");
    let dir = root().join(target);
    if !dir.exists() {
        return 0;
    }
    let mut failed = Vec::new();
    let mut n = 0;
    for p in sorted(&dir) {
        assert!(p.is_file(), "{}: not a file", p.display());
        let data = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        n += 1;
        if catch_unwind(AssertUnwindSafe(|| f(&data))).is_err() {
            failed.push(p.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail: {failed:#?}"
    );
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
