//! The group space of one router: tables, targets, encode-once, lifecycle.

mod support;

use router::{
    GroupMessage, Membership, Outbound, Payload, Router, RouterError, Scope, SessionObserver,
    Target,
};
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::*;

fn message(group: &str, n: i64) -> Arc<Outbound> {
    Arc::new(Outbound::Group(GroupMessage::new(
        group,
        Payload::Json(json!(n)),
    )))
}

const MEMBER: Membership = Membership { read_only: false };

#[tokio::test]
async fn a_group_message_is_encoded_once_per_protocol_not_per_member() {
    let router = Router::new();
    let (a, b) = (Tagged::new("a"), Tagged::new("b"));
    let mut clients = Vec::new();
    for i in 0..10 {
        let client = connect(&router, if i % 2 == 0 { a.clone() } else { b.clone() });
        router.join(client.id(), "g", MEMBER).await.unwrap();
        clients.push(client);
    }
    let delivery = router.send(Target::group("g"), Scope::Cluster, message("g", 1));
    assert_eq!(
        (delivery.delivered, delivery.overflowed, delivery.encodings),
        (10, 0, 2)
    );
    assert_eq!((a.encodings(), b.encodings()), (1, 1));
    for (i, client) in clients.iter().enumerate() {
        let tag = if i % 2 == 0 { "a" } else { "b" };
        assert_eq!(client.frames().await, [format!("{tag}: group g 1")]);
    }
}

#[tokio::test]
async fn stamped_frames_are_encoded_once_and_numbered_per_recipient() {
    let router = Router::new();
    let first = connect(&router, Arc::new(Numbered));
    let second = connect(&router, Arc::new(Numbered));
    for client in [&first, &second] {
        router.join(client.id(), "g", MEMBER).await.unwrap();
    }
    // The second one already had a message of its own: its ids run ahead.
    router.send(
        Target::connection(second.id()),
        Scope::Local,
        message("g", 0),
    );
    let delivery = router.send(Target::group("g"), Scope::Local, message("g", 1));
    assert_eq!(delivery.encodings, 1);
    assert_eq!(first.frames().await, ["#1 group g 1"]);
    assert_eq!(second.frames().await, ["#1 group g 0", "#2 group g 1"]);
}

#[tokio::test]
async fn joins_replace_leaves_and_disconnect_remove() {
    let router = Router::new();
    let client = connect(&router, Tagged::new("a"));
    router.join(client.id(), "g", MEMBER).await.unwrap();
    router
        .join(client.id(), "g", Membership { read_only: true })
        .await
        .unwrap();
    assert_eq!(
        router.membership(client.id(), "g"),
        Some(Membership { read_only: true })
    );
    assert_eq!(
        router.members("g", 0, 10).count,
        1,
        "a second join is one seat"
    );
    router.join(client.id(), "h", MEMBER).await.unwrap();
    router.leave(client.id(), "g").await.unwrap();
    router.leave(client.id(), "g").await.unwrap();
    assert_eq!(router.membership(client.id(), "g"), None);
    assert_eq!(router.group_count(), 1);
    let id = client.id().to_owned();
    drop(client);
    assert_eq!((router.group_count(), router.connection_count()), (0, 0));
    assert_eq!(
        router.join(&id, "g", MEMBER).await,
        Err(RouterError::UnknownConnection)
    );
    assert_eq!(
        router.leave(&id, "g").await,
        Err(RouterError::UnknownConnection)
    );
}

#[tokio::test]
async fn every_target_reaches_exactly_its_sessions() {
    let router = Router::new();
    let tag = Tagged::new("t");
    let alice_1 = connect_as(&router, tag.clone(), user("alice"), 1 << 20);
    let alice_2 = connect_as(&router, tag.clone(), user("alice"), 1 << 20);
    let bob = connect_as(&router, tag.clone(), user("bob"), 1 << 20);
    let anonymous = connect(&router, tag.clone());
    for client in [&alice_1, &bob] {
        router.join(client.id(), "g", MEMBER).await.unwrap();
    }
    for client in [&alice_1, &alice_2] {
        router.join(client.id(), "h", MEMBER).await.unwrap();
    }
    let send = |target| router.send(target, Scope::Local, message("x", 0)).delivered;
    assert_eq!(send(Target::All), 4);
    assert_eq!(send(Target::group("g")), 2);
    assert_eq!(
        send(Target::GroupExcept {
            group: "g".into(),
            except: alice_1.id().into()
        }),
        1,
        "noEcho"
    );
    assert_eq!(
        send(Target::Groups(vec!["g".into(), "h".into(), "g".into()])),
        3,
        "each once"
    );
    assert_eq!(send(Target::User("alice".into())), 2);
    assert_eq!(send(Target::User("nobody".into())), 0);
    assert_eq!(
        send(Target::Connections(vec![
            bob.id().into(),
            bob.id().into(),
            anonymous.id().into()
        ])),
        2
    );
    assert_eq!(send(Target::connection("unknown")), 0);
    assert_eq!(send(Target::group("unknown")), 0);
    assert_eq!(
        send(Target::All.excluding(vec![bob.id().into(), anonymous.id().into()])),
        2,
        "excluded ids"
    );
    assert_eq!(
        send(Target::User("alice".into()).excluding(vec![alice_2.id().into()])),
        1
    );
    assert_eq!(alice_1.frames().await.len(), 6);
    assert_eq!(alice_2.frames().await.len(), 4);
    assert_eq!(bob.frames().await.len(), 5);
    assert_eq!(anonymous.frames().await.len(), 2);
    drop(alice_1);
    assert_eq!(
        send(Target::User("alice".into())),
        1,
        "the user table forgets a session"
    );
}

#[tokio::test]
async fn a_slow_member_is_cut_off_and_the_others_still_receive() {
    let router = Router::new();
    let tag = Tagged::new("t");
    let slow = connect_as(&router, tag.clone(), router_identity(), 40);
    let fast = connect(&router, tag.clone());
    for client in [&slow, &fast] {
        router.join(client.id(), "g", MEMBER).await.unwrap();
    }
    let mut overflowed = 0;
    for n in 0..10 {
        overflowed += router
            .send(Target::group("g"), Scope::Local, message("g", n))
            .overflowed;
    }
    assert_eq!(overflowed, 1);
    assert!(slow.outbox.overflowed());
    assert_eq!(fast.frames().await.len(), 10);
}

fn router_identity() -> rt_core::Identity {
    rt_core::Identity::anonymous()
}

#[tokio::test]
async fn churn_between_sends_shows_in_the_next_send() {
    let router = Router::new();
    let tag = Tagged::new("t");
    let clients: Vec<_> = (0..5).map(|_| connect(&router, tag.clone())).collect();
    for client in &clients {
        router.join(client.id(), "g", MEMBER).await.unwrap();
    }
    assert_eq!(
        router
            .send(Target::group("g"), Scope::Local, message("g", 1))
            .delivered,
        5
    );
    router.leave(clients[0].id(), "g").await.unwrap();
    assert_eq!(
        router
            .send(Target::group("g"), Scope::Local, message("g", 2))
            .delivered,
        4
    );
    router.join(clients[0].id(), "g", MEMBER).await.unwrap();
    let mut counted = Vec::new();
    router.for_each_group(|name, members, messages| {
        counted.push((name.to_owned(), members, messages))
    });
    assert_eq!(
        counted,
        [("g".to_owned(), 5, 2)],
        "two sends, whatever the members"
    );
    let page = router.members("g", 3, 10);
    assert_eq!(page.count, 5);
    assert_eq!(page.members.len(), 2);
    assert_eq!(
        &*page.members[1].connection_id,
        clients[0].id(),
        "join order, rejoined last"
    );
    assert_eq!(page.members[1].protocol.as_str(), "t");
}

#[derive(Default)]
struct Counting {
    connected: AtomicUsize,
    disconnected: AtomicUsize,
}

impl SessionObserver for Counting {
    fn connected(&self, _: &Arc<router::Session>) {
        self.connected.fetch_add(1, Ordering::SeqCst);
    }
    fn disconnected(&self, session: &Arc<router::Session>) {
        assert!(session.is_gone() && session.groups().is_empty());
        self.disconnected.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn observers_hear_connect_and_disconnect_after_the_groups_are_left() {
    let router = Router::new();
    let observer = Arc::new(Counting::default());
    router.observe(observer.clone());
    let client = connect(&router, Tagged::new("t"));
    router.join(client.id(), "g", MEMBER).await.unwrap();
    assert_eq!(observer.connected.load(Ordering::SeqCst), 1);
    client.registration.unregister();
    assert_eq!(observer.disconnected.load(Ordering::SeqCst), 1);
    assert_eq!(router.group_count(), 0);
}

/// The `_listen` race: a registration made for a session while it disconnects is either
/// undone by the observers or refused. `with_live_session` holds the disconnect off until the
/// registration is in; the disconnect thread below starts inside the window and would, without
/// that, finish (and run its cleanup) before the registration lands.
#[test]
fn nothing_attaches_to_a_session_that_is_disconnecting() {
    use parking_lot::Mutex;
    use std::collections::HashSet;

    #[derive(Default)]
    struct Subscriptions(Mutex<HashSet<String>>);
    impl SessionObserver for Subscriptions {
        fn disconnected(&self, session: &Arc<router::Session>) {
            self.0.lock().remove(session.id().as_str());
        }
    }

    let router = Router::new();
    let subscriptions = Arc::new(Subscriptions::default());
    router.observe(subscriptions.clone());
    let client = connect(&router, Tagged::new("t"));
    let id = client.id().to_owned();
    let mut disconnect = Some(client);
    let registered = router.with_live_session(&id, |_| {
        let client = disconnect.take().unwrap();
        let disconnecting = std::thread::spawn(move || drop(client));
        std::thread::sleep(std::time::Duration::from_millis(50));
        subscriptions.0.lock().insert(id.clone());
        disconnecting
    });
    registered.unwrap().join().unwrap();
    assert!(
        subscriptions.0.lock().is_empty(),
        "the subscription outlived its session"
    );
    assert!(router.with_live_session(&id, |_| ()).is_none());
}

#[tokio::test]
async fn sessions_are_listed_in_pages_in_id_order() {
    let router = Router::new();
    let clients: Vec<_> = (0..5).map(|_| connect(&router, Tagged::new("a"))).collect();
    let mut ids: Vec<String> = clients.iter().map(|c| c.id().to_owned()).collect();
    ids.sort();
    let (count, first) = router.sessions(0, 3);
    let (_, rest) = router.sessions(3, 3);
    assert_eq!(count, 5);
    let listed: Vec<String> = first
        .iter()
        .chain(&rest)
        .map(|s| s.id().as_str().to_owned())
        .collect();
    assert_eq!(listed, ids);
    drop(clients);
    assert_eq!(router.sessions(0, 10).0, 0);
}

#[tokio::test]
async fn a_close_is_each_recipients_last_frame_and_ends_it() {
    let router = Router::new();
    let tag = Tagged::new("t");
    let stays = connect(&router, tag.clone());
    let leaves = connect(&router, tag.clone());
    for client in [&stays, &leaves] {
        router.join(client.id(), "g", MEMBER).await.unwrap();
    }
    let close = router::Disconnect {
        reason: Some("bye".into()),
    };
    let delivery = router.send(
        Target::group("g").excluding(vec![stays.id().into()]),
        Scope::Local,
        Arc::new(Outbound::Close(close)),
    );
    assert_eq!(delivery.delivered, 1);
    assert!(stays.outbox.is_open());
    assert!(!leaves.outbox.is_open());
    let mut batch = std::collections::VecDeque::new();
    assert_eq!(leaves.outbox.next(&mut batch).await, rt_core::Next::Frames);
    assert_eq!(batch, [bytes::Bytes::from("t: close Some(\"bye\")")]);
    assert_eq!(leaves.outbox.next(&mut batch).await, rt_core::Next::Close);
    assert_eq!(
        router
            .send(Target::group("g"), Scope::Local, message("g", 1))
            .delivered,
        1,
        "nothing more is queued for a closed connection"
    );
}
