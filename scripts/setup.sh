#!/usr/bin/env bash
# Installs what building and testing moeflow needs on a Debian machine; safe to re-run (it only
# installs what is missing). Used by scripts/run.sh and scripts/test.sh.
set -euo pipefail

DEBIAN_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libopenblas-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  libtomlplusplus-dev libzmq3-dev cppzmq-dev libcaf-dev
  libcpp-httplib-dev iproute2 python3 python3-venv prometheus
)

missing=()
for p in "${DEBIAN_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

# Python tools for the API tests (the official openai client, pytest), in a venv kept between
# runs so CI installs them once per machine.
VENV="${MOEFLOW_PY_VENV:-$HOME/.cache/moeflow/venv}"
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import openai, pytest, httpx" 2>/dev/null; then
  echo "setup: installing the Python test tools into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip >/dev/null
  "$VENV/bin/pip" install -q openai pytest httpx
fi
