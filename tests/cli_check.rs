//! `popcrypt check` run as the built binary against key directories and
//! configurations made in a temporary directory, and against in-process
//! TLS servers on loopback (certificates from the test CA, or from another
//! CA the check is not told to trust).

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use support::fake_server::*;
use support::tls::*;

const BIN: &str = env!("CARGO_BIN_EXE_popcrypt");

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn put(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Copy every file of `from` into `to` with mode 600.
fn copy_dir(from: &Path, to: &Path) {
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            copy_dir(&p, &to.join(p.file_name().unwrap()));
        } else {
            put(&to.join(p.file_name().unwrap()), std::fs::read(&p).unwrap());
        }
    }
}

/// Run the binary (off the runtime's threads: the fake server keeps running).
async fn run(args: Vec<String>) -> (i32, String) {
    let out: Output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(BIN)
            .args(&args)
            .output()
            .expect("run popcrypt")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    eprintln!("--- stdout\n{stdout}--- stderr\n{stderr}");
    (out.status.code().unwrap_or(-1), stdout)
}

/// A POP3 server over implicit TLS that greets and answers QUIT.
async fn tls_server(config: std::sync::Arc<rustls::ServerConfig>) -> FakeServer {
    FakeServer::start(
        Transport::Implicit(config),
        |mut c: ServerConn| async move {
            c.send("+OK fake POP3 ready\r\n").await;
            while let Some(line) = c.read_line().await {
                if line.to_ascii_uppercase().starts_with("QUIT") {
                    c.send("+OK bye\r\n").await;
                    break;
                }
            }
        },
    )
    .await
}

/// `check` arguments for an upstream at `port` trusting `ca` only.
fn upstream_args(port: u16, ca: &Path) -> Vec<String> {
    [
        "check",
        "--upstream",
        &format!("127.0.0.1:{port}"),
        "--upstream-server-name",
        "localhost",
        "--upstream-ca",
        ca.to_str().unwrap(),
        "--no-system-roots",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn with(mut v: Vec<String>, more: &[&str]) -> Vec<String> {
    v.extend(more.iter().map(|s| s.to_string()));
    v
}

fn line_with<'a>(out: &'a str, needles: &[&str]) -> Option<&'a str> {
    out.lines().find(|l| needles.iter().all(|n| l.contains(n)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_keys_and_a_trusted_upstream_are_usable() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    copy_dir(&repo("keys/demo"), &keys);
    let ca = TestCa::new("popcrypt check test CA");
    put(&dir.path().join("ca.pem"), ca.pem());
    let server = tls_server(ca.server_config(&["localhost"])).await;
    let args = with(
        upstream_args(server.addr.port(), &dir.path().join("ca.pem")),
        &["--keys", keys.to_str().unwrap()],
    );
    let (code, out) = run(args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("result: everything usable"), "{out}");
    assert!(
        !out.contains("PROBLEM") && !out.contains("unusable"),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &[
                "ok",
                "openpgp/demo-recipient.sec.asc",
                "OpenPGP secret key",
                "decrypt"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &[
                "ok",
                "smime/demo.pem",
                "S/MIME identity",
                "demo@popcrypt.invalid"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["certificate 0: subject CN=localhost"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["issuer", "CN=popcrypt check test CA"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["ok", "the certificate verifies"]).is_some(),
        "{out}"
    );
    let conns = server.conns();
    assert!(
        conns.iter().any(|c| c.got_quit()),
        "check ends its session with QUIT"
    );
    assert!(
        !conns
            .iter()
            .any(|c| c.got_prefix("USER") || c.got_prefix("PASS")),
        "check never logs in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_certificate_from_another_ca_does_not_verify() {
    let dir = tempfile::tempdir().unwrap();
    put(&dir.path().join("ca.pem"), untrusted_ca_pem());
    let other = TestCa::new("some other CA");
    let server = tls_server(other.server_config(&["localhost"])).await;
    let (code, out) = run(upstream_args(
        server.addr.port(),
        &dir.path().join("ca.pem"),
    ))
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        line_with(
            &out,
            &["PROBLEM", "upstream: TLS with the mail server failed"]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["fix:", "set upstream_ca"]).is_some(),
        "{out}"
    );
    // The chain is shown although it does not verify.
    assert!(
        line_with(&out, &["certificate 0: subject CN=localhost"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["issuer", "CN=some other CA"]).is_some(),
        "{out}"
    );
    assert!(out.contains("result: 1 problem(s)"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_upstream_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    put(&dir.path().join("ca.pem"), untrusted_ca_pem());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    }; // closed again: nothing listens there
    let (code, out) = run(upstream_args(port, &dir.path().join("ca.pem"))).await;
    assert_eq!(code, 1, "{out}");
    let addr = format!("127.0.0.1:{port}");
    assert!(
        line_with(
            &out,
            &["PROBLEM", "cannot connect to the mail server", &addr]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["fix:", "is the mail server running at", &addr]).is_some(),
        "{out}"
    );
    assert!(!out.contains("certificate 0:"), "{out}");
}

/// A keys directory with an expired identity, one without an email
/// address, a private key alone, a leaf certificate in trust/ and the CA.
fn broken_smime_keys(dir: &Path, ca: &TestCa) -> PathBuf {
    let keys = dir.join("keys");
    let expired = ca.issue_with(&["expired.example"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
        p.subject_alt_names.push(rcgen::SanType::Rfc822Name(
            "old@example.org".try_into().unwrap(),
        ));
    });
    put(
        &keys.join("smime/old.pem"),
        format!("{}{}", expired.cert_pem, expired.key_pem),
    );
    let no_email = ca.issue(&["noemail.example"]);
    put(
        &keys.join("smime/noemail.pem"),
        format!("{}{}", no_email.cert_pem, no_email.key_pem),
    );
    let orphan = ca.issue(&["orphan.example"]);
    put(&keys.join("smime/orphan.key"), &orphan.key_pem);
    let leaf = ca.issue(&["leaf.example"]);
    put(&keys.join("trust/leaf.pem"), &leaf.cert_pem);
    put(&keys.join("trust/ca.pem"), ca.pem());
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_smime_material_is_listed_file_by_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("popcrypt S/MIME test CA");
    let keys = broken_smime_keys(dir.path(), &ca);
    let server = tls_server(ca.server_config(&["localhost"])).await;
    put(&dir.path().join("ca.pem"), ca.pem());
    let args = with(
        upstream_args(server.addr.port(), &dir.path().join("ca.pem")),
        &["--keys", keys.to_str().unwrap()],
    );
    let (code, out) = run(args).await;
    assert_eq!(code, 1, "{out}");
    assert!(
        line_with(
            &out,
            &[
                "PROBLEM",
                "smime/old.pem: certificate CN=expired.example",
                "expired on 2021-01-01"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &["PROBLEM", "smime/noemail.pem", "has no email address"]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &[
                "PROBLEM",
                "smime/orphan.key: private key",
                "matches no certificate"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &[
                "PROBLEM",
                "trust/leaf.pem: trust anchor CN=leaf.example is not a CA"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["ok", "trust/ca.pem", "S/MIME trust anchor"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["ok", "the certificate verifies"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["unusable", "smime/old.pem", "S/MIME identity"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["unusable", "trust/leaf.pem"]).is_some(),
        "{out}"
    );
    assert!(out.contains("result: 4 problem(s)"), "{out}");
    assert!(
        !out.contains("PRIVATE KEY") && !out.contains("BEGIN"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_passphrase_names_the_file_and_where_to_set_it() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let pgp = repo("tests/golden/openpgp/keys/openpgp/pp-user.sec.asc");
    put(
        &keys.join("openpgp/pp-user.sec.asc"),
        std::fs::read(pgp).unwrap(),
    );
    let p12 = repo("tests/golden/smime/keys/pkcs12/demo.p12");
    put(&keys.join("smime/me.p12"), std::fs::read(p12).unwrap());
    let pass = dir.path().join("passphrase");
    put(&pass, "not-the-passphrase-x7q\n");
    let ca = TestCa::new("popcrypt check test CA");
    let server = tls_server(ca.server_config(&["localhost"])).await;
    put(&dir.path().join("ca.pem"), ca.pem());
    let config = dir.path().join("popcrypt.toml");
    put(
        &config,
        format!(
            "upstream = \"127.0.0.1:{}\"\nupstream_server_name = \"localhost\"\nupstream_ca = {:?}\nuse_system_roots = false\nkeys = {:?}\nkeys_passphrase_file = {:?}\n",
            server.addr.port(),
            dir.path().join("ca.pem"),
            keys,
            pass
        ),
    );
    let (code, out) = run(vec![
        "check".into(),
        "--config".into(),
        config.display().to_string(),
    ])
    .await;
    assert_eq!(code, 1, "{out}");
    assert!(
        line_with(&out, &["ok", "configuration", "popcrypt.toml: valid"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &[
                "PROBLEM",
                "openpgp/pp-user.sec.asc: wrong passphrase for secret key"
            ]
        )
        .is_some(),
        "{out}"
    );
    assert!(
        line_with(
            &out,
            &[
                "PROBLEM",
                "smime/me.p12: wrong passphrase (or the file is corrupt)"
            ]
        )
        .is_some(),
        "{out}"
    );
    let fix = format!("first line of {} (keys_passphrase_file)", pass.display());
    assert!(line_with(&out, &["fix:", &fix]).is_some(), "{out}");
    assert!(
        !out.contains("not-the-passphrase"),
        "the passphrase is never printed: {out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_configuration_exits_2_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    put(
        &config,
        "listen = \"0.0.0.0:1110\"\nupstream = \"pop.example.org:995\"\n",
    );
    let (code, out) = run(vec![
        "check".into(),
        "--config".into(),
        config.display().to_string(),
    ])
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(
        line_with(
            &out,
            &[
                "PROBLEM",
                "configuration: refusing to listen on 0.0.0.0:1110"
            ]
        )
        .is_some(),
        "{out}"
    );
    let missing = dir.path().join("missing.toml");
    let (code, out) = run(vec![
        "check".into(),
        "--config".into(),
        missing.display().to_string(),
    ])
    .await;
    assert_eq!(code, 2, "{out}");
    assert!(
        line_with(
            &out,
            &["PROBLEM", "cannot read config file", "missing.toml"]
        )
        .is_some(),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_help_with_an_example() {
    for sub in ["serve", "demo", "decrypt", "check", "keys"] {
        let (code, out) = run(vec![sub.into(), "--help".into()]).await;
        assert_eq!(code, 0, "{sub}: {out}");
        let example = out.split("Example:").nth(1).unwrap_or_default();
        assert!(
            example.contains(&format!("popcrypt {sub}")),
            "{sub} --help has an example: {out}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_stls_upstream_is_checked_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("popcrypt STLS test CA");
    put(&dir.path().join("ca.pem"), ca.pem());
    let transport = Transport::Starttls {
        config: ca.server_config(&["localhost"]),
        greeting: "+OK fake POP3 ready".into(),
        stls_answer: "+OK begin TLS".into(),
        inject: Vec::new(),
    };
    let server = FakeServer::start(transport, |mut c: ServerConn| async move {
        while let Some(line) = c.read_line().await {
            if line.to_ascii_uppercase().starts_with("QUIT") {
                c.send("+OK bye\r\n").await;
                break;
            }
        }
    })
    .await;
    let args = with(
        upstream_args(server.addr.port(), &dir.path().join("ca.pem")),
        &["--upstream-tls", "starttls"],
    );
    let (code, out) = run(args).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("(STLS, server name localhost)"), "{out}");
    assert!(
        line_with(&out, &["issuer", "CN=popcrypt STLS test CA"]).is_some(),
        "{out}"
    );
    assert!(
        line_with(&out, &["ok", "the certificate verifies"]).is_some(),
        "{out}"
    );
}
