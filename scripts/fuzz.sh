#!/usr/bin/env bash
# Fuzzes the content decoder and the text normalizer with cargo fuzz (libFuzzer).
#   scripts/fuzz.sh [SECONDS per target, default 60]
# The corpus in tests/fuzz/corpus seeds each run; new inputs go to a scratch copy, so the
# committed corpus changes only by hand (copy a crash or an interesting input into it).
# Uses the nightly toolchain when rustup has one, else the stable one with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
seconds="${1:-60}"
CARGO_FUZZ_VERSION=0.13.1
if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "[fuzz] installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --quiet --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION" --root "$CORDON_CACHE/tools"
fi
toolchain=()
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  export RUSTC_BOOTSTRAP=1
fi
export CARGO_TARGET_DIR="$CORDON_CACHE/fuzz-target"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in decode normalize; do
  mkdir -p "$scratch/$target"
  echo "[fuzz] $target for ${seconds}s"
  if ! cargo "${toolchain[@]}" fuzz run --fuzz-dir tests/fuzz "$target" \
      "$scratch/$target" "tests/fuzz/corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 \
      >"$scratch/$target.log" 2>&1; then
    tail -40 "$scratch/$target.log"
    echo "[fuzz] $target failed (the crashing input is in tests/fuzz/artifacts/$target)"
    exit 1
  fi
  grep -E '^Done' "$scratch/$target.log" || true
done
echo "[fuzz] no failures"
