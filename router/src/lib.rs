//! The one group space every protocol shares (see `docs/DECISIONS.md`, "Router").
//!
//! A protocol endpoint registers each of its connections as a [`Session`] with an
//! [`Encoder`] for its wire format; everything else — joining groups, sending to a group, a
//! user, some connections or everyone, listing members, hearing connects and disconnects —
//! goes through the [`Router`]. Messages are protocol-neutral ([`Outbound`]) and are encoded
//! at most once per protocol present among the recipients. Nothing here knows SignalR, Web
//! PubSub or SSE.
//!
//! ```
//! use router::{Encoder, Frame, Outbound, ProtocolId, Router, Scope, Session, Target};
//! use router::{GroupMessage, Membership, Payload};
//! use rt_core::{Identity, Outbox, RandomId};
//! use std::sync::Arc;
//!
//! struct Plain;
//! impl Encoder for Plain {
//!     fn protocol(&self) -> ProtocolId { ProtocolId::new("plain") }
//!     fn encode(&self, message: &Outbound) -> Option<Frame> {
//!         match message {
//!             Outbound::Group(m) => Some(Frame::Whole(m.data.to_json().to_string().into())),
//!             _ => None,
//!         }
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let router = Router::new();
//! let outbox = Outbox::new(1 << 20);
//! let session = Session::new(RandomId::generate(), Arc::new(Identity::anonymous()), Arc::new(Plain), outbox);
//! let registration = router.register(session.clone());
//! router.join(session.id().as_str(), "room", Membership::default()).await.unwrap();
//! let message = GroupMessage::new("room", Payload::Json(serde_json::json!({"hi": 1})));
//! let delivery = router.send(Target::group("room"), Scope::Cluster, Arc::new(Outbound::Group(message)));
//! assert_eq!((delivery.delivered, delivery.encodings), (1, 1));
//! drop(registration); // leaves every group; observers hear the disconnect
//! assert_eq!(router.group_count(), 0);
//! # });
//! ```

mod backplane;
mod encode;
mod message;
mod observer;
mod router;
mod session;
mod stats;
mod tables;
mod target;

pub use backplane::{
    Backplane, BackplaneError, BackplaneHandler, Command, Envelope, LoopbackBackplane,
    LoopbackNetwork, NoBackplane, NodeId, Reply,
};
pub use encode::{EncodeOnce, Encoder, Frame, ProtocolId, Slot};
pub use message::{
    ChangeMessage, CustomEvent, DirectMessage, Disconnect, GroupMessage, Invocation, Operation,
    Outbound, Payload,
};
pub use observer::SessionObserver;
pub use router::{Delivery, Extension, MemberInfo, Members, Registration, Router, RouterError};
pub use rt_core::Stamped;
pub use session::{Membership, Session};
pub use stats::{EventStats, ProtocolStats, SessionStats, StatsSnapshot};
pub use target::{Scope, Target};
