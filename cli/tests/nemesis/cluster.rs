//! The processes of one nemesis run: valkey-server (on Valkey), two `keel serve`
//! addresses A and B, three `keel worker --exec sh` given both addresses, and the log
//! of every fault injected. Every wait polls a condition under a deadline and fails
//! with the run's counts and every process's last lines.

use crate::executions::{self, Kill, KillKind};
use crate::process::logged::Logged;
use crate::process::{free_port, keel};
use keel_grpc::client::{Client, ClientOptions};
use keel_grpc::proto::{DescribeJobResponse, ListWorkersResponse};
use keel_valkey::server::ValkeyServer;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where the log lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Store {
    Valkey,
    Redb,
}

/// A `keel serve` address and the process serving on it, if any.
pub struct Server {
    pub name: &'static str,
    pub port: u16,
    pub data_dir: PathBuf,
    pub proc: Option<Logged>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

pub struct Worker {
    pub id: String,
    state: PathBuf,
    pub proc: Logged,
}

/// Fields drop in order: the processes go before the directory they use.
pub struct Cluster {
    pub workers: Vec<Worker>,
    pub servers: Vec<Server>,
    pub valkey: Option<ValkeyServer>,
    pub store: Store,
    pub runs: PathBuf,
    pub kills: Vec<Kill>,
    pub takeovers: u32,
    /// Acknowledged submissions: job name and id.
    pub jobs: Vec<(String, u64)>,
    rt: tokio::runtime::Runtime,
    pub started: Instant,
    pub dir: tempfile::TempDir,
}

/// Engine timeouts generous enough that two busy cores never make a live worker look
/// lost, short enough that a dead one's tasks come back within seconds.
const ENGINE: [&str; 6] = [
    "--liveness-timeout-ms",
    "4000",
    "--lease-ttl-ms",
    "8000",
    "--grant-ttl-ms",
    "3000",
];

pub fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_nanos()
}

impl Cluster {
    /// The store, server A leading, B on Valkey standing by, and three workers.
    pub fn start(store: Store) -> Cluster {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let runs = dir.path().join("runs");
        std::fs::create_dir_all(&runs).expect("the runs directory");
        let valkey = (store == Store::Valkey).then(ValkeyServer::start);
        let server = |name: &'static str| Server {
            name,
            port: free_port(),
            // On redb the log admits one process, so both addresses share it.
            data_dir: dir.path().join(match (store, name) {
                (Store::Valkey, "b") => "data-b",
                _ => "data-a",
            }),
            proc: None,
        };
        let servers = vec![server("a"), server("b")];
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let mut cluster = Cluster {
            store,
            dir,
            runs,
            valkey,
            servers,
            workers: Vec::new(),
            kills: Vec::new(),
            takeovers: 0,
            jobs: Vec::new(),
            rt,
            started: Instant::now(),
        };
        cluster.spawn_server(0);
        cluster.wait("server a leading", |c| c.printed(0, "listening on") > 0);
        if store == Store::Valkey {
            cluster.spawn_server(1);
        }
        for id in ["w1", "w2", "w3"] {
            let state = cluster.dir.path().join(format!("state-{id}"));
            let proc = cluster.spawn_worker(id, &state);
            cluster.workers.push(Worker {
                id: id.to_owned(),
                state,
                proc,
            });
        }
        cluster
    }

    /// Both addresses, as workers and clients are given them.
    pub fn urls(&self) -> String {
        let urls: Vec<String> = self.servers.iter().map(Server::url).collect();
        urls.join(",")
    }

    pub fn spawn_server(&mut self, i: usize) {
        let server = &self.servers[i];
        let mut cmd = keel();
        cmd.args(["serve", "--listen", &format!("127.0.0.1:{}", server.port)])
            .arg("--data-dir")
            .arg(&server.data_dir)
            .args(ENGINE);
        if let Some(valkey) = &self.valkey {
            cmd.args(["--valkey", &valkey.url(), "--leader-ttl-ms", "1000"]);
        }
        self.servers[i].proc = Some(Logged::spawn(cmd));
    }

    fn spawn_worker(&self, id: &str, state: &Path) -> Logged {
        let mut cmd = keel();
        cmd.args(["worker", "--coordinator", &self.urls(), "--id", id])
            .args(["--exec", "sh", "--concurrency", "4"])
            .arg("--state-dir")
            .arg(state);
        Logged::spawn(cmd)
    }

    /// Lines of server `i`'s current process containing `needle`.
    pub fn printed(&self, i: usize, needle: &str) -> usize {
        self.servers[i]
            .proc
            .as_ref()
            .map_or(0, |p| p.lines.count(needle))
    }

    /// Logs a fault (on stderr too, with how far the run has got).
    pub fn record(&mut self, kind: KillKind, target: &str) {
        eprintln!(
            "nemesis ({:?}) {:.1}s: {kind} {target}, {} executions started",
            self.store,
            self.started.elapsed().as_secs_f64(),
            self.executions()
        );
        self.kills.push(Kill {
            at_ns: now_ns(),
            kind,
            target: target.to_owned(),
        });
    }

    /// SIGKILLs worker `i` and starts it again at once with the same id and state
    /// directory (so it waits for its old commands to die before it registers).
    pub fn kill_worker(&mut self, i: usize) {
        let id = self.workers[i].id.clone();
        self.record(KillKind::Worker, &id);
        self.workers[i].proc.proc.kill();
        let state = self.workers[i].state.clone();
        self.workers[i].proc = self.spawn_worker(&id, &state);
    }

    /// SIGKILLs server `i` and starts it again on its address and data directory; it
    /// prints its address again once it leads.
    pub fn kill_server(&mut self, i: usize) {
        let name = self.servers[i].name;
        self.record(KillKind::Coordinator, name);
        if let Some(mut p) = self.servers[i].proc.take() {
            p.proc.kill();
        }
        self.spawn_server(i);
    }

    /// SIGKILLs valkey-server, leaves the store down for `outage`, then starts it
    /// again on its data.
    pub fn kill_valkey(&mut self, outage: Duration) {
        self.record(KillKind::Valkey, "valkey");
        let valkey = self.valkey.as_mut().expect("a Valkey run");
        valkey.kill();
        std::thread::sleep(outage);
        valkey.restart();
    }

    /// The address of the coordinator that leads now, asked the way clients ask.
    pub fn leader(&self) -> Option<String> {
        let mut options = ClientOptions::new(self.urls());
        options.connect_timeout = Duration::from_secs(1);
        let connected = self.rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), options.connect()).await
        });
        match connected {
            Ok(Ok(connection)) => Some(connection.address),
            _ => None,
        }
    }

    /// Runs `call` through a fresh client on both addresses, `None` on any failure.
    fn ask<R>(
        &self,
        call: impl AsyncFnOnce(&mut Client) -> Result<R, keel_grpc::client::CallError>,
    ) -> Option<R> {
        let mut options = ClientOptions::new(self.urls());
        options.connect_timeout = Duration::from_secs(1);
        options.failover_timeout = Duration::from_secs(3);
        let mut client = Client::new(options);
        self.rt.block_on(async {
            let answer = tokio::time::timeout(Duration::from_secs(8), call(&mut client)).await;
            answer.ok().and_then(Result::ok)
        })
    }

    pub fn describe(&self, job: u64) -> Option<DescribeJobResponse> {
        self.ask(async |c: &mut Client| c.describe_job(job).await)
    }

    pub fn workers_view(&self) -> Option<ListWorkersResponse> {
        self.ask(async |c: &mut Client| c.list_workers().await)
    }

    /// Every acknowledged job, described; `None` while any cannot be.
    pub fn describe_all(&self) -> Option<Vec<DescribeJobResponse>> {
        self.jobs.iter().map(|(_, id)| self.describe(*id)).collect()
    }

    /// `keel submit` with both addresses, tried again until it is acknowledged (the
    /// name makes a resent submission the same job).
    pub fn submit(&mut self, name: &str, file: &Path) {
        let deadline = Instant::now() + BOUND;
        loop {
            let out = keel()
                .arg("submit")
                .arg(file)
                .args([
                    "--coordinator",
                    &self.urls(),
                    "--connect-timeout-ms",
                    "2000",
                ])
                .output()
                .expect("keel submit runs");
            if out.status.success() {
                let id = String::from_utf8_lossy(&out.stdout).trim().parse();
                let id = id.expect("keel submit printed a job id");
                self.jobs.push((name.to_owned(), id));
                return;
            }
            let why = String::from_utf8_lossy(&out.stderr).into_owned();
            if Instant::now() > deadline {
                self.fail(&format!("submitting {name}: {why}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Executions started so far.
    pub fn executions(&self) -> usize {
        executions::started(&self.runs)
    }

    /// Polls `done` every 100 ms until it holds, failing the test after [`BOUND`].
    pub fn wait(&self, what: &str, mut done: impl FnMut(&Cluster) -> bool) {
        let deadline = Instant::now() + BOUND;
        while !done(self) {
            if Instant::now() > deadline {
                self.fail(&format!("{what} did not happen within {BOUND:?}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until `more` executions started after this call.
    pub fn progress(&self, what: &str, more: usize) {
        let from = self.executions();
        self.wait(&format!("{more} more executions ({what})"), |c| {
            c.executions() >= from + more
        });
    }

    /// Fails the test with `why`, the run's counts and every process's last lines.
    pub fn fail(&self, why: &str) -> ! {
        let mut text = format!(
            "nemesis ({:?}) after {:.1}s: {why}\n  executions started {}, jobs acknowledged {}, takeovers {}\n  kills: {:?}\n",
            self.store,
            self.started.elapsed().as_secs_f64(),
            self.executions(),
            self.jobs.len(),
            self.takeovers,
            self.kills.iter().map(|k| format!("{} {}", k.kind, k.target)).collect::<Vec<_>>(),
        );
        for s in &self.servers {
            if let Some(p) = &s.proc {
                text += &format!(
                    "--- server {} ({}):\n{}\n",
                    s.name,
                    s.url(),
                    p.lines.tail(15)
                );
            }
        }
        for w in &self.workers {
            text += &format!("--- worker {}:\n{}\n", w.id, w.proc.lines.tail(10));
        }
        if let Some(v) = &self.valkey {
            let log = std::fs::read_to_string(v.dir().join("valkey.log")).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text += &format!(
                "--- valkey:\n{}\n",
                lines[lines.len().saturating_sub(8)..].join("\n")
            );
        }
        panic!("{text}");
    }

    /// The worker that ran each attempt, by (job, task) and attempt number.
    pub fn attempt_workers(views: &[DescribeJobResponse]) -> BTreeMap<((u64, u64), u32), String> {
        let mut by = BTreeMap::new();
        for view in views {
            let job = view.status.as_ref().map_or(0, |s| s.id);
            for task in &view.tasks {
                for a in &task.attempts {
                    by.insert(((job, task.id), a.attempt), a.worker.clone());
                }
            }
        }
        by
    }
}

/// How long any one awaited condition may take. Workers connected to a paused leader
/// notice only when HTTP/2 keepalive gives up on it (10 s interval, 20 s timeout), so
/// following the takeover takes about 32 s.
pub const BOUND: Duration = Duration::from_secs(90);
