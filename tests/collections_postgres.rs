//! Several rthub processes on one PostgreSQL database: a write through one reaches listeners
//! on the others, also after the LISTEN connection is killed.

mod collections_support;

use collections_support::{admin_url, sqlx_exec, start, Db, TestDb};
use serde_json::json;
use sqlx::Connection;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_through_one_process_reaches_a_listener_on_another() {
    let database = TestDb::new(Db::Postgres).await;
    let writer = start(&database.url).await;
    let reader = start(&database.url).await;
    let mut hub = reader.hub().await;
    let done = hub.invoke("Listen", json!(["customers"])).await;
    assert!(done.get("error").is_none(), "{done}");

    for name in ["a", "b", "c"] {
        let (status, _) = writer.post("/api/customers", json!({"name": name})).await;
        assert_eq!(status, 201);
    }
    let mut seqs = Vec::new();
    for name in ["a", "b", "c"] {
        let change = hub.next_change().await;
        assert_eq!(change["data"]["name"], name, "commit order");
        seqs.push(change["seq"].as_i64().unwrap());
    }
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive seqs: {seqs:?}"
    );

    // Kill every LISTEN connection of the database: the next change must still arrive.
    let mut admin = sqlx::PgConnection::connect(&admin_url()).await.unwrap();
    let name = database.url.rsplit('/').next().unwrap().to_owned();
    let killed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND query ILIKE 'LISTEN%'",
    )
    .bind(&name)
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!killed.is_empty(), "the LISTEN connections were found");
    let (status, _) = writer
        .post("/api/customers", json!({"name": "after"}))
        .await;
    assert_eq!(status, 201);
    let change = hub.next_change().await;
    assert_eq!(change["data"]["name"], "after");
    assert_eq!(
        change["seq"].as_i64().unwrap(),
        seqs[2] + 1,
        "no change lost or skipped"
    );

    reader.stop().await;
    writer.stop().await;
    database.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_in_two_processes_give_one_gapless_order() {
    let database = TestDb::new(Db::Postgres).await;
    let first = start(&database.url).await;
    let second = start(&database.url).await;
    let mut hub = first.hub().await;
    hub.invoke("Listen", json!(["orders"])).await;
    let writes = 40;
    let post = |server: &collections_support::Server, i: usize| {
        let request = server
            .http
            .post(server.url("/api/orders"))
            .json(&json!({"total": i}));
        async move { request.send().await.unwrap().status().as_u16() }
    };
    let mut pending = Vec::new();
    for i in 0..writes {
        pending.push(post(if i % 2 == 0 { &first } else { &second }, i));
    }
    for status in futures_util::future::join_all(pending).await {
        assert_eq!(status, 201);
    }
    let mut seqs = Vec::new();
    let mut totals = std::collections::HashSet::new();
    for _ in 0..writes {
        let change = hub.next_change().await;
        seqs.push(change["seq"].as_i64().unwrap());
        totals.insert(change["data"]["total"].as_i64().unwrap());
    }
    assert_eq!(totals.len(), writes, "every write arrived once");
    assert!(
        seqs.windows(2).all(|w| w[1] == w[0] + 1),
        "gapless, increasing: {seqs:?}"
    );

    // The log is not touched by writers outside a transaction with their write: no row
    // without its item.
    let mut conn = sqlx::PgConnection::connect(&database.url).await.unwrap();
    sqlx_exec(&mut conn, "SELECT 1").await;
    let (items,): (i64,) = sqlx::query_as("SELECT count(*) FROM \"c_orders\"")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let (changes,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM rthub_changes WHERE collection = 'orders'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert_eq!((items, changes), (writes as i64, writes as i64));
    drop(conn);

    first.stop().await;
    second.stop().await;
    database.drop_it().await;
}
