#!/usr/bin/env bash
# ASan + UBSan build of the addon and the whole test suite under it (scripts/sanitize.mjs says how).
#   bash scripts/sanitize.sh [ava arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/sanitize.mjs "$@"
