//! What this node hears from Redis: one pub/sub connection for the everyone channel, this
//! node's channel and the groups with local members, and the gap filling that makes group
//! delivery lossless: every group message has an offset, and a node that sees an offset
//! jump, or comes back from a lost connection, reads what it missed from the group's
//! stream before going on.

use super::connection::{Connection, Connector, Subscriber};
use super::keys::Keys;
use super::outgoing::Op;
use super::status::Status;
use super::wire::{self, GroupFrame, NodeMessage};
use dashmap::DashMap;
use router::{BackplaneHandler, Envelope, NodeId, Reply};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub enum SubOp {
    Subscribe(Arc<str>),
    Unsubscribe(Arc<str>),
    /// Answered once every subscription asked for before it is active (or Redis is away).
    Barrier(oneshot::Sender<()>),
}

pub type Pending = DashMap<u64, oneshot::Sender<Option<Reply>>>;
pub type Handler = OnceLock<Weak<dyn BackplaneHandler>>;

/// Where this node is in a group's stream.
#[derive(Default)]
struct Position {
    /// False until this node has looked at the stream (it subscribed while Redis was away):
    /// then it takes the stream's head, as what came before cannot be told from what came
    /// after the join.
    known: bool,
    /// `None`: the group had no stream when this node looked, so whatever epoch comes first
    /// is new from its start.
    epoch: Option<String>,
    offset: u64,
}

pub struct Reader {
    pub keys: Keys,
    pub status: Arc<Status>,
    pub handler: Arc<Handler>,
    pub pending: Arc<Pending>,
    pub ops: mpsc::UnboundedSender<Op>,
    groups: HashMap<Arc<str>, Position>,
    /// For reading the streams; made with each subscription, and lost with it, so a gap is
    /// never left unfilled because only one of them came back.
    query: Option<Connection>,
}

enum Ended {
    Lost(Option<redis::RedisError>),
    Shutdown,
}

impl Reader {
    pub fn new(
        keys: Keys,
        status: Arc<Status>,
        handler: Arc<Handler>,
        pending: Arc<Pending>,
        ops: mpsc::UnboundedSender<Op>,
    ) -> Self {
        Self {
            keys,
            status,
            handler,
            pending,
            ops,
            groups: HashMap::new(),
            query: None,
        }
    }

    fn node(&self) -> NodeId {
        self.status.node
    }

    pub async fn run(mut self, client: Connector, mut subs: mpsc::UnboundedReceiver<SubOp>) {
        let mut attempt = 0u32;
        loop {
            let ended = match client.subscriber().await {
                Ok(subscriber) => {
                    self.serve(subscriber, &client, &mut subs, &mut attempt)
                        .await
                }
                Err(error) => Ended::Lost(Some(error)),
            };
            match ended {
                Ended::Shutdown => return,
                Ended::Lost(error) => self.status.reader(false, error.as_ref()),
            }
            // Meanwhile subscriptions change only in the table; the next connection
            // subscribes to what is in it then.
            let delay = Duration::from_millis(50u64 << attempt.min(5)).min(Duration::from_secs(2));
            attempt += 1;
            let deadline = tokio::time::sleep(delay);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    op = subs.recv() => match op {
                        Some(op) => self.apply_offline(op),
                        None => return,
                    },
                }
            }
        }
    }

    fn apply_offline(&mut self, op: SubOp) {
        match op {
            SubOp::Subscribe(group) => {
                self.groups.entry(group).or_default();
            }
            SubOp::Unsubscribe(group) => {
                self.groups.remove(&group);
            }
            SubOp::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }

    async fn serve(
        &mut self,
        mut subscriber: Subscriber,
        client: &Connector,
        subs: &mut mpsc::UnboundedReceiver<SubOp>,
        attempt: &mut u32,
    ) -> Ended {
        let channels = [self.keys.all_channel(), self.keys.node_channel(self.node())];
        if let Err(error) = subscriber.subscribe(&channels).await {
            return Ended::Lost(Some(error));
        }
        let groups: Vec<String> = self
            .groups
            .keys()
            .map(|g| self.keys.group_channel(g))
            .collect();
        if let Err(error) = subscriber.subscribe_groups(&groups).await {
            return Ended::Lost(Some(error));
        }
        self.query = None;
        match client.connect_plain().await {
            Ok(query) => self.query = Some(query),
            Err(error) => return Ended::Lost(Some(error)),
        }
        // What the groups missed while the subscription was away, before anything new.
        let groups: Vec<Arc<str>> = self.groups.keys().cloned().collect();
        for group in groups {
            if let Err(error) = self.catch_up(&group, None).await {
                return Ended::Lost(Some(error));
            }
        }
        *attempt = 0;
        self.status.reader(true, None);
        loop {
            tokio::select! {
                op = subs.recv() => {
                    let Some(op) = op else { return Ended::Shutdown };
                    if let Err(error) = self.apply(op, &mut subscriber).await {
                        return Ended::Lost(Some(error));
                    }
                }
                message = subscriber.next() => {
                    let Some((channel, payload)) = message else { return Ended::Lost(None) };
                    if let Some(group) = self.keys.group_of_channel(&channel) {
                        let group: Arc<str> = group.into();
                        if let Err(error) = self.on_group_frame(&group, &payload).await {
                            return Ended::Lost(Some(error));
                        }
                    } else if let Err(error) = self.on_node_message(&payload, subs, &mut subscriber).await {
                        return Ended::Lost(Some(error));
                    }
                }
            }
        }
    }

    async fn apply(&mut self, op: SubOp, subscriber: &mut Subscriber) -> redis::RedisResult<()> {
        match op {
            SubOp::Subscribe(group) => {
                let channel = self.keys.group_channel(&group);
                // In the table first: if the subscription fails, the next connection makes it.
                let new = !self.groups.contains_key(&group);
                self.groups.entry(group.clone()).or_default();
                if new {
                    // The head before subscribing is where this node starts: what is sent
                    // while the subscription takes effect is then read from the stream right
                    // after it (a head read after subscribing would skip it for good).
                    self.catch_up(&group, None).await?;
                }
                subscriber.subscribe_group(&channel).await?;
                if new {
                    self.catch_up(&group, None).await?;
                }
                Ok(())
            }
            SubOp::Unsubscribe(group) => {
                self.groups.remove(&group);
                subscriber
                    .unsubscribe_group(&self.keys.group_channel(&group))
                    .await
            }
            SubOp::Barrier(done) => {
                let _ = done.send(());
                Ok(())
            }
        }
    }

    fn handler(&self) -> Option<Arc<dyn BackplaneHandler>> {
        self.handler.get().and_then(Weak::upgrade)
    }

    fn deliver(&self, origin: NodeId, envelope: &[u8]) {
        if origin == self.node() {
            return;
        }
        match wire::decode::<Envelope>(envelope) {
            Ok(envelope) => {
                if let Some(handler) = self.handler() {
                    handler.deliver(&envelope);
                }
            }
            Err(error) => tracing::warn!(node = %self.node(), %error, "cluster: skipped a message"),
        }
    }

    async fn on_group_frame(&mut self, group: &Arc<str>, payload: &[u8]) -> redis::RedisResult<()> {
        let node = self.node();
        let frame = match GroupFrame::parse(payload) {
            Ok(frame) => frame,
            Err(error) => {
                tracing::warn!(%node, %error, group = %group, "cluster: skipped a group message");
                return Ok(());
            }
        };
        let Some(position) = self.groups.get_mut(group) else {
            return Ok(()); // unsubscribed meanwhile
        };
        if !position.known {
            // Never looked at the stream (Redis was away): start here.
            *position = Position {
                known: true,
                epoch: Some(frame.epoch.to_owned()),
                offset: frame.offset,
            };
            self.deliver(frame.origin, frame.envelope);
            return Ok(());
        }
        if position.epoch.as_deref() != Some(frame.epoch) {
            if position.epoch.is_some() {
                self.status.lost(1);
                tracing::warn!(%node, group = %group, "cluster: the group's stream started again (Redis lost its data, or the stream expired); messages sent meanwhile cannot be recovered");
            }
            position.epoch = Some(frame.epoch.to_owned());
            position.offset = 0;
        }
        if frame.offset <= position.offset {
            return Ok(()); // filled from the stream already
        }
        if frame.offset > position.offset + 1 {
            self.catch_up(group, Some(frame.offset)).await?;
        }
        if let Some(position) = self.groups.get_mut(group) {
            if position.epoch.as_deref() == Some(frame.epoch) && frame.offset > position.offset {
                position.offset = frame.offset;
                self.deliver(frame.origin, frame.envelope);
            }
        }
        Ok(())
    }

    /// Deliver what the group's stream has after this node's position and before `until`
    /// (everything, without it). An error is the connection's: the caller reconnects, and
    /// the next connection fills the gap.
    async fn catch_up(&mut self, group: &Arc<str>, until: Option<u64>) -> redis::RedisResult<()> {
        let node = self.node();
        let Some(query) = self.query.as_mut() else {
            return Ok(());
        };
        let (epoch, head): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.keys.group_meta(group))
            .arg("epoch")
            .arg("seq")
            .query_async(query)
            .await?;
        let head = head.unwrap_or(0);
        let Some(position) = self.groups.get_mut(group) else {
            return Ok(()); // unsubscribed meanwhile
        };
        if !position.known {
            *position = Position {
                known: true,
                epoch,
                offset: head,
            };
            return Ok(());
        }
        if position.epoch != epoch {
            // A stream that did not exist when this node looked is new from its start; one
            // whose epoch changed lost what came before.
            if position.epoch.is_some() {
                self.status.lost(1);
                tracing::warn!(%node, group = %group, "cluster: the group's stream started again (Redis lost its data, or the stream expired); messages sent meanwhile cannot be recovered");
            }
            position.epoch = epoch;
            position.offset = 0;
        }
        let from = position.offset + 1;
        let last = until.map_or(head, |until| until - 1).min(head);
        if last < from {
            return Ok(());
        }
        let reply: redis::streams::StreamRangeReply = redis::cmd("XRANGE")
            .arg(self.keys.group_stream(group))
            .arg(format!("{from}-1"))
            .arg(format!("{last}-1"))
            .query_async(query)
            .await?;
        let mut expected = from;
        let mut filled = 0;
        for entry in reply.ids {
            let Some(offset) = entry
                .id
                .split_once('-')
                .and_then(|(offset, _)| offset.parse::<u64>().ok())
            else {
                continue;
            };
            if offset > expected {
                tracing::warn!(%node, group = %group, missing = offset - expected, "cluster: the group's stream no longer has messages this node missed");
                self.status.lost(offset - expected);
            }
            expected = offset + 1;
            if let Some(body) = entry.get::<Vec<u8>>("m") {
                match wire::parse_body(&body) {
                    Ok((origin, envelope)) => self.deliver(origin, envelope),
                    Err(error) => {
                        tracing::warn!(%node, %error, group = %group, "cluster: skipped a stream entry")
                    }
                }
            }
            filled += 1;
            if let Some(position) = self.groups.get_mut(group) {
                position.offset = offset;
            }
        }
        if last >= expected {
            self.status.lost(last + 1 - expected);
            tracing::warn!(%node, group = %group, missing = last + 1 - expected, "cluster: the group's stream no longer has messages this node missed");
            if let Some(position) = self.groups.get_mut(group) {
                position.offset = last;
            }
        }
        if filled > 0 {
            self.status.filled(filled);
            tracing::debug!(%node, group = %group, filled, "cluster: filled a gap from the group's stream");
        }
        Ok(())
    }

    async fn on_node_message(
        &mut self,
        payload: &[u8],
        subs: &mut mpsc::UnboundedReceiver<SubOp>,
        subscriber: &mut Subscriber,
    ) -> redis::RedisResult<()> {
        let message = match wire::decode::<NodeMessage>(payload) {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(node = %self.node(), %error, "cluster: skipped a node message");
                return Ok(());
            }
        };
        match message {
            NodeMessage::Deliver(envelope) => {
                if envelope.origin != self.node() {
                    if let Some(handler) = self.handler() {
                        handler.deliver(&envelope);
                    }
                }
            }
            NodeMessage::Command {
                request,
                from,
                command,
            } => {
                let reply = self.handler().and_then(|h| h.execute(&command));
                // A join subscribes the group; answer once that subscription is active, so
                // that a send right after the acknowledgement reaches the new member.
                while let Ok(op) = subs.try_recv() {
                    self.apply(op, subscriber).await?;
                }
                let body = wire::encode(&NodeMessage::Reply { request, reply });
                let _ = self.ops.send(Op::Node { node: from, body });
            }
            NodeMessage::Reply { request, reply } => {
                if let Some((_, waiter)) = self.pending.remove(&request) {
                    let _ = waiter.send(reply);
                }
            }
        }
        Ok(())
    }
}
