//! The servers under test, each started as a fresh process per run on CPU 0.

use crate::client::Dialect;
use anyhow::{bail, Context};
use serde::Serialize;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What is measured: a server and the protocol the loader speaks to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Subject {
    /// The protocol-free fan-out server built into this tool.
    Ceiling,
    /// Node `ws` broadcasting raw frames.
    NodeWs,
    /// Socket.IO rooms.
    SocketIo,
    /// The aiosignalr SignalR server (Python), JSON protocol.
    Aiosignalr,
    RthubJson,
    RthubMsgpack,
    /// rthub with members on Server-Sent Events (JSON); publishers use WebSockets.
    RthubSse,
    /// rthub with members on long polling (JSON); publishers use WebSockets.
    RthubLongPolling,
    /// rthub's Web PubSub endpoint, `json.webpubsub.azure.v1`.
    RthubWebPubSub,
    /// rthub's Web PubSub endpoint, `json.reliable.webpubsub.azure.v1` (members ack).
    RthubWebPubSubReliable,
    /// PocketBase (Go, one binary, SQLite): only its `/api/realtime` SSE stream is measured (S9).
    PocketBase,
}

impl Subject {
    pub fn label(self) -> &'static str {
        match self {
            Subject::Ceiling => "ceiling",
            Subject::NodeWs => "node-ws",
            Subject::SocketIo => "socket.io",
            Subject::Aiosignalr => "aiosignalr",
            Subject::RthubJson => "rthub-json",
            Subject::RthubMsgpack => "rthub-msgpack",
            Subject::RthubSse => "rthub-sse",
            Subject::RthubLongPolling => "rthub-longpolling",
            Subject::RthubWebPubSub => "rthub-wps",
            Subject::RthubWebPubSubReliable => "rthub-wps-reliable",
            Subject::PocketBase => "pocketbase",
        }
    }

    pub fn dialect(self) -> Dialect {
        match self {
            // PocketBase speaks no WebSocket dialect; its SSE subscribers are `crate::sse`'s.
            Subject::Ceiling | Subject::NodeWs | Subject::PocketBase => Dialect::RawWs,
            Subject::SocketIo => Dialect::SocketIo,
            Subject::Aiosignalr => Dialect::SignalR {
                messagepack: false,
                hub: "/hub",
            },
            Subject::RthubJson | Subject::RthubSse | Subject::RthubLongPolling => {
                Dialect::SignalR {
                    messagepack: false,
                    hub: "/api/_rt/signalr",
                }
            }
            Subject::RthubMsgpack => Dialect::SignalR {
                messagepack: true,
                hub: "/api/_rt/signalr",
            },
            Subject::RthubWebPubSub => Dialect::WebPubSub {
                reliable: false,
                key: SERVER_KEY,
            },
            Subject::RthubWebPubSubReliable => Dialect::WebPubSub {
                reliable: true,
                key: SERVER_KEY,
            },
        }
    }

    /// The group name on the wire (rthub's hub methods take the api-name-prefixed name).
    pub fn group(self, name: &str) -> String {
        match self {
            _ if self.is_rthub() => format!("app:{name}"),
            _ => name.to_owned(),
        }
    }

    pub fn is_rthub(self) -> bool {
        matches!(
            self,
            Subject::RthubJson
                | Subject::RthubMsgpack
                | Subject::RthubSse
                | Subject::RthubLongPolling
                | Subject::RthubWebPubSub
                | Subject::RthubWebPubSubReliable
        )
    }
}

/// Where binaries and peer scripts are.
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
    pub rthub: PathBuf,
    pub logs: PathBuf,
}

impl Paths {
    fn peers(&self) -> PathBuf {
        self.root.join("bench/peers")
    }
}

/// The server key rthub runs with where the loader needs one (REST sends, `/realtime`, and
/// the Web PubSub client URL).
pub const SERVER_KEY: &str = "rthub-bench-server-key";

/// Extra settings for an rthub run.
#[derive(Clone, Debug, Default)]
pub struct RthubSettings {
    pub database: Option<String>,
    pub schema: Option<PathBuf>,
    pub server_key: Option<String>,
    /// A config file (`--config`), e.g. S11's `[cluster]`.
    pub config: Option<PathBuf>,
    /// The log's file name in the logs folder instead of `<label>.log` (two nodes of S11
    /// run at once and must not share one).
    pub log_name: Option<String>,
}

/// A running server; killed when dropped (and its data directory, if it has one, removed).
pub struct Server {
    child: Child,
    pub addr: String,
    pub pid: u32,
    data_dir: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.data_dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// PocketBase's superuser, created with its CLI before `serve` (S9 creates the collection
/// through the REST API with this account's token).
pub const POCKETBASE_SUPERUSER: (&str, &str) = ("bench@rthub.invalid", "rthub-bench-password");

/// A port nobody listens on right now (checked, so a stale server can't answer for a new one).
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

impl Server {
    pub fn start(subject: Subject, paths: &Paths, rthub: &RthubSettings) -> anyhow::Result<Self> {
        let port = free_port()?;
        let listen = format!("127.0.0.1:{port}");
        let mut command = pinned_command();
        let mut data_dir = None;
        // What the server prints on stdout once it accepts connections.
        let mut marker = "listening on";
        match subject {
            Subject::Ceiling => {
                command
                    .arg(std::env::current_exe()?)
                    .args(["ceiling", "--listen", &listen]);
            }
            Subject::NodeWs => {
                command.arg("node").arg(paths.peers().join("ws-server.mjs"));
            }
            Subject::SocketIo => {
                command
                    .arg("node")
                    .arg(paths.peers().join("socketio-server.mjs"));
            }
            Subject::Aiosignalr => {
                command
                    .arg(paths.peers().join(".venv/bin/python"))
                    .arg(paths.peers().join("aiosignalr_server.py"));
            }
            Subject::PocketBase => {
                let binary = paths.peers().join(".venv/bin/pocketbase");
                let dir = paths.logs.join(format!("pocketbase-{port}"));
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir)?;
                let (email, password) = POCKETBASE_SUPERUSER;
                let upsert = Command::new(&binary)
                    .args(["superuser", "upsert", email, password, "--dir"])
                    .arg(&dir)
                    .stdin(Stdio::null())
                    .output()
                    .context("run pocketbase superuser upsert")?;
                if !upsert.status.success() {
                    bail!(
                        "pocketbase superuser upsert failed: {}{}",
                        String::from_utf8_lossy(&upsert.stdout),
                        String::from_utf8_lossy(&upsert.stderr)
                    );
                }
                // Its migrations and hooks default to folders beside the data directory:
                // kept inside it (and auto-migrations off), no run sees another's collection.
                command
                    .arg(binary)
                    .args(["serve", "--http", &listen, "--automigrate=false", "--dir"])
                    .arg(&dir)
                    .arg("--migrationsDir")
                    .arg(dir.join("migrations"))
                    .arg("--hooksDir")
                    .arg(dir.join("hooks"));
                data_dir = Some(dir);
                marker = "Server started at";
            }
            Subject::RthubJson
            | Subject::RthubMsgpack
            | Subject::RthubSse
            | Subject::RthubLongPolling
            | Subject::RthubWebPubSub
            | Subject::RthubWebPubSubReliable => {
                command.arg(&paths.rthub).args(["--listen", &listen]);
                let database = rthub.database.clone().unwrap_or_else(|| {
                    format!(
                        "sqlite://{}",
                        paths.logs.join(format!("bench-{port}.db")).display()
                    )
                });
                command.args(["--database", &database]);
                if let Some(schema) = &rthub.schema {
                    command.arg("--schema").arg(schema);
                }
                if let Some(config) = &rthub.config {
                    command.arg("--config").arg(config);
                }
                // Web PubSub clients get their URL with the server key.
                let key = rthub.server_key.as_deref().or(matches!(
                    subject.dialect(),
                    Dialect::WebPubSub { .. }
                )
                .then_some(SERVER_KEY));
                if let Some(key) = key {
                    command.args(["--server-key", key]);
                }
                command.env("RUST_LOG", "warn");
                // One worker per CPU it may use: two workers time-sliced on one pinned core
                // preempt each other mid-fan-out (tokio's default is one per machine CPU).
                if pinned() {
                    command.env("TOKIO_WORKER_THREADS", "1");
                }
            }
        }
        std::fs::create_dir_all(&paths.logs)?;
        let log_name = rthub
            .log_name
            .clone()
            .unwrap_or_else(|| format!("{}.log", subject.label()));
        let log = std::fs::File::create(paths.logs.join(&log_name))?;
        let mut child = command
            .env("PORT", port.to_string())
            .env("HOST", "127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start {}", subject.label()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (ready, seen) = std::sync::mpsc::channel();
        // Drain stdout for the server's whole life so a chatty server never blocks on the pipe.
        std::thread::spawn(move || {
            let mut ready = Some(ready);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains(marker) {
                    if let Some(ready) = ready.take() {
                        let _ = ready.send(());
                    }
                }
            }
        });
        let pid = child.id();
        let mut server = Server {
            child,
            addr: listen,
            pid,
            data_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if seen.recv_timeout(Duration::from_millis(100)).is_ok() {
                break;
            }
            if let Some(status) = server.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before listening; see {}",
                    subject.label(),
                    paths.logs.join(&log_name).display()
                );
            }
            if Instant::now() > deadline {
                bail!("{} did not start listening within 60 s", subject.label());
            }
        }
        // taskset and env exec the server, so the pid measured is the server's own.
        if crate::procfs::rss_bytes(server.pid).is_none() {
            bail!("{} has no process to measure", subject.label());
        }
        Ok(server)
    }
}

fn pinned() -> bool {
    crate::procfs::cpus() >= 2 && Path::new("/usr/bin/taskset").exists()
}

/// A command that runs its program on CPU 0 when the machine has two CPUs or more (the
/// loader takes CPU 1), so server and loader never compete for a core.
fn pinned_command() -> Command {
    if pinned() {
        let mut command = Command::new("/usr/bin/taskset");
        command.args(["-c", "0"]);
        command
    } else {
        // `env` keeps the "program then arguments" shape of the taskset branch.
        Command::new("env")
    }
}
