//! A group member for runs longer than a server's client timeout (S10): it reads deliveries
//! the way [`crate::load::read_deliveries`] does — the WebSocket layer bypassed after the
//! join, stamps found by a byte scan of the TCP stream — and also writes what a real client
//! writes while it listens: a protocol ping every 10 s (rthub closes a SignalR client that is
//! silent for 30 s) and, on Web PubSub's reliable subprotocol, a `sequenceAck` at most once a
//! second (unacked messages pile up on the server until it closes the connection). Those few
//! frames are masked by hand onto the socket's write half.

use crate::client::{Dialect, Socket};
use crate::load::{incomplete_stamp_at, Recorder};
use crate::webpubsub::{self, Acker};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::MaybeTlsStream;

const PING_EVERY: Duration = Duration::from_secs(10);

/// What went wrong at members during a run, beside lost deliveries.
#[derive(Default)]
pub struct Health {
    /// Recorded messages a member received more than once.
    pub repeats: AtomicU64,
    /// Members whose connection ended while the run was on.
    pub ended: AtomicU64,
}

impl Health {
    /// The gates' reasons, if any failed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let repeats = self.repeats.load(Ordering::Relaxed);
        if repeats > 0 {
            problems.push(format!("{repeats} deliveries arrived more than once"));
        }
        let ended = self.ended.load(Ordering::Relaxed);
        if ended > 0 {
            problems.push(format!("{ended} members' connections ended during the run"));
        }
        problems
    }
}

/// A client frame (masked, as RFC 6455 requires of clients) carrying `message`'s data.
pub fn masked_frame(message: &Message) -> Option<Vec<u8>> {
    let (opcode, data) = match message {
        Message::Text(text) => (OpCode::Data(Data::Text), text.as_bytes().to_vec()),
        Message::Binary(bytes) => (OpCode::Data(Data::Binary), bytes.to_vec()),
        _ => return None,
    };
    let mut frame = Frame::message(data, opcode, true);
    // Masking only hides the bytes from proxies; any key will do on loopback.
    let key = crate::client::now_nanos().to_le_bytes();
    frame.header_mut().mask = Some([key[0], key[1], key[2], key[3]]);
    let mut out = Vec::with_capacity(frame.len() + 4);
    frame.format(&mut out).ok()?;
    Some(out)
}

/// Reads `socket`'s deliveries into `recorder` until the task is aborted or the connection
/// ends (which counts in `health`); each recorded stamp counts once per member.
pub async fn member(
    socket: Socket,
    dialect: Dialect,
    recorder: Arc<Recorder>,
    health: Arc<Health>,
) {
    let MaybeTlsStream::Plain(tcp) = socket.into_inner() else {
        health.ended.fetch_add(1, Ordering::Relaxed);
        return;
    };
    let (mut read, mut write) = tcp.into_split();
    let reliable = matches!(dialect, Dialect::WebPubSub { reliable: true, .. });
    let ping = dialect.ping().as_ref().and_then(masked_frame);
    let mut acker = Acker::new();
    let mut seen = HashSet::new();
    let mut pings = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut acks = tokio::time::interval(webpubsub::ACK_INTERVAL);
    let mut buffer = vec![0u8; 16 * 1024];
    let mut kept = 0;
    loop {
        tokio::select! {
            result = read.read(&mut buffer[kept..]) => {
                let read = match result {
                    Ok(0) | Err(_) => break,
                    Ok(read) => read,
                };
                let end = kept + read;
                let bytes = &buffer[..end];
                let repeats = recorder.frame_once(bytes, &mut seen);
                if repeats > 0 {
                    health.repeats.fetch_add(repeats, Ordering::Relaxed);
                }
                // A stamp or sequence id cut by the read boundary is kept for the next read.
                let mut tail = incomplete_stamp_at(bytes);
                if reliable {
                    acker.saw(bytes);
                    tail = tail.min(webpubsub::incomplete_sequence_id_at(bytes));
                }
                buffer.copy_within(tail..end, 0);
                kept = end - tail;
            }
            _ = pings.tick() => {
                if let Some(ping) = &ping {
                    if write.write_all(ping).await.is_err() {
                        break;
                    }
                }
            }
            _ = acks.tick(), if reliable => {
                let due = acker.due(Instant::now());
                let frame = due.and_then(|id| {
                    masked_frame(&Message::text(webpubsub::sequence_ack(id)))
                });
                if let Some(frame) = frame {
                    if write.write_all(&frame).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    health.ended.fetch_add(1, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::protocol::frame::FrameHeader;

    #[test]
    fn masked_frames_decode_to_the_message() {
        let text = webpubsub::sequence_ack(7);
        let bytes = masked_frame(&Message::text(text.clone())).unwrap();
        let mut cursor = std::io::Cursor::new(&bytes);
        let (header, length) = FrameHeader::parse(&mut cursor).unwrap().unwrap();
        assert!(header.is_final);
        assert_eq!(header.opcode, OpCode::Data(Data::Text));
        let mask = header.mask.unwrap();
        let start = cursor.position() as usize;
        assert_eq!(length as usize, bytes.len() - start);
        let unmasked: Vec<u8> = bytes[start..]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ mask[i % 4])
            .collect();
        assert_eq!(unmasked, text.as_bytes());

        let ping = masked_frame(&Message::binary(vec![0x02, 0x91, 0x06])).unwrap();
        let (header, length) = FrameHeader::parse(&mut std::io::Cursor::new(&ping))
            .unwrap()
            .unwrap();
        assert_eq!(header.opcode, OpCode::Data(Data::Binary));
        assert_eq!(length, 3);
        assert!(masked_frame(&Message::Ping(Vec::new().into())).is_none());
    }
}
