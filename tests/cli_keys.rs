//! `popcrypt keys` run as the built binary: the demo keys listed with the
//! fingerprints and addresses the files carry (read here with sequoia and
//! OpenSSL), the same through a configuration file, and OpenPGP keys that
//! are revoked, expired or cannot decrypt (made here with sequoia).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use sequoia_openpgp as openpgp;

use openpgp::cert::prelude::*;
use openpgp::parse::Parse;
use openpgp::serialize::SerializeInto;

const BIN: &str = env!("CARGO_BIN_EXE_popcrypt");

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn put(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn run(args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .output()
        .expect("run popcrypt");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}");
    (out.status.code().unwrap_or(-1), stdout + &stderr)
}

/// The block of `keys` output that lists `source`.
fn block<'a>(out: &'a str, source: &str) -> Vec<&'a str> {
    out.split("\n\n")
        .filter(|b| b.contains(&format!("source:       {source}")))
        .collect()
}

fn fingerprint(path: &Path) -> String {
    Cert::from_file(path).unwrap().fingerprint().to_hex()
}

#[test]
fn the_demo_keys_are_listed_with_what_the_files_carry() {
    let (code, out) = run(&["keys", "--keys", repo("keys/demo").to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    let own = block(&out, "openpgp/demo-recipient.sec.asc");
    assert_eq!(own.len(), 1, "{out}");
    let fpr = fingerprint(&repo("keys/demo/openpgp/demo-recipient.sec.asc"));
    assert!(own[0].contains("OpenPGP secret key"), "{out}");
    assert!(own[0].contains(&format!("fingerprint:  {fpr}")), "{out}");
    assert!(own[0].contains("capabilities: decrypt, verify"), "{out}");
    let alice = block(&out, "openpgp/alice.pub.asc");
    let fpr = fingerprint(&repo("keys/demo/openpgp/alice.pub.asc"));
    assert!(alice[0].contains(&format!("fingerprint:  {fpr}")), "{out}");
    assert!(alice[0].contains("capabilities: verify\n"), "{out}");
    assert!(alice[0].contains("expires:      never"), "{out}");

    let pem = std::fs::read(repo("keys/demo/smime/demo.pem")).unwrap();
    let cert = openssl::x509::X509::from_pem(&pem).unwrap();
    let serial = cert
        .serial_number()
        .to_bn()
        .unwrap()
        .to_hex_str()
        .unwrap()
        .to_string();
    let identity: Vec<&str> = block(&out, "smime/demo.pem")
        .into_iter()
        .filter(|b| b.contains("S/MIME identity"))
        .collect();
    assert_eq!(identity.len(), 1, "{out}");
    let id = identity[0];
    assert!(
        id.contains(&format!(", serial {serial}")),
        "{serial}: {out}"
    );
    assert!(id.contains("emails:       demo@popcrypt.invalid"), "{out}");
    assert!(
        id.contains(&format!(
            "algorithms:   RSA {}",
            cert.public_key().unwrap().bits()
        )),
        "{out}"
    );
    assert!(id.contains("capabilities: decrypt"), "{out}");
    let anchor = block(&out, "trust/demo-smime-root-ca.pem");
    assert!(
        anchor[0].contains("capabilities: verify (trust anchor)"),
        "{out}"
    );
    assert!(
        !out.contains("PRIVATE KEY") && !out.contains("BEGIN"),
        "no key material: {out}"
    );
    assert!(!out.contains("problem"), "{out}");
}

#[test]
fn keys_through_a_configuration_file_and_without_any() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("popcrypt.toml");
    put(
        &config,
        format!(
            "upstream = \"pop.example.org:995\"\nkeys = {:?}\n",
            repo("keys/demo")
        ),
    );
    let (code, out) = run(&["keys", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!(
            "account default: keys {}",
            repo("keys/demo").display()
        )),
        "{out}"
    );
    assert_eq!(block(&out, "openpgp/bob-rsa.pub.asc").len(), 1, "{out}");
    let (code, out) = run(&["keys"]);
    assert_eq!(code, 2, "{out}");
    assert!(out.contains("give --keys DIR or --config FILE"), "{out}");
    let (code, out) = run(&["keys", "--keys", "/nonexistent/keys"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("problem: /nonexistent/keys: keys directory does not exist"),
        "{out}"
    );
}

#[test]
fn revoked_expired_and_sign_only_openpgp_keys_are_problems() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (revoked, rev) = CertBuilder::general_purpose(Some("revoked@example.org"))
        .generate()
        .unwrap();
    let revoked = revoked.insert_packets(rev).unwrap().0;
    put(
        &keys.join("openpgp/revoked.asc"),
        revoked.armored().to_vec().unwrap(),
    );
    let long_ago = SystemTime::now() - Duration::from_secs(400 * 86_400);
    let (expired, _) = CertBuilder::general_purpose(Some("expired@example.org"))
        .set_creation_time(long_ago)
        .set_validity_period(Duration::from_secs(30 * 86_400))
        .generate()
        .unwrap();
    put(
        &keys.join("openpgp/expired.asc"),
        expired.armored().to_vec().unwrap(),
    );
    let (sign_only, _) = CertBuilder::new()
        .add_userid("signer@example.org")
        .add_signing_subkey()
        .generate()
        .unwrap();
    put(
        &keys.join("openpgp/sign-only.sec.asc"),
        sign_only.as_tsk().armored().to_vec().unwrap(),
    );
    let (code, out) = run(&["keys", "--keys", keys.to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    let r = revoked.fingerprint().to_hex();
    assert!(
        out.contains(&format!(
            "problem: openpgp/revoked.asc: OpenPGP certificate {r} is revoked"
        )),
        "{out}"
    );
    let e = expired.fingerprint().to_hex();
    assert!(
        out.contains(&format!(
            "problem: openpgp/expired.asc: OpenPGP certificate {e} has expired"
        )),
        "{out}"
    );
    let s = sign_only.fingerprint().to_hex();
    assert!(
        out.contains(&format!("problem: openpgp/sign-only.sec.asc: OpenPGP key {s} has no usable encryption-capable secret subkey")),
        "{out}"
    );
    assert_eq!(out.matches("status:       UNUSABLE").count(), 3, "{out}");
    assert!(out.contains("3 problem(s): run popcrypt check"), "{out}");
}
