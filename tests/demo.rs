//! The README's first command: the built-in demo fetches its mailbox through
//! the proxy and shows the verdicts.

#[test]
fn demo_fetches_the_mailbox_through_the_proxy() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_popcrypt"))
        .args(["demo", "--listen", "127.0.0.1:0", "--once"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "Subject: Welcome to popcrypt",
        "X-Popcrypt-Encryption: openpgp; decrypted",
        "X-Popcrypt-Signature: openpgp; good; signer=",
        "X-Popcrypt-Signature: openpgp; bad (",
        "X-Popcrypt-Encryption: smime; decrypted; algorithm=aes-256-gcm",
        "X-Popcrypt-Signature: smime; good; signer=alice@popcrypt.invalid",
        "X-Popcrypt-Signature: smime; bad (",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // The forged verdict in the sample mail never reaches the client.
    assert!(!text.contains("FORGED"), "{text}");
}
