//! Harness shared by the golden-file suites (`tests/golden_openpgp.rs`,
//! `tests/golden_smime.rs`).
//!
//! Each suite has a directory `tests/golden/<kind>/cases` of `<name>.eml`
//! inputs. [`golden_cases`] sends each (with CRLF line ends, as the relay
//! hands it over) through the transform and compares the output with
//! `<name>.out` and the two status header values with `<name>.report`, or,
//! with `UPDATE_GOLDEN=1`, rewrites those files instead. The suite's
//! hand-written expectations and content checks run in both modes, so wrong
//! behaviour cannot be blessed silently.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use popcrypt::message::{mime, Report, Transformer};

use super::verdicts::Status;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The file's bytes; panics naming the file.
pub fn read(p: impl AsRef<Path>) -> Vec<u8> {
    let p = p.as_ref();
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// What the relay hands the transform: every line CRLF-terminated.
pub fn crlf(raw: &[u8]) -> Vec<u8> {
    popcrypt::pop3::response::crlf_lines(raw)
}

/// `UPDATE_GOLDEN=1`: rewrite the `.out` and `.report` files.
pub fn update() -> bool {
    std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1")
}

/// One expectation on a status verdict, written as its header value: the
/// class is matched on the type, the details on the value.
pub enum Want {
    Is(String),
    StartsWith(String),
    /// Starts with the first and ends with the second string.
    StartsEnds(String, String),
    /// Any one of these.
    AnyOf(Vec<Want>),
}

impl Want {
    /// Whether the typed verdict `v` is of the class the expectation's
    /// leading tokens name ([`super::verdicts`]) and its header value has
    /// the expected details.
    pub fn holds(&self, v: &impl Status) -> bool {
        match self {
            Want::Is(s) => v.is_class(s) && v.to_string() == *s,
            Want::StartsWith(s) => v.is_class(s) && v.to_string().starts_with(s.as_str()),
            Want::StartsEnds(a, b) => {
                let text = v.to_string();
                v.is_class(a) && text.starts_with(a.as_str()) && text.ends_with(b.as_str())
            }
            Want::AnyOf(ws) => ws.iter().any(|w| w.holds(v)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Want::Is(s) => format!("exactly {s:?}"),
            Want::StartsWith(s) => format!("starting with {s:?}"),
            Want::StartsEnds(a, b) => format!("starting with {a:?} and ending with {b:?}"),
            Want::AnyOf(ws) => ws
                .iter()
                .map(Want::describe)
                .collect::<Vec<_>>()
                .join(" or "),
        }
    }
}

pub fn is(s: &str) -> Want {
    Want::Is(s.into())
}

pub fn starts(s: &str) -> Want {
    Want::StartsWith(s.into())
}

/// Unfolded values of every header field `name` in a message's header block.
pub fn header_values(msg: &[u8], name: &str) -> Vec<String> {
    mime::fields(&msg[..mime::header_end(msg)])
        .into_iter()
        .filter(|f| f.name == name)
        .map(|f| {
            let raw = String::from_utf8_lossy(f.raw);
            let value = raw.split_once(':').map_or("", |(_, v)| v);
            value
                .replace("\r\n", "")
                .replace('\n', "")
                .trim()
                .to_string()
        })
        .collect()
}

pub fn body(msg: &[u8]) -> &[u8] {
    &msg[mime::body_start(msg)..]
}

/// The names of the `<name>.eml` files in `cases`, sorted.
pub fn case_names(cases: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(cases)
        .expect("cases directory")
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "eml").then(|| p.file_stem()?.to_str().map(String::from))?
        })
        .collect();
    names.sort();
    names
}

/// A suite's content check: `check(ok, what)` with `ok` false is a problem
/// (`what` says what should hold).
pub type Check<'a> = dyn FnMut(bool, &str) + 'a;

/// Cases whose expected files were written by hand because the transform
/// got them wrong: `UPDATE_GOLDEN=1` does not bless the bug. Their files
/// are always compared.
pub enum HandWritten<'a> {
    /// Only the `.out` is hand-written: `UPDATE_GOLDEN=1` writes it only
    /// while it does not exist, and still rewrites the `.report`.
    Out(&'a [&'a str]),
    /// `.out` and `.report` are hand-written: never written.
    OutAndReport(&'a [&'a str]),
}

/// One golden suite: `tests/golden/<kind>/cases`, tested by
/// `tests/golden_<kind>.rs`.
pub struct Suite<'a> {
    kind: &'a str,
    min_cases: usize,
    hand_written: HandWritten<'a>,
    print_reports: bool,
}

impl<'a> Suite<'a> {
    /// Fewer than `min_cases` cases fails the test (a lost directory).
    pub fn new(kind: &'a str, min_cases: usize, hand_written: HandWritten<'a>) -> Self {
        Suite {
            kind,
            min_cases,
            hand_written,
            print_reports: false,
        }
    }

    /// Print each case's two status values (seen with `--nocapture`).
    pub fn print_reports(self) -> Self {
        Suite {
            print_reports: true,
            ..self
        }
    }

    /// Holds `<name>.eml`, `<name>.out` and `<name>.report`.
    pub fn cases(&self) -> PathBuf {
        repo().join("tests/golden").join(self.kind).join("cases")
    }

    /// Runs every case through `t` and reports all failures at once: output
    /// and report differing from the golden files (or, with
    /// `UPDATE_GOLDEN=1`, rewrites them), `expected(name)` (the hand-written
    /// `(encryption, signature)` expectation, `None` for an unknown case)
    /// not holding, the output's status header fields not being exactly
    /// popcrypt's two, each `check(ok, what)` with `ok` false that
    /// `content_checks(check, name, input, out, report)` makes, and
    /// `.out`/`.report` files without an `.eml` (removed with
    /// `UPDATE_GOLDEN=1`).
    #[track_caller]
    pub fn run(
        &self,
        t: &Transformer,
        expected: impl Fn(&str) -> Option<(Want, Want)>,
        content_checks: impl Fn(&mut Check, &str, &[u8], &[u8], &Report),
    ) {
        golden_cases(self, t, expected, content_checks)
    }
}

#[track_caller]
fn golden_cases(
    suite: &Suite,
    t: &Transformer,
    expected: impl Fn(&str) -> Option<(Want, Want)>,
    content_checks: impl Fn(&mut Check, &str, &[u8], &[u8], &Report),
) {
    let cases = suite.cases();
    let names = case_names(&cases);
    assert!(
        names.len() >= suite.min_cases,
        "only {} cases found",
        names.len()
    );
    let update = update();
    let mut failures = Vec::new();
    for name in &names {
        let input = crlf(&read(cases.join(format!("{name}.eml"))));
        let (out, report) = t.transform(&input);
        if suite.print_reports {
            println!(
                "{name}\n    enc: {}\n    sig: {}",
                report.encryption, report.signature
            );
        }
        let report_text = format!("{}\n{}\n", report.encryption, report.signature);
        let out_path = cases.join(format!("{name}.out"));
        let report_path = cases.join(format!("{name}.report"));
        let (hand_written, write_out, write_report) = match suite.hand_written {
            HandWritten::Out(list) => {
                let hand = list.contains(&name.as_str());
                (hand, !hand || !out_path.exists(), true)
            }
            HandWritten::OutAndReport(list) => {
                let hand = list.contains(&name.as_str());
                (hand, !hand, !hand)
            }
        };
        if update {
            if write_out {
                std::fs::write(&out_path, &out).unwrap();
            }
            if write_report {
                std::fs::write(&report_path, &report_text).unwrap();
            }
        }
        if !update || hand_written {
            match std::fs::read_to_string(&report_path) {
                Ok(want) if want == report_text => {}
                Ok(want) => failures.push(format!(
                    "{name}: report differs from {}\n  want: {}\n  got:  {}",
                    report_path.display(),
                    want.replace('\n', " | "),
                    report_text.replace('\n', " | ")
                )),
                Err(e) => failures.push(format!("{name}: {}: {e}", report_path.display())),
            }
            match std::fs::read(&out_path) {
                Ok(want) if want == out => {}
                Ok(want) => {
                    let at = want.iter().zip(&out).take_while(|(a, b)| a == b).count();
                    failures.push(format!(
                        "{name}: output differs from {} at byte {at} (want {} bytes, got {}): got …{:?}",
                        out_path.display(),
                        want.len(),
                        out.len(),
                        String::from_utf8_lossy(&out[at.saturating_sub(40)..(at + 40).min(out.len())])
                    ))
                }
                Err(e) => failures.push(format!("{name}: {}: {e}", out_path.display())),
            }
        }
        match expected(name) {
            None => failures.push(format!(
                "{name}: no hand-written expectation in golden_{}.rs::expected",
                suite.kind
            )),
            Some((enc, sig)) => {
                if !enc.holds(&report.encryption) {
                    failures.push(format!(
                        "{name}: X-Popcrypt-Encryption {:?}, want {}",
                        report.encryption.to_string(),
                        enc.describe()
                    ));
                }
                if !sig.holds(&report.signature) {
                    failures.push(format!(
                        "{name}: X-Popcrypt-Signature {:?}, want {}",
                        report.signature.to_string(),
                        sig.describe()
                    ));
                }
            }
        }
        let mut check = |ok: bool, what: &str| {
            if !ok {
                failures.push(format!("{name}: {what}"));
            }
        };
        check(
            out.starts_with(&report.header_lines()),
            "the output starts with the two status header lines",
        );
        check(
            header_values(&out, "x-popcrypt-encryption")
                == [report.encryption.to_string().as_str()]
                && header_values(&out, "x-popcrypt-signature")
                    == [report.signature.to_string().as_str()],
            "exactly one of each status header, popcrypt's own (forged ones removed)",
        );
        content_checks(&mut check, name, &input, &out, &report);
    }
    // Stale expectations without an input.
    for e in std::fs::read_dir(&cases).unwrap() {
        let p = e.unwrap().path();
        let ext = p.extension().and_then(|x| x.to_str()).unwrap_or("");
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if (ext == "out" || ext == "report") && !names.iter().any(|n| n == stem) {
            if update {
                std::fs::remove_file(&p).unwrap();
            } else {
                failures.push(format!("{}: no matching .eml", p.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} golden failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
