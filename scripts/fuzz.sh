#!/usr/bin/env bash
# Runs every cargo-fuzz target for a given time each (default 60 s), on top of the committed
# corpus in fuzz/corpus/<target>/ (the seeds and every crash found so far, as regression cases),
# with libFuzzer's memory limits so that an over-allocation is a failure, not just slowness.
#   scripts/fuzz.sh [seconds-per-target] [target ...]
# New inputs go to fuzz/target/corpus/<target>/ (kept between runs, not committed); a crash
# leaves fuzz/artifacts/<target>/crash-* (or oom-*, leak-*) and a non-zero exit: add it to
# fuzz/corpus/<target>/ as regression-<what> once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
# libFuzzer's instrumentation needs nightly flags; the stable toolchain accepts them this way.
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/target/corpus/$t"
  echo "== fuzz $t for ${seconds}s"
  # Inputs are at most 64 KiB, so any single allocation above 64 MiB, or 512 MiB in all, means a
  # count or length from the input was trusted.
  log=$(mktemp)
  if ! (cd fuzz && cargo fuzz run "$t" "target/corpus/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=512 -malloc_limit_mb=64 -print_final_stats=1) >"$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz target $t FAILED (input in fuzz/artifacts/$t/)"
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added' "$log" | sed "s/^/$t: /"
  rm -f "$log"
done
