//! Running the application: bind, serve, and shut down gracefully.

use crate::app;
use crate::config::Config;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// How long connected clients get to receive their `Close` before the process exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the server failed: {0}")]
    Serve(#[from] std::io::Error),
    #[error(transparent)]
    Build(#[from] app::BuildError),
}

/// A server running on its own task.
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: CancellationToken,
    task: JoinHandle<Result<(), std::io::Error>>,
}

impl RunningServer {
    /// Bind `config.listen` and start serving.
    pub async fn start(config: Config) -> Result<Self, ServerError> {
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let local_addr = listener.local_addr()?;
        let mut config = config;
        if let Some(cluster) = &mut config.cluster {
            // The other nodes reach this one here unless told otherwise (a port of 0 is
            // known only now).
            cluster
                .advertise_url
                .get_or_insert_with(|| format!("http://{local_addr}"));
        }
        crate::limits::raise_open_file_limit();
        let app::App {
            router,
            hub,
            webpubsub,
            accept,
            background,
        } = app::build(&config).await?;
        let listener = crate::limits::GuardedListener::new(listener, accept);
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    stopping.cancelled().await;
                    tracing::info!("shutting down: closing connections");
                    webpubsub.shutdown();
                    hub.shutdown(SHUTDOWN_GRACE).await;
                    background.cancel();
                })
                .await
        });
        Ok(Self {
            local_addr,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Close every connection with `allowReconnect: true`, stop accepting, and wait.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.stop.cancel();
        self.wait().await
    }

    /// Serve until a shutdown is asked for (or the server fails).
    pub async fn wait(self) -> Result<(), ServerError> {
        match self.task.await {
            Ok(result) => result.map_err(ServerError::Serve),
            Err(join) => Err(ServerError::Serve(std::io::Error::other(join))),
        }
    }

    /// A handle that triggers the graceful shutdown from elsewhere (signals).
    pub fn stopper(&self) -> CancellationToken {
        self.stop.clone()
    }
}
