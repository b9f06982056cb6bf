#!/usr/bin/env bash
# Run one fuzz target for a while: fuzz/scripts/run.sh TARGET SECONDS
#
# Builds with cargo-fuzz (libFuzzer) on the stable toolchain, seeds the
# corpus from fuzz/regressions/TARGET (and, for mime and transform, every
# golden .eml under tests/golden/), and runs in fork mode so a crash is
# saved under fuzz/artifacts/TARGET/ and fuzzing goes on. The log is
# fuzz/logs/TARGET.log; its last "#N: cov: ..." line has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?target: command response engine mime transform}
secs=${2:-600}
case $target in
  command) max=512 ;;
  response) max=4096 ;;
  engine) max=8192 ;;
  mime) max=16384 ;;
  transform) max=65536 ;;
  *) echo "unknown target $target" >&2; exit 2 ;;
esac
mkdir -p "corpus/$target" logs
if [ -d "regressions/$target" ]; then
  cp -n regressions/"$target"/* "corpus/$target/" 2>/dev/null || true
fi
if [ "$target" = transform ] || [ "$target" = mime ]; then
  find ../tests/golden -name '*.eml' -exec cp -n {} "corpus/$target/" \;
fi
export RUSTC_BOOTSTRAP=1
nice cargo fuzz run --sanitizer none --debug-assertions "$target" "corpus/$target" -- \
  -max_len="$max" -rss_limit_mb=2048 -timeout=10 -max_total_time="$secs" \
  -fork=1 -ignore_crashes=1 -print_final_stats=1 2>&1 | tee "logs/$target.log"
