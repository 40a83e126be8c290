//! A node killed with SIGKILL cannot tidy up: its members leave the presence lists once its
//! heartbeat is stale, commands for its connections fail at once, and a live node removes
//! what it left in Redis.

mod cluster_support;
mod collections_support;
mod process_support;

use cluster_support::redis_url;
use collections_support::{ok, start_configured, user_token, Db, Hub, Server, TestDb, SERVER_KEY};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn node_config(prefix: &str) -> String {
    let extra = "node_timeout_secs = 3\ncleanup_interval_secs = 1\n";
    cluster_support::node_config(&redis_url(), prefix, extra)
}

async fn members(node: &Server) -> Value {
    node.get_as("/api/_rt/channels/room/members", Some(SERVER_KEY))
        .await
        .1
}

/// Redis keys of the cluster `prefix` that mention a connection, user or member.
async fn leftovers(prefix: &str) -> Vec<String> {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    keys.retain(|k| k.contains(":c:") || k.contains(":u:") || k.contains(":gp:"));
    keys.sort();
    keys
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_drops_out_and_its_leftovers_are_removed() {
    let database = TestDb::new(Db::Sqlite).await;
    let prefix = cluster_support::prefix();
    let config = node_config(&prefix);
    let a = start_configured(&database.url, Some(&config)).await;
    let path = std::env::temp_dir().join(format!("rthub_dead_{prefix}.toml"));
    std::fs::write(&path, &config).unwrap();
    let b = process_support::spawn("", &["--config", path.to_str().unwrap()], &[]);

    let mut alice = a.hub_as(Some(&user_token("alice"))).await;
    let mut bob = Hub::connect(&b.origin, Some(&user_token("bob"))).await;
    for hub in [&mut alice, &mut bob] {
        ok(&hub.invoke("JoinGroup", json!(["app:room"])).await);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while members(&a).await["count"] != 2 {
        assert!(Instant::now() < deadline, "bob never showed up on node A");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let bob_id = bob.connection_id.clone();
    assert!(!leftovers(&prefix).await.is_empty());

    drop(b); // SIGKILL: no goodbye, no cleanup of its own
    let deadline = Instant::now() + Duration::from_secs(15);
    while members(&a).await["count"] != 1 {
        assert!(
            Instant::now() < deadline,
            "bob was listed long after node B died"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A command for bob's connection fails at once rather than waiting for a reply.
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(a.url("/api/_rt/join"))
        .header("x-apikey", SERVER_KEY)
        .json(&json!({"connectionId": bob_id, "channel": "other"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(started.elapsed() < Duration::from_secs(4));

    // Only alice's entries stay: bob's owner key, user set and presence record are removed.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let keys = leftovers(&prefix).await;
        let alices = keys.iter().all(|k| {
            k.ends_with(&format!(":c:{}", alice.connection_id))
                || k.ends_with(":u:alice")
                || k.contains(":gp:")
        });
        if alices && keys.len() == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "left in Redis: {keys:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let client = redis::Client::open(redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    let presence: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*:gp:*"))
        .query_async(&mut redis)
        .await
        .unwrap();
    let fields: Vec<String> = redis::cmd("HKEYS")
        .arg(&presence[0])
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(fields, [alice.connection_id.clone()]);
    let _ = std::fs::remove_file(&path);
    a.stop().await;
    database.drop_it().await;
}
