#!/usr/bin/env python3
"""Write the hand-made seed inputs into fuzz/regressions/<target>/seed-*.

Run from the repository root: python3 fuzz/scripts/seeds.py
Golden .eml seeds for the transform and mime targets are picked from
tests/golden/ (a few small ones; the fuzz runs copy all of them into the
corpus at run time, see docs/FUZZING.md).
"""
import os
import shutil

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
REG = os.path.join(ROOT, "fuzz", "regressions")


def put(target, name, data):
    d = os.path.join(REG, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


# (a) commands
put("command", "every-verb", b"USER alice\r\nPASS s3cret with space\r\n"
    b"APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\nAUTH\r\nAUTH plain AGFsaWNlAGh1bnRlcjI=\r\n"
    b"CAPA\r\nSTLS\r\nSTAT\r\nLIST\r\nLIST 2\r\nRETR 1\r\nDELE 4294967295\r\nNOOP\r\nRSET\r\n"
    b"TOP 1 0\r\nUIDL\r\nuidl 3\r\nLAST\r\nQUIT\r\n")
put("command", "edge-cases", b"retr   7\nTOP 7 010\nRETR 4294967296\nRETR 0\nPASS \n"
    b"USER a\x01b\nAUTH " + b"M" * 41 + b"\nXTND XMIT\n\xff\xfe\nPASS a\rQUIT\n")

# (b) responses: limit byte, chunk-seed byte, server bytes
put("response", "multiline", bytes([64, 7]) + b"+OK 2 messages (320 octets)\r\n1 120\r\n2 200\r\n.\r\n")
put("response", "dots-and-ends", bytes([255, 3]) + b"+OK\r\n..\r\n...x\nbare lf\nlone\rcr\r\n\r\n.\r\n-ERR no\r\n+ \r\n")
put("response", "too-long", bytes([1, 1]) + b"+OK " + b"x" * 40 + b"\r\n")


# (c) engine: header byte, then records separated by 0xFF (op byte + payload)
def script(header, *records):
    return bytes([header]) + b"".join(b"\xff" + r for r in records)


LOGIN_C = b"cUSER alice\r\nPASS secret\r\n"
LOGIN_S = b"s+OK\r\n+OK logged in\r\n"
put("engine", "session-streamed", script(
    0x04, LOGIN_C, LOGIN_S,
    b"cSTAT\r\nLIST\r\nLIST 1\r\nUIDL\r\nRETR 1\r\n",
    b"s+OK 2 300\r\n", b"s+OK\r\n1 100\r\n2 200\r\n.\r\n", b"s+OK 1 100\r\n", b"s+OK\r\n1 a\r\n2 b\r\n.\r\n",
    b"s+OK 100\r\nFrom: a@b\r\nX-Popcrypt-Signature: openpgp; good\r\n forged\r\n\r\n..dot\r\nbody\n.\r\n",
    b"cTOP 1 1\r\nDELE 1\r\nLAST\r\nRSET\r\nNOOP\r\nQUIT\r\n",
    b"s+OK\r\nSubject: x\r\n\r\nl1\r\nl2\r\n.\r\n", b"s+OK\r\n", b"s-ERR no LAST\r\n", b"s+OK\r\n", b"s+OK\r\n",
    b"s+OK bye\r\n"))
SIGNED = (b"+OK 300 octets\r\nFrom: alice@example.org\r\nContent-Type: multipart/signed; "
          b"boundary=\"b\"; protocol=\"application/pgp-signature\"\r\n\r\n--b\r\nhello\r\n--b\r\n"
          b"Content-Type: application/pgp-signature\r\n\r\nx\r\n--b--\r\n.\r\n")
put("engine", "keys-transform", script(
    0x0C, LOGIN_C, LOGIN_S, b"cRETR 1\r\n", b"s" + SIGNED,
    b"xX-Popcrypt-Encryption: none\r\nX-Popcrypt-Signature: none\r\n\r\nhello\r\n.dot\r\n",
    b"cTOP 1 0\r\n", b"s" + SIGNED, b"s" + SIGNED, b"X", b"cQUIT\r\n", b"s+OK\r\n"))
put("engine", "keys-sniff-top", script(
    0x0C, LOGIN_C, LOGIN_S, b"cTOP 2 1\r\nRETR 2\r\n",
    b"s+OK\r\nSubject: inline\r\n\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nabc\r\n.\r\n",
    b"s+OK\r\nSubject: inline\r\n\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nabc\r\n-----END PGP MESSAGE-----\r\n.\r\n",
    b"X",
    b"s+OK\r\nSubject: plain\r\n\r\nnot armored\r\n.\r\n", b"a"))
put("engine", "sasl-capa", script(
    0x02, b"cCAPA\r\nAUTH PLAIN\r\n", b"s+OK\r\nTOP\r\nSASL PLAIN SCRAM-SHA-1-PLUS\r\nSTLS\r\n.\r\n",
    b"s+ \r\n", b"cAGFsaWNlAHB3\r\n", b"s+ more\r\n", b"c*\r\n", b"s-ERR cancelled\r\n",
    b"cAPOP a b\r\n", b"s+OK\r\n", b"cLAST\r\n", b"s+OK 0\r\n", b"t"))
put("engine", "free-mode-eof", script(
    0x01, b"cUSER a\r\nPASS b\r\nRETR 1\r\nQUIT\r\n", b"s+OK\r\n+OK\r\n+OK\r\nSubject",
    b"E", b"s: late\r\n", b"cQUIT\r\n"))
put("engine", "tiny-limits", script(
    0x00, LOGIN_C, LOGIN_S, b"cRETR 1\r\n", b"s+OK\r\n" + b"X-Long: " + b"y" * 80 + b"\r\n\r\n.\r\n",
    b"c" + b"N" * 40 + b"\r\n"))

# (d) MIME structure and (e) the transform: a few small golden messages
# plus hand-made shapes.
put("mime", "forged-and-folded", b"From: a\r\nX-Popcrypt-Signature: good\r\n more\r\n"
    b" lead\r\nSubject: x\r\n y\r\n\r\n-----BEGIN PGP MESSAGE-----\r\nx\r\n-----END PGP MESSAGE-----\r\n")
NESTED = (b"Content-Type: multipart/mixed; boundary=o\r\n\r\n--o\r\nContent-Type: message/rfc822\r\n\r\n"
          b"Content-Type: multipart/signed; boundary=i; protocol=\"application/pgp-signature\"\r\n\r\n"
          b"--i\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--i\r\nContent-Type: application/pgp-signature\r\n\r\n"
          b"--i--\r\n--o--\r\n")
put("mime", "nested", NESTED)
put("transform", "nested-signed", NESTED)
for target, rel in [
    ("mime", "openpgp/cases/pgpmime-signed-alice.eml"),
    ("mime", "smime/cases/signed-detached.eml"),
    ("transform", "openpgp/cases/inline-clearsign-alice.eml"),
    ("transform", "openpgp/cases/pgpmime-signenc-alice.eml"),
    ("transform", "openpgp/cases/pgpmime-enc-compressed.eml"),
    ("transform", "smime/cases/enveloped-aes256-gcm.eml"),
    ("transform", "smime/cases/signed-detached.eml"),
    ("transform", "smime/cases/signed-opaque.eml"),
]:
    d = os.path.join(REG, target)
    os.makedirs(d, exist_ok=True)
    shutil.copy(os.path.join(ROOT, "tests", "golden", rel),
                os.path.join(d, "seed-" + os.path.basename(rel)))
