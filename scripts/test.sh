#!/usr/bin/env bash
# Quick start, command 2: the whole test suite, against real peers (Dovecot,
# curl, Python's poplib, fetchmail), plus formatting, clippy and the
# supply-chain checks (cargo-deny). Installs what it needs. CI runs this.
#
# Optional inputs (.ci/run sets them when it can):
#   POPCRYPT_CORPORA      folder of the published attack-mail corpora; the
#                         corpora tests do not run without it
#   POPCRYPT_ADVISORY_DB  checkout of the RustSec advisory-db; the advisories
#                         check does not run without it
# Whatever did not run is listed, with why and how to run it, at the very
# end (after the totals line).
set -euo pipefail
cd "$(dirname "$0")/.."

# Checks that did not run append a line here (scripts/deny.sh does too).
POPCRYPT_NOT_RUN=$(mktemp)
export POPCRYPT_NOT_RUN
log=$(mktemp)
step=""

finish() {
  local rc=$?
  set +e
  echo
  echo "================ popcrypt test summary ================"
  if [ "$rc" -ne 0 ]; then
    echo "FAILED in step: $step (exit $rc); the steps after it did not run"
  fi
  # A test whose input is missing returns early and prints
  # "<suite>::<test>: not run: <why>" (past the harness's capture): such
  # tests are listed by reason and counted as skipped, not passed.
  grep -o '[A-Za-z0-9_:]*: not run: .*' "$log" | sort -u > "$log.skipped"
  local skipped
  skipped=$(wc -l < "$log.skipped")
  awk -F': not run: ' '
    { n[$2]++; names[$2] = names[$2] "\n      " $1 }
    END { for (r in n) printf "%d tests: %s%s\n", n[r], r, names[r] }' "$log.skipped" \
    >> "$POPCRYPT_NOT_RUN"
  # The totals over every `cargo test` run above, in the plain
  # "N passed, N failed, N skipped" form.
  if grep -q '^test result: ' "$log"; then
    awk -v skipped="$skipped" '
      /^test result: / {
        for (i = 1; i < NF; i++) {
          if ($(i+1) ~ /^passed/) p += $i
          if ($(i+1) ~ /^failed/) f += $i
          if ($(i+1) ~ /^ignored/) g += $i
        }
      }
      END { printf "tests: %d passed, %d failed, %d skipped\n", p - skipped, f, g + skipped }' "$log"
  fi
  # Last: whatever did not run, and how to run it.
  if [ -z "${POPCRYPT_CORPORA:-}" ] && ! grep -q 'POPCRYPT_CORPORA' "$POPCRYPT_NOT_RUN"; then
    # The tests did not get as far as saying so themselves.
    echo "the corpora suites: POPCRYPT_CORPORA is not set" >> "$POPCRYPT_NOT_RUN"
  fi
  if [ -s "$POPCRYPT_NOT_RUN" ]; then
    echo "NOT RUN:"
    sed 's/^\([^ ]\)/  - \1/' "$POPCRYPT_NOT_RUN"
  elif [ "$rc" -eq 0 ]; then
    echo "Every suite and check ran."
  fi
  if [ -z "${POPCRYPT_ADVISORY_DB:-}" ] && grep -q advisories "$POPCRYPT_NOT_RUN"; then
    echo "To run the advisories check: POPCRYPT_ADVISORY_DB=/path/to/advisory-db bash scripts/test.sh"
    echo "  (.ci/run sets it from ../shared/advisory-db when that folder exists)"
  fi
  if [ -z "${POPCRYPT_CORPORA:-}" ]; then
    echo "Not run: the suites over the published attack-mail corpora (tests/corpora_openpgp.rs,"
    echo "  tests/corpora_smime.rs and the corpora tests of tests/smime_api.rs). To run them:"
    echo "  POPCRYPT_CORPORA=/path/to/corpora bash scripts/test.sh"
    echo "  (.ci/run sets POPCRYPT_CORPORA from ../shared/corpora when that folder exists)"
  fi
  rm -f "$POPCRYPT_NOT_RUN" "$log" "$log.skipped"
  exit "$rc"
}
trap finish EXIT

# CI builds once from clean: incremental caches would only take disk.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
step="install dependencies"
bash scripts/install-deps.sh --test
step="cargo fmt"
cargo fmt --all -- --check
step="cargo clippy"
cargo clippy --locked --all-targets -- -D warnings
step="cargo deny (scripts/deny.sh)"
bash scripts/deny.sh
if [ -z "${POPCRYPT_CORPORA:-}" ]; then
  echo "!!! POPCRYPT_CORPORA is not set: the tests over the published corpora will not run" >&2
fi
step="cargo test --all-targets"
cargo test --locked --no-fail-fast --all-targets 2>&1 | tee -a "$log"
step="cargo test --doc"
cargo test --locked --doc 2>&1 | tee -a "$log"
step="done"
