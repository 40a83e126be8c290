//! The scenarios of `benchmarks.md` §5.2 that rthub can run today: S1 idle memory, S3 echo
//! round trip, S4 group fan-out, S6 REST send to a group, S7 collection write → `change`, S9
//! create → SSE event beside PocketBase, S10 fan-out to a group of mixed protocols, and S11
//! fan-out across two nodes joined through Redis.
//! Each run starts a fresh server process and tears it down afterwards.

use crate::client::{Dialect, Socket};
use crate::http_transports::{subscribe, HttpTransport};
use crate::load::{
    keep_idle, read_deliveries, send_batch, Measured, Recorder, Schedule, Watch, Window,
};
use crate::procfs::{rss_bytes, slab_bytes};
use crate::servers::{Paths, RthubSettings, Server, Subject};
use anyhow::{anyhow, bail, Context};
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt, TryStreamExt};
use serde::Serialize;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

mod cluster;
mod http;
mod mixed;
mod realtime;

pub use cluster::cluster_rows;
pub use mixed::{GroupRun, GroupSpec, MIXED};
pub use realtime::SseServer;

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
        let group = subject.group("bench");
        let (watch, mut sink) = self
            .publish_on_schedule(
                server,
                subject.dialect(),
                &group,
                rate,
                window,
                |schedule| recorder.expect(schedule, members),
            )
            .await?;
        let measured = watch.finish(recorder, rate * members as f64).await;
        let _ = sink.close().await;
        Ok(measured)
    }

    /// One publisher connection, not a member, sending to `group` on an open-loop schedule;
    /// `arm` gets the schedule before the first send (to tell the recorders what to expect).
    /// Returns the watch started with the first recorded message, and the publisher, which
    /// must stay open until the deliveries are in: a server may drop the invocations of a
    /// connection that closes (aiosignalr drops its last one).
    async fn publish_on_schedule(
        &self,
        server: &Server,
        dialect: Dialect,
        group: &str,
        rate: f64,
        window: Window,
        arm: impl FnOnce(&Schedule),
    ) -> anyhow::Result<(Watch, SplitSink<Socket, Message>)> {
        let publisher = dialect.connect(&self.http, &server.addr, false).await?;
        let (mut sink, mut source) = publisher.split();
        // The publisher's own inbound (pings, its echo on raw servers) must be read, not left
        // to fill the server's buffers.
        tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
        let schedule = Schedule::new(rate, window, 0.0);
        arm(&schedule);
        let mut watch = None;
        let mut batches = schedule.batches();
        while let Some(batch) = batches.next().await {
            if batch.starts_recording {
                watch = Some(Watch::start(server.pid));
            }
            let frames = batch.payloads.iter().map(|p| dialect.publish(group, p));
            if !send_batch(&mut sink, frames).await {
                break;
            }
        }
        let watch = watch.ok_or_else(|| anyhow!("the publisher stopped before recording"))?;
        Ok((watch, sink))
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
            if matches!(dialect, Dialect::SignalR { .. } | Dialect::WebPubSub { .. }) {
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
