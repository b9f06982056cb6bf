#!/usr/bin/env bash
# Supply-chain checks with cargo-deny (configuration: deny.toml):
#   licenses, bans (duplicate versions, banned crates), sources: always;
#   advisories: offline, against the RustSec advisory database checkout named
#   by POPCRYPT_ADVISORY_DB (a git checkout of rustsec/advisory-db); skipped
#   with a loud message when there is none.
# Installs the pinned cargo-deny when it is missing (a source build through
# crates.io: several minutes on 2 cores, see docs/DEVELOPMENT.md).
# A check that did not run is appended, with why, to the file named by
# POPCRYPT_NOT_RUN when that is set (scripts/test.sh prints them at the end).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_DENY_VERSION=0.20.2

not_run() {
  echo "!!! NOT RUN: $1" >&2
  if [ -n "${POPCRYPT_NOT_RUN:-}" ]; then echo "$1" >> "$POPCRYPT_NOT_RUN"; fi
}

have=$(cargo deny --version 2>/dev/null || true)
if [ "$have" != "cargo-deny $CARGO_DENY_VERSION" ]; then
  echo "installing cargo-deny $CARGO_DENY_VERSION (found: ${have:-none}); this builds it from source" >&2
  start=$(date +%s)
  cargo install --locked cargo-deny --version "$CARGO_DENY_VERSION"
  echo "cargo-deny installed in $(( $(date +%s) - start )) s" >&2
fi

# Licences, bans, sources need no database. --offline: nothing is fetched
# (cargo metadata works from Cargo.lock and the local registry cache).
cargo deny --offline --locked check licenses bans sources

db=${POPCRYPT_ADVISORY_DB:-}
if [ -z "$db" ]; then
  not_run "cargo deny check advisories: no advisory database (set POPCRYPT_ADVISORY_DB to a checkout of the RustSec advisory-db)"
  exit 0
fi
if [ ! -d "$db/crates" ] || [ ! -e "$db/.git" ]; then
  echo "POPCRYPT_ADVISORY_DB=$db is not a git checkout of the RustSec advisory-db (expected crates/ and .git)" >&2
  exit 1
fi
# cargo-deny looks for each database in db-path/<last URL segment>-<xxh64 of
# the lower-cased URL>; for its default database (deny.toml sets no db-urls)
# and cargo-deny 0.20.2 that name is the one below. The root is a
# temporary directory (cargo-deny writes its lock file there), so the
# checkout itself may be read-only.
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
ln -s "$(realpath "$db")" "$root/advisory-db-3157b0e258782691"
POPCRYPT_ADVISORY_DB_ROOT=$root cargo deny --offline --locked check advisories
