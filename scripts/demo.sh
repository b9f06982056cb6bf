#!/usr/bin/env bash
# Quick start, command 1: build popcrypt and run its built-in demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo build --release --locked
exec ./target/release/popcrypt demo "$@"
