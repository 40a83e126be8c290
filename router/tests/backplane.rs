//! Two routers in one process on the loopback backplane: one group space.

mod support;

use router::{
    ChangeMessage, GroupMessage, LoopbackNetwork, Membership, Operation, Outbound, Payload, Router,
    RouterError, Scope, Target,
};
use serde_json::json;
use std::sync::Arc;
use support::*;

fn pair() -> (Arc<LoopbackNetwork>, Router, Router) {
    let network = LoopbackNetwork::new();
    let a = Router::with_backplane(network.backplane());
    let b = Router::with_backplane(network.backplane());
    (network, a, b)
}

fn text(group: &str, body: &str) -> Arc<Outbound> {
    Arc::new(Outbound::Group(GroupMessage::new(
        group,
        Payload::Text(body.into()),
    )))
}

const MEMBER: Membership = Membership { read_only: false };

#[tokio::test]
async fn one_group_message_reaches_the_members_on_both_routers_once() {
    let (_network, a, b) = pair();
    let tag = Tagged::new("t");
    let on_a = connect(&a, tag.clone());
    let on_b = connect(&b, tag.clone());
    let elsewhere = connect(&b, tag.clone());
    a.join(on_a.id(), "g", MEMBER).await.unwrap();
    b.join(on_b.id(), "g", MEMBER).await.unwrap();
    let local = a.send(Target::group("g"), Scope::Cluster, text("g", "hi"));
    assert_eq!(
        local.delivered, 1,
        "the sender's node delivers its own members"
    );
    assert_eq!(on_a.frames().await, ["t: group g \"hi\""]);
    assert_eq!(on_b.frames().await, ["t: group g \"hi\""]);
    assert!(elsewhere.frames().await.is_empty());
    assert_eq!(tag.encodings(), 2, "each node encodes once for its members");
}

#[tokio::test]
async fn a_change_scope_send_stays_on_its_node() {
    let (_network, a, b) = pair();
    let on_a = connect(&a, Tagged::new("t"));
    let on_b = connect(&b, Tagged::new("t"));
    let change = Arc::new(Outbound::Change(ChangeMessage {
        collection: "products".into(),
        operation: Operation::Create,
        id: "00000000-0000-0000-0000-000000000001".into(),
        data: json!({}),
        seq: 7,
        ts: "2026-12-03T00:00:00Z".into(),
    }));
    a.send(Target::All, Scope::Local, change.clone());
    assert_eq!(on_a.frames().await, ["t: change 7"]);
    assert!(on_b.frames().await.is_empty());
    a.send(Target::All, Scope::Cluster, change);
    assert_eq!(on_b.frames().await, ["t: change 7"]);
}

#[tokio::test]
async fn joining_a_connection_of_the_other_router_is_a_command_it_acknowledges() {
    let (network, a, b) = pair();
    let on_b = connect_as(&b, Tagged::new("t"), user("alice"), 1 << 20);
    assert_eq!(a.join(on_b.id(), "g", MEMBER).await, Ok(()));
    assert_eq!(b.membership(on_b.id(), "g"), Some(MEMBER));
    assert!(network.is_subscribed(b.node(), "g") && !network.is_subscribed(a.node(), "g"));
    assert_eq!(
        a.identity(on_b.id())
            .await
            .unwrap()
            .and_then(|i| i.user_id.clone())
            .as_deref(),
        Some("alice")
    );
    a.send(Target::group("g"), Scope::Cluster, text("g", "to b"));
    assert_eq!(on_b.frames().await, ["t: group g \"to b\""]);
    assert_eq!(a.leave(on_b.id(), "g").await, Ok(()));
    assert_eq!(b.membership(on_b.id(), "g"), None);
    assert!(
        !network.is_subscribed(b.node(), "g"),
        "the last member left: unsubscribed"
    );
    assert_eq!(
        a.join("nobody", "g", MEMBER).await,
        Err(RouterError::UnknownConnection)
    );
    assert_eq!(a.identity("nobody").await, Ok(None));
}

#[tokio::test]
async fn node_subscriptions_follow_the_first_join_and_the_last_leave() {
    let (network, a, _b) = pair();
    let tag = Tagged::new("t");
    let first = connect(&a, tag.clone());
    let second = connect(&a, tag.clone());
    a.join(first.id(), "g", MEMBER).await.unwrap();
    a.join(second.id(), "g", MEMBER).await.unwrap();
    assert!(network.is_subscribed(a.node(), "g"));
    a.leave(first.id(), "g").await.unwrap();
    assert!(network.is_subscribed(a.node(), "g"), "one member is left");
    drop(second);
    assert!(
        !network.is_subscribed(a.node(), "g"),
        "a disconnect leaves too"
    );
}
