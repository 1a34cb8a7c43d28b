#!/usr/bin/env bash
# Installs what building and testing moeflow needs on a Debian machine; safe to re-run (it only
# installs what is missing). Used by scripts/run.sh and scripts/test.sh.
set -euo pipefail

DEBIAN_PACKAGES=(
  g++ cmake ninja-build pkg-config
  libopenblas-dev nlohmann-json3-dev libgtest-dev libgmock-dev
  libtomlplusplus-dev libzmq3-dev cppzmq-dev libcaf-dev
  iproute2 python3
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
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
