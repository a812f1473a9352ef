#!/usr/bin/env bash
# The test command of the README and of CI: install the package, start the local
# Kafka and Redis, run every test, stop the servers this run started, and exit
# with pytest's code ("no tests collected" counts as a failure).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python}"
PYTEST_NO_TESTS=5

say() { printf '==> %s\n' "$*"; }
cli() { "$PYTHON" -m stream_app.cli "$@"; }

say "installing stream-app with its dev extras (pip install -e '.[dev]')"
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e '.[dev]'

# Remember which servers were down before, so that only those are stopped again:
# a developer's own running servers survive the test run.
started=()
for service in kafka redis; do
  if ! cli services status "$service" >/dev/null 2>&1; then
    started+=("$service")
  fi
done

stop_started() {
  for service in ${started[@]+"${started[@]}"}; do
    say "stopping $service (started by this run)"
    cli services down "$service" || true
  done
}
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting local Kafka and Redis (stream-app services up)"
cli services up

# Compile the scoring kernel once (numba caches it beside the source), so the
# worker processes the integration tests start do not each compile it.
say "compiling the scoring kernel (loads and smoke-tests the shipped model)"
"$PYTHON" -c 'from stream_app.ops.reload import load_verified
from stream_app.settings import get_settings
load_verified(get_settings().artifact_dir)'

say "running pytest (unit and integration tests)"
set +e
"$PYTHON" -m pytest -p no:cacheprovider "$@"
code=$?
set -e

if [ "$code" -eq "$PYTEST_NO_TESTS" ]; then
  say "pytest collected no tests: failing the run"
  code=1
fi
say "pytest exit code: $code"
exit "$code"
