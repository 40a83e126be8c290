use anyhow::Context;
use clap::Parser;
use rthub::{Cli, Config, RunningServer};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::load(Cli::parse())?;
    rthub::logging::init(config.log_format);
    if let Some(key) = &config.development_key {
        // Printed, never logged: logs are kept, the terminal is the developer's.
        println!("development server key (x-apikey): {key}");
    }
    let development_key = config.development_key.clone();
    let server = RunningServer::start(config).await?;
    // Scripts and tests read this line for the port (with `--listen 127.0.0.1:0`).
    println!("rthub listening on http://{}", server.local_addr());
    if let Some(key) = development_key {
        // What `@azure/web-pubsub`'s WebPubSubServiceClient takes.
        println!(
            "Web PubSub connection string: Endpoint=http://{};AccessKey={key};Version=1.0;",
            server.local_addr()
        );
    }
    tracing::info!(addr = %server.local_addr(), "listening");
    let stop = server.stopper();
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
    server.wait().await.context("rthub stopped with an error")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(error) => {
                    tracing::error!(%error, "cannot listen for SIGTERM");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}
