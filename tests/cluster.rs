//! Two rthub servers joined through the machine's Redis (each test under its own key
//! prefix) act as one: group sends, REST commands on the other node's connections, presence
//! and the change feed.

mod cluster_support;
mod collections_support;

use cluster_support::{as_server, next_channel_message, prefix, redis_url, wait_for};
use collections_support::{ok, start_configured, user_token, Db, Server, TestDb, SERVER_KEY};
use serde_json::{json, Value};
use std::time::Duration;

/// Two nodes of one cluster on `database`, both with Redis up.
async fn two_nodes(database: &TestDb) -> (Server, Server) {
    let prefix = prefix();
    let a = start_configured(
        &database.url,
        Some(&cluster_support::node_config(&redis_url(), &prefix, "")),
    )
    .await;
    let b = start_configured(
        &database.url,
        Some(&cluster_support::node_config(&redis_url(), &prefix, "")),
    )
    .await;
    for node in [&a, &b] {
        wait_for(node, "ready").await;
    }
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sends_reach_members_on_every_node_once() {
    let database = TestDb::new(Db::Sqlite).await;
    let (a, b) = two_nodes(&database).await;
    let mut alice = a.hub_as(Some(&user_token("alice"))).await;
    let mut bob = b.hub_as(Some(&user_token("bob"))).await;
    for hub in [&mut alice, &mut bob] {
        ok(&hub.invoke("JoinGroup", json!(["app:room"])).await);
    }

    ok(&alice
        .invoke("SendToGroup", json!(["app:room", {"n": 1}]))
        .await);
    let alice_id = alice.connection_id.clone();
    for hub in [&mut alice, &mut bob] {
        let message = next_channel_message(hub).await;
        assert_eq!(message["data"], json!({"n": 1}));
        assert_eq!(message["fromUserId"], "alice");
        assert_eq!(message["fromConnectionId"], json!(alice_id));
    }

    // From the server, on the other node, in order.
    for n in 2..20 {
        let (status, body) =
            as_server(&b, "/api/_rt/send", json!({"channel": "room", "body": n})).await;
        assert_eq!(status, 200, "{body}");
    }
    for hub in [&mut alice, &mut bob] {
        for n in 2..20 {
            assert_eq!(next_channel_message(hub).await["data"], json!(n));
        }
        hub.expect_silence(Duration::from_millis(300)).await;
    }
    let metrics = reqwest::get(a.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "rthub_cluster_redis_up 1",
        "rthub_cluster_lost_messages_total 0",
        "rthub_cluster_dropped_operations_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_commands_act_on_the_other_nodes_connections() {
    let database = TestDb::new(Db::Sqlite).await;
    let (a, b) = two_nodes(&database).await;
    let mut carol = a.hub().await;

    // Joined through node B, which does not have the connection: B asks A.
    let join = json!({"connectionId": carol.connection_id, "channel": "news"});
    let (status, body) = as_server(&b, "/api/_rt/join", join.clone()).await;
    assert_eq!(status, 200, "{body}");
    // The acknowledgement means A is subscribed: a send right after reaches carol.
    let (status, _) = as_server(&b, "/api/_rt/send", json!({"channel": "news", "body": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(next_channel_message(&mut carol).await["data"], "x");

    let (status, body) = as_server(&b, "/api/_rt/leave", join).await;
    assert_eq!(status, 200, "{body}");
    as_server(&b, "/api/_rt/send", json!({"channel": "news", "body": "y"})).await;
    carol.expect_silence(Duration::from_millis(300)).await;

    // No node has it: a clear 404, not a timeout.
    let unknown = json!({"connectionId": "no-such-connection", "channel": "news"});
    let (status, body) = as_server(&b, "/api/_rt/join", unknown).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (404, &json!("not_found")),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_the_members_of_every_node() {
    let database = TestDb::new(Db::Sqlite).await;
    let (a, b) = two_nodes(&database).await;
    let mut alice = a.hub_as(Some(&user_token("alice"))).await;
    let mut bob = b.hub_as(Some(&user_token("bob"))).await;
    for hub in [&mut alice, &mut bob] {
        ok(&hub.invoke("JoinGroup", json!(["app:room"])).await);
    }
    let users = |body: &Value| {
        let mut users: Vec<String> = body["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["userId"].as_str().unwrap().to_owned())
            .collect();
        users.sort();
        users
    };
    for node in [&a, &b] {
        let mut listed = Value::Null;
        // The other node's join reaches Redis a moment after its acknowledgement.
        for _ in 0..100 {
            let (status, body) = node
                .get_as("/api/_rt/channels/room/members", Some(SERVER_KEY))
                .await;
            assert_eq!(status, 200, "{body}");
            listed = body;
            if listed["count"] == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(listed["count"], 2, "{listed}");
        assert_eq!(users(&listed), ["alice", "bob"]);
    }

    // Bob leaves: both nodes list alice alone.
    drop(bob);
    for node in [&a, &b] {
        let mut listed = Value::Null;
        for _ in 0..100 {
            listed = node
                .get_as("/api/_rt/channels/room/members", Some(SERVER_KEY))
                .await
                .1;
            if listed["count"] == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(users(&listed), ["alice"], "{listed}");
    }
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_reaches_each_listener_once() {
    let database = TestDb::new(Db::Postgres).await;
    let (a, b) = two_nodes(&database).await;
    let mut listener = a.hub().await;
    ok(&listener.invoke("Listen", json!(["orders"])).await);

    // Written on B: A reads it from the change log itself; nothing comes through Redis.
    let response = reqwest::Client::new()
        .post(b.url("/api/orders"))
        .header("x-apikey", SERVER_KEY)
        .json(&json!({"note": "Ada"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let change = listener.next_change().await;
    assert_eq!(change["collection"], "orders");
    assert_eq!(change["data"]["note"], "Ada");
    listener.expect_silence(Duration::from_millis(500)).await;
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_through_another_node_runs_on_the_connections_node() {
    let database = TestDb::new(Db::Postgres).await;
    let (a, b) = two_nodes(&database).await;
    let mut listener = a.hub_as(Some(&user_token("dana"))).await;
    let body = json!({"connectionId": listener.connection_id});

    // Another user may not subscribe dana's connection, whichever node is asked.
    let response = reqwest::Client::new()
        .post(b.url("/api/orders/_listen"))
        .bearer_auth(user_token("eve"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);

    let (status, answer) = as_server(&b, "/api/orders/_listen", body.clone()).await;
    assert_eq!((status, &answer), (200, &json!({"listening": true})));
    let (status, _) = as_server(&b, "/api/orders", json!({"note": "first"})).await;
    assert_eq!(status, 201);
    assert_eq!(listener.next_change().await["data"]["note"], "first");

    let (status, answer) = as_server(&b, "/api/orders/_unlisten", body).await;
    assert_eq!((status, &answer), (200, &json!({"listening": false})));
    as_server(&b, "/api/orders", json!({"note": "second"})).await;
    listener.expect_silence(Duration::from_millis(500)).await;

    let unknown = json!({"connectionId": "nobody-has-this"});
    let (status, _) = as_server(&b, "/api/orders/_listen", unknown).await;
    assert_eq!(status, 404);
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

/// A Web PubSub server-SDK request to `node` (a JWT of the access key for the URL).
async fn sdk(node: &Server, method: reqwest::Method, path: &str) -> u16 {
    let url = node.url(&format!("{path}?api-version=2024-12-01"));
    let exp = jsonwebtoken::get_current_timestamp() + 600;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"aud": url, "exp": exp}),
        &jsonwebtoken::EncodingKey::from_secret(SERVER_KEY.as_bytes()),
    )
    .unwrap();
    let response = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_pubsub_user_and_connection_calls_reach_every_node() {
    let database = TestDb::new(Db::Sqlite).await;
    let (a, b) = two_nodes(&database).await;
    let mut on_a = a.hub_as(Some(&user_token("frank"))).await;
    let mut on_b = b.hub_as(Some(&user_token("frank"))).await;
    use reqwest::Method;

    assert_eq!(
        sdk(&b, Method::HEAD, "/api/hubs/app/users/frank").await,
        200
    );
    assert_eq!(
        sdk(&b, Method::HEAD, "/api/hubs/app/users/nobody").await,
        404
    );
    // Both of frank's connections join, the one on A through a command.
    let join = "/api/hubs/app/users/frank/groups/app%3Ateam";
    assert_eq!(sdk(&b, Method::PUT, join).await, 200);
    assert_eq!(
        sdk(&a, Method::HEAD, "/api/hubs/app/groups/app%3Ateam").await,
        200
    );
    as_server(&b, "/api/_rt/send", json!({"channel": "team", "body": 1})).await;
    for hub in [&mut on_a, &mut on_b] {
        assert_eq!(next_channel_message(hub).await["data"], 1);
    }

    // The connection on A leaves every group, asked on B.
    let all = format!("/api/hubs/app/connections/{}/groups", on_a.connection_id);
    assert_eq!(sdk(&b, Method::DELETE, &all).await, 204);
    as_server(&b, "/api/_rt/send", json!({"channel": "team", "body": 2})).await;
    assert_eq!(next_channel_message(&mut on_b).await["data"], 2);
    on_a.expect_silence(Duration::from_millis(300)).await;

    // And the user from every group, asked on A.
    assert_eq!(
        sdk(&a, Method::DELETE, "/api/hubs/app/users/frank/groups").await,
        204
    );
    as_server(&a, "/api/_rt/send", json!({"channel": "team", "body": 3})).await;
    on_b.expect_silence(Duration::from_millis(300)).await;
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_starting_together_on_a_new_database_all_start() {
    // Without the advisory lock around table creation, PostgreSQL's `CREATE TABLE IF NOT
    // EXISTS` races and all but one node fail with a duplicate key in pg_type.
    let database = TestDb::new(Db::Postgres).await;
    let prefix = prefix();
    let config = cluster_support::node_config(&redis_url(), &prefix, "");
    let (a, b, c) = tokio::join!(
        start_configured(&database.url, Some(&config)),
        start_configured(&database.url, Some(&config)),
        start_configured(&database.url, Some(&config)),
    );
    for node in [a, b, c] {
        wait_for(&node, "ready").await;
        node.stop().await;
    }
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_joining_while_another_node_sends_misses_nothing_after_its_join() {
    let database = TestDb::new(Db::Sqlite).await;
    let (a, b) = two_nodes(&database).await;
    let mut sender = b.hub().await;
    ok(&sender.invoke("JoinGroup", json!(["app:busy"])).await);
    let sending = tokio::spawn(async move {
        for n in 0..200 {
            ok(&sender.invoke("SendToGroup", json!(["app:busy", n])).await);
        }
        sender
    });
    // Joins on node A (the group's first member there) while B keeps sending.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut late = a.hub().await;
    ok(&late.invoke("JoinGroup", json!(["app:busy"])).await);
    let _sender = sending.await.unwrap();
    let mut got = Vec::new();
    loop {
        let n = next_channel_message(&mut late).await["data"]
            .as_i64()
            .unwrap();
        got.push(n);
        if n == 199 {
            break;
        }
    }
    // Whatever came first, from there on every message, once, in order.
    let first = got[0];
    assert_eq!(got, (first..200).collect::<Vec<_>>());
    assert!(first < 199, "the join came too late to test anything");
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_senders_on_one_node_lose_nothing_on_the_other() {
    // Publishes from several threads at once: each must reach Redis once, whatever order the
    // threads queue them in (a publish number taken before queueing once dropped some).
    let database = TestDb::new(Db::Sqlite).await;
    let (a, b) = two_nodes(&database).await;
    let mut member = b.hub().await;
    ok(&member.invoke("JoinGroup", json!(["app:many"])).await);
    let senders: Vec<_> = (0..8)
        .map(|sender| {
            let url = a.url("/api/_rt/send");
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                for n in 0..50 {
                    let body = json!({"channel": "many", "body": {"s": sender, "n": n}});
                    let response = http
                        .post(&url)
                        .header("x-apikey", SERVER_KEY)
                        .json(&body)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(response.status().as_u16(), 200);
                }
            })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    let mut last = [-1i64; 8];
    for _ in 0..400 {
        let data = next_channel_message(&mut member).await["data"].clone();
        let (s, n) = (
            data["s"].as_u64().unwrap() as usize,
            data["n"].as_i64().unwrap(),
        );
        assert_eq!(
            n,
            last[s] + 1,
            "sender {s}: in order, none missing, none twice"
        );
        last[s] = n;
    }
    member.expect_silence(Duration::from_millis(300)).await;
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}
