#!/usr/bin/env bash
# Runs every test suite of Nexero Showroom, installing what the suites need when it is missing.
# This is the README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== build (release binary: the crash test spawns it)"
cargo build --release --locked

echo "== unit and integration tests"
NEXERO_BIN="$PWD/target/release/nexero" cargo test --locked

# ---------------------------------------------------------------------------------------------
# Windows stage: cross-build nexero.exe and test console mode and the Windows service under Wine
# (installs mingw-w64 and wine itself). Never skipped: a failure here fails the run.
echo "== windows service (cross-built exe under wine)"
bash tests/windows/service-test.sh
