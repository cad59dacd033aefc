#!/usr/bin/env bash
# Runs every test suite of Nexero Showroom, installing what the suites need when it is missing.
# This is the README's test command; .ci/run calls it. Once the tools are on the machine it runs
# offline: each stage checks for its tools first and calls apt (through need_packages in
# tests/lib/install.sh) only for what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== layout (imports run one way; no source file over 400 lines)"
python3 tests/lint/module-graph.py

echo "== build (release binary: the crash test spawns it)"
cargo build --release --locked

echo "== unit and integration tests"
# The dashboard's browser tests (tests/dashboard_e2e.rs) drive headless Chromium through
# chromedriver; Debian keeps the two packages at the same version.
source tests/lib/install.sh
need_packages chromedriver:chromium-driver chromium:chromium
# Cloud sync tests (tests/sync_*.rs): a throwaway PostgreSQL from Debian's server binaries, and
# postrust (a PostgREST-compatible server) built once into a tools cache; exports NEXERO_POSTRUST.
source tests/lib/tools.sh
need_postgres
need_postrust
NEXERO_BIN="$PWD/target/release/nexero" cargo test --locked

# ---------------------------------------------------------------------------------------------
# Windows stage: cross-build nexero.exe and test console mode and the Windows service under Wine
# (installs mingw-w64, wine and the Rust target itself, only when missing). Never skipped: a
# failure here fails the run.
echo "== windows service (cross-built exe under wine)"
bash tests/windows/service-test.sh
