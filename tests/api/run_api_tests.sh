#!/usr/bin/env bash
# Runs the API tests (pytest + the official openai client) against a real `moeflow serve`.
# Usage: run_api_tests.sh VENV MOEFLOW_BINARY SOURCE_DIR. Exit 77 (skipped) without the venv.
set -euo pipefail
VENV="$1"
export MOEFLOW_BINARY="$2" MOEFLOW_SOURCE_DIR="$3"
if ! "$VENV/bin/python" -c "import openai, pytest, httpx" 2>/dev/null; then
  echo "SKIPPED: no Python venv with openai, pytest and httpx at $VENV (scripts/setup.sh makes it)"
  exit 77
fi
MODEL="${MOEFLOW_TEST_MODEL:-$MOEFLOW_SOURCE_DIR/models/demo}"
if [[ ! -f "$MODEL/tokenizer.json" ]]; then
  echo "SKIPPED: no model with a tokenizer at $MODEL (the embedded demo model is not committed yet)"
  exit 77
fi
cd "$MOEFLOW_SOURCE_DIR/tests/api"
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider .
