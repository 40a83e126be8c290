//! The protocol-free fan-out ceiling: the same I/O stack as rthub (tokio, tokio-tungstenite)
//! with none of its protocol — no negotiate, no hub framing, no groups, no JSON.
//!
//! `/` broadcasts every message a client sends to every other client; `/echo` sends each
//! message back to its sender. Buffers are 4 KiB and each connection feeds everything queued
//! before one flush, the shape `benchmarks.md` measured as the machine's ceiling.

use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

/// Small buffers: tungstenite's 128 KiB defaults cost ~137 KB per idle connection.
pub fn small_buffers() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// Runs the ceiling on `listen` until the process is killed. Prints the address it listens on.
pub fn run(listen: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on {}", listener.local_addr()?);
        let (fanout, _) = broadcast::channel::<(u64, Message)>(4096);
        let ids = AtomicU64::new(1);
        loop {
            let (stream, _) = listener.accept().await?;
            let _ = stream.set_nodelay(true);
            let id = ids.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(connection(stream, id, fanout.clone()));
        }
    })
}

async fn connection(stream: TcpStream, id: u64, fanout: broadcast::Sender<(u64, Message)>) {
    let mut echo = false;
    // tungstenite's callback signature fixes the error type; it is never returned here.
    #[allow(clippy::result_large_err)]
    let callback = |request: &Request, response: Response| {
        echo = request.uri().path() == "/echo";
        Ok(response)
    };
    let Ok(socket) =
        tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(small_buffers()))
            .await
    else {
        return;
    };
    let (mut sink, mut source) = socket.split();
    if echo {
        while let Some(Ok(message)) = source.next().await {
            if (message.is_binary() || message.is_text()) && sink.send(message).await.is_err() {
                return;
            }
        }
        return;
    }
    let mut inbox = fanout.subscribe();
    loop {
        tokio::select! {
            incoming = source.next() => match incoming {
                Some(Ok(message)) if message.is_binary() || message.is_text() => {
                    let _ = fanout.send((id, message));
                }
                Some(Ok(_)) => {}
                _ => return,
            },
            queued = inbox.recv() => {
                let mut next = queued;
                // Feed everything already queued, then flush once: one write for a burst.
                loop {
                    match next {
                        Ok((from, message)) if from != id => {
                            if sink.feed(message).await.is_err() {
                                return;
                            }
                        }
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                    next = match inbox.try_recv() {
                        Ok(item) => Ok(item),
                        Err(broadcast::error::TryRecvError::Lagged(n)) => {
                            Err(broadcast::error::RecvError::Lagged(n))
                        }
                        Err(_) => break,
                    };
                }
                if sink.flush().await.is_err() {
                    return;
                }
            }
        }
    }
}
