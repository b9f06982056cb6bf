#!/usr/bin/env bash
# Regenerates the S/MIME golden-test inputs (cases/*.eml) with the OpenSSL 3.0
# command line tool, from the committed DEMO-ONLY keys, and refreshes the demo
# mailbox material in keys/demo/{smime,trust,samples}.
#
#   ./regenerate.sh              reuse the committed keys; rebuild cases/
#   ./regenerate.sh --new-keys   ALSO create brand-new keys and certificates
#                                (every certificate, serial and case changes)
#   ONLY='efail-*' ./regenerate.sh   rebuild only the cases whose name matches
#                                the glob (and attacks/ with ONLY=attacks);
#                                other cases and the demo mailbox stay as they are
#
# Keys are created when missing or with --new-keys. Everything here is
# published with the source code: DEMO ONLY, never use for real mail.
#
# Layout (keys/ is usable as a popcrypt keys directory):
#   keys/smime/    own identities: demo.pem (cert+key+chain, RSA-2048),
#                  demo-rsa4096.crt + demo-rsa4096.key (separate files, paired
#                  by public key), demo-p256.pem (EC P-256, ECDH recipient)
#   keys/trust/    demo-root-ca.pem: the only trust anchor
#   keys/pkcs12/   demo.p12 (OpenSSL 3 defaults: AES-256-CBC, PBKDF2),
#                  demo-legacy.p12 (RC2-40/3DES, needs the legacy provider),
#                  demo.p12.passphrase (first line); not read by popcrypt
#   keys-private/  CA keys and the correspondents' certificates + keys
#                  (alice, alice-expired, bob, mallory and mallory's CA)
#
# Outer headers and plaintext bodies are written here; OpenSSL does the crypto
# and writes the S/MIME entities. Deterministic where possible: fixed
# certificate dates (via `openssl ca`), serials, subjects, header fields and
# bodies. Not deterministic: key generation (--new-keys only), the signingTime
# OpenSSL puts into every signature (so the Date header is "now" too),
# OpenSSL's MIME boundaries, and the content keys of every encryption.
# Only cases/*.eml are replaced; other files in cases/ (expectations) stay.
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
keys="$here/keys"
priv="$here/keys-private"
cases="$here/cases"
demo="$repo/keys/demo"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

PASSPHRASE="demo only: popcrypt smime p12 passphrase"
# The Date header is the signing time (now): signingTime cannot be fixed with
# the openssl tool, and a Date far from signingTime is itself a warning sign.
DATE=$(date -u -R)
NOT_BEFORE=20260101000000Z
NOT_AFTER=21260101000000Z

# --- keys and certificates ---------------------------------------------------
genkey() { # kind(rsa2048|rsa4096|p256) out
  case $1 in
    rsa*) openssl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:${1#rsa}" -out "$2" 2>/dev/null ;;
    p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
            -pkeyopt ec_param_enc:named_curve -out "$2" ;;
  esac
}

# issue subject-dn key ext-section serial-hex issuer-cert|self issuer-key out [start end]
issue() {
  local subj=$1 key=$2 ext=$3 serial=$4 icert=$5 ikey=$6 out=$7
  local start=${8:-$NOT_BEFORE} end=${9:-$NOT_AFTER}
  local ca="$tmp/ca"
  rm -rf "$ca"; mkdir -p "$ca/new"; : >"$ca/index.txt"; echo "$serial" >"$ca/serial"
  cat >"$ca/cnf" <<EOF
[ ca ]
default_ca = d
[ d ]
database = $ca/index.txt
new_certs_dir = $ca/new
serial = $ca/serial
default_md = sha256
policy = any
unique_subject = no
email_in_dn = yes
copy_extensions = none
[ any ]
commonName = supplied
emailAddress = optional
organizationName = optional
[ root ]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[ intermediate ]
basicConstraints = critical,CA:TRUE,pathlen:0
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ user_rsa ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyEncipherment
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \${ENV::SAN}
[ user_ec ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,nonRepudiation,keyAgreement
extendedKeyUsage = emailProtection
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = \${ENV::SAN}
EOF
  openssl req -new -key "$key" -subj "$subj" -out "$ca/req.csr"
  local who=(-cert "$icert" -keyfile "$ikey")
  [ "$icert" = self ] && who=(-selfsign -keyfile "$ikey")
  SAN=${SAN:-email:none@popcrypt.invalid} openssl ca -batch -notext -config "$ca/cnf" \
    "${who[@]}" -in "$ca/req.csr" -out "$out" -extensions "$ext" \
    -startdate "$start" -enddate "$end" 2>/dev/null
}

new_keys() {
  echo "creating new DEMO-ONLY keys and certificates" >&2
  rm -rf "$keys" "$priv"
  mkdir -p "$keys/smime" "$keys/trust" "$keys/pkcs12" "$priv"
  local k="$tmp/k"; mkdir -p "$k"
  # Trusted demo PKI: root -> issuing CA -> users.
  genkey p256 "$priv/root-ca.key"
  issue "/O=popcrypt DEMO ONLY/CN=popcrypt DEMO ONLY S-MIME Root CA" "$priv/root-ca.key" root 01 \
    self "$priv/root-ca.key" "$keys/trust/demo-root-ca.pem"
  genkey p256 "$priv/issuing-ca.key"
  issue "/O=popcrypt DEMO ONLY/CN=popcrypt DEMO ONLY S-MIME Issuing CA" "$priv/issuing-ca.key" intermediate 02 \
    "$keys/trust/demo-root-ca.pem" "$priv/root-ca.key" "$priv/issuing-ca.pem"
  local ica="$priv/issuing-ca.pem" ikey="$priv/issuing-ca.key"
  # user name email kind ext serial [start end]
  user() {
    local name=$1 email=$2 kind=$3 ext=$4 serial=$5 start=${6:-} end=${7:-}
    genkey "$kind" "$k/$name.key"
    SAN="email:$email" issue "/CN=$name (DEMO ONLY)/emailAddress=$email" "$k/$name.key" "$ext" "$serial" \
      "$ica" "$ikey" "$k/$name.crt" ${start:+"$start"} ${end:+"$end"}
  }
  user demo demo@popcrypt.invalid rsa2048 user_rsa 1001
  user demo-rsa4096 demo@popcrypt.invalid rsa4096 user_rsa 1002
  user demo-p256 demo@popcrypt.invalid p256 user_ec 1003
  user alice alice@popcrypt.invalid rsa2048 user_rsa 1004
  user bob bob@popcrypt.invalid rsa2048 user_rsa 1005
  # Alice's old certificate (same key), expired long before any signature.
  cp "$k/alice.key" "$k/alice-expired.key"
  SAN="email:alice@popcrypt.invalid" issue "/CN=alice (DEMO ONLY, expired)/emailAddress=alice@popcrypt.invalid" \
    "$k/alice-expired.key" user_rsa 1006 "$ica" "$ikey" "$k/alice-expired.crt" 20200101000000Z 20210101000000Z
  # Mallory: a certificate from a CA nobody trusts.
  genkey p256 "$priv/mallory-ca.key"
  issue "/O=Mallory/CN=Mallory's Untrusted CA (DEMO ONLY)" "$priv/mallory-ca.key" root 01 \
    self "$priv/mallory-ca.key" "$priv/mallory-ca.pem"
  genkey rsa2048 "$k/mallory.key"
  SAN="email:mallory@popcrypt.invalid" issue "/CN=mallory (DEMO ONLY)/emailAddress=mallory@popcrypt.invalid" \
    "$k/mallory.key" user_rsa 2001 "$priv/mallory-ca.pem" "$priv/mallory-ca.key" "$k/mallory.crt"

  # Own identities, three layouts: one PEM with cert+key+chain, separate
  # .crt/.key files, one PEM with cert+key.
  cat "$k/demo.crt" "$k/demo.key" "$ica" >"$keys/smime/demo.pem"
  cp "$k/demo-rsa4096.crt" "$k/demo-rsa4096.key" "$keys/smime/"
  cat "$k/demo-p256.crt" "$k/demo-p256.key" >"$keys/smime/demo-p256.pem"
  printf '%s\n' "$PASSPHRASE" >"$keys/pkcs12/demo.p12.passphrase"
  openssl pkcs12 -export -in "$k/demo.crt" -inkey "$k/demo.key" -certfile "$ica" -name "demo (DEMO ONLY)" \
    -passout "file:$keys/pkcs12/demo.p12.passphrase" -out "$keys/pkcs12/demo.p12"
  openssl pkcs12 -export -legacy -in "$k/demo.crt" -inkey "$k/demo.key" -certfile "$ica" -name "demo (DEMO ONLY)" \
    -passout "file:$keys/pkcs12/demo.p12.passphrase" -out "$keys/pkcs12/demo-legacy.p12"
  # Correspondents (cert + key in one file).
  for who in alice alice-expired bob mallory; do
    cat "$k/$who.crt" "$k/$who.key" >"$priv/$who.pem"
  done
}

if [ "${1:-}" = --new-keys ] || [ ! -f "$keys/smime/demo.pem" ] || [ ! -f "$priv/alice.pem" ]; then
  new_keys
fi

ICA="$priv/issuing-ca.pem"
DEMO_CRT="$tmp/demo.crt"
openssl x509 -in "$keys/smime/demo.pem" -out "$DEMO_CRT"
P256_CRT="$tmp/demo-p256.crt"
openssl x509 -in "$keys/smime/demo-p256.pem" -out "$P256_CRT"
RSA4096_CRT="$keys/smime/demo-rsa4096.crt"
BOB_CRT="$tmp/bob.crt"
openssl x509 -in "$priv/bob.pem" -out "$BOB_CRT"

# --- MIME helpers ------------------------------------------------------------
# OpenSSL 3.0 writes base64 bodies with LF even with -crlfeol: normalise to CRLF.
crlf() { sed 's/\r$//; s/$/\r/'; }
lf() { sed 's/\r$//'; }

# The plaintext MIME entity of a case (CRLF).
entity() { # case-name
  crlf <<EOF
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Demo,

this is the popcrypt S/MIME test message "$1".
It is DEMO ONLY test data.

-- 
Alice
EOF
}

# Outer header fields (CRLF), then the MIME entity from stdin.
mail() { # case-name from to subject
  {
    printf 'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%s@popcrypt.invalid>\r\n' \
      "$2" "$3" "$4" "$DATE" "$1"
    cat
  }
}
ALICE="Alice Demo <alice@popcrypt.invalid>"
DEMO="Demo User <demo@popcrypt.invalid>"
BOB="Bob Demo <bob@popcrypt.invalid>"
MALLORY="Mallory <mallory@popcrypt.invalid>"

encrypt() { # cipher-option recipient-cert [extra options...] < entity > S/MIME entity
  local cipher=$1 rcpt=$2; shift 2
  openssl cms -encrypt -binary -crlfeol "$cipher" -recip "$rcpt" "$@" | crlf
}
sign() { # signer-pem [extra options...] < entity > S/MIME entity (detached multipart/signed)
  local signer=$1; shift
  openssl cms -sign -binary -crlfeol -md sha256 -signer "$signer" "$@" | crlf
}

ONLY=${ONLY:-}
mkdir -p "$cases"; [ -n "$ONLY" ] || rm -f "$cases"/*.eml
# The file a case is written to (/dev/null when ONLY excludes it).
c() {
  # shellcheck disable=SC2053
  if [ -z "$ONLY" ] || [[ $1 == $ONLY ]]; then echo "$cases/$1.eml"; else echo /dev/null; fi
}

# --- enveloped-data ----------------------------------------------------------
entity enveloped-aes128-cbc | encrypt -aes128 "$DEMO_CRT" |
  mail enveloped-aes128-cbc "$ALICE" "$DEMO" "S/MIME enveloped, AES-128-CBC" >"$(c enveloped-aes128-cbc)"
entity enveloped-aes256-cbc | encrypt -aes256 "$DEMO_CRT" |
  mail enveloped-aes256-cbc "$ALICE" "$DEMO" "S/MIME enveloped, AES-256-CBC" >"$(c enveloped-aes256-cbc)"
entity enveloped-3des | encrypt -des3 "$DEMO_CRT" |
  mail enveloped-3des "$ALICE" "$DEMO" "S/MIME enveloped, 3DES (legacy)" >"$(c enveloped-3des)"
entity enveloped-aes256-gcm | encrypt -aes-256-gcm "$DEMO_CRT" |
  mail enveloped-aes256-gcm "$ALICE" "$DEMO" "S/MIME authEnveloped, AES-256-GCM" >"$(c enveloped-aes256-gcm)"
entity enveloped-rsa-oaep | encrypt -aes256 "$DEMO_CRT" -keyopt rsa_padding_mode:oaep |
  mail enveloped-rsa-oaep "$ALICE" "$DEMO" "S/MIME enveloped, RSA-OAEP" >"$(c enveloped-rsa-oaep)"
entity enveloped-rsa4096 | encrypt -aes256 "$RSA4096_CRT" |
  mail enveloped-rsa4096 "$ALICE" "$DEMO" "S/MIME enveloped to RSA-4096" >"$(c enveloped-rsa4096)"
entity enveloped-p256-ecdh | encrypt -aes256 "$P256_CRT" |
  mail enveloped-p256-ecdh "$ALICE" "$DEMO" "S/MIME enveloped to P-256 (ECDH)" >"$(c enveloped-p256-ecdh)"
entity enveloped-p256-ecdh-gcm | encrypt -aes-128-gcm "$P256_CRT" |
  mail enveloped-p256-ecdh-gcm "$ALICE" "$DEMO" "S/MIME authEnveloped to P-256 (ECDH), AES-128-GCM" >"$(c enveloped-p256-ecdh-gcm)"
entity enveloped-ski-rid | encrypt -aes256 "$DEMO_CRT" -keyid |
  mail enveloped-ski-rid "$ALICE" "$DEMO" "S/MIME enveloped, recipient by subjectKeyIdentifier" >"$(c enveloped-ski-rid)"
entity enveloped-other-recipient | encrypt -aes256 "$BOB_CRT" |
  mail enveloped-other-recipient "$ALICE" "$BOB" "S/MIME enveloped to someone else (bob)" >"$(c enveloped-other-recipient)"
entity enveloped-two-recipients | encrypt -aes256 "$BOB_CRT" -recip "$DEMO_CRT" |
  mail enveloped-two-recipients "$ALICE" "$BOB, $DEMO" "S/MIME enveloped to bob and demo" >"$(c enveloped-two-recipients)"
# Legacy name application/x-pkcs7-mime (the `openssl smime` command's default).
entity enveloped-x-pkcs7-mime | openssl smime -encrypt -binary -crlfeol -aes128 "$DEMO_CRT" | crlf |
  mail enveloped-x-pkcs7-mime "$ALICE" "$DEMO" "S/MIME enveloped, application/x-pkcs7-mime" >"$(c enveloped-x-pkcs7-mime)"

# Binary transfer encoding: raw DER body.
entity enveloped-binary | openssl cms -encrypt -binary -aes256 -outform DER "$DEMO_CRT" >"$tmp/binary.der"
{
  printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
  printf 'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: binary\r\n\r\n'
  cat "$tmp/binary.der"
} | mail enveloped-binary "$ALICE" "$DEMO" "S/MIME enveloped, binary transfer encoding" >"$(c enveloped-binary)"

# Corrupt DER: a valid blob cut short (its ASN.1 no longer parses).
entity enveloped-corrupt-der | openssl cms -encrypt -binary -aes256 -outform DER "$DEMO_CRT" >"$tmp/corrupt.der"
head -c 200 "$tmp/corrupt.der" >"$tmp/corrupt-cut.der"
{
  printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
  printf 'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
  openssl base64 -in "$tmp/corrupt-cut.der" | crlf
} | mail enveloped-corrupt-der "$ALICE" "$DEMO" "S/MIME enveloped, corrupt DER" >"$(c enveloped-corrupt-der)"

# AES-256-GCM with one ciphertext byte flipped: must fail authentication.
entity enveloped-aes256-gcm-tampered | openssl cms -encrypt -binary -aes-256-gcm -outform DER "$DEMO_CRT" >"$tmp/gcm.der"
# The encrypted content is the longest primitive [0] in the structure.
read -r off hl len < <(openssl asn1parse -inform DER -in "$tmp/gcm.der" | grep 'prim: cont \[ 0 \]' |
  sed -E 's/^ *([0-9]+):d=[0-9]+ +hl=([0-9]+) +l= *([0-9]+).*/\1 \2 \3/' | sort -k3 -n | tail -n1)
pos=$((off + hl + len / 2))
byte=$(od -An -tu1 -j "$pos" -N1 "$tmp/gcm.der" | tr -d ' ')
printf "$(printf '\\%03o' $(((byte ^ 1) & 255)))" | dd of="$tmp/gcm.der" bs=1 seek="$pos" conv=notrunc status=none
{
  printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=authEnveloped-data; name="smime.p7m"\r\n'
  printf 'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
  openssl base64 -in "$tmp/gcm.der" | crlf
} | mail enveloped-aes256-gcm-tampered "$ALICE" "$DEMO" "S/MIME authEnveloped, tampered ciphertext" >"$(c enveloped-aes256-gcm-tampered)"

# LF line-ending variant.
lf <"$(c enveloped-aes128-cbc)" >"$(c enveloped-aes128-cbc-lf)"

# --- signed-data -------------------------------------------------------------
ALICE_PEM="$priv/alice.pem"
entity signed-detached | sign "$ALICE_PEM" -certfile "$ICA" |
  mail signed-detached "$ALICE" "$DEMO" "S/MIME signed (multipart/signed), good" >"$(c signed-detached)"
lf <"$(c signed-detached)" >"$(c signed-detached-lf)"
entity signed-opaque | sign "$ALICE_PEM" -certfile "$ICA" -nodetach |
  mail signed-opaque "$ALICE" "$DEMO" "S/MIME signed (opaque signed-data), good" >"$(c signed-opaque)"
# Tampered: one word of the signed part changed after signing.
entity signed-detached-tampered | sign "$ALICE_PEM" -certfile "$ICA" |
  sed 's/It is DEMO ONLY test data/It is DEMO ONLY test DATA/' |
  mail signed-detached-tampered "$ALICE" "$DEMO" "S/MIME signed, tampered" >"$(c signed-detached-tampered)"
# Tampered opaque: one word of the encapsulated content changed inside the DER.
entity signed-opaque-tampered |
  openssl cms -sign -binary -md sha256 -signer "$ALICE_PEM" -certfile "$ICA" -nodetach -outform DER >"$tmp/opaque.der"
perl -0777 -pi -e 's/DEMO ONLY test data/DEMO ONLY test DATA/' "$tmp/opaque.der"
{
  printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data; name="smime.p7m"\r\n'
  printf 'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
  openssl base64 -in "$tmp/opaque.der" | crlf
} | mail signed-opaque-tampered "$ALICE" "$DEMO" "S/MIME signed (opaque), tampered" >"$(c signed-opaque-tampered)"
entity signed-detached-untrusted | sign "$priv/mallory.pem" -certfile "$priv/mallory-ca.pem" |
  mail signed-detached-untrusted "$MALLORY" "$DEMO" "S/MIME signed by an untrusted CA's certificate" >"$(c signed-detached-untrusted)"
entity signed-detached-from-mismatch | sign "$ALICE_PEM" -certfile "$ICA" |
  mail signed-detached-from-mismatch "$BOB" "$DEMO" "S/MIME signed by alice, From says bob" >"$(c signed-detached-from-mismatch)"
entity signed-detached-expired | sign "$priv/alice-expired.pem" -certfile "$ICA" |
  mail signed-detached-expired "$ALICE" "$DEMO" "S/MIME signed with an expired certificate" >"$(c signed-detached-expired)"
# The issuing CA is not included: the chain cannot reach the root.
entity signed-detached-no-chain | sign "$ALICE_PEM" |
  mail signed-detached-no-chain "$ALICE" "$DEMO" "S/MIME signed without the intermediate certificate" >"$(c signed-detached-no-chain)"

# Signature wrapping / partial signing (issue 8): Alice's genuine
# multipart/signed as the second part of the attacker's multipart/mixed,
# under a From: Alice. The signature covers only that part.
{
  printf 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="------------outer-0123456789"\r\n\r\n'
  printf -- '--------------outer-0123456789\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n'
  printf 'URGENT: the meeting moved. Wire the budget to account 1234 today.\r\n'
  printf -- '--------------outer-0123456789\r\n'
  entity mixed-with-signed-part-alice | sign "$ALICE_PEM" -certfile "$ICA"
  printf -- '\r\n--------------outer-0123456789--\r\n'
} | mail mixed-with-signed-part-alice "$ALICE" "$DEMO" "S/MIME signed by Alice (only partly)" >"$(c mixed-with-signed-part-alice)"

# --- combinations --------------------------------------------------------------
entity sign-then-encrypt | sign "$ALICE_PEM" -certfile "$ICA" | encrypt -aes256 "$DEMO_CRT" |
  mail sign-then-encrypt "$ALICE" "$DEMO" "S/MIME signed, then encrypted" >"$(c sign-then-encrypt)"
entity sign-opaque-then-encrypt | sign "$ALICE_PEM" -certfile "$ICA" -nodetach | encrypt -aes-256-gcm "$DEMO_CRT" |
  mail sign-opaque-then-encrypt "$ALICE" "$DEMO" "S/MIME opaque-signed, then encrypted (GCM)" >"$(c sign-opaque-then-encrypt)"
entity encrypt-then-sign | encrypt -aes256 "$DEMO_CRT" | sign "$ALICE_PEM" -certfile "$ICA" |
  mail encrypt-then-sign "$ALICE" "$DEMO" "S/MIME encrypted, then signed" >"$(c encrypt-then-sign)"

# --- EFAIL: HTML decrypted without integrity -----------------------------------
# What Outlook sends: HTML, AES-CBC, no signature. A client renders it; the
# transform must deliver it without anything that reaches the network.
html_entity() { # case-name (an HTML page full of remote references, CRLF)
  crlf <<EOF
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<html><head><base href="http://base.attacker.invalid/">
<meta http-equiv="refresh" content="5; url=http://refresh.attacker.invalid/">
<link rel="stylesheet" href="http://css.attacker.invalid/s.css">
<style>@import url(http://import.attacker.invalid/); body { background: url("http://bg.attacker.invalid/") }</style>
</head><body background="http://body.attacker.invalid/" style="background-image: url(http://style.attacker.invalid/)">
<p>Hello Demo,</p>
<p>this is the popcrypt S/MIME test message "$1" (HTML). <img src="http://img.attacker.invalid/pixel.gif" srcset="http://srcset.attacker.invalid/ 2x" alt="pixel">
<a href="http://link.attacker.invalid/?q=1">a link</a></p>
<table background="http://table.attacker.invalid/"><tr><td style="background:url(//td.attacker.invalid/)">It is DEMO ONLY test data.</td></tr></table>
<form action="http://form.attacker.invalid/"><input type="image" src="http://input.attacker.invalid/"></form>
<iframe src="http://iframe.attacker.invalid/"></iframe><video poster="http://poster.attacker.invalid/"><source src="http://video.attacker.invalid/"></video>
<p>-- <br>Alice</p>
</body></html>
EOF
}
html_entity cbc-html-remote | encrypt -aes256 "$DEMO_CRT" |
  mail cbc-html-remote "$ALICE" "$DEMO" "S/MIME enveloped HTML (AES-256-CBC) with remote references" >"$(c cbc-html-remote)"
html_entity gcm-html-remote | encrypt -aes-256-gcm "$DEMO_CRT" |
  mail gcm-html-remote "$ALICE" "$DEMO" "S/MIME authEnveloped HTML (AES-256-GCM): integrity protected" >"$(c gcm-html-remote)"
html_entity cbc-html-signed-inside | sign "$ALICE_PEM" -certfile "$ICA" | encrypt -aes256 "$DEMO_CRT" |
  mail cbc-html-signed-inside "$ALICE" "$DEMO" "S/MIME signed HTML, then encrypted (AES-256-CBC)" >"$(c cbc-html-signed-inside)"
# multipart/mixed { multipart/alternative { text/plain, text/html (QP, Latin-1) }, image/svg+xml }
crlf <<'EOF' | encrypt -aes128 "$DEMO_CRT" |
Content-Type: multipart/mixed; boundary="mixed-b"

This is a multi-part message in MIME format.
--mixed-b
Content-Type: multipart/alternative; boundary="alt-b"

--alt-b
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Demo, plain text keeps <img src="http://plain.attacker.invalid/"> as text.
--alt-b
Content-Type: text/html; charset=iso-8859-1
Content-Transfer-Encoding: quoted-printable

<html><body><p>Gr=FC=DFe, Demo! <img src=3D"http://qp.attacker.invalid/x.g=
if"></p><p style=3D"background:url(http://qpstyle.attacker.invalid/)">Caf=E9=
 DEMO ONLY test data.</p></body></html>
--alt-b--
--mixed-b
Content-Type: image/svg+xml; name="logo.svg"
Content-Disposition: inline; filename="logo.svg"

<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"><image xlink:href="http://svg.attacker.invalid/"/></svg>
--mixed-b--
EOF
  mail cbc-alternative-html "$ALICE" "$DEMO" "S/MIME enveloped alternative + SVG (AES-128-CBC)" >"$(c cbc-alternative-html)"

# Real CBC gadgets (EFAIL): the plaintext of the first block is known (this
# script wrote it), so whoever has only the ciphertext can build chosen
# blocks from (IV, C0) and put them anywhere. efail_gadget.py does what the
# paper describes; each try is decrypted with the demo key and kept only
# when the garbage blocks do not break the exfiltrating <img>.
secret_entity() {
  crlf <<'EOF'
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: 7bit

<html><body><p>Dear Demo,</p><p>................................THE SECRET: the vault code is 4711-0815, do not share it.</p><div title="end">-- Alice</div></body></html>
EOF
}
DEMO_PEM="$keys/smime/demo.pem"
gadget() { # case-name mode subject
  local name=$1 mode=$2 subject=$3 try
  [ "$(c "$name")" = /dev/null ] && return 0
  for try in $(seq 1 64); do
    secret_entity >"$tmp/secret.txt"
    openssl cms -encrypt -binary -aes-256-cbc -outform DER -in "$tmp/secret.txt" "$DEMO_CRT" >"$tmp/secret.der"
    python3 "$here/efail_gadget.py" "$mode" "$tmp/secret.der" "$tmp/secret.txt" "$tmp/gadget.der"
    openssl cms -decrypt -binary -inform DER -in "$tmp/gadget.der" -recip "$DEMO_PEM" -out "$tmp/gadget.txt" 2>/dev/null || continue
    if python3 "$here/efail_gadget.py" "check-$mode" "$tmp/gadget.txt"; then
      {
        printf 'MIME-Version: 1.0\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name="smime.p7m"\r\n'
        printf 'Content-Disposition: attachment; filename="smime.p7m"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        openssl base64 -in "$tmp/gadget.der" | crlf
      } | mail "$name" "$ALICE" "$DEMO" "$subject" >"$(c "$name")"
      return 0
    fi
  done
  echo "$name: no usable gadget in 64 tries" >&2
  return 1
}
gadget efail-cbc-gadget-html exfiltrate "EFAIL: CBC gadgets put an img src before the secret"
gadget efail-cbc-garbled-header garble "EFAIL: the IV changed, the Content-Type field garbled"

# --- attacks/: work bounded by the cap, not by the sender -------------------------
if [ -z "$ONLY" ] || [ "$ONLY" = attacks ]; then
  # 1,000 copies of one real SignerInfo (Alice's, no signed attributes,
  # signer named by key id: ~320 octets each). Before the cap, every good
  # copy was re-confirmed by a CMS verification over all 1,000.
  openssl x509 -in "$ALICE_PEM" -out "$tmp/alice.crt"
  cat "$tmp/alice.crt" "$ICA" >"$tmp/alice-chain.pem"
  signers=()
  for _ in $(seq 1 1000); do signers+=(-signer "$ALICE_PEM"); done
  crlf <<'EOF' >"$tmp/many.txt"
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello Demo,

one signed text, 1,000 SignerInfos.
EOF
  openssl cms -sign -binary -crlfeol -md sha256 -nocerts -noattr -keyid "${signers[@]}" \
    -certfile "$tmp/alice-chain.pem" -in "$tmp/many.txt" | crlf |
    mail many-signers "$ALICE" "$DEMO" "S/MIME signed, 1,000 SignerInfos" >"$here/attacks/many-signers.eml"
fi

if [ -n "$ONLY" ]; then
  echo "wrote the cases matching $ONLY" >&2
  exit 0
fi

# --- the demo mailbox (popcrypt demo) -----------------------------------------
mkdir -p "$demo/smime" "$demo/trust" "$demo/samples"
cp "$keys/smime/demo.pem" "$demo/smime/demo.pem"
cp "$keys/trust/demo-root-ca.pem" "$demo/trust/demo-smime-root-ca.pem"
sample() { # name
  sed "s/popcrypt S\/MIME test message \"[^\"]*\"/popcrypt S\/MIME demo message ($1)/"
}
entity x | sample encrypted | encrypt -aes-256-gcm "$DEMO_CRT" |
  mail smime-encrypted "$ALICE" "$DEMO" "S/MIME demo: encrypted (AES-256-GCM)" >"$demo/samples/smime-encrypted.eml"
entity x | sample signed | sign "$ALICE_PEM" -certfile "$ICA" |
  mail smime-signed "$ALICE" "$DEMO" "S/MIME demo: signed by alice" >"$demo/samples/smime-signed.eml"
entity x | sample tampered | sign "$ALICE_PEM" -certfile "$ICA" |
  sed 's/It is DEMO ONLY test data/It is DEMO ONLY test DATA/' |
  mail smime-tampered "$ALICE" "$DEMO" "S/MIME demo: signed by alice, then tampered with" >"$demo/samples/smime-tampered.eml"

echo "wrote $(ls "$cases" | wc -l) cases to $cases" >&2
