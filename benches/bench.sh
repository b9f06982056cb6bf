#!/usr/bin/env bash
# popcrypt benchmarks, side by side with what a user would pick instead.
#
#   bash benches/bench.sh            (as root on Debian 12; installs what it needs)
#
# 1. RETR of a 20 MB message from a real Dovecot over TLS, read by the same
#    bulk-reading Python client: directly over TLS, through stunnel (client
#    mode: plain in, TLS out), and through popcrypt (plain in, TLS out).
# 2. A 10 MB PGP/MIME encrypted message: `gpg --decrypt` of its ciphertext vs
#    `popcrypt decrypt` of the whole mail, and RETR through popcrypt with keys.
# 3. The same for a 10 MB S/MIME enveloped message vs `openssl cms -decrypt`.
# Results go to stdout as Markdown (hyperfine); copy them into BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
for p in stunnel4 hyperfine gnupg; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p"
done
cargo build --release --locked -q
BIN=$PWD/target/release/popcrypt
W=$(mktemp -d /tmp/popcrypt-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 1; rm -rf "$W"; }
trap cleanup EXIT
chmod 755 "$W"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (echo > /dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; exit 1; }

# --- TLS material for Dovecot
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=bench-ca \
  -keyout "$W/ca.key" -out "$W/ca.pem" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
  -keyout "$W/srv.key" -out "$W/srv.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n' > "$W/ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -set_serial 7 -days 2 \
  -extfile "$W/ext" -out "$W/srv.pem" 2>/dev/null

# --- Dovecot with one user and two messages
POP3S=$(port)
mkdir -p "$W/mail/bench/new" "$W/mail/bench/cur" "$W/mail/bench/tmp" "$W/run"
echo "bench:{PLAIN}bench-pass:65534:65534::$W/mail/bench" > "$W/passwd"
cat > "$W/dovecot.conf" <<CONF
base_dir = $W/run
state_dir = $W/run
instance_name = popcrypt-bench-$$
protocols = pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <$W/srv.pem
ssl_key = <$W/srv.key
log_path = $W/dovecot.log
mail_location = maildir:$W/mail/%u
mail_uid = 65534
mail_gid = 65534
first_valid_uid = 1
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = $W/passwd
}
userdb {
  driver = passwd-file
  args = $W/passwd
}
service pop3-login {
  inet_listener pop3 {
    port = 0
  }
  inet_listener pop3s {
    port = $POP3S
    ssl = yes
  }
}
CONF
python3 - "$W/mail/bench/new/1.bench:2," <<'PY'
import sys, base64, os
lines = [b"From: bench@popcrypt.invalid", b"To: bench@popcrypt.invalid", b"Subject: 20 MB", b""]
rnd = os.urandom(15 * 1024 * 1024)
b64 = base64.b64encode(rnd)
lines += [b64[i:i+76] for i in range(0, len(b64), 76)]
open(sys.argv[1], "wb").write(b"\r\n".join(lines) + b"\r\n")
PY
chown -R 65534:65534 "$W/mail"
dovecot -F -c "$W/dovecot.conf" & pids+=($!)
wait_port "$POP3S"

# --- OpenPGP: a 10 MB PGP/MIME message to the demo key
export GNUPGHOME="$W/gnupg"; mkdir -m 700 "$GNUPGHOME"
gpg --batch -q --import keys/demo/openpgp/demo-recipient.sec.asc
python3 -c '
import os, base64
b = base64.b64encode(os.urandom(7500*1024))
print("Content-Type: text/plain; charset=us-ascii\r\n\r\n" + "\r\n".join(b[i:i+76].decode() for i in range(0, len(b), 76)), end="\r\n")
' > "$W/inner.txt"
gpg --batch -q --trust-model always --armor --encrypt -r demo@popcrypt.invalid -o "$W/ct.asc" "$W/inner.txt"
{
  printf 'From: alice@popcrypt.invalid\r\nTo: demo@popcrypt.invalid\r\nSubject: 10 MB encrypted\r\nMIME-Version: 1.0\r\n'
  printf 'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="b1"\r\n\r\n'
  printf -- '--b1\r\nContent-Type: application/pgp-encrypted\r\n\r\nVersion: 1\r\n\r\n--b1\r\nContent-Type: application/octet-stream\r\n\r\n'
  sed 's/$/\r/' "$W/ct.asc"
  printf -- '--b1--\r\n'
} > "$W/enc.eml"
cp "$W/enc.eml" "$W/mail/bench/new/2.bench:2,"; chown 65534:65534 "$W/mail/bench/new/2.bench:2,"
mkdir -p "$W/keys"; cp -r keys/demo/openpgp keys/demo/smime keys/demo/trust "$W/keys/"

# --- S/MIME: a 10 MB enveloped message (AES-256-CBC) to the demo certificate
{
  printf 'From: alice@popcrypt.invalid\r\nTo: demo@popcrypt.invalid\r\nSubject: 10 MB S/MIME\r\n'
  openssl cms -encrypt -aes-256-cbc -in "$W/inner.txt" -binary keys/demo/smime/demo.pem
} > "$W/smime.eml"
openssl cms -decrypt -in "$W/smime.eml" -recip keys/demo/smime/demo.pem -binary -out "$W/smime.check"
cmp -s "$W/smime.check" "$W/inner.txt" || { echo "openssl round trip failed" >&2; exit 1; }
cp "$W/smime.eml" "$W/mail/bench/new/3.bench:2,"; chown 65534:65534 "$W/mail/bench/new/3.bench:2,"

# --- the proxies
P_PLAIN=$(port); P_KEYS=$(port); P_STUNNEL=$(port)
"$BIN" --log warn serve --listen 127.0.0.1:$P_PLAIN --upstream localhost:$POP3S --upstream-ca "$W/ca.pem" --no-system-roots & pids+=($!)
"$BIN" --log warn serve --listen 127.0.0.1:$P_KEYS --upstream localhost:$POP3S --upstream-ca "$W/ca.pem" --no-system-roots --keys "$W/keys" & pids+=($!)
cat > "$W/stunnel.conf" <<CONF
foreground = yes
pid =
[pop3]
client = yes
accept = 127.0.0.1:$P_STUNNEL
connect = 127.0.0.1:$POP3S
verifyChain = yes
CAfile = $W/ca.pem
checkHost = localhost
CONF
stunnel4 "$W/stunnel.conf" 2>/dev/null & pids+=($!)
wait_port "$P_PLAIN"; wait_port "$P_KEYS"; wait_port "$P_STUNNEL"

cat > "$W/fetch.py" <<'PY'
import socket, ssl, sys
mode, port, n = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection(("127.0.0.1", port))
if mode == "tls":
    s = ssl.create_default_context(cafile=sys.argv[4]).wrap_socket(s, server_hostname="localhost")
buf = bytearray()
def until(marker):
    # Search only the new bytes (plus an overlap): linear in the message size.
    global buf
    start = 0
    while True:
        i = buf.find(marker, max(0, start - len(marker)))
        if i >= 0:
            break
        start = len(buf)
        d = s.recv(1 << 20)
        if not d: raise SystemExit("closed")
        buf += d
    i += len(marker); r = bytes(buf[:i]); del buf[:i]; return r
until(b"\r\n")
s.sendall(b"USER bench\r\nPASS bench-pass\r\nRETR " + n.encode() + b"\r\n")
until(b"\r\n"); until(b"\r\n")
msg = until(b"\r\n.\r\n")
s.sendall(b"QUIT\r\n"); until(b"\r\n")
assert len(msg) > 1_000_000, len(msg)
PY
echo "## RETR of a 20 MB message (Dovecot over TLS, same Python client)"
hyperfine -N -w 1 -r 10 --export-markdown "$W/r1.md" \
  -n "direct TLS to Dovecot" "python3 $W/fetch.py tls $POP3S 1 $W/ca.pem" \
  -n "through stunnel" "python3 $W/fetch.py plain $P_STUNNEL 1" \
  -n "through popcrypt" "python3 $W/fetch.py plain $P_PLAIN 1" \
  -n "through popcrypt with keys loaded" "python3 $W/fetch.py plain $P_KEYS 1" >/dev/null
cat "$W/r1.md"
echo
echo "## Decrypting a 10 MB PGP/MIME message"
report=$("$BIN" decrypt --keys "$W/keys" -o /dev/null "$W/enc.eml" 2>&1)
case "$report" in *"openpgp; decrypted"*) ;; *) echo "popcrypt did not decrypt: $report" >&2; exit 1 ;; esac
hyperfine -N -w 1 -r 10 --export-markdown "$W/r2.md" \
  -n "gpg --decrypt (ciphertext only)" "gpg --batch -q --decrypt -o /dev/null $W/ct.asc" \
  -n "popcrypt decrypt (whole mail)" "$BIN decrypt --keys $W/keys -o /dev/null $W/enc.eml" \
  -n "RETR through popcrypt (decrypting)" "python3 $W/fetch.py plain $P_KEYS 2" \
  -n "RETR direct TLS (ciphertext)" "python3 $W/fetch.py tls $POP3S 2 $W/ca.pem" >/dev/null 2>&1
cat "$W/r2.md"
echo
echo "## Decrypting a 10 MB S/MIME enveloped message (RSA-2048, AES-256-CBC)"
report=$("$BIN" decrypt --keys "$W/keys" -o /dev/null "$W/smime.eml" 2>&1)
case "$report" in *"smime; decrypted"*) ;; *) echo "popcrypt did not decrypt S/MIME: $report" >&2; exit 1 ;; esac
hyperfine -N -w 1 -r 10 --export-markdown "$W/r3.md" \
  -n "openssl cms -decrypt" "openssl cms -decrypt -in $W/smime.eml -recip keys/demo/smime/demo.pem -binary -out /dev/null" \
  -n "popcrypt decrypt (whole mail)" "$BIN decrypt --keys $W/keys -o /dev/null $W/smime.eml" \
  -n "RETR through popcrypt (decrypting)" "python3 $W/fetch.py plain $P_KEYS 3" \
  -n "RETR direct TLS (ciphertext)" "python3 $W/fetch.py tls $POP3S 3 $W/ca.pem" >/dev/null 2>&1
cat "$W/r3.md"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
