//! Two rthub nodes on a Redis Cluster (`redis+cluster://`): a three-primary cluster each
//! test starts itself from the installed `redis-server`, on free ports. Group sends (sharded
//! pub/sub, scripts in one slot), commands on the other node's connections, presence, and a
//! lost subscription filled from the stream.

mod cluster_support;
mod collections_support;

use cluster_support::as_server;
use collections_support::{ok, start_configured, user_token, Db, Hub, Server, TestDb, SERVER_KEY};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Three primaries, no replicas, no persistence; killed and removed on drop.
struct TestCluster {
    ports: Vec<u16>,
    children: Vec<Child>,
    dir: PathBuf,
}

/// A port that is free, and whose cluster bus port (+10000) is too.
fn free_port() -> u16 {
    loop {
        let port = 20000 + rand::random::<u16>() % 25000;
        let free = |p: u16| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok();
        if free(port) && free(port + 10000) {
            return port;
        }
    }
}

impl TestCluster {
    async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("rthub_cluster_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self {
            ports: Vec::new(),
            children: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = free_port();
            let config = cluster.dir.join(format!("nodes-{port}.conf"));
            let child = Command::new("/usr/bin/redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .args(["--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(&config)
                .arg("--dir")
                .arg(&cluster.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed at /usr/bin/redis-server");
            cluster.ports.push(port);
            cluster.children.push(child);
        }
        for port in cluster.ports.clone() {
            cluster.wait(port, "PING", "PONG").await;
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        let created = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli is installed");
        assert!(created.success(), "redis-cli --cluster create failed");
        for port in cluster.ports.clone() {
            cluster.wait(port, "CLUSTER INFO", "cluster_state:ok").await;
        }
        cluster
    }

    /// Wait until `command` on `port` answers with text containing `expected`.
    async fn wait(&self, port: u16, command: &str, expected: &str) {
        let mut last = String::new();
        for _ in 0..400 {
            if let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) {
                if let Ok(mut connection) = client.get_multiplexed_async_connection().await {
                    let mut cmd = redis::cmd(command.split(' ').next().unwrap());
                    for arg in command.split(' ').skip(1) {
                        cmd.arg(arg);
                    }
                    if let Ok(answer) = cmd.query_async::<String>(&mut connection).await {
                        if answer.contains(expected) {
                            return;
                        }
                        last = answer;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("{command} on port {port} never said {expected}: {last}");
    }

    /// How many group channels `PUBSUB <kind>` lists on `port`.
    async fn channels(&self, port: u16, kind: &str) -> usize {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        let channels: Vec<String> = redis::cmd("PUBSUB")
            .arg(kind)
            .arg("*:g:*")
            .query_async(&mut connection)
            .await
            .unwrap();
        channels.len()
    }

    fn url(&self) -> String {
        format!("redis+cluster://127.0.0.1:{}", self.ports[0])
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn two_nodes(database: &TestDb, cluster: &TestCluster) -> (Server, Server) {
    let config = cluster_support::node_config(&cluster.url(), &cluster_support::prefix(), "");
    let a = start_configured(&database.url, Some(&config)).await;
    let b = start_configured(&database.url, Some(&config)).await;
    for node in [&a, &b] {
        cluster_support::wait_for(node, "ready").await;
    }
    (a, b)
}

/// The next channel message: (channel, data).
async fn next_channel_message(hub: &mut Hub) -> (Value, Value) {
    loop {
        let message = hub.next_message().await;
        if message["target"] == "message" {
            let message = &message["arguments"][0];
            return (message["group"].clone(), message["data"].clone());
        }
    }
}

/// Channels whose groups fall on different partitions (and so, mostly, shards).
const CHANNELS: [&str; 4] = ["room", "lobby", "news", "chat"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_sends_cross_nodes_on_a_redis_cluster() {
    let database = TestDb::new(Db::Sqlite).await;
    let cluster = TestCluster::start().await;
    let (a, b) = two_nodes(&database, &cluster).await;
    let mut alice = a.hub_as(Some(&user_token("alice"))).await;
    let mut bob = b.hub_as(Some(&user_token("bob"))).await;
    for hub in [&mut alice, &mut bob] {
        for channel in CHANNELS {
            ok(&hub
                .invoke("JoinGroup", json!([format!("app:{channel}")]))
                .await);
        }
    }
    // The groups' channels are sharded ones, each on its slot's primary, not plain ones.
    let (mut sharded, mut plain) = (0, 0);
    for port in &cluster.ports {
        sharded += cluster.channels(*port, "SHARDCHANNELS").await;
        plain += cluster.channels(*port, "CHANNELS").await;
    }
    assert_eq!((sharded, plain), (CHANNELS.len(), 0));
    // From each node, to every channel, in order.
    for n in 0..10 {
        for channel in CHANNELS {
            let node = if n % 2 == 0 { &a } else { &b };
            let body = json!({"channel": channel, "body": n});
            let (status, body) = as_server(node, "/api/_rt/send", body).await;
            assert_eq!(status, 200, "{body}");
        }
    }
    for hub in [&mut alice, &mut bob] {
        let mut seen: std::collections::HashMap<String, Vec<Value>> = Default::default();
        for _ in 0..10 * CHANNELS.len() {
            let (channel, data) = next_channel_message(hub).await;
            seen.entry(channel.as_str().unwrap().to_owned())
                .or_default()
                .push(data);
        }
        for channel in CHANNELS {
            let expected: Vec<Value> = (0..10).map(|n| json!(n)).collect();
            assert_eq!(seen[&format!("app:{channel}")], expected, "{channel}");
        }
        hub.expect_silence(Duration::from_millis(300)).await;
    }
    // A hub member's own send too.
    ok(&alice.invoke("SendToGroup", json!(["app:room", "hi"])).await);
    assert_eq!(next_channel_message(&mut bob).await.1, "hi");
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_reach_the_owner_on_a_redis_cluster() {
    let database = TestDb::new(Db::Sqlite).await;
    let cluster = TestCluster::start().await;
    let (a, b) = two_nodes(&database, &cluster).await;
    let mut carol = a.hub().await;
    let join = json!({"connectionId": carol.connection_id, "channel": "news"});
    let (status, body) = as_server(&b, "/api/_rt/join", join.clone()).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = as_server(&b, "/api/_rt/send", json!({"channel": "news", "body": "x"})).await;
    assert_eq!(status, 200);
    assert_eq!(next_channel_message(&mut carol).await.1, "x");
    let (status, body) = as_server(&b, "/api/_rt/leave", join).await;
    assert_eq!(status, 200, "{body}");
    as_server(&b, "/api/_rt/send", json!({"channel": "news", "body": "y"})).await;
    carol.expect_silence(Duration::from_millis(300)).await;
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
async fn presence_lists_both_nodes_on_a_redis_cluster() {
    let database = TestDb::new(Db::Sqlite).await;
    let cluster = TestCluster::start().await;
    let (a, b) = two_nodes(&database, &cluster).await;
    let mut alice = a.hub_as(Some(&user_token("alice"))).await;
    let mut bob = b.hub_as(Some(&user_token("bob"))).await;
    for hub in [&mut alice, &mut bob] {
        ok(&hub.invoke("JoinGroup", json!(["app:room"])).await);
    }
    for node in [&a, &b] {
        let mut listed = Value::Null;
        for _ in 0..200 {
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
        let mut users: Vec<&str> = listed["members"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|m| m["userId"].as_str())
            .collect();
        users.sort();
        assert_eq!(users, ["alice", "bob"], "{listed}");
    }
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_is_filled_on_a_redis_cluster() {
    let database = TestDb::new(Db::Sqlite).await;
    let cluster = TestCluster::start().await;
    let (a, b) = two_nodes(&database, &cluster).await;
    let mut bob = b.hub_as(Some(&user_token("bob"))).await;
    ok(&bob.invoke("JoinGroup", json!(["app:room"])).await);
    let total = 200;
    let sender = {
        let url = a.url("/api/_rt/send");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..total {
                let response = http
                    .post(&url)
                    .header("x-apikey", SERVER_KEY)
                    .json(&json!({"channel": "room", "body": n}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status().as_u16(), 200);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut received = Vec::new();
    let mut killed = 0;
    for _ in 0..2 {
        for _ in 0..40 {
            received.push(next_channel_message(&mut bob).await.1);
        }
        // Every subscriber on every primary, plain and sharded.
        for port in &cluster.ports {
            let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let count: u64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query_async(&mut connection)
                .await
                .unwrap();
            killed += count;
        }
    }
    sender.await.unwrap();
    while received.len() < total {
        received.push(next_channel_message(&mut bob).await.1);
    }
    let expected: Vec<Value> = (0..total).map(|n| json!(n)).collect();
    assert_eq!(received, expected);
    bob.expect_silence(Duration::from_millis(500)).await;
    assert!(killed > 0, "no subscriber to kill");
    let (_, body) = b.get("/readyz").await;
    assert_eq!(body["cluster"]["lostMessages"], 0, "{body}");
    assert!(
        body["cluster"]["filledMessages"].as_u64() > Some(0),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}
