#!/usr/bin/env bash
# The README's main-job command: install the package, then train (or reuse the
# shipped model), start Kafka and Redis, run the worker, replay a real day of
# invoices through it and show what comes out. Extra arguments go to
# 'stream-app demo' (e.g. --day 2011-12-07 or --retrain).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON="${PYTHON:-python}"
printf '==> installing stream-app (pip install -e .)\n'
"$PYTHON" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -e .
exec "$PYTHON" -m stream_app.cli demo "$@"
