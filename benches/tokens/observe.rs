//! What the benchmark watches besides the operator's memory: how many tokens are Ready, kept by
//! a watch of VcsAuthTokens, and the CPU time of every process of the run.
//!
//! The Ready count used to come from a list of every token four times a second. Against a real
//! kube-apiserver each such list of 10,000 tokens costs the server (and this process) CPU on the
//! two cores the operator shares with them, so the instrument slowed what it measured. A watch
//! costs the server one more watcher of the events it sends the operator anyway, which is also
//! what a user's `kubectl get -w` or a GitOps tool costs it.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use patchbay::api::VcsAuthToken;

use super::fleet::is_ready;

/// Every VcsAuthToken of the cluster, kept by a watch (kube-runtime's reflector, with its
/// default backoff), from which the Ready ones are counted.
pub struct ReadyWatch {
    store: Store<VcsAuthToken>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    /// Starts watching.
    pub fn start(client: &Client) -> Self {
        let (store, writer) = reflector::store();
        let api: Api<VcsAuthToken> = Api::all(client.clone());
        let events = watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .modify(|t| t.managed_fields_mut().clear())
            .reflect(writer);
        let task = tokio::spawn(events.for_each(|_| futures::future::ready(())));
        Self { store, task }
    }

    /// Tokens Ready as the watch last reported them; None before its first list is complete.
    pub fn ready(&self) -> Option<usize> {
        self.store.wait_until_ready().now_or_never()?.ok()?;
        Some(self.store.state().iter().filter(|t| is_ready(t)).count())
    }

    /// Waits until the watch's first list is complete (at most `limit`).
    pub async fn listed(&self, limit: Duration) -> bool {
        let listed = tokio::time::timeout(limit, self.store.wait_until_ready()).await;
        listed.is_ok_and(|done| done.is_ok())
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// CPU seconds (user and system) by process name: this process ("bench": the emulator and the
/// GitHub simulator run in it) and every process started below it (the operator, and with
/// `--server apiserver` kube-apiserver and etcd).
#[derive(Clone, Default)]
pub struct Cpu(pub BTreeMap<String, f64>);

impl Cpu {
    /// The CPU time used so far by this process tree.
    pub fn now() -> Self {
        let ticks = clock_ticks();
        let me = std::process::id();
        let mut processes = Vec::new();
        if let Ok(dir) = std::fs::read_dir("/proc") {
            for entry in dir.flatten() {
                let Some(pid) = entry
                    .file_name()
                    .to_str()
                    .and_then(|s| s.parse::<u32>().ok())
                else {
                    continue;
                };
                if let Some(p) = stat(pid) {
                    processes.push(p);
                }
            }
        }
        let mut below: HashSet<u32> = HashSet::from([me]);
        // Parents come before their children in no guaranteed order: repeat until no change.
        loop {
            let before = below.len();
            for p in &processes {
                if below.contains(&p.ppid) {
                    below.insert(p.pid);
                }
            }
            if below.len() == before {
                break;
            }
        }
        let mut by_name = BTreeMap::new();
        for p in processes.iter().filter(|p| below.contains(&p.pid)) {
            let name = if p.pid == me {
                "bench".to_string()
            } else {
                p.comm.clone()
            };
            *by_name.entry(name).or_insert(0.0) += p.ticks as f64 / ticks;
        }
        Cpu(by_name)
    }

    /// What each process used since `earlier` (processes that ended meanwhile are left out).
    pub fn since(&self, earlier: &Cpu) -> Cpu {
        Cpu(self
            .0
            .iter()
            .map(|(name, s)| {
                (
                    name.clone(),
                    s - earlier.0.get(name).copied().unwrap_or(0.0),
                )
            })
            .filter(|(_, s)| *s >= 0.005)
            .collect())
    }

    /// All of it.
    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// "patchbay 12.3 s, kube-apiserver 40.1 s, ..." largest first.
    pub fn describe(&self) -> String {
        let mut v: Vec<_> = self.0.iter().collect();
        v.sort_by(|a, b| b.1.total_cmp(a.1));
        v.iter()
            .map(|(name, s)| format!("{name} {s:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

struct Stat {
    pid: u32,
    ppid: u32,
    comm: String,
    ticks: u64,
}

/// `/proc/PID/stat`: the name sits in parentheses and may hold spaces, so fields are counted
/// from the last ')'.
fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // After the name: state(3) ppid(4) ... utime(14) stime(15), numbered as in proc(5).
    let field = |n: usize| rest.get(n - 3).and_then(|s| s.parse::<u64>().ok());
    Some(Stat {
        pid,
        ppid: field(4)? as u32,
        comm,
        ticks: field(14)? + field(15)?,
    })
}

/// Clock ticks per second, as `getconf CLK_TCK` says (100 on Linux unless told otherwise).
fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
