#!/usr/bin/env bash
# cellwarden's test command: installs what the tests need, then runs every test.
#
# Tests that read ../shared (the NAB corpus, the Train Ticket incidents) are #[ignore = "needs ../shared"];
# they run too when ../shared exists next to the checkout, and this script says so when it does not.
# A test that needs a missing tool fails; nothing is skipped silently.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need beyond the Rust toolchain. (Later issues add Prometheus, Alertmanager,
# Python packages; they are installed here, never assumed.)
if ! command -v cargo >/dev/null; then
  echo "test.sh: cargo is not installed; install Rust with rustup first" >&2
  exit 1
fi
echo "== cargo test (workspace)"
cargo test --workspace --locked

if [ -d ../shared ]; then
  echo "== ../shared found: running the tests that need it"
  cargo test --workspace --locked -- --ignored
else
  echo "== ../shared not found: the tests marked #[ignore = \"needs ../shared\"] were NOT run"
fi
