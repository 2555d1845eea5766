//! Real valkey-server processes for tests: each listens on a free loopback port, keeps
//! its data in a temporary directory, and is killed when its handle is dropped, even
//! when the test panics.
//!
//! The binary is found through `KEEL_VALKEY_SERVER`, then `PATH`, then
//! `.tools/valkey/bin/valkey-server` in the workspace (where
//! `scripts/install-valkey.sh` puts it).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Locates valkey-server, or explains how to install it.
pub fn valkey_server_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("KEEL_VALKEY_SERVER") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("valkey-server"))
        .find(|candidate| candidate.is_file());
    if let Some(path) = on_path {
        return Ok(path);
    }
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.tools/valkey/bin/valkey-server");
    if tools.is_file() {
        return Ok(tools);
    }
    Err("no valkey-server found (checked KEEL_VALKEY_SERVER, PATH and .tools/valkey/bin); run scripts/install-valkey.sh".into())
}

/// How the server persists data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fsync {
    /// `appendfsync always`: a write is on disk before it is acknowledged.
    Always,
    /// `appendfsync everysec`: up to a second of acknowledged writes can be lost.
    EverySec,
}

/// A `valkey-server` child process on a free loopback port with its own temporary
/// directory; killed when dropped.
pub struct ValkeyServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    fsync: Fsync,
    cluster: bool,
}

impl ValkeyServer {
    /// A standalone server with the append-only file fsynced on every write.
    pub fn start() -> ValkeyServer {
        ValkeyServer::start_with(Fsync::Always, false)
    }

    /// Starts a server, panicking with the reason if it cannot (tests only).
    pub fn start_with(fsync: Fsync, cluster: bool) -> ValkeyServer {
        let binary = valkey_server_binary().unwrap_or_else(|why| panic!("{why}"));
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temporary directory for valkey");
            let mut server = ValkeyServer {
                child: None,
                port: free_port(cluster),
                dir,
                fsync,
                cluster,
            };
            match server.spawn(&binary) {
                Ok(()) => return server,
                Err(why) => last_error = why,
            }
        }
        panic!("valkey-server did not start: {last_error}");
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its `redis://` URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Its data directory (append-only file, cluster config).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL: the process gets no chance to flush anything.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port from the same data directory.
    pub fn restart(&mut self) {
        self.kill();
        let binary = valkey_server_binary().unwrap_or_else(|why| panic!("{why}"));
        self.spawn(&binary)
            .unwrap_or_else(|why| panic!("valkey-server did not restart: {why}"));
    }

    /// A synchronous connection for setting servers up.
    pub fn admin(&self) -> redis::Connection {
        let client = redis::Client::open(self.url()).expect("valkey url");
        client
            .get_connection_with_timeout(Duration::from_secs(5))
            .expect("connect to valkey")
    }

    fn spawn(&mut self, binary: &Path) -> Result<(), String> {
        let dir = self.dir.path();
        let mut cmd = Command::new(binary);
        cmd.args([
            "--bind",
            "127.0.0.1",
            "--port",
            &self.port.to_string(),
            "--protected-mode",
            "no",
        ])
        .arg("--dir")
        .arg(dir)
        .args(["--save", "", "--appendonly", "yes", "--daemonize", "no"])
        .args([
            "--appendfsync",
            if self.fsync == Fsync::Always {
                "always"
            } else {
                "everysec"
            },
        ])
        .arg("--logfile")
        .arg(dir.join("valkey.log"));
        if self.cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "5000",
            ]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        self.child = Some(child.map_err(|e| format!("{}: {e}", binary.display()))?);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!("exited with {status}: {}", self.log_tail()));
            }
            let ping = redis::Client::open(self.url())
                .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            match ping {
                Ok(_) => return Ok(()),
                Err(e) if Instant::now() > deadline => {
                    self.kill();
                    return Err(format!(
                        "not answering after {START_TIMEOUT:?}: {e}; {}",
                        self.log_tail()
                    ));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("valkey.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(5)..].join(" | ")
    }
}

impl Drop for ValkeyServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port that is free now, and (for a cluster node) whose bus port, 10000
/// above it, is free too.
fn free_port(cluster: bool) -> u16 {
    loop {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
        let port = listener.local_addr().expect("local address").port();
        if !cluster {
            return port;
        }
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}
