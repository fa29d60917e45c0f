#!/usr/bin/env python3
"""Draws docs/benchmarks.png from bench/sweep.py's JSON: achieved throughput and end-to-end
latency (p50, p99) against the target rate, one line per broker.

Usage: bench/.venv/bin/python bench/chart.py SWEEP.json docs/benchmarks.png
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main():
    data = json.load(open(sys.argv[1]))
    points = [p for p in data["points"] if "error" not in p]
    brokers = sorted({p["broker"] for p in points}, key=lambda b: (b != "strom", b))
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    colors = {b: f"C{i}" for i, b in enumerate(brokers)}
    for b in brokers:
        c = colors[b]
        ps = sorted((p for p in points if p["broker"] == b), key=lambda p: p["target_mb_per_sec"])
        x = [p["target_mb_per_sec"] for p in ps]
        left.plot(x, [p["mb_per_sec"] for p in ps], marker="o", color=c, label=b)
        right.plot(x, [p["latency_ms"]["p99"] for p in ps], marker="o", color=c, label=f"{b} p99")
        right.plot(x, [p["latency_ms"]["p50"] for p in ps], marker=".", color=c, linestyle="--", label=f"{b} p50")
    left.set(xlabel="target rate (MB/s)", ylabel="achieved (MB/s)", title="Throughput, 1 KiB records, acks=all")
    left.grid(alpha=0.3)
    left.legend()
    right.set(xlabel="target rate (MB/s)", ylabel="produce-to-consume latency (ms)", yscale="log",
              title="End-to-end latency")
    right.grid(alpha=0.3, which="both")
    right.legend(fontsize=8)
    machine = data.get("machine", {})
    fig.suptitle(f"strom-bench e2e on {machine.get('cpus', '?')} cores, {machine.get('cpu', '')}", fontsize=9)
    fig.tight_layout()
    fig.savefig(sys.argv[2], dpi=110)


if __name__ == "__main__":
    main()
