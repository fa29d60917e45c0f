#!/usr/bin/env python3
"""Latency and throughput against target rate: strom-bench e2e (1 KiB records, acks=all,
6 partitions) at rising fixed rates, against Strom and the peer, alternating. Writes JSON for
bench/chart.py.

Usage: bench/.venv/bin/python bench/sweep.py [--rates 10,25,50,100,200] [--duration 8] --out FILE
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from compare import Broker, machine, run_bench  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rates", default="10,25,50,100,200", help="target rates in MB/s (10^6 bytes)")
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--peer", default="tansu", choices=["tansu", "none"])
    p.add_argument("--out", required=True)
    a = p.parse_args()
    brokers = ["strom"] + ([a.peer] if a.peer != "none" else [])
    work = tempfile.mkdtemp(prefix="strom-sweep-")
    points = []
    try:
        for i, mb in enumerate(float(r) for r in a.rates.split(",")):
            for b in brokers if i % 2 == 0 else list(reversed(brokers)):
                broker = Broker(b, os.path.join(work, f"{b}-{i}"))
                try:
                    rate = mb * 1e6 / 1024
                    args = ["e2e", "--record-size", "1024", "--partitions", "6", "--acks", "all", "--linger-ms", "1",
                            "--rate", f"{rate:.0f}"]
                    r = run_bench(broker, f"e2e-{mb:g}MB", args, f"sweep-{i}", a.duration)
                finally:
                    broker.stop()
                r.update({"broker": b, "target_mb_per_sec": mb})
                points.append(r)
                lat = r.get("latency_ms", {})
                print(f"{b:6} target {mb:6.1f} MB/s: achieved {r.get('mb_per_sec', 0):7.1f} MB/s, "
                      f"p50 {lat.get('p50', 0):8.2f} p99 {lat.get('p99', 0):8.2f} p99.9 {lat.get('p99_9', 0):8.2f} ms"
                      + (f" ERROR {r['error']}" if "error" in r else ""), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    with open(a.out, "w") as f:
        json.dump({"machine": machine(), "points": points}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())
