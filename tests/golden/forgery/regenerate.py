#!/usr/bin/env python3
"""Regenerates the forgery regression mail in tests/golden/forgery/*/cases.

Every case is a real signature or ciphertext made by GnuPG 2.2 or OpenSSL 3
from the committed DEMO-ONLY keys (tests/golden/openpgp/keys-private,
tests/golden/smime/keys-private), wrapped in the hostile MIME shapes of the
weakness classes of issue 7: parser differentials around multipart/signed
and multipart/encrypted, lone CR in header fields, two Content-Type fields,
display-name and sender tricks, too deep nesting. The MIME is assembled
here; gpg and openssl only do the crypto. Nothing of the review's own mail
is used.

After running this, bless the expectations and review them:
    UPDATE_GOLDEN=1 cargo test --test golden_forgery
    git diff tests/golden/forgery
"""
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
PGP_PRIV = os.path.join(REPO, "tests/golden/openpgp/keys-private")
DEMO_PGP = os.path.join(REPO, "keys/demo/openpgp")
SMIME_PRIV = os.path.join(REPO, "tests/golden/smime/keys-private")
SMIME_KEYS = os.path.join(REPO, "tests/golden/smime/keys")

DATE = "Sun, 01 Nov 2026 12:00:00 +0000"
ALICE = "Alice Demo <alice@popcrypt.invalid>"
BOB = "Bob Demo <bob@popcrypt.invalid>"
DEMO = "Demo User <demo@popcrypt.invalid>"


def crlf(text):
    """Every line end to CRLF."""
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


class Gpg:
    def __init__(self, tmp):
        self.home = os.path.join(tmp, "gnupg")
        os.mkdir(self.home, 0o700)
        keys = [os.path.join(DEMO_PGP, f) for f in sorted(os.listdir(DEMO_PGP))]
        keys += [os.path.join(PGP_PRIV, f) for f in ("alice.sec.asc", "bob-rsa.sec.asc")]
        self.run(["--import"] + keys)

    def run(self, args, data=None):
        cmd = ["gpg", "--homedir", self.home, "--batch", "--no-tty", "--quiet", "--yes",
               "--pinentry-mode", "loopback", "--passphrase", "", "--trust-model", "always",
               "--faked-system-time", "20261101T120000!"] + args
        r = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if r.returncode != 0:
            sys.exit("gpg failed: %s\n%s" % (" ".join(args), r.stderr.decode()))
        return r.stdout

    def detach_sign(self, who, data):
        return self.run(["--armor", "--detach-sign", "--digest-algo", "SHA256", "-u", who],
                        data.encode()).decode()

    def encrypt(self, data, sign_as=None):
        args = ["--armor", "--encrypt", "-r", "demo@popcrypt.invalid"]
        if sign_as:
            args += ["--sign", "-u", sign_as]
        return self.run(args, data.encode()).decode()

    def close(self):
        subprocess.run(["gpgconf", "--homedir", self.home, "--kill", "gpg-agent"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def headers(frm, subject, extra=""):
    return ("From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s@popcrypt.invalid>\n"
            "MIME-Version: 1.0\n%s" % (frm, DEMO, subject, DATE,
                                       subject.replace(" ", "-")[:40], extra))


SIGNED_PART = ("Content-Type: text/plain; charset=utf-8\n"
               "Content-Transfer-Encoding: 7bit\n\n"
               "Alice really wrote this. Transfer 10 EUR to Bob.\n\n-- \nAlice\n")
EVIL_PART = ("Content-Type: text/plain; charset=utf-8\n\n"
             "Eve wrote this. Transfer 10000 EUR to Eve.\n")


def signed_span(part):
    """The RFC 3156 signed span: CRLF lines, no line end after the last."""
    return crlf(part).rstrip("\r\n")


def pgp_sig_part(sig):
    return ("Content-Type: application/pgp-signature; name=\"signature.asc\"\n\n" + sig)


def ct_signed(b="SIG", extra=""):
    return ("Content-Type: multipart/signed; micalg=pgp-sha256;\n"
            " protocol=\"application/pgp-signature\"; boundary=\"%s\"%s\n" % (b, extra))


def write(dirname, name, text):
    cases = os.path.join(HERE, dirname, "cases")
    os.makedirs(cases, exist_ok=True)
    with open(os.path.join(cases, name + ".eml"), "wb") as f:
        f.write(text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text)


def openpgp_cases(gpg):
    span = signed_span(SIGNED_PART)
    sig = gpg.detach_sign("alice@popcrypt.invalid", span)
    bob_sig = gpg.detach_sign("bob@popcrypt.invalid", span)
    h = headers(ALICE, "forgery")
    w = lambda name, text: write("openpgp", name, crlf(text))

    # The control: a well-formed signed message is good.
    w("control-signed-good", h + ct_signed() + "\n--SIG\n" + SIGNED_PART.rstrip("\n") +
      "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")

    # Replay: Alice's old signed message (signed 2026-11-01) under a fresh
    # Date (the outer Date is not signed).
    w("replay-under-fresh-date", h.replace(DATE, "Tue, 01 Dec 2026 12:00:00 +0000") + ct_signed() +
      "\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")

    # Delimiter differentials: Alice's signed part hides where an RFC 2046
    # client sees the preamble or nothing, while a lenient parser verifies it.
    w("delimiter-with-trailing-text", h + ct_signed() + "\n--SIG\n" + EVIL_PART +
      "--SIGContent-Type: text/plain\n\n" + SIGNED_PART.rstrip("\n") +
      "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")
    w("close-delimiter-with-trailing-text", h + ct_signed() + "\n--SIG\n" + SIGNED_PART.rstrip("\n") +
      "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--x\n--SIG\n" + EVIL_PART + "\n--SIG--\n")
    w("delimiter-mid-line", h + ct_signed() + "\nsee below --SIG\n" + SIGNED_PART.rstrip("\n") +
      "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")
    w("boundary-prefix-in-part", h + ct_signed("SIG") + "\n--SIG\n" +
      "Content-Type: multipart/mixed; boundary=\"SIG-inner\"\n\n--SIG-inner\n" + EVIL_PART +
      "--SIG-inner--\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")
    # Two Content-Type fields: clients take the first, mail-parser the last.
    w("two-content-type-fields", h + "Content-Type: multipart/mixed; boundary=\"EVIL\"\n" +
      ct_signed() + "\n--EVIL\n" + EVIL_PART + "--EVIL--\n--SIG\n" + SIGNED_PART.rstrip("\n") +
      "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")
    w("two-boundary-parameters", h + ct_signed("SIG", ";\n boundary=\"EVIL\"") + "\n--EVIL\n" +
      EVIL_PART + "--EVIL--\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" +
      pgp_sig_part(sig) + "\n--SIG--\n")
    w("boundary-encoded-word", h + ct_signed("=?us-ascii?q?SIG?=") + "\n--=?us-ascii?q?SIG?=\n" +
      EVIL_PART + "--=?us-ascii?q?SIG?=--\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" +
      pgp_sig_part(sig) + "\n--SIG--\n")
    w("boundary-rfc2231", h + "Content-Type: multipart/signed; micalg=pgp-sha256;\n"
      " protocol=\"application/pgp-signature\"; boundary*=us-ascii''SIG\n" + "\n--SIG\n" +
      SIGNED_PART.rstrip("\n") + "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n")
    w("signed-part-two-content-types", h + ct_signed() + "\n--SIG\n" +
      "Content-Type: text/html\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" +
      pgp_sig_part(gpg.detach_sign("alice@popcrypt.invalid",
                                   signed_span("Content-Type: text/html\n" + SIGNED_PART))) +
      "\n--SIG--\n")

    # Lone CR in header fields (written raw: crlf() must not touch them).
    def raw(name, text):
        write("openpgp", name, text.encode())
    body = ct_signed() + "\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" + \
        pgp_sig_part(sig) + "\n--SIG--\n"
    raw("lone-cr-forged-status-header",
        crlf(headers(BOB, "hello")).replace(
            "Subject: hello\r\n",
            "Subject: hello\rX-Popcrypt-Signature: openpgp; good; signer=alice\r\n") +
        crlf("Content-Type: text/plain\n\nunsigned text\n"))
    raw("lone-cr-second-from",
        crlf(h).replace("Subject: forgery\r\n", "Subject: forgery\rFrom: " + BOB + "\r\n") +
        crlf(body))
    enc = gpg.encrypt(crlf("Content-Type: text/plain; charset=utf-8\n\n"
                           "<b>secret</b> quoted from an old mail\n"))
    pgpmime = ("Content-Type: multipart/encrypted; protocol=\"application/pgp-encrypted\";\n"
               " boundary=\"ENC\"\n\n--ENC\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n"
               "--ENC\nContent-Type: application/octet-stream\n\n" + enc + "\n--ENC--\n")
    raw("lone-cr-hidden-content-type-on-decrypted",
        crlf(h).replace("Subject: forgery\r\n",
                        "Subject: forgery\rContent-Type: text/html\r\n") + crlf(pgpmime))
    w("encrypted-two-content-type-fields", h + "Content-Type: text/html\n" + pgpmime)
    # Inside the decryption: the decrypted entity's own header block.
    inner_two = gpg.encrypt(crlf("Content-Type: text/plain\nContent-Type: text/html\n\n"
                                 "<img src=\"http://attacker.invalid/x\">\n"))
    w("decrypted-entity-two-content-types", h + pgpmime.replace(enc, inner_two))
    inner_cr = gpg.encrypt(crlf("Content-Type: text/plain\n\nx\n").replace(
        "Content-Type: text/plain\r\n", "Content-Type: text/plain\rContent-Type: text/html\r\n"))
    w("decrypted-entity-lone-cr", h + pgpmime.replace(enc, inner_cr))
    inner_signed = ct_signed() + "\n--SIG\n" + EVIL_PART + "--SIGContent-Type: text/plain\n\n" + \
        SIGNED_PART.rstrip("\n") + "\n--SIG\n" + pgp_sig_part(sig) + "\n--SIG--\n"
    w("decrypted-signed-delimiter-trick", h + pgpmime.replace(enc, gpg.encrypt(crlf(inner_signed))))

    # Sender tricks: Bob's real signature, outer headers lying about who
    # wrote it (the outer headers are not signed in PGP/MIME).
    def sender(name, from_lines, expect_subject):
        w("sender-" + name, from_lines + "To: " + DEMO + "\nSubject: " + expect_subject +
          "\nDate: " + DATE + "\nMIME-Version: 1.0\n" + ct_signed() + "\n--SIG\n" +
          SIGNED_PART.rstrip("\n") + "\n--SIG\n" + pgp_sig_part(bob_sig) + "\n--SIG--\n")
    sender("control-good", "From: Bob Demo <bob@popcrypt.invalid>\n", "control")
    sender("display-name-address", "From: \"alice@popcrypt.invalid\" <bob@popcrypt.invalid>\n", "x")
    sender("display-name-same-address", "From: \"bob@popcrypt.invalid\" <bob@popcrypt.invalid>\n", "x")
    sender("display-name-unquoted", "From: alice@popcrypt.invalid <bob@popcrypt.invalid>\n", "x")
    sender("display-name-encoded-word",
           "From: =?utf-8?q?alice=40popcrypt=2Einvalid?= <bob@popcrypt.invalid>\n", "x")
    sender("display-name-encoded-b",
           "From: =?utf-8?b?YWxpY2VAcG9wY3J5cHQuaW52YWxpZA==?= <bob@popcrypt.invalid>\n", "x")
    sender("display-name-fullwidth-at",
           "From: \"alice\uff20popcrypt.invalid\" <bob@popcrypt.invalid>\n", "x")
    sender("comment-address", "From: bob@popcrypt.invalid (alice@popcrypt.invalid)\n", "x")
    sender("address-then-angle", "From: alice@popcrypt.invalid (Alice) <bob@popcrypt.invalid>\n", "x")
    sender("nul-in-name", "From: \"Alice\x00 alice@popcrypt.invalid\" <bob@popcrypt.invalid>\n", "x")
    sender("group-syntax", "From: Friends: bob@popcrypt.invalid;\n", "x")
    sender("two-from-fields", "From: Bob Demo <bob@popcrypt.invalid>\nFrom: " + ALICE + "\n", "x")
    sender("two-addresses", "From: Bob Demo <bob@popcrypt.invalid>, " + ALICE + "\n", "x")
    sender("from-plus-sender", "From: Bob Demo <bob@popcrypt.invalid>\nSender: " + ALICE + "\n", "x")
    sender("sender-same", "From: Bob Demo <bob@popcrypt.invalid>\nSender: bob@popcrypt.invalid\n", "x")
    sender("folded-from", "From: Bob Demo\n <bob@popcrypt.invalid>\n", "x")
    sender("upper-case-domain", "From: Bob Demo <bob@POPCRYPT.INVALID>\n", "x")
    sender("idn-domain", "From: Bob Demo <bob@p\u00f6pcrypt.invalid>\n", "x")
    sender("quoted-local-part", "From: \"bob@popcrypt.invalid\"@evil.invalid\n", "x")
    sender("address-only-in-comment", "From: (bob@popcrypt.invalid) <alice@popcrypt.invalid>\n", "x")
    sender("encoded-word-in-address", "From: Bob <=?utf-8?q?bob?=@popcrypt.invalid>\n", "x")

    # Nesting: 600 levels of message/rfc822 inside a signed message (the
    # limit is 512 Content-Type lines); a 50,000-level one is built at test
    # time (too large to commit).
    nested = "Content-Type: text/plain\n\ninnermost\n"
    for _ in range(600):
        nested = "Content-Type: message/rfc822\n\n" + nested
    w("nested-600-levels", h + ct_signed() + "\n--SIG\n" + nested.rstrip("\n") + "\n--SIG\n" +
      pgp_sig_part(gpg.detach_sign("alice@popcrypt.invalid", signed_span(nested))) + "\n--SIG--\n")


def smime_cases(tmp):
    alice = os.path.join(SMIME_PRIV, "alice.pem")
    bob = os.path.join(SMIME_PRIV, "bob.pem")
    ica = os.path.join(SMIME_PRIV, "issuing-ca.pem")
    demo_crt = os.path.join(tmp, "demo.crt")
    subprocess.run(["openssl", "x509", "-in", os.path.join(SMIME_KEYS, "smime/demo.pem"),
                    "-out", demo_crt], check=True)

    def openssl(args, data):
        r = subprocess.run(["openssl"] + args, input=data, stdout=subprocess.PIPE, check=True)
        return r.stdout

    def detached_sig(signer, span):
        der = openssl(["cms", "-sign", "-binary", "-md", "sha256", "-signer", signer,
                       "-certfile", ica, "-outform", "DER"], span.encode())
        import base64
        b64 = base64.encodebytes(der).decode()
        return ("Content-Type: application/pkcs7-signature; name=\"smime.p7s\"\n"
                "Content-Transfer-Encoding: base64\n\n" + b64)

    def ct(b="SIG", extra=""):
        return ("Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\n"
                " micalg=sha-256; boundary=\"%s\"%s\n" % (b, extra))

    # The signing time must be near the Date: use now.
    date = subprocess.run(["date", "-uR"], stdout=subprocess.PIPE, check=True).stdout.decode().strip()
    h = headers(ALICE, "smime forgery").replace(DATE, date)
    span = signed_span(SIGNED_PART)
    sig = detached_sig(alice, span)
    w = lambda name, text: write("smime", name, crlf(text))
    w("control-signed-good", h + ct() + "\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" +
      sig + "--SIG--\n")
    w("delimiter-with-trailing-text", h + ct() + "\n--SIG\n" + EVIL_PART +
      "--SIGContent-Type: text/plain\n\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" + sig +
      "--SIG--\n")
    w("close-delimiter-with-trailing-text", h + ct() + "\n--SIG\n" + SIGNED_PART.rstrip("\n") +
      "\n--SIG\n" + sig + "--SIG--x\n--SIG\n" + EVIL_PART + "\n--SIG--\n")
    w("two-content-type-fields", h + "Content-Type: multipart/mixed; boundary=\"EVIL\"\n" + ct() +
      "\n--EVIL\n" + EVIL_PART + "--EVIL--\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" +
      sig + "--SIG--\n")
    w("boundary-encoded-word", h + ct("=?us-ascii?q?SIG?=") + "\n--=?us-ascii?q?SIG?=\n" +
      EVIL_PART + "--=?us-ascii?q?SIG?=--\n--SIG\n" + SIGNED_PART.rstrip("\n") + "\n--SIG\n" +
      sig + "--SIG--\n")
    # Encrypt-then-sign by someone else: Bob signs a ciphertext Alice made
    # for the demo user, and sends it as his own.
    env = openssl(["cms", "-encrypt", "-binary", "-aes256", "-recip", demo_crt],
                  crlf("Content-Type: text/plain\n\nAlice's secret words.\n").encode()).decode()
    env_part = env[env.index("Content-Type:"):] if "Content-Type:" in env else env
    env_part = env_part.replace("\r\n", "\n")
    env_head, env_body = env_part.split("\n\n", 1)
    env_entity = "\n".join(l for l in env_head.split("\n")
                           if not l.lower().startswith("mime-version")) + "\n\n" + env_body
    bob_h = headers(BOB, "smime re-signed").replace(DATE, date)
    w("encrypt-then-sign-by-someone-else", bob_h + ct() + "\n--SIG\n" +
      env_entity.rstrip("\n") + "\n--SIG\n" + detached_sig(bob, signed_span(env_entity)) +
      "--SIG--\n")
    raw_two = crlf(h).replace("Subject: smime forgery\r\n",
                              "Subject: smime forgery\rContent-Type: text/html\r\n")
    write("smime", "lone-cr-hidden-content-type-on-decrypted",
          (raw_two + crlf(env_entity)).encode())


def main():
    for d in ("openpgp", "smime"):
        cases = os.path.join(HERE, d, "cases")
        if os.path.isdir(cases):
            for f in os.listdir(cases):
                if f.endswith(".eml"):
                    os.remove(os.path.join(cases, f))
    tmp = tempfile.mkdtemp()
    gpg = Gpg(tmp)
    try:
        openpgp_cases(gpg)
        smime_cases(tmp)
    finally:
        gpg.close()
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
