//! One `strom server` process in its own network namespace, with its log directory on a tmpfs
//! of a fixed size (so that a disk can be filled), and what happened to it: kills, pauses,
//! restarts and the exits nobody asked for.

use crate::net::run;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where and how a node runs.
pub struct NodeSpec {
    pub id: usize,
    pub namespace: String,
    pub ip: String,
    pub root: PathBuf,
    pub strom: PathBuf,
    pub properties: String,
    pub env: Vec<(String, String)>,
}

pub struct Node {
    pub id: usize,
    pub namespace: String,
    pub ip: String,
    /// The tmpfs mount: `data/` (log.dirs), `ballast` (the disk-full fault), `server.log`.
    pub root: PathBuf,
    strom: PathBuf,
    env: Vec<(String, String)>,
    child: Option<Child>,
    pub paused: bool,
    /// Exits the harness did not cause: (when, status).
    pub unexpected_exits: Vec<String>,
}

impl Node {
    /// Mounts the node's tmpfs and formats its storage with the cluster id.
    pub fn prepare(spec: NodeSpec, cluster_id: &str) -> Result<Node, String> {
        let root = spec.root;
        std::fs::create_dir_all(&root).map_err(|e| format!("{}: {e}", root.display()))?;
        let size = format!("size={}m", crate::DISK_MB);
        run("mount", &["-t", "tmpfs", "-o", &size, "tmpfs", &root.display().to_string()])?;
        let node = Node {
            id: spec.id,
            namespace: spec.namespace,
            ip: spec.ip,
            root,
            strom: spec.strom,
            env: spec.env,
            child: None,
            paused: false,
            unexpected_exits: Vec::new(),
        };
        std::fs::write(node.config(), spec.properties).map_err(|e| e.to_string())?;
        let out = Command::new(&node.strom)
            .args(["storage", "format", "-t", cluster_id, "-c"])
            .arg(node.config())
            .output()
            .map_err(|e| format!("{}: {e}", node.strom.display()))?;
        if !out.status.success() {
            return Err(format!("strom storage format: {}", String::from_utf8_lossy(&out.stderr)));
        }
        Ok(node)
    }

    /// Kept outside the tmpfs would survive it; inside, a full disk also stops the config from
    /// being read, so it sits beside the mount.
    fn config(&self) -> PathBuf {
        self.root.with_extension("properties")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }

    /// The node's output over all its lives (beside the tmpfs, so that a full disk cannot stop it).
    pub fn log_path(&self) -> PathBuf {
        self.root.with_extension("log")
    }

    pub fn start(&mut self) -> Result<(), String> {
        let log = OpenOptions::new().create(true).append(true).open(self.log_path()).map_err(|e| e.to_string())?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &self.namespace])
            .arg(&self.strom)
            .args(["server", "--config"])
            .arg(self.config())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("start node {}: {e}", self.id))?;
        self.child = Some(child);
        self.paused = false;
        Ok(())
    }

    /// Whether the process is alive; an exit the harness did not cause is recorded.
    pub fn is_running(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else { return false };
        match child.try_wait() {
            Ok(None) => true,
            Ok(Some(status)) => {
                self.unexpected_exits.push(format!("node {} exited by itself: {status}", self.id));
                self.child = None;
                false
            }
            Err(_) => false,
        }
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let _ = run("kill", &[signal, &child.id().to_string()]);
        }
    }

    pub fn kill9(&mut self) {
        self.signal("-KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        self.paused = false;
    }

    pub fn pause(&mut self) {
        self.signal("-STOP");
        self.paused = true;
    }

    pub fn resume(&mut self) {
        self.signal("-CONT");
        self.paused = false;
    }

    /// SIGTERM (a controlled shutdown), then SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) {
        if self.paused {
            self.resume();
        }
        self.signal("-TERM");
        let deadline = Instant::now() + grace;
        while let Some(child) = self.child.as_mut() {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => {
                    self.child = None;
                }
                Ok(None) if Instant::now() > deadline => self.kill9(),
                Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Fills the tmpfs (a file of zeros until the write fails).
    pub fn fill_disk(&self) -> Result<(), String> {
        use std::io::Write;
        let mut f = std::fs::File::create(self.root.join("ballast")).map_err(|e| e.to_string())?;
        let block = vec![0u8; 1 << 20];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
        Ok(())
    }

    pub fn free_disk(&self) {
        let _ = std::fs::remove_file(self.root.join("ballast"));
    }

    /// Lines of the node's output that show a panic.
    pub fn panics(&self) -> Vec<String> {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        text.lines().filter(|l| l.contains("panicked at")).map(|l| format!("node {}: {l}", self.id)).collect()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill9();
        let _ = run("umount", &["-l", &self.root.display().to_string()]);
    }
}
