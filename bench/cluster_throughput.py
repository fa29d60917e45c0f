#!/usr/bin/env python3
"""Produce throughput and latency of a 3-node cluster on this machine: RF=3, acks=all,
min.insync.replicas=2, 1 KiB records, 6 partitions (issue 13's performance targets).

- throughput: librdkafka's rdkafka_performance, `-P -s 1024 -a -1 -X linger.ms=5
  -X batch.size=1000000 -c 2000000`, the command Apache Kafka 4.0's reference figures were
  taken with (101-115 MB/s, 640 MB resident per broker, three combined nodes);
- latency: strom-bench at a fixed 50 MB/s (48,828 records/s of 1 KiB) with acks=all, delivery latency.

Each round starts a fresh cluster. Brokers' peak resident memory is read from /proc.
Usage: bench/install.sh && python3 bench/cluster_throughput.py [--strom target/release/strom] [--rounds 3]
"""
import argparse, json, os, random, re, statistics, subprocess, time
from cluster_failover import Cluster

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PRODUCED = re.compile(r"^% (\d+) messages produced \((\d+) bytes\), (\d+) delivered \(offset -?\d+, (\d+) failed\) "
                      r"in (\d+)ms: (\d+) msgs/s and ([\d.]+) MB/s")

def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None

def fresh_cluster(strom, topic):
    c = Cluster(strom, 3, 20000 + random.randrange(9000))
    c.start_all()
    out = c.create_when_registered("--topic", topic, "--partitions", "6", "--replication-factor", "3",
                   "--config", "min.insync.replicas=2")
    if out.returncode != 0:
        c.close()
        raise RuntimeError(out.stderr)
    deadline = time.time() + 30
    while time.time() < deadline:
        d = c.topics(2, "--describe", "--topic", topic).stdout
        if len(re.findall(r"Isr: \d+,\d+,\d+", d)) == 6:
            return c
        time.sleep(0.2)
    c.close()
    raise RuntimeError("the ISRs did not fill")

def throughput(strom):
    c = fresh_cluster(strom, "rf3")
    try:
        bootstrap = ",".join(f"127.0.0.1:{c.port(i)}" for i in (1, 2, 3))
        cmd = [os.path.join(ROOT, "bench/bin/rdkafka_performance"), "-P", "-t", "rf3", "-b", bootstrap, "-s", "1024",
               "-a", "-1", "-X", "linger.ms=5", "-X", "batch.size=1000000", "-c", "2000000", "-q"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        for line in out.stdout.splitlines():
            m = PRODUCED.match(line)
            if m and int(m.group(4)) == 0 and int(m.group(3)) == 2_000_000:
                rss = [peak_rss_mb(p.pid) for p in c.procs.values()]
                return float(m.group(7)), int(m.group(6)), rss
        raise RuntimeError((out.stdout + out.stderr)[-800:])
    finally:
        c.close()

def latency(strom):
    c = fresh_cluster(strom, "rf3-latency")
    try:
        bootstrap = ",".join(f"127.0.0.1:{c.port(i)}" for i in (1, 2, 3))
        cmd = [os.path.join(ROOT, "target/release/strom-bench"), "produce", "--bootstrap-server", bootstrap,
               "--topic", "rf3-latency", "--record-size", "1024", "--acks", "all", "--linger-ms", "1",
               "--rate", "48828", "--duration", "20", "--json"]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        return r["mb_per_sec"], r["latency_ms"]
    finally:
        c.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", default=os.path.join(ROOT, "target/release/strom"))
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    mbs = []
    for r in range(a.rounds):
        mb, recs, rss = throughput(a.strom)
        mbs.append(mb)
        print(f"round {r + 1}: {mb:.0f} MB/s ({recs} records/s), brokers' peak RSS {', '.join(f'{x:.0f}' for x in rss)} MB",
              flush=True)
        rate, lat = latency(a.strom)
        print(f"round {r + 1}: at {rate:.0f} MB/s acks=all: p50 {lat['p50']:.2f} p99 {lat['p99']:.2f} "
              f"p99.9 {lat['p99_9']:.2f} ms", flush=True)
    print(f"RF=3 acks=all throughput: median {statistics.median(mbs):.0f} MB/s over {a.rounds} rounds")

if __name__ == "__main__":
    main()
