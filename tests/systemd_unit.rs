//! `examples/systemd/popcrypt.service`: the unit's hardening and readiness
//! settings, and the binary started exactly as the unit starts it (its
//! `ExecStart` arguments, a `NOTIFY_SOCKET` as systemd provides one) in
//! front of a real Dovecot: READY=1 arrives only once popcrypt serves, a
//! client fetches mail at once, SIGTERM brings STOPPING=1 and a clean exit.

mod support;

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::dovecot::{free_port, Dovecot};
use support::pop3_client::Blocking;

const UNIT: &str = include_str!("../examples/systemd/popcrypt.service");
const ALICE: (&str, &str) = ("alice", "unit-test-secret");

/// The `[Service]` settings (a key given twice keeps every value).
fn service_settings() -> HashMap<String, Vec<String>> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    let mut section = "";
    for line in UNIT.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("key=value line");
            out.entry(k.to_string()).or_default().push(v.to_string());
        }
    }
    out
}

fn one<'a>(s: &'a HashMap<String, Vec<String>>, key: &str) -> &'a str {
    match s.get(key).map(Vec::as_slice) {
        Some([v]) => v,
        other => panic!("{key}: expected exactly one value, got {other:?}"),
    }
}

#[test]
fn the_unit_runs_unprivileged_and_hardened() {
    let s = service_settings();
    assert_eq!(one(&s, "Type"), "notify");
    let user = one(&s, "User");
    assert!(!user.is_empty() && user != "root", "User={user}");
    for (key, want) in [
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("StateDirectory", "popcrypt"),
        ("ConfigurationDirectory", "popcrypt"),
        ("KillSignal", "SIGTERM"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(one(&s, key), want, "{key}");
    }
}

/// Wait for a datagram on the notify socket containing `want`.
fn wait_notify(sock: &UnixDatagram, want: &str, log: &Path) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == want) {
                return msg;
            }
        }
    }
    panic!(
        "no {want} on the notify socket within 30 s\n--- log ---\n{}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
}

#[test]
fn started_as_the_unit_starts_it_it_notifies_and_serves() {
    let d = Dovecot::start(&[ALICE]);
    d.deliver(
        ALICE.0,
        b"From: bob@example.org\r\nSubject: unit\r\n\r\nhello\r\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = dir.path().join("popcrypt.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:{port}\"\nupstream = \"{}:{}\"\nupstream_tls = \"implicit\"\n\
             upstream_ca = \"{}\"\nuse_system_roots = false\n",
            d.host_name,
            d.pop3s_port,
            d.ca_pem_path.display()
        ),
    )
    .unwrap();

    // ExecStart, with the installed binary and configuration path mapped to
    // the ones of this build and this test.
    let exec = one(&service_settings(), "ExecStart").to_string();
    let mut argv = exec.split_whitespace();
    assert_eq!(argv.next(), Some("/usr/local/bin/popcrypt"));
    let args: Vec<String> = argv
        .map(|a| {
            if a == "/etc/popcrypt/popcrypt.toml" {
                config.display().to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    assert_eq!(args[..2], ["serve", "--config"], "{exec}");

    let notify_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&notify_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let log = dir.path().join("popcrypt.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_popcrypt"))
        .args(&args)
        .env("NOTIFY_SOCKET", &notify_path)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();

    wait_notify(&sock, "READY=1", &log);
    // Ready means serving: no retry, no grace period.
    let mut c = Blocking::connect(port);
    let greeting = c.line().unwrap_or_default();
    assert!(greeting.starts_with("+OK"), "{greeting}");
    assert!(c.cmd(&format!("USER {}", ALICE.0)).starts_with("+OK"));
    assert!(c.cmd(&format!("PASS {}", ALICE.1)).starts_with("+OK"));
    let stat = c.cmd("STAT");
    assert!(stat.starts_with("+OK 1 "), "{stat}");
    assert!(c.cmd("RETR 1").starts_with("+OK"));
    let msg = c.multi();
    assert!(msg.starts_with("X-Popcrypt-Encryption: none\r\n"), "{msg}");
    assert!(msg.contains("\r\nhello\r\n"), "{msg}");
    assert!(c.cmd("QUIT").starts_with("+OK"));

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    wait_notify(&sock, "STOPPING=1", &log);
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "no exit within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
}
