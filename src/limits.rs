//! The process's open-file limit, and an accept loop that lives with it.
//!
//! Every connection is a file descriptor, so the open-file limit is the connection capacity.
//! At start the soft limit is raised to the hard limit (what an administrator allowed), and the
//! resulting capacity is logged. When accepting fails because the limit is reached (`EMFILE`,
//! `ENFILE`), the listener backs off instead of retrying every second with an error line each
//! time: one warning when the limit is reached, a reminder each minute while it lasts, one line
//! when accepting resumes; `/readyz` answers 503 meanwhile and counts the pauses.

use parking_lot::Mutex;
use serde_json::{json, Value};
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};
use tokio::net::{TcpListener, TcpStream};

/// Descriptors kept aside from the capacity estimate: the database pool, the change feed's
/// connection, the log output, the listener itself.
const RESERVED_FILES: u64 = 64;
/// Backoff while at the limit: from the first value, doubling, up to the second.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(5), Duration::from_millis(500));
/// How often a lasting limit is logged again.
const REMINDER: Duration = Duration::from_secs(60);

/// The open-file limit after start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub soft: u64,
    pub hard: u64,
}

/// Raise the soft open-file limit to the hard one, once per process, and log the capacity.
pub fn raise_open_file_limit() -> Option<FileLimit> {
    static RAISED: OnceLock<Option<FileLimit>> = OnceLock::new();
    *RAISED.get_or_init(|| {
        let (before, hard) = match rlimit::getrlimit(rlimit::Resource::NOFILE) {
            Ok(limits) => limits,
            Err(error) => {
                tracing::warn!(%error, "cannot read the open-file limit");
                return None;
            }
        };
        let soft = match rlimit::increase_nofile_limit(hard) {
            Ok(soft) => soft,
            Err(error) => {
                tracing::warn!(%error, soft = before, hard, "cannot raise the open-file limit");
                before
            }
        };
        let capacity = soft.saturating_sub(open_files().unwrap_or(0) + RESERVED_FILES);
        tracing::info!(
            open_file_limit = soft,
            raised_from = before,
            hard_limit = hard,
            "room for about {capacity} connections"
        );
        Some(FileLimit { soft, hard })
    })
}

/// Descriptors open now (Linux); `None` where that cannot be read.
fn open_files() -> Option<u64> {
    std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64)
}

/// Whether accepting is paused at the limit, for `/readyz` and the logs.
#[derive(Default)]
pub struct AcceptState {
    at_limit: AtomicBool,
    /// Times accepting paused at the limit since start.
    pauses: AtomicU64,
    last_pause: Mutex<Option<SystemTime>>,
}

impl AcceptState {
    pub fn at_limit(&self) -> bool {
        self.at_limit.load(Ordering::Relaxed)
    }

    /// The `openFiles` part of `/readyz`.
    pub fn report(&self) -> Value {
        let limit = raise_open_file_limit();
        let last = self.last_pause.lock().map(|at| {
            chrono::DateTime::<chrono::Utc>::from(at)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        });
        json!({
            "limit": limit.map(|l| l.soft),
            "inUse": open_files(),
            "atLimit": self.at_limit(),
            "pauses": self.pauses.load(Ordering::Relaxed),
            "lastPause": last,
        })
    }
}

fn is_file_limit(error: &io::Error) -> bool {
    // EMFILE (the process) and ENFILE (the system).
    matches!(error.raw_os_error(), Some(24) | Some(23))
}

fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// A TCP listener that backs off at the open-file limit (see the module docs).
pub struct GuardedListener {
    inner: TcpListener,
    state: Arc<AcceptState>,
}

impl GuardedListener {
    pub fn new(inner: TcpListener, state: Arc<AcceptState>) -> Self {
        Self { inner, state }
    }

    fn paused(&self, error: &io::Error, refused: u64, since: Instant, reminded: &mut Instant) {
        if refused == 1 {
            self.state.at_limit.store(true, Ordering::Relaxed);
            self.state.pauses.fetch_add(1, Ordering::Relaxed);
            *self.state.last_pause.lock() = Some(SystemTime::now());
            let limit = raise_open_file_limit().map(|l| l.soft);
            tracing::warn!(%error, open_file_limit = ?limit,
                "open-file limit reached: new connections wait until others close");
            *reminded = Instant::now();
        } else if reminded.elapsed() >= REMINDER {
            tracing::warn!(
                waited_secs = since.elapsed().as_secs(),
                "still at the open-file limit"
            );
            *reminded = Instant::now();
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = TcpStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let mut refused = 0u64;
        let mut backoff = BACKOFF.0;
        let since = Instant::now();
        let mut reminded = since;
        loop {
            match self.inner.accept().await {
                Ok(accepted) => {
                    if refused > 0 {
                        self.state.at_limit.store(false, Ordering::Relaxed);
                        tracing::info!(
                            paused_ms = since.elapsed().as_millis() as u64,
                            "accepting connections again"
                        );
                    }
                    return accepted;
                }
                Err(error) if is_file_limit(&error) => {
                    refused += 1;
                    self.paused(&error, refused, since, &mut reminded);
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(BACKOFF.1);
                }
                // A connection that failed before it was accepted (reset, aborted) is the
                // client's problem alone.
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(%error, "a connection failed before it was accepted")
                }
                Err(error) => {
                    tracing::error!(%error, "accept failed; retrying in 1 s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}
