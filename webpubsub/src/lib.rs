//! Azure Web PubSub's JSON client protocols, `json.webpubsub.azure.v1` and
//! `json.reliable.webpubsub.azure.v1` (Azure/azure-webpubsub `protocols/client/`): what
//! clients send ([`inbound`]), what the server writes ([`frames`]), the `webpubsub.*` roles
//! ([`roles`]), remembered ack ids ([`AckIds`]) and the router [`encoder`] that turns the one
//! group space's messages into Web PubSub frames, once per protocol (with a hole for each
//! recipient's `sequenceId` on the reliable one). No I/O: the application owns the sockets.
//!
//! ```
//! use webpubsub::inbound::{parse, ClientMessage};
//!
//! let message = parse(br#"{"type":"joinGroup","group":"app:room","ackId":1}"#).unwrap();
//! assert_eq!(message, ClientMessage::JoinGroup { group: "app:room".into(), ack_id: Some(1) });
//! assert_eq!(&webpubsub::frames::ack_ok(1)[..], br#"{"type":"ack","ackId":1,"success":true}"#);
//! ```

mod acks;
pub mod encoder;
pub mod frames;
pub mod inbound;
pub mod roles;

pub use acks::AckIds;
pub use encoder::WebPubSubEncoder;

/// The subprotocols this crate speaks, as clients ask for them in `Sec-WebSocket-Protocol`.
pub const JSON: &str = "json.webpubsub.azure.v1";
pub const JSON_RELIABLE: &str = "json.reliable.webpubsub.azure.v1";

/// Which of the two JSON subprotocols a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Subprotocol {
    Json,
    JsonReliable,
}

impl Subprotocol {
    /// The subprotocol named `name` (case-insensitive, as the service matches it).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case(JSON) {
            Some(Subprotocol::Json)
        } else if name.eq_ignore_ascii_case(JSON_RELIABLE) {
            Some(Subprotocol::JsonReliable)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Subprotocol::Json => JSON,
            Subprotocol::JsonReliable => JSON_RELIABLE,
        }
    }

    /// Messages carry `sequenceId`s and a dropped connection may be recovered.
    pub fn is_reliable(self) -> bool {
        self == Subprotocol::JsonReliable
    }
}
