#!/usr/bin/env bash
# Manage the local Kafka and Redis: services.sh install|up|down|status [kafka|redis|all]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec "${PYTHON:-python}" -m stream_app.cli services "$@"
