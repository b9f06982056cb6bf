#!/usr/bin/env bash
# Installs what popcrypt needs to build (and, with --test, to run its test
# suite against real peers) on Debian 12. Run as root. Idempotent.
set -euo pipefail
want=(libclang-dev libssl-dev pkg-config ca-certificates)
if [ "${1:-}" = "--test" ]; then
  want+=(dovecot-pop3d fetchmail curl python3)
fi
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  # Keep the packaged Dovecot service from starting: the tests run their own
  # instances on loopback with private configuration files.
  guard=/usr/sbin/policy-rc.d
  created=""
  if [ ! -e "$guard" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$guard"; chmod +x "$guard"; created=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
  if [ -n "$created" ]; then rm -f "$guard"; fi
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
