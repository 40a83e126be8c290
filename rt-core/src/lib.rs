//! What every rthub protocol shares, below the router and every protocol crate: connection
//! ids, the identity a connection belongs to, and the bounded, never-waiting outbound queue
//! with its replay buffer (SignalR stateful reconnect; Web PubSub reliable delivery).

mod id;
mod identity;
mod outbox;

pub use id::{RandomId, Redacted};
pub use identity::{Identity, IdentityKind};
pub use outbox::{Next, Outbox, PushError, SequenceEncoder, Stamped, TransferFormat};
