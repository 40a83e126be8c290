//! The loader's side of each wire protocol: connect, join a group, the frame that publishes a
//! payload, and finding send timestamps in whatever frames come back.
//!
//! Every payload carries `ts:` and 19 digits of nanoseconds since the Unix epoch (the intended
//! send time), so one byte scan finds it in SignalR JSON, SignalR MessagePack, Engine.IO text
//! Web PubSub JSON and raw frames alike, without decoding any of them.

use crate::ceiling::small_buffers;
use crate::webpubsub;
use anyhow::{anyhow, bail, Context};
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub const PAYLOAD_BYTES: usize = 64;
const STAMP: &[u8] = b"ts:";
const DIGITS: usize = 19;
/// A whole stamp: `ts:` and its digits.
pub const STAMP_BYTES: usize = 3 + DIGITS;

/// How a subject is spoken to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    /// Binary WebSocket frames that are the payload itself (the ceiling and Node `ws`).
    RawWs,
    /// Engine.IO v4 / Socket.IO v5 text frames over WebSocket.
    SocketIo,
    /// SignalR over WebSockets: negotiate, handshake, `JoinGroup` / `SendToGroup`.
    SignalR {
        messagepack: bool,
        hub: &'static str,
    },
    /// Azure Web PubSub's JSON subprotocol (`reliable`: its reliable variant) on rthub's
    /// `/api/_rt/ws`, the client URL asked for with the server `key`.
    WebPubSub { reliable: bool, key: &'static str },
}

/// A 64-byte payload stamped with its intended send time.
pub fn payload(intended: SystemTime) -> String {
    let nanos = intended
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let mut text = format!("ts:{nanos:0>DIGITS$}|");
    text.extend(std::iter::repeat_n('x', PAYLOAD_BYTES - text.len()));
    text
}

/// Every send timestamp in a frame (a frame may batch several messages).
pub fn stamps(frame: &[u8]) -> impl Iterator<Item = u64> + '_ {
    memchr::memmem::find_iter(frame, STAMP).filter_map(move |at| {
        let digits = frame.get(at + STAMP.len()..at + STAMP.len() + DIGITS)?;
        std::str::from_utf8(digits).ok()?.parse().ok()
    })
}

pub fn now_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

impl Dialect {
    /// Opens a connection; `echo` picks the raw servers' echo path.
    pub async fn connect(
        self,
        http: &reqwest::Client,
        addr: &str,
        echo: bool,
    ) -> anyhow::Result<Socket> {
        let url = match self {
            Dialect::RawWs => format!("ws://{addr}/{}", if echo { "echo" } else { "" }),
            Dialect::SocketIo => format!("ws://{addr}/socket.io/?EIO=4&transport=websocket"),
            Dialect::SignalR { hub, .. } => {
                let negotiated: serde_json::Value = http
                    .post(format!("http://{addr}{hub}/negotiate?negotiateVersion=1"))
                    .send()
                    .await?
                    .json()
                    .await
                    .context("negotiate")?;
                let token = negotiated["connectionToken"]
                    .as_str()
                    .or(negotiated["connectionId"].as_str())
                    .ok_or_else(|| anyhow!("negotiate answered {negotiated}"))?;
                format!("ws://{addr}{hub}?id={token}")
            }
            Dialect::WebPubSub { key, .. } => webpubsub::client_url(http, addr, key).await?,
        };
        let mut request = url.as_str().into_client_request()?;
        if let Some(subprotocol) = self.subprotocol() {
            request.headers_mut().insert(
                "sec-websocket-protocol",
                HeaderValue::from_static(subprotocol),
            );
        }
        let stream = connect_tcp(addr).await?;
        let (mut socket, response) =
            tokio_tungstenite::client_async_with_config(request, stream, Some(small_buffers()))
                .await
                .with_context(|| format!("connect {url}"))?;
        match self {
            Dialect::RawWs => {}
            Dialect::WebPubSub { .. } => {
                let chosen = response.headers().get("sec-websocket-protocol");
                if chosen.and_then(|v| v.to_str().ok()) != self.subprotocol() {
                    bail!("the server chose subprotocol {chosen:?}");
                }
                let greeting = expect(&mut socket, |_| true).await?;
                webpubsub::connected(&greeting)?;
            }
            Dialect::SocketIo => {
                expect(&mut socket, |f| f.starts_with(b"0")).await?;
                socket.send(Message::text("40")).await?;
                expect(&mut socket, |f| f.starts_with(b"40")).await?;
            }
            Dialect::SignalR { messagepack, .. } => {
                let protocol = if messagepack { "messagepack" } else { "json" };
                let handshake = format!("{{\"protocol\":\"{protocol}\",\"version\":1}}\u{1e}");
                socket.send(Message::text(handshake)).await?;
                // Some servers send the reply as a binary frame; either is accepted here.
                let reply = expect(&mut socket, |f| f.contains(&0x1e)).await?;
                if reply.starts_with(b"{\"error\"") {
                    bail!("handshake refused: {}", String::from_utf8_lossy(&reply));
                }
            }
        }
        Ok(socket)
    }

    /// The WebSocket subprotocol a client asks for, if the protocol names one.
    pub fn subprotocol(self) -> Option<&'static str> {
        match self {
            Dialect::WebPubSub {
                reliable: false, ..
            } => Some(webpubsub::JSON),
            Dialect::WebPubSub { reliable: true, .. } => Some(webpubsub::RELIABLE),
            _ => None,
        }
    }

    /// Joins `group` and waits until the server confirms.
    pub async fn join(self, socket: &mut Socket, group: &str) -> anyhow::Result<()> {
        match self {
            Dialect::RawWs => Ok(()),
            Dialect::WebPubSub { .. } => {
                // Each connection joins once, so one ack id per connection is enough.
                socket
                    .send(Message::text(webpubsub::join_group(group, 1)))
                    .await?;
                let ack = expect(socket, |f| webpubsub::ack_of(f, 1).is_some()).await?;
                webpubsub::ack_of(&ack, 1).unwrap_or_else(|| Err(anyhow!("no ack")))
            }
            Dialect::SocketIo => {
                socket
                    .send(Message::text(format!("42[\"join\",\"{group}\"]")))
                    .await?;
                expect(socket, |f| f.starts_with(b"42[\"joined\"")).await?;
                Ok(())
            }
            Dialect::SignalR {
                messagepack: false, ..
            } => {
                let join = format!(
                    "{{\"type\":1,\"invocationId\":\"j\",\"target\":\"JoinGroup\",\"arguments\":[\"{group}\"]}}\u{1e}"
                );
                socket.send(Message::text(join)).await?;
                let done = expect(socket, |f| {
                    memchr::memmem::find(f, b"\"invocationId\":\"j\"").is_some()
                })
                .await?;
                if memchr::memmem::find(&done, b"\"error\"").is_some() {
                    bail!("JoinGroup refused: {}", String::from_utf8_lossy(&done));
                }
                Ok(())
            }
            Dialect::SignalR {
                messagepack: true, ..
            } => {
                socket
                    .send(Message::binary(messagepack_invocation(
                        Some("j"),
                        "JoinGroup",
                        &[group],
                    )))
                    .await?;
                // A Completion record: [3, {headers}, "j", kind, ...]; kind 1 is an error.
                let done = expect(socket, |f| f.len() > 5 && f[2] == 3).await?;
                if done.get(6) == Some(&1) {
                    bail!("JoinGroup refused: {:?}", String::from_utf8_lossy(&done));
                }
                Ok(())
            }
        }
    }

    /// The frame that sends `payload` to `group` (to everyone else, for the raw servers).
    pub fn publish(self, group: &str, payload: &str) -> Message {
        match self {
            Dialect::RawWs => Message::binary(payload.as_bytes().to_vec()),
            Dialect::SocketIo => Message::text(format!("42[\"publish\",\"{group}\",\"{payload}\"]")),
            Dialect::SignalR { messagepack: false, .. } => Message::text(format!(
                "{{\"type\":1,\"target\":\"SendToGroup\",\"arguments\":[\"{group}\",\"{payload}\"]}}\u{1e}"
            )),
            Dialect::SignalR { messagepack: true, .. } => {
                Message::binary(messagepack_invocation(None, "SendToGroup", &[group, payload]))
            }
            Dialect::WebPubSub { .. } => Message::text(webpubsub::send_to_group(group, payload)),
        }
    }

    /// The frame that makes the server send `payload` straight back (echo round trip). SignalR
    /// subjects have no echo method in common, so the connection's own one-member group is used.
    pub fn echo(self, own_group: &str, payload: &str) -> Message {
        match self {
            Dialect::RawWs => Message::binary(payload.as_bytes().to_vec()),
            Dialect::SocketIo => Message::text(format!("42[\"echo\",\"{payload}\"]")),
            Dialect::SignalR { .. } | Dialect::WebPubSub { .. } => self.publish(own_group, payload),
        }
    }

    /// A protocol-level ping a client sends to show it is alive, if the protocol has one.
    pub fn ping(self) -> Option<Message> {
        match self {
            Dialect::SignalR {
                messagepack: false, ..
            } => Some(Message::text("{\"type\":6}\u{1e}")),
            Dialect::SignalR {
                messagepack: true, ..
            } => Some(Message::binary(vec![0x02, 0x91, 0x06])),
            Dialect::WebPubSub { .. } => Some(Message::text(webpubsub::PING)),
            _ => None,
        }
    }

    /// The reply a frame needs to keep the connection alive, if any (Engine.IO pings).
    pub fn keep_alive_reply(self, frame: &[u8]) -> Option<Message> {
        (self == Dialect::SocketIo && frame == b"2").then(|| Message::text("3"))
    }
}

/// Sockets per source address: loopback has ~28 k ephemeral ports per address, and the
/// machine's per-process file limit (20 k) caps each loader process below that anyway.
const SOCKETS_PER_SOURCE: usize = 19_000;

/// Opens a TCP connection from 127.0.0.1, moving to 127.0.0.2, .3, … every
/// `SOCKETS_PER_SOURCE` connections so that ephemeral ports never run out.
pub async fn connect_tcp(addr: &str) -> anyhow::Result<MaybeTlsStream<TcpStream>> {
    static OPENED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let target: std::net::SocketAddr = addr.parse().context("server address")?;
    let n = OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) / SOCKETS_PER_SOURCE;
    let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (n % 250) as u8);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    let stream = socket
        .connect(target)
        .await
        .with_context(|| format!("connect to {addr} from {source}"))?;
    stream.set_nodelay(true)?;
    Ok(MaybeTlsStream::Plain(stream))
}

/// A MessagePack Invocation record with its varint length prefix; string arguments only.
fn messagepack_invocation(id: Option<&str>, target: &str, arguments: &[&str]) -> Vec<u8> {
    fn str(out: &mut Vec<u8>, s: &str) {
        match s.len() {
            n if n < 32 => out.push(0xa0 | n as u8),
            n if n < 256 => out.extend([0xd9, n as u8]),
            n => {
                out.push(0xda);
                out.extend((n as u16).to_be_bytes());
            }
        }
        out.extend_from_slice(s.as_bytes());
    }
    let mut body = vec![0x95, 0x01, 0x80];
    match id {
        Some(id) => str(&mut body, id),
        None => body.push(0xc0),
    }
    str(&mut body, target);
    body.push(0x90 | arguments.len() as u8);
    for argument in arguments {
        str(&mut body, argument);
    }
    let mut framed = Vec::with_capacity(body.len() + 5);
    let mut length = body.len();
    loop {
        let byte = (length & 0x7f) as u8;
        length >>= 7;
        if length == 0 {
            framed.push(byte);
            break;
        }
        framed.push(byte | 0x80);
    }
    framed.extend(body);
    framed
}

/// Reads frames until one satisfies `wanted`, answering Engine.IO pings on the way.
async fn expect(socket: &mut Socket, wanted: impl Fn(&[u8]) -> bool) -> anyhow::Result<Vec<u8>> {
    let deadline = Duration::from_secs(10);
    loop {
        let frame = tokio::time::timeout(deadline, socket.next())
            .await
            .context("no answer within 10 s")?
            .ok_or_else(|| anyhow!("connection closed"))??;
        let data = match frame {
            Message::Text(text) => text.as_bytes().to_vec(),
            Message::Binary(bytes) => bytes.to_vec(),
            Message::Close(reason) => bail!("closed: {reason:?}"),
            _ => continue,
        };
        if data == b"2" {
            socket.send(Message::text("3")).await?;
        }
        if wanted(&data) {
            return Ok(data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_64_bytes_and_their_stamps_are_found_in_any_framing() {
        let at = UNIX_EPOCH + Duration::from_nanos(1_764_000_000_123_456_789);
        let text = payload(at);
        assert_eq!(text.len(), PAYLOAD_BYTES);
        let json = format!(
            "{{\"arguments\":[{{\"data\":\"{text}\"}}]}}\u{1e}{{\"data\":\"{text}\"}}\u{1e}"
        );
        assert_eq!(
            stamps(json.as_bytes()).collect::<Vec<_>>(),
            [1_764_000_000_123_456_789; 2]
        );
        let msgpack = messagepack_invocation(None, "SendToGroup", &["g", &text]);
        assert_eq!(
            stamps(&msgpack).collect::<Vec<_>>(),
            [1_764_000_000_123_456_789]
        );
    }

    #[test]
    fn messagepack_invocations_are_length_prefixed() {
        let frame = messagepack_invocation(Some("j"), "JoinGroup", &["app:bench"]);
        assert_eq!(frame[0] as usize, frame.len() - 1);
        assert_eq!(&frame[1..4], &[0x95, 0x01, 0x80]);
    }
}
