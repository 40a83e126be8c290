//! The table of connections by token, their transport state, and expiry: negotiated
//! connections never used, and long-polling connections whose client stopped polling.
//!
//! Every connection has a public id (what the application and other clients see) and a
//! distinct secret token (what transport requests present), also for negotiate version 0,
//! whose clients call the token their `connectionId`: no value another client can see ever
//! opens a connection.

use crate::connection::TransportKind;
use crate::identity::Identity;
use crate::inbound::InboundSender;
use bytes::Bytes;
use dashmap::DashMap;
use parking_lot::Mutex;
use rt_core::Outbox;
use rt_core::RandomId;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SlotState {
    /// Negotiated; no transport request yet.
    Negotiated {
        since: Instant,
    },
    Active(TransportKind),
}

/// The duplex of a running connection, kept in the slot for transports whose client sends
/// with separate requests (POST) and receives with several (long polls).
pub(crate) struct Attached {
    /// Taken on disposal, which ends the application's inbound stream.
    pub inbound: Mutex<Option<InboundSender>>,
    pub outbox: Outbox,
    pub poll: Mutex<PollState>,
    /// The WebSocket task serving the connection now; a re-attaching socket cancels it.
    pub socket: Mutex<Option<CancellationToken>>,
    /// Held by the task that drains the outbox, so a replacement starts only after the
    /// replaced one stopped (the outbox has one reader).
    pub writer: tokio::sync::Mutex<()>,
}

/// Long polling, and the idle time of every transport that may come back.
#[derive(Default)]
pub(crate) struct PollState {
    /// The poll waiting now; a newer poll cancels it (it answers 204).
    pub current: Option<CancellationToken>,
    /// Counts polls, so a finished poll knows whether a newer one has taken over.
    pub generation: u64,
    /// Since when no request serves the connection (between long polls, or after a stateful
    /// WebSocket dropped): the client has `disconnect_timeout` to come back.
    pub idle_since: Option<Instant>,
}

pub(crate) struct Slot {
    pub id: RandomId,
    /// The secret the transport requests present: the manager's token prefix (if any), then
    /// a [`RandomId`]'s 128 random bits.
    pub token: Arc<str>,
    pub identity: Arc<Identity>,
    pub state: Mutex<SlotState>,
    pub attached: Mutex<Option<Arc<Attached>>>,
    /// Sends that arrived before a transport started the connection (signalrcore POSTs its
    /// handshake before its first poll), fed to the application first when it starts. Locked
    /// by both sides of that race, so nothing is fed twice or lost.
    pub early: Mutex<EarlyInput>,
    /// Negotiated stateful reconnect.
    pub stateful: bool,
    /// Negotiated with version 0: the client knows the token as its `connectionId`, and may
    /// present it where the application asks for a connection id.
    pub legacy_token: bool,
}

/// Input waiting for the connection to start.
#[derive(Default)]
pub(crate) struct EarlyInput {
    pub chunks: Vec<Bytes>,
    pub bytes: usize,
}

/// Why a transport request cannot take a connection.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ClaimError {
    /// Another request of the same transport already serves it.
    InUse,
    /// The connection started with another transport.
    OtherTransport,
}

impl Slot {
    /// Bind the connection to `transport` for the rest of its life.
    pub fn claim(&self, transport: TransportKind) -> Result<(), ClaimError> {
        let mut state = self.state.lock();
        match *state {
            SlotState::Negotiated { .. } => {
                *state = SlotState::Active(transport);
                Ok(())
            }
            SlotState::Active(current) if current == transport => Err(ClaimError::InUse),
            SlotState::Active(_) => Err(ClaimError::OtherTransport),
        }
    }

    pub fn transport(&self) -> Option<TransportKind> {
        match *self.state.lock() {
            SlotState::Active(transport) => Some(transport),
            SlotState::Negotiated { .. } => None,
        }
    }

    pub fn attached(&self) -> Option<Arc<Attached>> {
        self.attached.lock().clone()
    }
}

impl Attached {
    pub fn new(inbound: InboundSender, outbox: Outbox) -> Arc<Self> {
        Arc::new(Self {
            inbound: Mutex::new(Some(inbound)),
            outbox,
            poll: Mutex::new(PollState::default()),
            socket: Mutex::new(None),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// End the connection from the transport side: the application sees its inbound stream
    /// end, nothing more is written, and a waiting poll answers 204.
    pub fn dispose(&self) {
        self.inbound.lock().take();
        self.outbox.abort();
        if let Some(poll) = self.poll.lock().current.take() {
            poll.cancel();
        }
        if let Some(socket) = self.socket.lock().take() {
            socket.cancel();
        }
    }
}

/// Disposes a connection when dropped: held by a response whose end is the connection's end
/// (a Server-Sent Events stream), which the server drops when the client goes away.
pub(crate) struct DisposeOnDrop {
    pub manager: Arc<ConnectionManager>,
    pub slot: Arc<Slot>,
}

impl Drop for DisposeOnDrop {
    fn drop(&mut self) {
        tracing::debug!(connection_id = %self.slot.id.redacted(), "stream ended");
        self.manager.dispose(&self.slot);
    }
}

#[derive(Default)]
pub(crate) struct ConnectionManager {
    by_token: DashMap<Arc<str>, Arc<Slot>>,
    /// Put before every token's random part: the application's hint of where the connection
    /// lives (a node id in a cluster), which other nodes read to forward transport requests.
    token_prefix: Option<Arc<str>>,
}

impl ConnectionManager {
    pub fn with_token_prefix(prefix: &str) -> Self {
        Self {
            by_token: DashMap::default(),
            token_prefix: Some(prefix.into()),
        }
    }

    fn new_token(&self) -> Arc<str> {
        let random = RandomId::generate();
        match &self.token_prefix {
            Some(prefix) => format!("{prefix}{}", random.as_str()).into(),
            None => random.as_arc().clone(),
        }
    }

    /// A connection for negotiate. `legacy_token`: version 0, whose clients are told the token
    /// as their `connectionId` (they put it in `id`); the public id stays distinct all the same.
    pub fn create(&self, identity: Identity, legacy_token: bool, stateful: bool) -> Arc<Slot> {
        self.insert(
            identity,
            SlotState::Negotiated {
                since: Instant::now(),
            },
            stateful,
            legacy_token,
        )
    }

    /// A connection created by a transport request directly (WebSocket without negotiate).
    pub fn create_active(&self, identity: Identity, transport: TransportKind) -> Arc<Slot> {
        self.insert(identity, SlotState::Active(transport), false, false)
    }

    fn insert(
        &self,
        identity: Identity,
        state: SlotState,
        stateful: bool,
        legacy_token: bool,
    ) -> Arc<Slot> {
        let slot = Arc::new(Slot {
            id: RandomId::generate(),
            token: self.new_token(),
            identity: Arc::new(identity),
            state: Mutex::new(state),
            attached: Mutex::new(None),
            early: Mutex::new(EarlyInput::default()),
            stateful,
            legacy_token,
        });
        self.by_token.insert(slot.token.clone(), slot.clone());
        slot
    }

    pub fn get(&self, token: &str) -> Option<Arc<Slot>> {
        self.by_token.get(token).map(|slot| slot.clone())
    }

    /// The public id of the version 0 connection whose client knows `token` as its id.
    pub fn legacy_public_id(&self, token: &str) -> Option<RandomId> {
        self.by_token
            .get(token)
            .filter(|slot| slot.legacy_token)
            .map(|slot| slot.id.clone())
    }

    /// Forget the connection and end it if it is running.
    pub fn dispose(&self, slot: &Slot) {
        self.by_token.remove(&*slot.token);
        if let Some(attached) = slot.attached() {
            attached.dispose();
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    /// Dispose negotiated connections no transport claimed in time, long-polling connections
    /// whose client has not polled for `timeout`, and dropped stateful WebSockets not
    /// re-attached within it.
    fn expire(&self, timeout: Duration) {
        let now = Instant::now();
        let mut idle_pollers = Vec::new();
        self.by_token.retain(|_, slot| match *slot.state.lock() {
            SlotState::Negotiated { since } => now.duration_since(since) <= timeout,
            SlotState::Active(_) => {
                let idle = slot.attached().and_then(|a| a.poll.lock().idle_since);
                match idle {
                    Some(since) if now.duration_since(since) > timeout => {
                        idle_pollers.push(slot.clone());
                        false
                    }
                    _ => true,
                }
            }
        });
        for slot in idle_pollers {
            tracing::debug!(connection_id = %slot.id.redacted(), "the client did not come back in time");
            if let Some(attached) = slot.attached() {
                attached.dispose();
            }
        }
    }

    /// Check expiry on a one-second heartbeat, as ASP.NET Core does, for as long as the
    /// manager lives.
    pub fn spawn_expiry(self: &Arc<Self>, timeout: Duration) {
        let manager: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(manager) = manager.upgrade() else {
                    return;
                };
                manager.expire(timeout);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_is_claimed_once_by_one_transport() {
        let manager = ConnectionManager::default();
        let slot = manager.create(Identity::anonymous(), false, false);
        assert_ne!(slot.id.as_str(), &*slot.token);
        assert!(manager.get(&slot.token).is_some());
        assert!(manager.get(slot.id.as_str()).is_none());
        slot.claim(TransportKind::WebSockets).unwrap();
        assert_eq!(
            slot.claim(TransportKind::WebSockets),
            Err(ClaimError::InUse)
        );
        assert_eq!(
            slot.claim(TransportKind::LongPolling),
            Err(ClaimError::OtherTransport)
        );
    }

    #[test]
    fn version_0_has_a_public_id_distinct_from_its_token() {
        let manager = ConnectionManager::default();
        let legacy = manager.create(Identity::anonymous(), true, false);
        assert_ne!(legacy.id.as_str(), &*legacy.token);
        assert!(
            manager.get(legacy.id.as_str()).is_none(),
            "the id opens nothing"
        );
        assert_eq!(
            manager.legacy_public_id(&legacy.token),
            Some(legacy.id.clone())
        );
        // Version 1 tokens are never asked for by the application: not resolved.
        let current = manager.create(Identity::anonymous(), false, false);
        assert_eq!(manager.legacy_public_id(&current.token), None);
        assert_eq!(manager.legacy_public_id(legacy.id.as_str()), None);
        let direct = manager.create_active(Identity::anonymous(), TransportKind::WebSockets);
        assert_ne!(direct.id.as_str(), &*direct.token);
    }

    #[test]
    fn unused_negotiated_connections_expire_and_active_ones_stay() {
        let manager = ConnectionManager::default();
        let unused = manager.create(Identity::anonymous(), false, false);
        let used = manager.create(Identity::anonymous(), false, false);
        used.claim(TransportKind::WebSockets).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        manager.expire(Duration::ZERO);
        assert!(manager.get(&unused.token).is_none());
        assert!(manager.get(&used.token).is_some());
        assert_eq!(manager.len(), 1);
    }

    #[test]
    fn a_token_prefix_comes_before_the_random_part() {
        let manager = ConnectionManager::with_token_prefix("00000000000000ab.");
        let slot = manager.create(Identity::anonymous(), false, false);
        let random = slot.token.strip_prefix("00000000000000ab.").unwrap();
        assert_eq!(random.len(), 22, "all of a RandomId's entropy");
        assert!(manager.get(&slot.token).is_some());
        assert!(manager.get(random).is_none());
        let plain = ConnectionManager::default().create(Identity::anonymous(), false, false);
        assert_eq!(plain.token.len(), 22);
    }

    #[tokio::test]
    async fn a_long_poller_that_stops_polling_is_disposed() {
        let manager = ConnectionManager::default();
        let slot = manager.create(Identity::anonymous(), false, false);
        slot.claim(TransportKind::LongPolling).unwrap();
        let (tx, mut rx) = crate::inbound::channel(1);
        let attached = Attached::new(tx, Outbox::new(100));
        *slot.attached.lock() = Some(attached.clone());
        // Polling now: not idle.
        manager.expire(Duration::ZERO);
        assert!(manager.get(&slot.token).is_some());
        attached.poll.lock().idle_since = Some(Instant::now());
        std::thread::sleep(Duration::from_millis(2));
        manager.expire(Duration::ZERO);
        assert!(manager.get(&slot.token).is_none());
        assert!(rx.recv().await.is_none(), "the application sees the end");
        assert!(!attached.outbox.is_open());
    }
}
