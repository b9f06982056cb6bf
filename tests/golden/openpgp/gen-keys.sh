#!/usr/bin/env bash
# Creates NEW DEMO-ONLY OpenPGP keys for the golden tests and the demo.
# Run only when the keys must change: every fingerprint in cases/*.report
# changes with them. Afterwards run ./regenerate.sh and bless the new
# expectations with `UPDATE_GOLDEN=1 cargo test --test golden_openpgp`.
# The demo mailbox samples (keys/demo/samples/openpgp-*.eml) are made from
# the same keys and must be regenerated as well.
# Needs GnuPG 2.2+. Uses a private temporary GNUPGHOME; never touches ~/.gnupg.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../../.." && pwd)
demo="$repo/keys/demo/openpgp"
priv="$here/keys-private"
mkdir -p "$demo" "$priv"

GNUPGHOME=$(mktemp -d)
export GNUPGHOME
trap 'gpgconf --homedir "$GNUPGHOME" --kill gpg-agent >/dev/null 2>&1 || true; rm -rf "$GNUPGHOME"' EXIT

# Keys are dated 2026-01-01 so that signatures made by regenerate.sh (dated
# 2026-11-01) are younger than the keys.
g() {
  gpg --batch --no-tty --quiet --pinentry-mode loopback --faked-system-time 20260101T000000! "$@" \
    2> >(grep -v -e 'faked system time' -e 'trustdb' -e 'marginals needed' -e 'depth: 0' >&2)
}

PP_PASSPHRASE="demo only: pp-user passphrase"

# name-real name-email key-type(ecc|rsa) [passphrase]
gen() {
  local real=$1 email=$2 kind=$3 pass=${4:-}
  {
    if [ "$kind" = ecc ]; then
      printf 'Key-Type: eddsa\nKey-Curve: ed25519\nKey-Usage: sign,cert\n'
      printf 'Subkey-Type: ecdh\nSubkey-Curve: cv25519\nSubkey-Usage: encrypt\n'
    else
      printf 'Key-Type: RSA\nKey-Length: 3072\nKey-Usage: sign,cert\n'
      printf 'Subkey-Type: RSA\nSubkey-Length: 3072\nSubkey-Usage: encrypt\n'
    fi
    printf 'Name-Real: %s\nName-Email: %s\nExpire-Date: 0\n' "$real" "$email"
    if [ -n "$pass" ]; then printf 'Passphrase: %s\n' "$pass"; else printf '%%no-protection\n'; fi
    printf '%%commit\n'
  } | g --gen-key
}
fpr_of() { # the newest key with this uid and algorithm (1 = RSA, 22 = EdDSA)
  gpg --batch --with-colons --list-keys "<$1>" | awk -F: -v a="$2" '$1=="pub"{p=($4==a)} p&&$1=="fpr"{print $10; p=0}' | tail -1
}

gen "Demo User" demo@popcrypt.invalid ecc
gen "Demo User" demo@popcrypt.invalid rsa
gen "Alice Demo" alice@popcrypt.invalid ecc
gen "Bob Demo" bob@popcrypt.invalid rsa
gen "Mallory" mallory@popcrypt.invalid ecc
gen "PP User" pp-user@popcrypt.invalid ecc "$PP_PASSPHRASE"

demo_ecc=$(fpr_of demo@popcrypt.invalid 22)
demo_rsa=$(fpr_of demo@popcrypt.invalid 1)

g --armor --export-secret-keys "$demo_ecc" >"$demo/demo-recipient.sec.asc"
g --armor --export alice@popcrypt.invalid >"$demo/alice.pub.asc"
g --armor --export bob@popcrypt.invalid >"$demo/bob-rsa.pub.asc"
g --armor --export-secret-keys "$demo_rsa" >"$priv/demo-rsa.sec.asc"
g --armor --export-secret-keys alice@popcrypt.invalid >"$priv/alice.sec.asc"
g --armor --export-secret-keys bob@popcrypt.invalid >"$priv/bob-rsa.sec.asc"
g --armor --export-secret-keys mallory@popcrypt.invalid >"$priv/mallory.sec.asc"
g --passphrase "$PP_PASSPHRASE" --armor --export-secret-keys pp-user@popcrypt.invalid >"$priv/pp-user.sec.asc"
printf '%s\n' "$PP_PASSPHRASE" >"$priv/pp-user.passphrase"
echo "new keys written to $demo and $priv; now run $here/regenerate.sh"
