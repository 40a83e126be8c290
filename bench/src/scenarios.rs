//! The scenarios of `benchmarks.md` §5.2 that rthub can run today: S1 idle memory, S3 echo
//! round trip, S4 group fan-out, S6 REST send to a group and S7 collection write → `change`.
//! Each run starts a fresh server process and tears it down afterwards.

use crate::client::{Dialect, Socket};
use crate::http_transports::{subscribe, HttpTransport};
use crate::load::{
    keep_idle, read_deliveries, send_batch, Measured, Recorder, Schedule, Watch, Window,
};
use crate::procfs::{rss_bytes, slab_bytes};
use crate::servers::{Paths, RthubSettings, Server, Subject};
use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// Memory per idle connection (S1).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Memory {
    pub connections: usize,
    pub server_rss_before: u64,
    pub server_rss_after: u64,
    pub bytes_per_connection: f64,
    /// Machine-wide slab growth per connection (both ends of a loopback pair): the kernel's
    /// share, which no server can avoid.
    pub kernel_bytes_per_connection: f64,
    pub valid: bool,
    pub invalid_because: Vec<String>,
}

/// Write throughput of the collection path against plain INSERTs (S7).
#[derive(Clone, Debug, Default, Serialize)]
pub struct WritePath {
    pub rest_writes_per_s: f64,
    pub plain_insert_tps: f64,
    pub ratio: f64,
    pub synchronous_commit: String,
}

/// Connects `count` clients of `subject`, each joined to `group` (if any), 32 at a time.
async fn connect_many(
    http: &reqwest::Client,
    server: &Server,
    subject: Subject,
    count: usize,
    group: Option<&str>,
) -> anyhow::Result<Vec<Socket>> {
    let dialect = subject.dialect();
    let group = group.map(|g| subject.group(g));
    futures_util::stream::iter(0..count)
        .map(|_| {
            let group = group.clone();
            async move {
                let mut socket = dialect.connect(http, &server.addr, false).await?;
                if let Some(group) = &group {
                    dialect.join(&mut socket, group).await?;
                }
                anyhow::Ok(socket)
            }
        })
        .buffer_unordered(32)
        .try_collect()
        .await
}

fn invalid(reason: String) -> Measured {
    Measured {
        invalid_because: vec![reason],
        ..Measured::default()
    }
}

pub struct Runner {
    pub paths: Paths,
    pub http: reqwest::Client,
}

impl Runner {
    fn start(&self, subject: Subject, settings: &RthubSettings) -> anyhow::Result<Server> {
        Server::start(subject, &self.paths, settings)
    }

    /// S1: server RSS growth per idle connection, each joined to one group.
    pub async fn idle_memory(&self, subject: Subject, count: usize) -> Memory {
        match self.try_idle_memory(subject, count).await {
            Ok(memory) => memory,
            Err(error) => Memory {
                connections: count,
                invalid_because: vec![format!("{error:#}")],
                ..Memory::default()
            },
        }
    }

    async fn try_idle_memory(&self, subject: Subject, count: usize) -> anyhow::Result<Memory> {
        let server = self.start(subject, &RthubSettings::default())?;
        // Warm allocator arenas and lazily built state before the baseline.
        let warm = connect_many(&self.http, &server, subject, 10, Some("idle")).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_bytes(server.pid).context("server RSS")?;
        let slab_before = slab_bytes().unwrap_or(0);
        let dialect = subject.dialect();
        let mut keepers: Vec<_> = warm
            .into_iter()
            .map(|socket| tokio::spawn(keep_idle(socket, dialect)))
            .collect();
        // In chunks, each kept alive at once: a slow server must not see early ones go silent.
        let mut connected = 0;
        while connected < count {
            let chunk = (count - connected).min(500);
            let sockets = connect_many(&self.http, &server, subject, chunk, Some("idle")).await?;
            keepers.extend(
                sockets
                    .into_iter()
                    .map(|socket| tokio::spawn(keep_idle(socket, dialect))),
            );
            connected += chunk;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_bytes(server.pid).context("server RSS")?;
        let slab_after = slab_bytes().unwrap_or(0);
        for keeper in keepers {
            keeper.abort();
        }
        Ok(Memory {
            connections: count,
            server_rss_before: before,
            server_rss_after: after,
            bytes_per_connection: after.saturating_sub(before) as f64 / count as f64,
            kernel_bytes_per_connection: slab_after.saturating_sub(slab_before) as f64
                / count as f64,
            valid: true,
            invalid_because: Vec::new(),
        })
    }

    /// S4: one publisher (not a member) sends to a group of `members` at `rate` messages/s.
    pub async fn fanout(
        &self,
        subject: Subject,
        members: usize,
        rate: f64,
        window: Window,
    ) -> Measured {
        self.try_fanout(subject, members, rate, window)
            .await
            .unwrap_or_else(|error| invalid(format!("{error:#}")))
    }

    async fn try_fanout(
        &self,
        subject: Subject,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let server = self.start(subject, &RthubSettings::default())?;
        let dialect = subject.dialect();
        let recorder = Recorder::new();
        for socket in connect_many(&self.http, &server, subject, members, Some("bench")).await? {
            tokio::spawn(read_deliveries(socket, dialect, recorder.clone()));
        }
        self.publish_over_websocket(&server, subject, &recorder, members, rate, window)
            .await
    }

    /// S8: like S4 for rthub, with members on `subject`'s transport (WebSockets, SSE or long
    /// polling) and the publisher on a WebSocket.
    pub async fn fanout_http(
        &self,
        subject: Subject,
        members: usize,
        rate: f64,
        window: Window,
    ) -> Measured {
        let transport = match subject {
            Subject::RthubSse => Some(HttpTransport::ServerSentEvents),
            Subject::RthubLongPolling => Some(HttpTransport::LongPolling),
            _ => None,
        };
        let Some(transport) = transport else {
            return self.fanout(subject, members, rate, window).await;
        };
        self.try_fanout_http(subject, transport, members, rate, window)
            .await
            .unwrap_or_else(|error| invalid(format!("{error:#}")))
    }

    async fn try_fanout_http(
        &self,
        subject: Subject,
        transport: HttpTransport,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let server = self.start(subject, &RthubSettings::default())?;
        let Dialect::SignalR { hub, .. } = subject.dialect() else {
            bail!("{} is not a SignalR subject", subject.label());
        };
        let recorder = Recorder::new();
        let group = subject.group("bench");
        futures_util::stream::iter(0..members)
            .map(|_| {
                let recorder = recorder.clone();
                let group = &group;
                let addr = &server.addr;
                async move { subscribe(&self.http, addr, hub, transport, group, recorder).await }
            })
            .buffer_unordered(16)
            .try_collect::<Vec<()>>()
            .await?;
        self.publish_over_websocket(&server, subject, &recorder, members, rate, window)
            .await
    }

    /// The publisher of S4 and S8: one WebSocket connection, not a member, sending to the
    /// group on the schedule; `members` deliveries are expected per recorded message.
    async fn publish_over_websocket(
        &self,
        server: &Server,
        subject: Subject,
        recorder: &Recorder,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let dialect = subject.dialect();
        let group = subject.group("bench");
        let publisher = dialect.connect(&self.http, &server.addr, false).await?;
        let (mut sink, mut source) = publisher.split();
        // The publisher's own inbound (pings, its echo on raw servers) must be read, not left
        // to fill the server's buffers.
        tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
        let schedule = Schedule::new(rate, window, 0.0);
        recorder.expect(&schedule, members);
        let mut watch = None;
        let mut batches = schedule.batches();
        while let Some(batch) = batches.next().await {
            if batch.starts_recording {
                watch = Some(Watch::start(server.pid));
            }
            let frames = batch.payloads.iter().map(|p| dialect.publish(&group, p));
            if !send_batch(&mut sink, frames).await {
                break;
            }
        }
        let watch = watch.ok_or_else(|| anyhow!("the publisher stopped before recording"))?;
        // The publisher stays open until the deliveries are in: a server may drop the
        // invocations of a connection that closes (aiosignalr drops its last one).
        let measured = watch.finish(recorder, rate * members as f64).await;
        let _ = sink.close().await;
        Ok(measured)
    }

    /// S3: `clients` connections each send at `rate` per second and time the round trip.
    pub async fn echo(
        &self,
        subject: Subject,
        clients: usize,
        rate: f64,
        window: Window,
    ) -> Measured {
        self.try_echo(subject, clients, rate, window)
            .await
            .unwrap_or_else(|error| invalid(format!("{error:#}")))
    }

    async fn try_echo(
        &self,
        subject: Subject,
        clients: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let server = self.start(subject, &RthubSettings::default())?;
        let dialect = subject.dialect();
        let recorder = Recorder::new();
        let mut sinks = Vec::with_capacity(clients);
        for i in 0..clients {
            let mut socket = dialect.connect(&self.http, &server.addr, true).await?;
            let own = subject.group(&format!("echo{i}"));
            if matches!(dialect, Dialect::SignalR { .. }) {
                dialect.join(&mut socket, &own).await?;
            }
            let (sink, source) = socket.split();
            let recorder = recorder.clone();
            tokio::spawn(async move {
                let mut source = source;
                while let Some(Ok(message)) = source.next().await {
                    match &message {
                        Message::Text(text) => recorder.frame(text.as_bytes()),
                        Message::Binary(bytes) => recorder.frame(bytes),
                        _ => {}
                    }
                }
            });
            sinks.push((sink, own));
        }
        // Schedules are built only now, so the connect phase never counts as latency; each
        // client's phase is staggered so they don't fire in lockstep.
        let schedules: Vec<Schedule> = (0..clients)
            .map(|i| Schedule::new(rate, window, i as f64 / clients as f64))
            .collect();
        let record_from = schedules
            .iter()
            .map(Schedule::record_from_ns)
            .min()
            .unwrap_or(0);
        recorder.record_from.store(record_from, Ordering::Relaxed);
        recorder.expected.store(
            schedules.iter().map(Schedule::recorded_messages).sum(),
            Ordering::Relaxed,
        );
        let pid = server.pid;
        let warmup = window.warmup + Duration::from_millis(50);
        let watch = tokio::spawn(async move {
            tokio::time::sleep(warmup).await;
            Watch::start(pid)
        });
        let senders = sinks
            .iter_mut()
            .zip(&schedules)
            .map(|((sink, own), schedule)| async move {
                let mut batches = schedule.batches();
                while let Some(batch) = batches.next().await {
                    let frames = batch.payloads.iter().map(|p| dialect.echo(own, p));
                    if !send_batch(sink, frames).await {
                        break;
                    }
                }
            });
        futures_util::future::join_all(senders).await;
        let watch = watch.await?;
        Ok(watch.finish(&recorder, rate * clients as f64).await)
    }
}

/// The schema S7 runs on: one open collection, like a development app's.
const ITEMS_SCHEMA: &str = r#"{"collections": [{"name": "items",
  "properties": [{"name": "name", "type": "string"}, {"name": "price", "type": "decimal"}],
  "access": [{"method": "POST", "roleNames": ["_EVERYONE"]}, {"method": "LISTEN", "roleNames": ["_EVERYONE"]}]}]}"#;

const SERVER_KEY: &str = "rthub-bench-server-key";

/// A fresh PostgreSQL database for one run, dropped afterwards.
pub struct Database {
    admin: String,
    name: String,
    pub url: String,
}

impl Database {
    pub async fn create(admin: &str) -> anyhow::Result<Self> {
        use sqlx::Connection;
        let name = format!(
            "rthub_bench_{}_{}",
            std::process::id(),
            crate::client::now_nanos()
        );
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .with_context(|| "connect to PostgreSQL (set --postgres)")?;
        sqlx::raw_sql(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await?;
        let url = format!(
            "{}/{name}",
            admin.rsplit_once('/').map_or(admin, |(base, _)| base)
        );
        Ok(Self {
            admin: admin.to_owned(),
            name,
            url,
        })
    }

    pub async fn drop_now(self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

/// At most this many requests in flight: past it the server is not keeping up, and opening
/// more sockets would only exhaust the loader's file descriptors.
const MAX_IN_FLIGHT: usize = 256;

/// Sends every due payload as its own HTTP request, concurrently, counting failures (a
/// payload that finds `MAX_IN_FLIGHT` requests still open counts as failed, unsent).
fn post_each(
    http: &reqwest::Client,
    url: String,
    key: Option<&'static str>,
    body: impl Fn(&str) -> serde_json::Value + Copy + 'static,
    failures: Arc<std::sync::atomic::AtomicU64>,
) -> impl FnMut(Vec<String>) {
    let http = http.clone();
    let in_flight = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    move |payloads| {
        for payload in payloads {
            let Ok(permit) = in_flight.clone().try_acquire_owned() else {
                failures.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let mut request = http.post(&url).json(&body(&payload));
            if let Some(key) = key {
                request = request.header("x-apikey", key);
            }
            let failures = failures.clone();
            tokio::spawn(async move {
                let ok = matches!(request.send().await, Ok(r) if r.status().is_success());
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                drop(permit);
            });
        }
    }
}

/// The HTTP sender of S6 and S7: `send` gets each due batch; `members` deliveries are
/// expected per recorded request, and any failed request makes the run invalid.
async fn post_on_schedule(
    server_pid: u32,
    recorder: &Recorder,
    members: usize,
    rate: f64,
    window: Window,
    mut send: impl FnMut(Vec<String>),
    failures: &std::sync::atomic::AtomicU64,
) -> anyhow::Result<Measured> {
    let schedule = Schedule::new(rate, window, 0.0);
    recorder.expect(&schedule, members);
    let mut watch = None;
    let mut batches = schedule.batches();
    while let Some(batch) = batches.next().await {
        if batch.starts_recording {
            watch = Some(Watch::start(server_pid));
        }
        send(batch.payloads);
    }
    let watch = watch.ok_or_else(|| anyhow!("the sender stopped before recording"))?;
    let mut measured = watch.finish(recorder, rate * members as f64).await;
    let failed = failures.load(Ordering::Relaxed);
    if failed > 0 {
        measured.valid = false;
        measured
            .invalid_because
            .push(format!("{failed} requests failed or were not sent"));
    }
    Ok(measured)
}

impl Runner {
    /// S6: HTTP POSTs at `rate` per second, each sent to a group of `members`.
    pub async fn rest_send(
        &self,
        subject: Subject,
        members: usize,
        rate: f64,
        window: Window,
    ) -> Measured {
        self.try_rest_send(subject, members, rate, window)
            .await
            .unwrap_or_else(|error| invalid(format!("{error:#}")))
    }

    async fn try_rest_send(
        &self,
        subject: Subject,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let settings = RthubSettings {
            server_key: Some(SERVER_KEY.into()),
            ..RthubSettings::default()
        };
        let server = self.start(subject, &settings)?;
        let dialect = subject.dialect();
        let recorder = Recorder::new();
        for socket in connect_many(&self.http, &server, subject, members, Some("bench")).await? {
            tokio::spawn(read_deliveries(socket, dialect, recorder.clone()));
        }
        let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let addr = &server.addr;
        type Body = fn(&str) -> serde_json::Value;
        let (path, key, body): (&str, _, Body) = match subject {
            Subject::RthubJson | Subject::RthubMsgpack => (
                "/api/_rt/send",
                Some(SERVER_KEY),
                |p| serde_json::json!({"channel": "bench", "body": p}),
            ),
            Subject::SocketIo => (
                "/send",
                None,
                |p| serde_json::json!({"room": "bench", "data": p}),
            ),
            Subject::Aiosignalr => (
                "/send",
                None,
                |p| serde_json::json!({"group": "bench", "data": p}),
            ),
            other => bail!("{} has no REST send", other.label()),
        };
        let send = post_each(
            &self.http,
            format!("http://{addr}{path}"),
            key,
            body,
            failures.clone(),
        );
        post_on_schedule(
            server.pid, &recorder, members, rate, window, send, &failures,
        )
        .await
    }

    /// S7: REST writes into a PostgreSQL collection at `rate` per second while `members`
    /// SignalR clients `Listen` to it; latency is intended write time → `change` receipt.
    pub async fn changes(
        &self,
        postgres: &str,
        members: usize,
        rate: f64,
        window: Window,
    ) -> Measured {
        let database = match Database::create(postgres).await {
            Ok(database) => database,
            Err(error) => return invalid(format!("{error:#}")),
        };
        let measured = self
            .try_changes(&database.url, members, rate, window)
            .await
            .unwrap_or_else(|error| invalid(format!("{error:#}")));
        database.drop_now().await;
        measured
    }

    fn schema_file(&self) -> anyhow::Result<std::path::PathBuf> {
        std::fs::create_dir_all(&self.paths.logs)?;
        let path = self.paths.logs.join("items-schema.json");
        std::fs::write(&path, ITEMS_SCHEMA)?;
        Ok(path)
    }

    async fn try_changes(
        &self,
        url: &str,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let settings = RthubSettings {
            database: Some(url.to_owned()),
            schema: Some(self.schema_file()?),
            server_key: None,
        };
        let subject = Subject::RthubJson;
        let server = self.start(subject, &settings)?;
        let dialect = subject.dialect();
        let recorder = Recorder::new();
        for mut socket in connect_many(&self.http, &server, subject, members, None).await? {
            invoke_json(&mut socket, "Listen", "\"items\"").await?;
            tokio::spawn(read_deliveries(socket, dialect, recorder.clone()));
        }
        let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let send = post_each(
            &self.http,
            format!("http://{}/api/items", server.addr),
            None,
            |p| serde_json::json!({"name": p, "price": 1}),
            failures.clone(),
        );
        post_on_schedule(
            server.pid, &recorder, members, rate, window, send, &failures,
        )
        .await
    }

    /// S7's write path: REST writes/s (closed loop, 4 clients) against pgbench's plain INSERT
    /// of the same document into the same table layout, on the same server.
    pub async fn write_path(&self, postgres: &str, seconds: u64) -> anyhow::Result<WritePath> {
        let database = Database::create(postgres).await?;
        let result = self.try_write_path(&database.url, seconds).await;
        database.drop_now().await;
        result
    }

    async fn try_write_path(&self, url: &str, seconds: u64) -> anyhow::Result<WritePath> {
        let settings = RthubSettings {
            database: Some(url.to_owned()),
            schema: Some(self.schema_file()?),
            server_key: None,
        };
        let server = self.start(Subject::RthubJson, &settings)?;
        let target = format!("http://{}/api/items", server.addr);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (http, target) = (self.http.clone(), target.clone());
                tokio::spawn(async move {
                    let mut done = 0u64;
                    while tokio::time::Instant::now() < deadline {
                        let response = http
                            .post(&target)
                            .json(&serde_json::json!({"name": "widget", "price": 1.5}))
                            .send()
                            .await?;
                        if response.status() != 201 {
                            bail!("a write answered {}", response.status());
                        }
                        done += 1;
                    }
                    anyhow::Ok(done)
                })
            })
            .collect();
        let mut writes = 0;
        for worker in workers {
            writes += worker.await??;
        }
        drop(server);

        let script = self.paths.logs.join("plain-insert.sql");
        std::fs::write(
            &script,
            "INSERT INTO c_items (id, data, created, changed, version) \
             VALUES (gen_random_uuid(), '{\"name\": \"widget\", \"price\": 1.5}'::jsonb, now(), now(), 1);\n",
        )?;
        let output = tokio::process::Command::new("pgbench")
            .args(["-n", "-c", "4", "-j", "2", "-T", &seconds.to_string(), "-f"])
            .arg(&script)
            .arg(url)
            .output()
            .await
            .context("run pgbench (postgresql-contrib)")?;
        let text = String::from_utf8_lossy(&output.stdout);
        let tps: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("tps = "))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| {
                anyhow!(
                    "pgbench printed no tps: {}{}",
                    text,
                    String::from_utf8_lossy(&output.stderr)
                )
            })?;
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(url).await?;
        let (synchronous_commit,): (String,) = sqlx::query_as("SHOW synchronous_commit")
            .fetch_one(&mut conn)
            .await?;
        let rest = writes as f64 / seconds as f64;
        Ok(WritePath {
            rest_writes_per_s: rest,
            plain_insert_tps: tps,
            ratio: rest / tps,
            synchronous_commit,
        })
    }
}

/// Invokes a hub method over SignalR JSON and waits for its completion.
async fn invoke_json(socket: &mut Socket, target: &str, arguments: &str) -> anyhow::Result<()> {
    let frame = format!(
        "{{\"type\":1,\"invocationId\":\"i\",\"target\":\"{target}\",\"arguments\":[{arguments}]}}\u{1e}"
    );
    socket.send(Message::text(frame)).await?;
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .context("no completion within 10 s")?
            .ok_or_else(|| anyhow!("connection closed"))??;
        if let Message::Text(text) = message {
            if text.contains("\"invocationId\":\"i\"") {
                if text.contains("\"error\"") {
                    bail!("{target} refused: {text}");
                }
                return Ok(());
            }
        }
    }
}
