//! A message for many connections, and the rule that it is encoded once per wire protocol.
//!
//! Group members may speak different protocols (SignalR JSON, MessagePack, and the
//! application's own, such as Web PubSub or SSE). Each member names its [`Encoder`]; a fan-out
//! encodes the message the first time it meets an encoder and hands every other member of that
//! encoder the same reference-counted bytes.

use bytes::Bytes;
use serde_json::Value;
use std::borrow::Cow;
use std::sync::Arc;

/// An invocation of a client method (`target`) with its arguments, protocol-neutral.
#[derive(Debug, Clone, PartialEq)]
pub struct Broadcast {
    pub target: Cow<'static, str>,
    pub arguments: Vec<Value>,
}

impl Broadcast {
    pub fn new(target: impl Into<Cow<'static, str>>, arguments: Vec<Value>) -> Self {
        Self {
            target: target.into(),
            arguments,
        }
    }
}

/// Turns a [`Broadcast`] into one complete frame of some wire protocol.
pub trait Encoder: Send + Sync + 'static {
    /// `None` when this protocol has no representation for the message (it is then skipped
    /// for members of this protocol).
    fn encode(&self, message: &Broadcast) -> Option<Bytes>;
}

/// The frames of one message, at most one per encoder. A handful of protocols exist, so a
/// linear scan beats hashing.
pub(crate) struct Frames<'a> {
    message: &'a Broadcast,
    encoded: Vec<(usize, Option<Bytes>)>,
    pub encodings: usize,
}

impl<'a> Frames<'a> {
    pub fn new(message: &'a Broadcast) -> Self {
        Self {
            message,
            encoded: Vec::new(),
            encodings: 0,
        }
    }

    pub fn for_encoder(&mut self, encoder: &Arc<dyn Encoder>) -> Option<Bytes> {
        // The data pointer identifies the encoder instance; the vtable part is irrelevant.
        let key = Arc::as_ptr(encoder) as *const () as usize;
        if let Some((_, frame)) = self.encoded.iter().find(|(k, _)| *k == key) {
            return frame.clone();
        }
        let frame = encoder.encode(self.message);
        self.encodings += 1;
        self.encoded.push((key, frame.clone()));
        frame
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize, &'static str);

    impl Encoder for Counting {
        fn encode(&self, _: &Broadcast) -> Option<Bytes> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Some(Bytes::from_static(self.1.as_bytes()))
        }
    }

    #[test]
    fn each_encoder_runs_once_per_message() {
        let a: Arc<dyn Encoder> = Arc::new(Counting(AtomicUsize::new(0), "a"));
        let b: Arc<dyn Encoder> = Arc::new(Counting(AtomicUsize::new(0), "b"));
        let message = Broadcast::new("message", vec![]);
        let mut frames = Frames::new(&message);
        for _ in 0..100 {
            assert_eq!(frames.for_encoder(&a).unwrap(), "a");
            assert_eq!(frames.for_encoder(&b).unwrap(), "b");
        }
        assert_eq!(frames.encodings, 2);
    }
}
