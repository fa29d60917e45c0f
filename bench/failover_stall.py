#!/usr/bin/env python3
"""The longest stall of a steady acks=all idempotent producer when a partition leader is killed
with kill -9, on a 3-node cluster (RF=3, min.insync.replicas=2), Kafka's default heartbeat and
session settings. Issue 13's reference: Apache Kafka 4.0 stalls 11.0 s on this machine.

Each round: a confluent-kafka producer sends 2,000 records/s to a one-partition topic; after 3 s
the leader's process is killed; the producer keeps going for 5 s more; then the killed node is
restarted and everything is read back (every acknowledged record exactly once, in order).
The stall is the longest time between two consecutive acknowledgements around the kill.
The same kill is measured first with strom-client (`strom producer-perf-test`'s max latency).

Usage: .venv/bin/python bench/failover_stall.py [--strom target/release/strom] [--rounds 5]
       [--leader-is-controller --strom-client-only]
(interop/install-deps.sh installs confluent-kafka into .venv)
"""
import argparse, random, re, statistics, subprocess, sys, time
from cluster_failover import Cluster
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

RATE = 2000

def leader_of(bootstrap, topic):
    md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10)
    return md.topics[topic].partitions[0].leader

def wait_for_full_isr(bootstrap, topic, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        p = AdminClient({"bootstrap.servers": bootstrap}).list_topics(topic, timeout=10).topics[topic].partitions.get(0)
        if p is not None and p.leader > 0 and len(p.isrs) == 3:
            return
        time.sleep(0.1)
    raise RuntimeError("the ISR did not fill")

def start_with_topic(c, topic, leader_is_controller=False):
    """Starts the cluster and creates `topic` (one partition, RF=3, min.insync.replicas=2) with a
    full ISR, led by the active controller if asked; returns the bootstrap string."""
    c.start_all()
    if leader_is_controller:
        deadline = time.time() + 30
        while c.leader()[1] is None and time.time() < deadline:
            time.sleep(0.05)
        first = c.leader()[1]
        placement = ["--replica-assignment", ":".join(str(n) for n in [first] + [n for n in (1, 2, 3) if n != first])]
    else:
        placement = ["--partitions", "1", "--replication-factor", "3"]
    out = c.create_when_registered("--topic", topic, *placement, "--config", "min.insync.replicas=2")
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    bootstrap = ",".join(f"127.0.0.1:{c.port(i)}" for i in (1, 2, 3))
    wait_for_full_isr(bootstrap, topic)
    return bootstrap

def one_round(strom, r):
    c = Cluster(strom, 3, 20000 + random.randrange(9000))
    try:
        topic, bootstrap = f"stall-{r}", start_with_topic(c, f"stall-{r}")
        acked, errors = [], []
        def done(err, msg):
            if err is not None:
                errors.append(err)
            else:
                acked.append((time.time(), int(msg.value())))
        p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 1, "message.timeout.ms": 60000})
        start = time.time()
        killed_at, victim, sent = None, None, 0
        while time.time() - start < 8:
            due = int((time.time() - start) * RATE)
            while sent < due:
                p.produce(topic, value=str(sent).encode(), partition=0, on_delivery=done)
                sent += 1
            p.poll(0.0005)
            if killed_at is None and time.time() - start >= 3:
                victim = leader_of(bootstrap, topic)
                killed_at = time.time()
                c.kill(victim)
        if p.flush(60) != 0:
            raise RuntimeError("records still unacknowledged after 60 s")
        times = [t for t, _ in acked]
        around = [b - a for a, b in zip(times, times[1:]) if b >= killed_at - 0.5]
        stall = max(around) if around else float("inf")
        c.start(victim)
        wait_for_full_isr(bootstrap, topic)
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"check-{r}", "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, 0)])
        read, deadline = [], time.time() + 60
        while len(read) < len(acked) and time.time() < deadline:
            m = consumer.poll(1.0)
            if m is not None and m.error() is None:
                read.append(int(m.value()))
        consumer.close()
        ok = read == sorted(v for _, v in acked) == list(range(sent))
        return stall, sent, len(acked), len(errors), ok
    finally:
        c.close()

def strom_client_round(strom, r, leader_is_controller=False):
    """The same kill with strom-client as the producer (`strom producer-perf-test`, 100-byte
    records, acks=all, idempotent, 2,000/s): its max latency is the stall. Returns (stall in s,
    whether the killed leader was also the active controller)."""
    c = Cluster(strom, 3, 20000 + random.randrange(9000))
    try:
        topic, bootstrap = f"stall-strom-{r}", start_with_topic(c, f"stall-strom-{r}", leader_is_controller)
        perf = subprocess.Popen([strom, "producer-perf-test", "--topic", topic, "--num-records", str(8 * RATE),
                                 "--record-size", "100", "--throughput", str(RATE), "--bootstrap-server", bootstrap,
                                 "--producer-props", "acks=all", "enable.idempotence=true", "linger.ms=1"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(3)
        victim = leader_of(bootstrap, topic)
        was_controller = c.leader()[1] == victim
        c.kill(victim)
        out, _ = perf.communicate(timeout=120)
        m = re.search(rf"^{8 * RATE} records sent.*?([\d.]+) ms max latency", out, re.M)
        if perf.returncode != 0 or m is None:
            raise RuntimeError(out[-800:])
        return float(m.group(1)) / 1000, was_controller
    finally:
        c.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", default="target/release/strom")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--leader-is-controller", action="store_true",
                    help="place the partition's leader on the active controller (strom-client rounds only)")
    ap.add_argument("--strom-client-only", action="store_true")
    a = ap.parse_args()
    for r in range(a.rounds):
        stall, was_controller = strom_client_round(a.strom, r, a.leader_is_controller)
        print(f"strom-client round {r + 1}: longest stall {stall * 1000:.0f} ms"
              f"{' (the leader was also the active controller)' if was_controller else ''}", flush=True)
    if a.strom_client_only:
        return
    stalls = []
    for r in range(a.rounds):
        stall, sent, acked, errors, ok = one_round(a.strom, r)
        stalls.append(stall)
        print(f"confluent-kafka round {r + 1}: longest stall {stall * 1000:.0f} ms; sent {sent}, acknowledged {acked}, "
              f"errors {errors}, read back exactly once in order: {ok}", flush=True)
        if not ok or errors:
            sys.exit(1)
    print(f"confluent-kafka, kill -9 of the partition leader under {RATE} records/s acks=all: longest stall median "
          f"{statistics.median(stalls) * 1000:.0f} ms, max {max(stalls) * 1000:.0f} ms ({a.rounds} rounds)")

if __name__ == "__main__":
    main()
