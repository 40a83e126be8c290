//! What a cluster does when Redis fails (issue 13, item 7): each test runs its own
//! `redis-server` on a free port (never the machine's), two in-process nodes on it, and stops,
//! restarts or disturbs that Redis while the nodes work.

mod cluster_support;
mod collections_support;

use cluster_support::{as_server, next_channel_message, wait_for};
use collections_support::{ok, start_configured, user_token, Db, Hub, Server, TestDb, SERVER_KEY};
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// A `redis-server` of the test's own, without persistence: a restart starts it empty, as a
/// Redis that lost its data.
struct TestRedis {
    port: u16,
    child: Option<Child>,
}

impl TestRedis {
    async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Start it (again) on the same port, and wait until it answers.
    async fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new("/usr/bin/redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed at /usr/bin/redis-server");
        self.child = Some(child);
        for _ in 0..200 {
            if self.command(&["PING"]).await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    /// Kill it: its connections drop at once, and its data is gone.
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn command(&self, args: &[&str]) -> redis::RedisResult<redis::Value> {
        let client = redis::Client::open(self.url())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let mut command = redis::cmd(args[0]);
        for arg in &args[1..] {
            command.arg(*arg);
        }
        command.query_async(&mut connection).await
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Everything the nodes in this test binary log, for the tests that read the log.
fn captured_logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = logs.clone();
        let writer = move || Capture(sink.clone());
        let _ = tracing_subscriber::fmt()
            .with_env_filter("rthub::cluster=debug")
            .with_ansi(false)
            .with_writer(writer)
            .try_init();
        logs
    })
    .clone()
}

struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured log lines of `node` (its id as `/readyz` reports it).
fn log_of(node: &str) -> Vec<String> {
    let logs = captured_logs();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    text.lines()
        .filter(|line| line.contains(&format!("node={node}")))
        .map(str::to_owned)
        .collect()
}

fn node_config(redis: &TestRedis, prefix: &str, extra: &str) -> String {
    cluster_support::node_config(&redis.url(), prefix, extra)
}

/// Two nodes of one cluster on `redis`, both ready.
async fn two_nodes(database: &TestDb, redis: &TestRedis, extra: &str) -> (Server, Server) {
    captured_logs();
    let prefix = format!("test-{}", uuid::Uuid::new_v4().simple());
    let config = node_config(redis, &prefix, extra);
    let a = start_configured(&database.url, Some(&config)).await;
    let b = start_configured(&database.url, Some(&config)).await;
    for node in [&a, &b] {
        wait_for(node, "ready").await;
    }
    (a, b)
}

async fn node_id(node: &Server) -> String {
    let (_, body) = node.get("/readyz").await;
    body["cluster"]["node"].as_str().unwrap().to_owned()
}

async fn send(node: &Server, n: u64) {
    let (status, body) =
        as_server(node, "/api/_rt/send", json!({"channel": "room", "body": n})).await;
    assert_eq!(status, 200, "{body}");
}

/// `hub` receives exactly `numbers`, in order, and then nothing.
async fn expect_numbers(hub: &mut Hub, numbers: impl IntoIterator<Item = u64>) {
    for n in numbers {
        assert_eq!(next_channel_message(hub).await["data"], json!(n));
    }
    hub.expect_silence(Duration::from_millis(500)).await;
}

async fn joined(node: &Server, user: &str) -> Hub {
    let mut hub = node.hub_as(Some(&user_token(user))).await;
    ok(&hub.invoke("JoinGroup", json!(["app:room"])).await);
    hub
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_delivery_stays_local_and_the_rest_follows_after() {
    let database = TestDb::new(Db::Sqlite).await;
    let mut redis = TestRedis::start().await;
    let (a, b) = two_nodes(&database, &redis, "").await;
    let mut alice = joined(&a, "alice").await;
    let mut carol = joined(&a, "carol").await;
    let mut bob = joined(&b, "bob").await;
    send(&a, 0).await;
    for hub in [&mut alice, &mut carol, &mut bob] {
        expect_numbers(hub, [0]).await;
    }

    redis.stop();
    for node in [&a, &b] {
        let body = wait_for(node, "degraded").await;
        assert_eq!(body["cluster"]["redis"], "down", "{body}");
    }
    // Node A's members still hear each other; node B's member hears nothing yet.
    for n in 1..=10 {
        ok(&alice.invoke("SendToGroup", json!(["app:room", n])).await);
    }
    for hub in [&mut alice, &mut carol] {
        expect_numbers(hub, 1..=10).await;
    }
    bob.expect_silence(Duration::from_millis(300)).await;

    // Redis back (empty): A's writer sends what it queued, and bob gets it, in order, once.
    redis.restart().await;
    for node in [&a, &b] {
        let body = wait_for(node, "ready").await;
        assert_eq!(body["cluster"]["redis"], "up", "{body}");
    }
    expect_numbers(&mut bob, 1..=10).await;
    // And the cluster goes on as before.
    send(&b, 11).await;
    for hub in [&mut alice, &mut carol, &mut bob] {
        expect_numbers(hub, [11]).await;
    }
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_subscription_is_filled_from_the_stream() {
    let database = TestDb::new(Db::Sqlite).await;
    let redis = TestRedis::start().await;
    let (a, b) = two_nodes(&database, &redis, "").await;
    let mut bob = joined(&b, "bob").await;
    let total = 300;
    let sender = {
        let a_url = a.url("/api/_rt/send");
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for n in 0..total {
                let response = http
                    .post(&a_url)
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
    // Drop every subscriber a few times while A sends: B's messages in between come from
    // the group's stream.
    let mut received = Vec::new();
    for _ in 0..3 {
        for _ in 0..40 {
            received.push(next_channel_message(&mut bob).await["data"].clone());
        }
        let killed = redis
            .command(&["CLIENT", "KILL", "TYPE", "pubsub"])
            .await
            .unwrap();
        assert_ne!(killed, redis::Value::Int(0), "no subscriber to kill");
    }
    sender.await.unwrap();
    while received.len() < total as usize {
        received.push(next_channel_message(&mut bob).await["data"].clone());
    }
    let expected: Vec<Value> = (0..total).map(|n| json!(n)).collect();
    assert_eq!(received, expected);
    bob.expect_silence(Duration::from_millis(500)).await;
    wait_for(&b, "ready").await;
    let (_, body) = b.get("/readyz").await;
    assert_eq!(body["cluster"]["lostMessages"], 0, "{body}");
    // Each reconnection takes 50 ms at least, while A sends every few: some came from the
    // stream.
    assert!(
        body["cluster"]["filledMessages"].as_u64() > Some(0),
        "{body}"
    );
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_is_a_new_epoch_logged_and_never_a_repeat() {
    let database = TestDb::new(Db::Sqlite).await;
    let mut redis = TestRedis::start().await;
    let (a, b) = two_nodes(&database, &redis, "").await;
    let b_id = node_id(&b).await;
    let mut alice = joined(&a, "alice").await;
    let mut bob = joined(&b, "bob").await;
    for n in 1..=5 {
        send(&a, n).await;
    }
    for hub in [&mut alice, &mut bob] {
        expect_numbers(hub, 1..=5).await;
    }

    redis.stop();
    wait_for(&b, "degraded").await;
    redis.restart().await;
    for node in [&a, &b] {
        wait_for(node, "ready").await;
    }
    // The group's offsets start again at 1 under a new epoch: B takes them as new, and does
    // not mistake them for the 1..=5 it has.
    for n in 6..=10 {
        send(&a, n).await;
    }
    for hub in [&mut alice, &mut bob] {
        expect_numbers(hub, 6..=10).await;
    }
    // A rewrote its records (owners, presence) into the empty Redis: B finds alice's node
    // for a command, and lists her.
    let join = json!({"connectionId": alice.connection_id, "channel": "other"});
    let mut answer = (0, Value::Null);
    for _ in 0..200 {
        answer = as_server(&b, "/api/_rt/join", join.clone()).await;
        if answer.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(answer.0, 200, "{}", answer.1);
    let mut listed = Value::Null;
    for _ in 0..200 {
        listed = b
            .get_as("/api/_rt/channels/room/members", Some(SERVER_KEY))
            .await
            .1;
        if listed["count"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(listed["count"], 2, "{listed}");

    // Again, with the node that starts the new stream on the other side.
    redis.stop();
    wait_for(&a, "degraded").await;
    redis.restart().await;
    for node in [&a, &b] {
        wait_for(node, "ready").await;
    }
    for n in 11..=15 {
        send(&b, n).await;
    }
    for hub in [&mut alice, &mut bob] {
        expect_numbers(hub, 11..=15).await;
    }

    let log = log_of(&b_id);
    assert!(
        log.iter()
            .any(|line| line.contains("stream started again") && line.contains("group=app:room")),
        "{log:#?}"
    );
    // Once per state change, not per retry.
    let lost = log
        .iter()
        .filter(|line| line.contains("lost the Redis subscription"))
        .count();
    assert_eq!(lost, 2, "{log:#?}");
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_while_redis_is_down_is_a_prompt_503() {
    let database = TestDb::new(Db::Sqlite).await;
    let mut redis = TestRedis::start().await;
    // A command timeout far above what the answer may take: a 503 is not a timeout.
    let (a, b) = two_nodes(&database, &redis, "command_timeout_secs = 60\n").await;
    let carol = a.hub().await;
    let join = json!({"connectionId": carol.connection_id, "channel": "news"});
    let (status, body) = as_server(&b, "/api/_rt/join", join.clone()).await;
    assert_eq!(status, 200, "{body}");

    redis.stop();
    wait_for(&b, "degraded").await;
    let asked = Instant::now();
    let (status, body) = as_server(&b, "/api/_rt/join", join.clone()).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the 503 took {:?}",
        asked.elapsed()
    );
    a.stop().await;
    b.stop().await;
    database.drop_it().await;
}
