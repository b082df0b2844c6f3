#!/usr/bin/env bash
# Runs every test: formatting, lints, unit tests, and the tests against real components (a tansu
# broker process and PostgreSQL). Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
source scripts/env.sh

echo "[test] deployment artefacts (alert rules and their unit tests)"
scripts/check-deploy.sh
echo "[test] cargo fmt --check"
cargo fmt --all -- --check
echo "[test] cargo clippy -D warnings"
cargo clippy --release --workspace --all-targets --quiet -- -D warnings
echo "[test] cargo test"
cargo test --release --workspace
echo "[test] fuzzing the decoder and the normalizer (short run; scripts/fuzz.sh SECONDS for longer)"
scripts/fuzz.sh 20
