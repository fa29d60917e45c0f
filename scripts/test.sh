#!/usr/bin/env bash
# The whole test suite: clippy, unit and integration tests (librdkafka against a real broker),
# then the interop suite with kcat, kafka-python, confluent-kafka and kafkajs, against one node
# and against a 3-node cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo clippy --workspace --all-targets -- -D warnings
# The chaos runs (3-node clusters under faults, ~80 s each) run alone after the rest: beside
# other cluster tests on a small machine their load slows everything both measure.
cargo nextest run --workspace --no-fail-fast -E 'not package(strom-chaos)'
cargo nextest run -p strom-chaos --no-fail-fast
cargo test --workspace --doc
cargo build --bin strom
interop/run.sh target/debug/strom
# The same clients against node 2 of a 3-node local cluster.
STROM_INTEROP_CLUSTER=1 interop/run.sh target/debug/strom
