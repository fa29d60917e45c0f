//! The network the harness controls: a bridge in the host's namespace and one network namespace
//! per node joined to it by a veth pair (node i is 10.77.K.i, the harness's clients 10.77.K.254).
//! Faults are routes and queues inside a node's namespace, so they act on what that node sends:
//! a blackhole route to a peer drops everything it sends there (one way), a token bucket on its
//! interface makes its link slow. This kernel has no netem, so delay comes from a small rate.

use std::process::Command;

pub struct Network {
    /// The third octet of the subnet, also in the interface names, so that runs side by side
    /// (two CI tests) do not meet.
    pub net: u8,
    pub bridge: String,
    pub nodes: usize,
}

/// Runs `ip` (or `tc`) with `args`; the error carries the command and what it printed.
pub fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

impl Network {
    /// Creates the bridge and a namespace per node. Takes the first free subnet from a number
    /// derived from the process id.
    pub fn create(nodes: usize) -> Result<Network, String> {
        let start = (std::process::id() % 200) as u8;
        let mut tried = Vec::new();
        for k in 0..200u8 {
            let net = 20 + (start + k) % 200;
            let bridge = format!("stc{net}");
            match run("ip", &["link", "add", &bridge, "type", "bridge"]) {
                Ok(()) => {
                    let network = Network { net, bridge, nodes: 0 };
                    return network.populate(nodes);
                }
                Err(e) => tried.push(e),
            }
            if tried.len() > 3 {
                break;
            }
        }
        Err(format!("cannot create a bridge (the harness needs root and iproute2): {}", tried.join("; ")))
    }

    fn populate(mut self, nodes: usize) -> Result<Network, String> {
        let cidr = format!("{}/24", self.client_ip());
        run("ip", &["addr", "add", &cidr, "dev", &self.bridge])?;
        run("ip", &["link", "set", &self.bridge, "up"])?;
        for i in 1..=nodes {
            let ns = self.namespace(i);
            let veth = format!("stc{}n{i}", self.net);
            let _ = run("ip", &["netns", "del", &ns]);
            run("ip", &["netns", "add", &ns])?;
            self.nodes = i;
            run("ip", &["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns])?;
            run("ip", &["link", "set", &veth, "master", &self.bridge, "up"])?;
            let addr = format!("{}/24", self.node_ip(i));
            run("ip", &["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            run("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(self)
    }

    pub fn namespace(&self, node: usize) -> String {
        format!("strom-chaos-{}-{node}", self.net)
    }

    pub fn node_ip(&self, node: usize) -> String {
        format!("10.77.{}.{node}", self.net)
    }

    pub fn client_ip(&self) -> String {
        format!("10.77.{}.254", self.net)
    }

    /// Drops everything `from` sends to `to_ip` (a node's or the clients' address).
    pub fn drop_sent(&self, from: usize, to_ip: &str) -> Result<(), String> {
        let dest = format!("{to_ip}/32");
        run("ip", &["-n", &self.namespace(from), "route", "add", "blackhole", &dest])
    }

    /// Cuts both directions between two nodes.
    pub fn cut(&self, a: usize, b: usize) -> Result<(), String> {
        self.drop_sent(a, &self.node_ip(b))?;
        self.drop_sent(b, &self.node_ip(a))
    }

    /// Limits what `node` sends to `kbit` per second (a queue of at most `latency_ms`).
    pub fn slow(&self, node: usize, kbit: u32, latency_ms: u32) -> Result<(), String> {
        let (rate, latency) = (format!("{kbit}kbit"), format!("{latency_ms}ms"));
        let ns = self.namespace(node);
        let args = ["-n", &ns, "qdisc", "add", "dev", "eth0", "root", "tbf", "rate", &rate];
        run("tc", &[&args[..], &["burst", "32kbit", "latency", &latency]].concat())
    }

    /// Removes every route and queue a fault added.
    pub fn heal(&self) -> Result<(), String> {
        for i in 1..=self.nodes {
            let ns = self.namespace(i);
            run("ip", &["-n", &ns, "route", "flush", "type", "blackhole"])?;
            // Fails when there is no such queue: nothing to remove.
            let _ = run("tc", &["-n", &ns, "qdisc", "del", "dev", "eth0", "root"]);
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for i in 1..=self.nodes {
            let _ = run("ip", &["netns", "del", &self.namespace(i)]);
        }
        let _ = run("ip", &["link", "del", &self.bridge]);
    }
}
