#!/usr/bin/env bash
# Coverage-guided fuzzing of one harness for a fixed time (scripts/fuzz.mjs says how).
#   bash scripts/fuzz.sh <gguf|safetensors|legacy|tokenizer|stream-decoder|server-params> <seconds>
set -euo pipefail
cd "$(dirname "$0")/.."
exec node scripts/fuzz.mjs "$@"
