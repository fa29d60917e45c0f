#!/usr/bin/env python3
"""Cluster events, timed: the metadata quorum's failover when the active controller is killed
with kill -9, how long admin requests are refused meanwhile, how long until a killed broker is
fenced, and the start-up of a 3-node cluster to all partitions online.

Usage: python3 bench/cluster_failover.py [--strom target/release/strom] [--rounds 5] [--partitions 1000]
Results go to stdout as a table (docs/benchmarks.md keeps them).
"""
import argparse, os, random, re, shutil, signal, socket, statistics, subprocess, tempfile, time

def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"port {port} did not open")

class Cluster:
    def __init__(self, strom, nodes, base, extra=()):
        self.strom, self.nodes, self.base = strom, nodes, base
        self.dir = tempfile.mkdtemp(prefix="strom-failover-")
        cid = subprocess.check_output([strom, "storage", "random-uuid"], text=True).strip()
        voters = ",".join(f"{i}@127.0.0.1:{base + 100 + i - 1}" for i in range(1, nodes + 1))
        self.props = {}
        for i in range(1, nodes + 1):
            p = [f"node.id={i}", "process.roles=broker,controller", f"controller.quorum.voters={voters}",
                 f"listeners=PLAINTEXT://127.0.0.1:{self.port(i)},CONTROLLER://127.0.0.1:{base + 100 + i - 1}",
                 f"log.dirs={self.dir}/n{i}", *extra]
            self.props[i] = p
            empty = os.path.join(self.dir, "empty.properties")
            open(empty, "w").close()
            args = [strom, "storage", "format", "-t", cid, "-c", empty]
            for o in p:
                args += ["--override", o]
            subprocess.check_output(args)
        self.procs = {}

    def port(self, i):
        return self.base + i - 1

    def start(self, i):
        args = [self.strom, "server"]
        for o in self.props[i]:
            args += ["--override", o]
        log = open(os.path.join(self.dir, f"n{i}.log"), "a")
        self.procs[i] = subprocess.Popen(args, stdout=log, stderr=log)

    def start_all(self):
        """Starts every node and waits for their ports and an elected controller."""
        for i in range(1, self.nodes + 1):
            self.start(i)
        for i in range(1, self.nodes + 1):
            wait_port(self.port(i))
        while self.leader()[1] is None:
            time.sleep(0.02)

    def log(self, i):
        with open(os.path.join(self.dir, f"n{i}.log")) as f:
            return f.read()

    def leader(self):
        """(term, node) of the newest 'became leader' line in any running node's log."""
        best = (0, None)
        for i in self.procs:
            for m in re.finditer(r"became leader at term (\d+)", self.log(i)):
                best = max(best, (int(m.group(1)), i))
        return best

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)
        self.procs[i].wait()
        del self.procs[i]

    def stop_all(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            p.wait()
        self.procs = {}

    def topics(self, i, *args):
        return subprocess.run([self.strom, "topics", "--bootstrap-server", f"127.0.0.1:{self.port(i)}", *args],
                              capture_output=True, text=True)

    def create_when_registered(self, *args):
        """Creates a topic through node 1 once every broker has registered (RF=3 needs three)."""
        deadline = time.time() + 30
        while True:
            out = self.topics(1, "--create", *args)
            if out.returncode == 0 or time.time() > deadline or "INVALID_REPLICATION_FACTOR" not in out.stderr:
                return out
            time.sleep(0.2)

    def close(self):
        for p in self.procs.values():
            p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

def controller_failover(strom, rounds):
    elected, admin = [], []
    for r in range(rounds):
        c = Cluster(strom, 3, 20000 + random.randrange(9000))
        try:
            c.start_all()
            c.topics(1, "--create", "--topic", "warm", "--partitions", "1")
            term, victim = c.leader()
            other = next(i for i in (1, 2, 3) if i != victim)
            t0 = time.time()
            c.kill(victim)
            while c.leader()[0] <= term:
                time.sleep(0.005)
            elected.append(time.time() - t0)
            out = c.topics(other, "--create", "--topic", f"after-{r}", "--partitions", "1")
            if out.returncode != 0:
                raise RuntimeError(out.stderr)
            admin.append(time.time() - t0)
        finally:
            c.close()
    return elected, admin

def broker_fencing(strom, timeout_ms):
    c = Cluster(strom, 3, 20000 + random.randrange(9000), [f"broker.session.timeout.ms={timeout_ms}"])
    try:
        c.start_all()
        time.sleep(1)
        victim = next(i for i in (1, 2, 3) if i != c.leader()[1])
        watcher = c.leader()[1]
        t0 = time.time()
        c.kill(victim)
        fenced = re.compile(rf"broker registration changed broker_id={victim} .*fenced=true")
        while not fenced.search(c.log(watcher)):
            time.sleep(0.01)
            if time.time() - t0 > 60:
                raise RuntimeError("never fenced")
        return time.time() - t0
    finally:
        c.close()

def startup(strom, partitions):
    c = Cluster(strom, 3, 20000 + random.randrange(9000))
    try:
        c.start_all()
        time.sleep(1)
        out = c.topics(1, "--create", "--topic", "many", "--partitions", str(partitions))
        if out.returncode != 0:
            raise RuntimeError(out.stderr)
        c.stop_all()
        t0 = time.time()
        for i in (1, 2, 3):
            c.start(i)
        while True:
            out = c.topics(2, "--describe", "--topic", "many")
            led = len(re.findall(r"Leader: [1-9]", out.stdout))
            if led == partitions:
                return time.time() - t0
            time.sleep(0.05)
    finally:
        c.close()

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--strom", default="target/release/strom")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--partitions", type=int, default=1000)
    a = ap.parse_args()
    elected, admin = controller_failover(a.strom, a.rounds)
    fmt = lambda xs: f"median {statistics.median(xs)*1000:.0f} ms, max {max(xs)*1000:.0f} ms"
    print(f"kill -9 of the active controller -> new leader elected ({a.rounds} rounds): {fmt(elected)}")
    print(f"kill -9 of the active controller -> CreateTopics through another node succeeds: {fmt(admin)}")
    print(f"kill -9 of a broker -> fenced (broker.session.timeout.ms=9000, Kafka's default): {broker_fencing(a.strom, 9000)*1000:.0f} ms")
    print(f"restart of a 3-node cluster -> all {a.partitions} partitions with a leader: {startup(a.strom, a.partitions)*1000:.0f} ms")

if __name__ == "__main__":
    main()
