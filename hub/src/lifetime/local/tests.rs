use super::*;
use crate::broadcast::Encoder;
use crate::protocol::JsonHubProtocol;
use bytes::Bytes;
use negotiate::{Identity, Next, Outbox};
use std::collections::VecDeque;

struct Tagged(&'static str);

impl Encoder for Tagged {
    fn encode(&self, _: &Broadcast) -> Option<Bytes> {
        Some(Bytes::from_static(self.0.as_bytes()))
    }
}

fn member(encoder: Arc<dyn Encoder>, limit: usize) -> (Arc<Member>, Outbox) {
    let outbox = Outbox::new(limit);
    let member = Member::new(
        RandomId::generate(),
        Arc::new(Identity::anonymous()),
        encoder,
        outbox.clone(),
    );
    (member, outbox)
}

async fn drain(outbox: &Outbox) -> Vec<Bytes> {
    let mut batch = VecDeque::new();
    if !outbox.is_open() {
        return Vec::new();
    }
    outbox.push(Bytes::from_static(b"<end>")).unwrap();
    assert_eq!(outbox.next(&mut batch).await, Next::Frames);
    batch.into_iter().filter(|f| &f[..] != b"<end>").collect()
}

fn message() -> Broadcast {
    Broadcast::new("message", vec![serde_json::json!(1)])
}

const READ_WRITE: Membership = Membership { read_only: false };

#[tokio::test]
async fn a_group_message_is_encoded_once_per_protocol_not_per_member() {
    let manager = LocalLifetimeManager::new();
    let json: Arc<dyn Encoder> = Arc::new(JsonHubProtocol);
    let other: Arc<dyn Encoder> = Arc::new(Tagged("other"));
    let mut outboxes = Vec::new();
    for i in 0..10 {
        let encoder = if i % 2 == 0 {
            json.clone()
        } else {
            other.clone()
        };
        let (member, outbox) = member(encoder, 1 << 20);
        manager.on_connected(member.clone()).await;
        manager
            .add_to_group(member.connection_id.as_str(), "app:g", READ_WRITE)
            .await
            .unwrap();
        outboxes.push(outbox);
    }
    let delivery = manager.send_group("app:g", &message()).await;
    assert_eq!(
        delivery,
        Delivery {
            delivered: 10,
            overflowed: 0,
            encodings: 2
        }
    );
    for (i, outbox) in outboxes.iter().enumerate() {
        let frames = drain(outbox).await;
        assert_eq!(frames.len(), 1);
        if i % 2 == 1 {
            assert_eq!(frames[0], "other");
        }
    }
}

#[tokio::test]
async fn join_is_idempotent_leave_and_disconnect_remove() {
    let manager = LocalLifetimeManager::new();
    let (a, a_out) = member(Arc::new(JsonHubProtocol), 1 << 20);
    let (b, b_out) = member(Arc::new(JsonHubProtocol), 1 << 20);
    for m in [&a, &b] {
        manager.on_connected(m.clone()).await;
    }
    let (a_id, b_id) = (a.connection_id.as_str(), b.connection_id.as_str());
    manager.add_to_group(a_id, "g", READ_WRITE).await.unwrap();
    manager.add_to_group(a_id, "g", READ_WRITE).await.unwrap();
    manager
        .add_to_group(b_id, "g", Membership { read_only: true })
        .await
        .unwrap();
    assert_eq!(
        manager.membership(b_id, "g").await,
        Some(Membership { read_only: true })
    );
    assert_eq!(manager.send_group("g", &message()).await.delivered, 2);

    manager.remove_from_group(a_id, "g").await.unwrap();
    assert_eq!(manager.membership(a_id, "g").await, None);
    assert_eq!(manager.send_group("g", &message()).await.delivered, 1);
    assert_eq!(drain(&a_out).await.len(), 1);
    assert_eq!(drain(&b_out).await.len(), 2);

    manager.on_disconnected(&b.connection_id).await;
    assert_eq!(manager.group_count(), 0, "an empty group is removed");
    assert_eq!(manager.connection_count(), 1);
    assert_eq!(
        manager.add_to_group(b_id, "g", READ_WRITE).await,
        Err(GroupError::UnknownConnection)
    );
}

#[tokio::test]
async fn a_slow_member_is_cut_off_and_the_others_still_receive() {
    let manager = LocalLifetimeManager::new();
    let (slow, slow_out) = member(Arc::new(JsonHubProtocol), 200);
    slow_out.set_farewell(Bytes::from_static(b"farewell"));
    let (fast, fast_out) = member(Arc::new(JsonHubProtocol), 1 << 20);
    for m in [&slow, &fast] {
        manager.on_connected(m.clone()).await;
        manager
            .add_to_group(m.connection_id.as_str(), "g", READ_WRITE)
            .await
            .unwrap();
    }
    let mut overflowed = 0;
    for _ in 0..20 {
        overflowed += manager.send_group("g", &message()).await.overflowed;
    }
    assert_eq!(
        overflowed, 1,
        "the slow member overflows once, then is closed"
    );
    assert!(slow_out.overflowed());
    assert_eq!(drain(&fast_out).await.len(), 20);
    let mut batch = VecDeque::new();
    assert_eq!(slow_out.next(&mut batch).await, Next::Frames);
    assert_eq!(
        batch.into_iter().collect::<Vec<_>>(),
        vec![Bytes::from_static(b"farewell")]
    );
}

#[tokio::test]
async fn sends_to_unknown_groups_and_connections_deliver_nothing() {
    let manager = LocalLifetimeManager::new();
    assert_eq!(
        manager.send_group("nobody", &message()).await,
        Delivery::default()
    );
    assert_eq!(
        manager.send_connection("nobody", &message()).await,
        Delivery::default()
    );
    assert_eq!(
        manager.remove_from_group("nobody", "g").await,
        Err(GroupError::UnknownConnection)
    );
}

/// Sends walk a snapshot; every join and leave between two sends must show in the next one,
/// and a re-join keeps one seat with the new membership.
#[tokio::test]
async fn churn_between_sends_shows_in_the_next_send() {
    let manager = LocalLifetimeManager::new();
    let encoder: Arc<dyn Encoder> = Arc::new(Tagged("m"));
    let members: Vec<(Arc<Member>, Outbox)> =
        (0..3).map(|_| member(encoder.clone(), 1 << 20)).collect();
    for (m, _) in &members {
        manager.on_connected(m.clone()).await;
    }
    let id = |i: usize| members[i].0.connection_id.as_str().to_owned();
    let joined = Membership { read_only: false };
    manager.add_to_group(&id(0), "g", joined).await.unwrap();
    assert_eq!(manager.send_group("g", &message()).await.delivered, 1);
    manager.add_to_group(&id(1), "g", joined).await.unwrap();
    manager.add_to_group(&id(2), "g", joined).await.unwrap();
    assert_eq!(manager.send_group("g", &message()).await.delivered, 3);
    manager.remove_from_group(&id(0), "g").await.unwrap();
    let read_only = Membership { read_only: true };
    manager.add_to_group(&id(1), "g", read_only).await.unwrap();
    assert_eq!(manager.send_group("g", &message()).await.delivered, 2);
    assert_eq!(manager.membership(&id(1), "g").await, Some(read_only));
    assert_eq!(manager.membership(&id(0), "g").await, None);
    manager.on_disconnected(&members[2].0.connection_id).await;
    assert_eq!(manager.send_group("g", &message()).await.delivered, 1);
    manager.remove_from_group(&id(1), "g").await.unwrap();
    assert_eq!(manager.group_count(), 0, "an empty group is dropped");
    let counts: Vec<usize> = {
        let mut counts = Vec::new();
        for (_, outbox) in &members {
            counts.push(drain(outbox).await.len());
        }
        counts
    };
    assert_eq!(counts, [2, 3, 2]);
}
