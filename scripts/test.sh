#!/usr/bin/env bash
# Quick start, command 2: the whole test suite, against real peers (Dovecot,
# curl, Python's poplib, fetchmail). Installs what it needs. CI runs this.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo test --locked --all-targets
cargo test --locked --doc
