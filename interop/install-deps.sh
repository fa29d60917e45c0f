#!/usr/bin/env bash
# Installs what the interop suite needs on a fresh Debian machine: kcat (Debian package) and the
# Python clients kafka-python and confluent-kafka in a project-local virtualenv (.venv).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v kcat >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq kcat >/dev/null
fi
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r interop/requirements.txt
