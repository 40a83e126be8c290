//! Sessions with tagged encoders and outboxes to read back.

#![allow(dead_code)]

use bytes::Bytes;
use router::{Encoder, Frame, Outbound, ProtocolId, Registration, Router, Session, Stamped};
use rt_core::{Identity, IdentityKind, Next, Outbox, RandomId};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Frames its protocol name and what the message was; counts its encodings.
pub struct Tagged {
    pub name: &'static str,
    pub encodings: AtomicUsize,
}

impl Tagged {
    pub fn new(name: &'static str) -> Arc<Self> {
        Arc::new(Self {
            name,
            encodings: AtomicUsize::new(0),
        })
    }

    pub fn encodings(&self) -> usize {
        self.encodings.load(Ordering::Relaxed)
    }
}

pub fn describe(message: &Outbound) -> String {
    match message {
        Outbound::Group(m) => format!("group {} {}", m.group, m.data.to_json()),
        Outbound::Change(c) => format!("change {}", c.seq),
        Outbound::Event(e) => format!("event {}", e.name),
        Outbound::Invocation(i) => format!("invoke {}", i.target),
        Outbound::Direct(d) => format!("direct {}", d.data.to_json()),
        Outbound::Close(c) => format!("close {:?}", c.reason),
    }
}

impl Encoder for Tagged {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::new(self.name)
    }
    fn encode(&self, message: &Outbound) -> Option<Frame> {
        self.encodings.fetch_add(1, Ordering::Relaxed);
        Some(Frame::Whole(Bytes::from(format!(
            "{}: {}",
            self.name,
            describe(message)
        ))))
    }
}

/// Puts each recipient's sequence id in the frame, as Web PubSub reliable does.
pub struct Numbered;

impl Encoder for Numbered {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::new("numbered")
    }
    fn encode(&self, message: &Outbound) -> Option<Frame> {
        Some(Frame::Stamped(Stamped {
            head: Bytes::from_static(b"#"),
            tail: Bytes::from(format!(" {}", describe(message))),
        }))
    }
}

pub struct Client {
    pub registration: Registration,
    pub outbox: Outbox,
}

impl Client {
    pub fn id(&self) -> &str {
        self.registration.session().id().as_str()
    }

    /// Every frame queued so far.
    pub async fn frames(&self) -> Vec<String> {
        if !self.outbox.is_open() {
            return Vec::new();
        }
        self.outbox
            .push_control(Bytes::from_static(b"<end>"))
            .unwrap();
        let mut batch = VecDeque::new();
        assert_eq!(self.outbox.next(&mut batch).await, Next::Frames);
        batch
            .into_iter()
            .filter(|f| &f[..] != b"<end>")
            .map(|f| String::from_utf8(f.to_vec()).unwrap())
            .collect()
    }
}

pub fn connect(router: &Router, encoder: Arc<dyn Encoder>) -> Client {
    connect_as(router, encoder, Identity::anonymous(), 1 << 20)
}

pub fn connect_as(
    router: &Router,
    encoder: Arc<dyn Encoder>,
    identity: Identity,
    limit: usize,
) -> Client {
    let outbox = Outbox::new(limit);
    let session = Session::new(
        RandomId::generate(),
        Arc::new(identity),
        encoder,
        outbox.clone(),
    );
    Client {
        registration: router.register(session),
        outbox,
    }
}

pub fn user(id: &str) -> Identity {
    Identity {
        kind: IdentityKind::User,
        user_id: Some(id.into()),
        authenticated: true,
        ..Identity::default()
    }
}
