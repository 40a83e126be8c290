//! Raw Server-Sent Events subscribers over TCP (S9): one `GET` written by hand, the response
//! head checked, the chunked body de-chunked by a small state machine, and the payload stamps
//! found by a byte scan of the event stream, never parsing events (as the WebSocket readers do).

use crate::client::connect_tcp;
use crate::load::{incomplete_stamp_at, Recorder};
use anyhow::{anyhow, bail, Context};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::MaybeTlsStream;

/// An open event stream, past its response head.
pub struct SseStream {
    tcp: TcpStream,
    body: Dechunk,
    /// Decoded bytes not yet handed out.
    pending: Vec<u8>,
}

/// Opens `GET target` on `addr` with `Accept: text/event-stream` and `headers` (each line
/// ending in CRLF), and checks that the answer is a 200 event stream.
pub async fn open(addr: &str, target: &str, headers: &str) -> anyhow::Result<SseStream> {
    let MaybeTlsStream::Plain(mut tcp) = connect_tcp(addr).await? else {
        bail!("not a plain TCP stream");
    };
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n{headers}\r\n"
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut head = Vec::new();
    let mut buffer = [0u8; 4096];
    let end = loop {
        if let Some(at) = memchr::memmem::find(&head, b"\r\n\r\n") {
            break at + 4;
        }
        let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buffer))
            .await
            .context("no response head within 10 s")??;
        if read == 0 {
            bail!("the server closed before answering {target}");
        }
        head.extend_from_slice(&buffer[..read]);
    };
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let status = text.lines().next().unwrap_or_default().to_owned();
    if !status.starts_with("http/1.1 200") {
        bail!(
            "GET {target} answered {status}: {}",
            String::from_utf8_lossy(&head[end..])
        );
    }
    if !text.contains("content-type: text/event-stream") {
        bail!("GET {target} is not an event stream: {text}");
    }
    let mut stream = SseStream {
        tcp,
        body: Dechunk::new(text.contains("transfer-encoding: chunked")),
        pending: Vec::new(),
    };
    let rest = head[end..].to_vec();
    stream.body.feed(&rest, &mut stream.pending)?;
    Ok(stream)
}

impl SseStream {
    /// Reads until `needle` is in the decoded stream; returns the bytes up to its end and
    /// keeps the rest.
    pub async fn read_until(&mut self, needle: &[u8], within: Duration) -> anyhow::Result<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(at) = memchr::memmem::find(&self.pending, needle) {
                let rest = self.pending.split_off(at + needle.len());
                return Ok(std::mem::replace(&mut self.pending, rest));
            }
            let read = tokio::time::timeout_at(deadline, self.tcp.read(&mut buffer))
                .await
                .map_err(|_| {
                    anyhow!("no {:?} within {within:?}", String::from_utf8_lossy(needle))
                })??;
            if read == 0 {
                bail!("the event stream ended");
            }
            self.body.feed(&buffer[..read], &mut self.pending)?;
        }
    }

    /// Reads the stream on a task of its own until it ends, recording each stamp at most once
    /// per subscriber: a repeat counts in `duplicates`, an early end or a malformed body in
    /// `errors`.
    pub fn record(
        self,
        recorder: Arc<Recorder>,
        duplicates: Arc<AtomicU64>,
        errors: Arc<AtomicU64>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let SseStream {
                mut tcp,
                mut body,
                mut pending,
            } = self;
            let mut seen = HashSet::new();
            let mut buffer = vec![0u8; 16 * 1024];
            loop {
                let repeated = recorder.frame_once(&pending, &mut seen);
                if repeated > 0 {
                    duplicates.fetch_add(repeated, Ordering::Relaxed);
                }
                // A stamp cut between reads is counted with the next one, never twice.
                let tail = incomplete_stamp_at(&pending);
                pending.drain(..tail);
                let read = match tcp.read(&mut buffer).await {
                    Ok(read) if read > 0 => read,
                    _ => break,
                };
                if body.feed(&buffer[..read], &mut pending).is_err() {
                    break;
                }
            }
            errors.fetch_add(1, Ordering::Relaxed);
        })
    }

    /// Holds the stream open idle, reading and dropping whatever arrives (pings).
    pub fn idle(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tcp = self.tcp;
            let mut buffer = vec![0u8; 1024];
            while matches!(tcp.read(&mut buffer).await, Ok(read) if read > 0) {}
        })
    }
}

/// HTTP/1.1 chunked transfer decoding, fed whatever the socket gave.
struct Dechunk {
    chunked: bool,
    state: State,
    size_line: Vec<u8>,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// Reading a chunk-size line.
    Size,
    /// This many data bytes of the current chunk remain.
    Data(usize),
    /// Skipping the CRLF after a chunk's data.
    DataEnd,
    /// The last (zero-size) chunk was seen.
    Done,
}

impl Dechunk {
    fn new(chunked: bool) -> Self {
        Self {
            chunked,
            state: State::Size,
            size_line: Vec::new(),
        }
    }

    fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> anyhow::Result<()> {
        if !self.chunked {
            out.extend_from_slice(input);
            return Ok(());
        }
        while !input.is_empty() {
            match self.state {
                State::Size => match memchr::memchr(b'\n', input) {
                    Some(at) => {
                        self.size_line.extend_from_slice(&input[..at]);
                        input = &input[at + 1..];
                        let line = String::from_utf8_lossy(&self.size_line).into_owned();
                        let hex = line.split(';').next().unwrap_or("").trim();
                        let size = usize::from_str_radix(hex, 16)
                            .map_err(|_| anyhow!("bad chunk size line {line:?}"))?;
                        self.size_line.clear();
                        self.state = if size == 0 {
                            State::Done
                        } else {
                            State::Data(size)
                        };
                    }
                    None => {
                        self.size_line.extend_from_slice(input);
                        input = &[];
                    }
                },
                State::Data(left) => {
                    let take = left.min(input.len());
                    out.extend_from_slice(&input[..take]);
                    input = &input[take..];
                    self.state = if take == left {
                        State::DataEnd
                    } else {
                        State::Data(left - take)
                    };
                }
                State::DataEnd => match memchr::memchr(b'\n', input) {
                    Some(at) => {
                        input = &input[at + 1..];
                        self.state = State::Size;
                    }
                    None => input = &[],
                },
                // Trailers and the final CRLF: the stream has ended.
                State::Done => input = &[],
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cut_anywhere_decode_to_the_same_bytes() {
        let pieces: [&[u8]; 3] = [b"event:x\n", b"data:{\"name\":\"ts:1234567", b"89|\n\n"];
        let mut wire = Vec::new();
        for (i, piece) in pieces.iter().enumerate() {
            let extension = if i == 2 { ";ext=1" } else { "" };
            wire.extend(format!("{:x}{extension}\r\n", piece.len()).bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        let whole = pieces.concat();
        for cut in 0..wire.len() {
            let mut decoder = Dechunk::new(true);
            let mut out = Vec::new();
            decoder.feed(&wire[..cut], &mut out).unwrap();
            decoder.feed(&wire[cut..], &mut out).unwrap();
            assert_eq!(out, whole, "cut at {cut}");
            assert_eq!(decoder.state, State::Done);
        }
    }

    #[test]
    fn a_bad_size_line_is_an_error() {
        let mut out = Vec::new();
        assert!(Dechunk::new(true).feed(b"zz\r\n", &mut out).is_err());
        let mut plain = Dechunk::new(false);
        plain.feed(b"as is", &mut out).unwrap();
        assert_eq!(out, b"as is");
    }
}
