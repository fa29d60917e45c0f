#!/usr/bin/env bash
# The interop suite: real third-party clients against a freshly started `strom server`.
#   kcat: list metadata, produce and consume 10,000 messages
#   kafka-python and confluent-kafka: produce and consume with keys and headers
#   kafkajs: admin, an idempotent gzip producer, a consumer group and its committed offsets
# Usage: interop/run.sh [path/to/strom]   (default: target/debug/strom)
# With STROM_INTEROP_CLUSTER=1 the clients talk to node 2 of a 3-node `strom local-cluster`
# instead (partitions and group coordinators spread over the three brokers; every topic with
# three replicas and min.insync.replicas=2).
# With STROM_CAPTURE_DIR set, the clients talk to the broker through interop/record_proxy.py,
# which writes the request frames they send there (seeds for the fuzz targets:
# scripts/capture-fuzz-seeds.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
STROM=${1:-target/debug/strom}
interop/install-deps.sh
PY=.venv/bin/python

work=$(mktemp -d)
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=$(free_port)
client_port=$port
advertised=()
if [ -n "${STROM_CAPTURE_DIR:-}" ]; then
  client_port=$(free_port)
  advertised=(--override "advertised.listeners=PLAINTEXT://127.0.0.1:$client_port")
fi
if [ -n "${STROM_INTEROP_CLUSTER:-}" ]; then
  # Ports below the ephemeral range, so no client connection takes one meanwhile.
  base=$((20000 + RANDOM % 9000))
  port=$((base + 1)); client_port=$port
  # Every topic has three replicas, and acks=all needs two of them.
  export STROM_INTEROP_RF=3
  "$STROM" local-cluster --nodes 3 --dir "$work/cluster" --base-port "$base" \
    --override group.initial.rebalance.delay.ms=0 --override default.replication.factor=3 \
    --override min.insync.replicas=2 >"$work/broker.log" 2>&1 &
else
  "$STROM" server --override "listeners=PLAINTEXT://127.0.0.1:$port" --override "log.dirs=$work/data" \
    "${advertised[@]}" --override group.initial.rebalance.delay.ms=0 >"$work/broker.log" 2>&1 &
fi
pid=$!
proxy=
cleanup() {
  [ -n "$proxy" ] && kill "$proxy" 2>/dev/null
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"
}
trap cleanup EXIT
if [ -n "${STROM_CAPTURE_DIR:-}" ]; then
  $PY interop/record_proxy.py "$client_port" "127.0.0.1:$port" "$STROM_CAPTURE_DIR" &
  proxy=$!
fi
for p in $port $client_port; do
  for _ in $(seq 1 300); do
    (echo >/dev/tcp/127.0.0.1/$p) 2>/dev/null && break
    sleep 0.05
  done
done
B=127.0.0.1:$client_port
if [ -n "${STROM_INTEROP_CLUSTER:-}" ]; then
  for _ in $(seq 1 200); do
    [ "$(kcat -L -b "$B" 2>/dev/null | grep -c ' at 127.0.0.1')" -eq 3 ] && break
    sleep 0.1
  done
  kcat -L -b "$B" | grep -q "3 brokers" || { echo "the cluster did not come up"; cat "$work/broker.log"; exit 1; }
fi
passed=0; failed=0
check() {
  local name=$1; shift
  if "$@" >"$work/$name.out" 2>&1; then
    echo "ok   $name"; passed=$((passed+1))
  else
    echo "FAIL $name"; sed 's/^/     /' "$work/$name.out" | tail -30; failed=$((failed+1))
  fi
}

kcat_roundtrip() {
  seq 1 10000 | sed 's/^/kcat-message-/' | kcat -P -b "$B" -t kcat-topic -p 0
  local n
  n=$(kcat -C -b "$B" -t kcat-topic -o beginning -e -q | wc -l)
  [ "$n" -eq 10000 ] || { echo "consumed $n of 10000"; return 1; }
  kcat -C -b "$B" -t kcat-topic -o beginning -c 1 -q | grep -qx 'kcat-message-1'
}
kcat_list() {
  kcat -L -b "$B" -t kcat-topic | tee /dev/stderr | grep -q 'topic "kcat-topic" with 1 partitions'
  kcat -L -b "$B" | grep -q "broker 1 at"
  if [ -n "${STROM_INTEROP_CLUSTER:-}" ]; then
    # Three replicas and a full ISR, whichever broker describes it.
    for p in $((base + 0)) $((base + 1)) $((base + 2)); do
      kcat -L -b "127.0.0.1:$p" -t kcat-topic | grep -E 'replicas: ([123],){2}[123], isrs: ([123],){2}[123]' \
        || { echo "broker at port $p does not show three replicas in sync"; return 1; }
    done
  fi
}

check kcat-produce-consume-10000 kcat_roundtrip
check kcat-list-metadata kcat_list
check kafka-python "$PY" interop/clients.py kafka-python "$B"
check confluent-kafka "$PY" interop/clients.py confluent-kafka "$B"
check kafka-python-group "$PY" interop/clients.py kafka-python-group "$B"
check confluent-kafka-group "$PY" interop/clients.py confluent-kafka-group "$B"
check kafkajs node interop/kafkajs/clients.js "$B"
if [ -n "${STROM_CAPTURE_DIR:-}" ]; then
  strom_client_round_trip() {
    seq 1 100 | "$STROM" console-producer --bootstrap-server "$B" --topic strom-client-topic
    "$STROM" console-consumer --bootstrap-server "$B" --topic strom-client-topic --from-beginning \
      --max-messages 100 --timeout-ms 20000 --group strom-client-group | wc -l | grep -qx 100
  }
  check strom-client strom_client_round_trip
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
