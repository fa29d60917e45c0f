#!/usr/bin/env bash
# Installs what the interop suite needs on a fresh Debian machine: kcat (Debian package), the
# Python clients kafka-python and confluent-kafka in a project-local virtualenv (.venv), and
# kafkajs (npm, with the machine's Node.js) in interop/kafkajs/node_modules.
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
if ! command -v npm >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
if [ ! -d interop/kafkajs/node_modules/kafkajs ]; then
  (cd interop/kafkajs && npm ci --silent --no-audit --no-fund)
fi
