//! S9: create → SSE event. rthub's `GET /realtime` (RestDB.io's EventSource stream, on SQLite
//! and on PostgreSQL) beside PocketBase's `GET /api/realtime`, in the same run: subscribers on
//! raw SSE streams, open-loop creates over REST, latency from a create's intended send time to
//! its event at each subscriber; and the server's memory per idle subscriber.

use super::http::{post_each, post_on_schedule, Database, SERVER_KEY};
use super::*;
use crate::servers::POCKETBASE_SUPERUSER;
use crate::sse::{self, SseStream};
use std::sync::atomic::AtomicU64;

/// The servers of S9, in the order each step runs them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SseServer {
    RthubSqlite,
    RthubPostgres,
    PocketBase,
}

impl SseServer {
    pub const ALL: [SseServer; 3] = [
        SseServer::RthubSqlite,
        SseServer::RthubPostgres,
        SseServer::PocketBase,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SseServer::RthubSqlite => "rthub-sqlite",
            SseServer::RthubPostgres => "rthub-postgres",
            SseServer::PocketBase => "pocketbase",
        }
    }

    /// Where a create goes (the same JSON body on both).
    fn create_path(self) -> &'static str {
        match self {
            SseServer::PocketBase => "/api/collections/items/records",
            _ => "/api/items",
        }
    }
}

/// A server of S9 with its `items` collection ready, and the database it needs.
struct Running {
    kind: SseServer,
    server: Server,
    database: Option<Database>,
}

impl Running {
    async fn stop(self) {
        drop(self.server);
        if let Some(database) = self.database {
            database.drop_now().await;
        }
    }
}

/// Subscribers opened at once while connecting.
const CONNECTING: usize = 16;

impl Runner {
    async fn start_sse(&self, kind: SseServer, postgres: &str) -> anyhow::Result<Running> {
        if kind == SseServer::PocketBase {
            let server = self.start(Subject::PocketBase, &RthubSettings::default())?;
            pocketbase_collection(&self.http, &server.addr).await?;
            return Ok(Running {
                kind,
                server,
                database: None,
            });
        }
        let database = match kind {
            SseServer::RthubPostgres => Some(Database::create(postgres).await?),
            _ => None,
        };
        let settings = RthubSettings {
            database: database.as_ref().map(|d| d.url.clone()),
            schema: Some(self.schema_file()?),
            server_key: Some(SERVER_KEY.into()),
            ..RthubSettings::default()
        };
        let server = match self.start(Subject::RthubJson, &settings) {
            Ok(server) => server,
            Err(error) => {
                if let Some(database) = database {
                    database.drop_now().await;
                }
                return Err(error);
            }
        };
        Ok(Running {
            kind,
            server,
            database,
        })
    }

    /// One subscriber, returned once the server will send it every later create's event.
    async fn subscribe_sse(&self, running: &Running) -> anyhow::Result<SseStream> {
        let addr = &running.server.addr;
        if running.kind != SseServer::PocketBase {
            // The server identity sees every collection; the stream is registered before the
            // greeting is sent.
            let mut stream =
                sse::open(addr, "/realtime", &format!("x-apikey: {SERVER_KEY}\r\n")).await?;
            stream
                .read_until(b"\"channel\":\"init\"", Duration::from_secs(10))
                .await?;
            return Ok(stream);
        }
        let mut stream = sse::open(addr, "/api/realtime", "").await?;
        stream
            .read_until(b"PB_CONNECT", Duration::from_secs(10))
            .await?;
        let connect = stream.read_until(b"\n\n", Duration::from_secs(10)).await?;
        let text = String::from_utf8_lossy(&connect);
        let client_id = text
            .split("\"clientId\":\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .ok_or_else(|| anyhow!("PB_CONNECT without a clientId: {text}"))?;
        let response = self
            .http
            .post(format!("http://{addr}/api/realtime"))
            .json(&serde_json::json!({"clientId": client_id, "subscriptions": ["items"]}))
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "the PocketBase subscription answered {}: {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        Ok(stream)
    }

    async fn subscribe_many_sse(
        &self,
        running: &Running,
        count: usize,
    ) -> anyhow::Result<Vec<SseStream>> {
        futures_util::stream::iter(0..count)
            .map(|_| self.subscribe_sse(running))
            .buffer_unordered(CONNECTING)
            .try_collect()
            .await
    }

    /// S9: `subscribers` SSE streams while creates arrive at `rate` per second over REST;
    /// every create's event is expected exactly once at every subscriber.
    pub async fn sse_creates(
        &self,
        kind: SseServer,
        postgres: &str,
        subscribers: usize,
        rate: f64,
        window: Window,
    ) -> Measured {
        let running = match self.start_sse(kind, postgres).await {
            Ok(running) => running,
            Err(error) => return invalid(format!("{error:#}")),
        };
        let measured = self
            .try_sse_creates(&running, subscribers, rate, window)
            .await
            .unwrap_or_else(|error| invalid(format!("{error:#}")));
        running.stop().await;
        measured
    }

    async fn try_sse_creates(
        &self,
        running: &Running,
        subscribers: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Measured> {
        let recorder = Recorder::new();
        let duplicates = Arc::new(AtomicU64::new(0));
        let ended = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = self
            .subscribe_many_sse(running, subscribers)
            .await?
            .into_iter()
            .map(|stream| stream.record(recorder.clone(), duplicates.clone(), ended.clone()))
            .collect();
        let failures = Arc::new(AtomicU64::new(0));
        let send = post_each(
            &self.http,
            format!(
                "http://{}{}",
                running.server.addr,
                running.kind.create_path()
            ),
            None,
            |p| serde_json::json!({"name": p, "price": 1}),
            failures.clone(),
        );
        let mut measured = post_on_schedule(
            running.server.pid,
            &recorder,
            subscribers,
            rate,
            window,
            send,
            &failures,
        )
        .await?;
        let repeated = duplicates.load(Ordering::Relaxed);
        if repeated > 0 {
            measured.valid = false;
            measured
                .invalid_because
                .push(format!("{repeated} events arrived more than once"));
        }
        let ended = ended.load(Ordering::Relaxed);
        if ended > 0 {
            measured.valid = false;
            measured
                .invalid_because
                .push(format!("{ended} event streams ended during the run"));
        }
        for reader in readers {
            reader.abort();
        }
        Ok(measured)
    }

    /// S9's memory: server RSS growth per idle SSE subscriber, as S1 measures connections.
    pub async fn sse_idle_memory(&self, kind: SseServer, postgres: &str, count: usize) -> Memory {
        let failed = |error: anyhow::Error| Memory {
            connections: count,
            invalid_because: vec![format!("{error:#}")],
            ..Memory::default()
        };
        let running = match self.start_sse(kind, postgres).await {
            Ok(running) => running,
            Err(error) => return failed(error),
        };
        let memory = self
            .try_sse_idle_memory(&running, count)
            .await
            .unwrap_or_else(failed);
        running.stop().await;
        memory
    }

    async fn try_sse_idle_memory(&self, running: &Running, count: usize) -> anyhow::Result<Memory> {
        let pid = running.server.pid;
        // Warm allocator arenas and lazily built state before the baseline.
        let mut keepers: Vec<_> = self
            .subscribe_many_sse(running, 10)
            .await?
            .into_iter()
            .map(SseStream::idle)
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let before = rss_bytes(pid).context("server RSS")?;
        let slab_before = slab_bytes().unwrap_or(0);
        let mut connected = 0;
        while connected < count {
            let chunk = (count - connected).min(500);
            let streams = self.subscribe_many_sse(running, chunk).await?;
            keepers.extend(streams.into_iter().map(SseStream::idle));
            connected += chunk;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let after = rss_bytes(pid).context("server RSS")?;
        let slab_after = slab_bytes().unwrap_or(0);
        let closed = keepers.iter().filter(|k| k.is_finished()).count();
        for keeper in keepers {
            keeper.abort();
        }
        let mut invalid_because = Vec::new();
        if closed > 0 {
            invalid_because.push(format!("{closed} idle streams closed"));
        }
        Ok(Memory {
            connections: count,
            server_rss_before: before,
            server_rss_after: after,
            bytes_per_connection: after.saturating_sub(before) as f64 / count as f64,
            kernel_bytes_per_connection: slab_after.saturating_sub(slab_before) as f64
                / count as f64,
            valid: invalid_because.is_empty(),
            invalid_because,
        })
    }
}

/// Creates PocketBase's `items` collection (the fields of rthub's) with open list, view and
/// create rules, so anonymous subscribers get every create, through the REST API as the
/// superuser.
async fn pocketbase_collection(http: &reqwest::Client, addr: &str) -> anyhow::Result<()> {
    let (identity, password) = POCKETBASE_SUPERUSER;
    let auth: serde_json::Value = http
        .post(format!(
            "http://{addr}/api/collections/_superusers/auth-with-password"
        ))
        .json(&serde_json::json!({"identity": identity, "password": password}))
        .send()
        .await?
        .error_for_status()
        .context("PocketBase superuser sign-in")?
        .json()
        .await?;
    let token = auth["token"]
        .as_str()
        .ok_or_else(|| anyhow!("PocketBase sign-in answered {auth}"))?;
    let response = http
        .post(format!("http://{addr}/api/collections"))
        .header("authorization", token)
        .json(&serde_json::json!({
            "name": "items",
            "type": "base",
            "listRule": "",
            "viewRule": "",
            "createRule": "",
            "fields": [{"name": "name", "type": "text"}, {"name": "price", "type": "number"}],
        }))
        .send()
        .await?;
    if !response.status().is_success() {
        bail!(
            "PocketBase refused the collection: {} {}",
            response.status(),
            response.text().await.unwrap_or_default()
        );
    }
    Ok(())
}
