#!/usr/bin/env bash
# Records the request frames that real clients send (kcat and confluent-kafka on librdkafka,
# kafka-python, kafkajs, strom-client) by running the interop suite through a recording proxy,
# and adds them to fuzz/corpus/request/ as `client-<api>-v<version>-<n>`.
#   scripts/capture-fuzz-seeds.sh [path/to/strom]
set -euo pipefail
cd "$(dirname "$0")/.."
STROM=${1:-target/debug/strom}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
STROM_CAPTURE_DIR="$out" interop/run.sh "$STROM"
mkdir -p fuzz/corpus/request
n=0
for f in "$out"/*.bin; do
  cp "$f" "fuzz/corpus/request/client-$(basename "$f" .bin)"
  n=$((n+1))
done
echo "$n request frames from real clients in fuzz/corpus/request/"
