//! Open-loop load and what it measured.
//!
//! Every message carries its *intended* send time, so a loader that falls behind schedule shows
//! up as latency instead of silently sending slower (no coordinated omission). One histogram
//! per loader process; the loader's own CPU is watched and a run where it was the bottleneck is
//! marked invalid rather than reported.

use crate::client::{now_nanos, payload, stamps, Dialect, Socket};
use crate::procfs::CpuWindow;
use futures_util::stream::SplitSink;
use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

/// The loader may use at most this share of its core, or the run measured the loader.
pub const LOADER_CPU_GATE: f64 = 0.70;

/// How long a run waits for the last deliveries after the last send.
const DRAIN: Duration = Duration::from_secs(5);

/// Timing of one run: an unrecorded warm-up, then the recorded window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub warmup: Duration,
    pub recorded: Duration,
}

/// Latencies and delivery counts, shared by every reader task of one run.
pub struct Recorder {
    inner: Mutex<RecorderInner>,
    /// Messages stamped before this (warm-up) are not recorded.
    pub record_from: AtomicU64,
    /// Deliveries the recorded sends should produce.
    pub expected: AtomicU64,
}

#[derive(Clone)]
struct RecorderInner {
    histogram: Histogram<u64>,
    delivered: u64,
    last_delivery: u64,
}

impl Recorder {
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(RecorderInner {
                // Microseconds from 1 µs to 10 min, 3 significant digits: a few hundred KB.
                histogram: Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds"),
                delivered: 0,
                last_delivery: 0,
            }),
            record_from: AtomicU64::new(u64::MAX),
            expected: AtomicU64::new(0),
        })
    }

    /// Arms the recorder for a run: messages from the schedule's recorded window count, each
    /// expected `deliveries_each` times.
    pub fn expect(&self, schedule: &Schedule, deliveries_each: usize) {
        self.record_from
            .store(schedule.record_from_ns(), Ordering::Relaxed);
        self.expected.store(
            schedule.recorded_messages() * deliveries_each as u64,
            Ordering::Relaxed,
        );
    }

    /// Records every stamp in a frame received now.
    pub fn frame(&self, frame: &[u8]) {
        let from = self.record_from.load(Ordering::Relaxed);
        let now = now_nanos();
        let mut inner = self.inner.lock().expect("recorder");
        for stamp in stamps(frame).filter(|&s| s >= from) {
            let micros = (now.saturating_sub(stamp) / 1_000).max(1);
            let _ = inner.histogram.record(micros);
            inner.delivered += 1;
            inner.last_delivery = now;
        }
    }

    /// Like [`Recorder::frame`] for one subscriber's stream: a recorded stamp already in
    /// `seen` is not counted again; returns how many were repeats.
    pub fn frame_once(&self, frame: &[u8], seen: &mut std::collections::HashSet<u64>) -> u64 {
        let from = self.record_from.load(Ordering::Relaxed);
        let now = now_nanos();
        let mut repeats = 0;
        let mut inner = self.inner.lock().expect("recorder");
        for stamp in stamps(frame).filter(|&s| s >= from) {
            if !seen.insert(stamp) {
                repeats += 1;
                continue;
            }
            let micros = (now.saturating_sub(stamp) / 1_000).max(1);
            let _ = inner.histogram.record(micros);
            inner.delivered += 1;
            inner.last_delivery = now;
        }
        repeats
    }

    fn delivered(&self) -> u64 {
        self.inner.lock().expect("recorder").delivered
    }
}

/// What one run measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Measured {
    pub offered_per_s: f64,
    pub expected: u64,
    pub delivered: u64,
    pub delivered_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    pub server_user_us_per_delivery: f64,
    pub server_system_us_per_delivery: f64,
    pub server_cpu_share: f64,
    pub loader_cpu_share: f64,
    /// Server RSS at the end of the run (S10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_bytes: Option<u64>,
    /// Server RSS growth per member while these members connected and joined (S10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_per_member: Option<f64>,
    /// The machine's Redis over the recorded window, per delivery of the run (S11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_user_us_per_delivery: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_system_us_per_delivery: Option<f64>,
    /// The share of one core Redis used over the recorded window (S11).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_cpu_share: Option<f64>,
    pub valid: bool,
    pub invalid_because: Vec<String>,
}

/// Watches the server and the loader over the recorded window.
pub struct Watch {
    server: CpuWindow,
    loader: CpuWindow,
    started_ns: u64,
}

impl Watch {
    pub fn start(server_pid: u32) -> Self {
        Self {
            server: CpuWindow::start(server_pid),
            loader: CpuWindow::start(std::process::id()),
            started_ns: now_nanos(),
        }
    }

    /// Waits for the deliveries still in flight, then turns counts into figures and gates.
    pub async fn finish(self, recorder: &Recorder, offered_per_s: f64) -> Measured {
        let mut each = self.finish_each(&[recorder], &[offered_per_s]).await;
        each.swap_remove(0)
    }

    /// Like [`Watch::finish`] for a run whose members are split over several recorders (one
    /// per protocol of a mixed group): one figure set per recorder, with the server's CPU per
    /// delivery of the whole run (it cannot be split by protocol), and — for more than one
    /// recorder — a last set for all of them together.
    pub async fn finish_each(
        self,
        recorders: &[&Recorder],
        offered_per_s: &[f64],
    ) -> Vec<Measured> {
        let expected: u64 = recorders
            .iter()
            .map(|r| r.expected.load(Ordering::Relaxed))
            .sum();
        let delivered = || recorders.iter().map(|r| r.delivered()).sum::<u64>();
        let deadline = Instant::now() + DRAIN;
        while delivered() < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let server_alive = self.server.finish();
        let (server, server_share) = server_alive.unwrap_or_default();
        let (_, loader_share) = self.loader.finish().unwrap_or_default();
        let mut tallies: Vec<(RecorderInner, u64, f64)> = recorders
            .iter()
            .zip(offered_per_s)
            .map(|(r, &offered)| {
                let inner = r.inner.lock().expect("recorder").clone();
                (inner, r.expected.load(Ordering::Relaxed), offered)
            })
            .collect();
        if tallies.len() > 1 {
            let mut all = tallies[0].0.clone();
            for (inner, _, _) in &tallies[1..] {
                let _ = all.histogram.add(&inner.histogram);
                all.delivered += inner.delivered;
                all.last_delivery = all.last_delivery.max(inner.last_delivery);
            }
            tallies.push((all, expected, offered_per_s.iter().sum()));
        }
        let delivered_in_run: u64 = tallies
            .iter()
            .take(recorders.len())
            .map(|t| t.0.delivered)
            .sum();
        let run = Run {
            server,
            server_share,
            loader_share,
            server_alive: server_alive.is_some(),
            started_ns: self.started_ns,
            delivered: delivered_in_run,
        };
        tallies
            .iter()
            .map(|(inner, expected, offered)| run.measure(inner, *expected, *offered))
            .collect()
    }
}

/// What one run's watch saw of the processes.
struct Run {
    server: crate::procfs::CpuTimes,
    server_share: f64,
    loader_share: f64,
    server_alive: bool,
    started_ns: u64,
    /// Deliveries of the whole run, over which the server's CPU is spread.
    delivered: u64,
}

impl Run {
    fn measure(&self, inner: &RecorderInner, expected: u64, offered_per_s: f64) -> Measured {
        let delivered = inner.delivered;
        let span_s = (inner.last_delivery.saturating_sub(self.started_ns)) as f64 / 1e9;
        let ms = |q: f64| inner.histogram.value_at_quantile(q) as f64 / 1000.0;
        let per_delivery = |s: f64| s * 1e6 / self.delivered.max(1) as f64;
        let mut invalid_because = Vec::new();
        if delivered < expected {
            invalid_because.push(format!(
                "{} of {expected} deliveries missing",
                expected - delivered
            ));
        }
        if self.loader_share > LOADER_CPU_GATE {
            invalid_because.push(format!(
                "loader used {:.0} % of its core (gate {:.0} %)",
                self.loader_share * 100.0,
                LOADER_CPU_GATE * 100.0
            ));
        }
        if expected == 0 {
            invalid_because.push("nothing was sent".into());
        }
        if !self.server_alive {
            invalid_because.push("the server exited during the run".into());
        }
        Measured {
            offered_per_s,
            expected,
            delivered,
            delivered_per_s: if span_s > 0.0 {
                delivered as f64 / span_s
            } else {
                0.0
            },
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
            p999_ms: ms(0.999),
            max_ms: inner.histogram.max() as f64 / 1000.0,
            server_user_us_per_delivery: per_delivery(self.server.user),
            server_system_us_per_delivery: per_delivery(self.server.system),
            server_cpu_share: self.server_share,
            loader_cpu_share: self.loader_share,
            server_rss_bytes: None,
            server_rss_per_member: None,
            redis_user_us_per_delivery: None,
            redis_system_us_per_delivery: None,
            redis_cpu_share: None,
            valid: invalid_because.is_empty(),
            invalid_because,
        }
    }
}

/// Reads a subscriber's deliveries into the recorder until the connection ends.
///
/// After the handshake and join the WebSocket layer is bypassed: frames from a server are
/// unmasked, so every payload's stamp appears verbatim in the TCP byte stream and one scan per
/// read finds them all. Decoding frames costs the loader more than the server's sending them
/// and made the loader the bottleneck near 100 k deliveries/s. Control frames and pings go
/// unanswered, which the short runs never notice.
pub async fn read_deliveries(socket: Socket, _dialect: Dialect, recorder: Arc<Recorder>) {
    use tokio::io::AsyncReadExt;
    let MaybeTlsStream::Plain(mut tcp) = socket.into_inner() else {
        return;
    };
    let mut buffer = vec![0u8; 16 * 1024];
    let mut kept = 0;
    loop {
        let read = match tcp.read(&mut buffer[kept..]).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let end = kept + read;
        recorder.frame(&buffer[..end]);
        // A stamp cut by the read boundary is counted with the next read, never twice.
        let tail = incomplete_stamp_at(&buffer[..end]);
        buffer.copy_within(tail..end, 0);
        kept = end - tail;
    }
}

/// Where an incomplete stamp starts at the end of `bytes` (or `bytes.len()` if none does).
pub fn incomplete_stamp_at(bytes: &[u8]) -> usize {
    let from = bytes.len().saturating_sub(crate::client::STAMP_BYTES - 1);
    let tail = &bytes[from..];
    if let Some(at) = memchr::memmem::rfind(tail, b"ts:") {
        return from + at;
    }
    for prefix in [&b"ts"[..], b"t"] {
        if tail.ends_with(prefix) {
            return bytes.len() - prefix.len();
        }
    }
    bytes.len()
}

/// The schedule of an open-loop sender: message `i` is due at `start + i / rate`.
pub struct Schedule {
    start: Instant,
    wall_start: SystemTime,
    interval: Duration,
    warmup_messages: u64,
    total_messages: u64,
}

impl Schedule {
    /// `phase` (0..1) staggers senders that share a rate so they don't fire in lockstep.
    pub fn new(rate: f64, window: Window, phase: f64) -> Self {
        let interval = Duration::from_secs_f64(1.0 / rate);
        let lead = Duration::from_millis(50) + interval.mul_f64(phase);
        Self {
            start: Instant::now() + lead,
            wall_start: SystemTime::now() + lead,
            interval,
            warmup_messages: (window.warmup.as_secs_f64() * rate).round() as u64,
            total_messages: ((window.warmup + window.recorded).as_secs_f64() * rate).round() as u64,
        }
    }

    /// The wall-clock time (in ns) from which messages are recorded.
    pub fn record_from_ns(&self) -> u64 {
        let at = self.wall_start + self.interval * self.warmup_messages as u32;
        at.duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64
    }

    pub fn recorded_messages(&self) -> u64 {
        self.total_messages - self.warmup_messages
    }

    /// The messages of the schedule in due batches.
    pub fn batches(&self) -> Batches<'_> {
        Batches {
            schedule: self,
            next: 0,
        }
    }
}

/// Walks a schedule: each call waits for the next due message and returns it with any others
/// already due (several when the sender fell behind).
pub struct Batches<'a> {
    schedule: &'a Schedule,
    next: u64,
}

/// Payloads due now; `starts_recording` marks the batch holding the first recorded message.
pub struct Batch {
    pub payloads: Vec<String>,
    pub starts_recording: bool,
}

impl Batches<'_> {
    pub async fn next(&mut self) -> Option<Batch> {
        let s = self.schedule;
        if self.next >= s.total_messages {
            return None;
        }
        tokio::time::sleep_until(s.start + s.interval * self.next as u32).await;
        let now = Instant::now();
        let mut batch = Batch {
            payloads: Vec::new(),
            starts_recording: false,
        };
        while self.next < s.total_messages && s.start + s.interval * self.next as u32 <= now {
            batch.starts_recording |= self.next == s.warmup_messages;
            batch
                .payloads
                .push(payload(s.wall_start + s.interval * self.next as u32));
            self.next += 1;
        }
        Some(batch)
    }
}

/// Sends each due batch on a WebSocket with one flush.
pub async fn send_batch(
    sink: &mut SplitSink<Socket, Message>,
    frames: impl IntoIterator<Item = Message>,
) -> bool {
    for frame in frames {
        if sink.feed(frame).await.is_err() {
            return false;
        }
    }
    sink.flush().await.is_ok()
}

/// Holds an idle connection open the way a real client does: reads what arrives, answers
/// Engine.IO pings, and sends a SignalR Ping every 10 s (servers such as aiosignalr close a
/// silent client after 30 s; the official clients ping every 15 s).
pub async fn keep_idle(socket: Socket, dialect: Dialect) {
    let (mut sink, mut source) = socket.split();
    let mut ticks = tokio::time::interval(Duration::from_secs(10));
    ticks.tick().await;
    loop {
        tokio::select! {
            frame = source.next() => {
                let Some(Ok(message)) = frame else { return };
                if let Some(reply) = dialect.keep_alive_reply(message.into_data().as_ref()) {
                    if sink.send(reply).await.is_err() {
                        return;
                    }
                }
            }
            _ = ticks.tick() => {
                if let Some(ping) = dialect.ping() {
                    if sink.send(ping).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_cut_by_a_read_are_kept_for_the_next() {
        let stamp = b"ts:1764000000123456789";
        assert_eq!(stamp.len(), crate::client::STAMP_BYTES);
        let mut bytes = b"xx".to_vec();
        bytes.extend_from_slice(&stamp[..10]);
        assert_eq!(incomplete_stamp_at(&bytes), 2);
        assert_eq!(incomplete_stamp_at(b"abcts"), 3);
        assert_eq!(incomplete_stamp_at(b"abct"), 3);
        let mut whole = b"ab".to_vec();
        whole.extend_from_slice(stamp);
        assert_eq!(incomplete_stamp_at(&whole), whole.len());
    }
}
