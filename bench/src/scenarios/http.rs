//! The scenarios driven over HTTP: S6 REST sends to a group and S7 collection writes → `change`
//! (beside pgbench's plain INSERT), with the per-run PostgreSQL database they need.

use super::*;

/// The schema S7 runs on: one open collection, like a development app's.
pub(super) const ITEMS_SCHEMA: &str = r#"{"collections": [{"name": "items",
  "properties": [{"name": "name", "type": "string"}, {"name": "price", "type": "decimal"}],
  "access": [{"method": "POST", "roleNames": ["_EVERYONE"]}, {"method": "LISTEN", "roleNames": ["_EVERYONE"]}]}]}"#;

pub(super) use crate::servers::SERVER_KEY;

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
pub(super) fn post_each(
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
pub(super) async fn post_on_schedule(
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

    pub(super) fn schema_file(&self) -> anyhow::Result<std::path::PathBuf> {
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
            ..RthubSettings::default()
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
            ..RthubSettings::default()
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
