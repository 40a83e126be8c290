//! The console's reads: `GET /api/_rt/connections`, `/api/_rt/channels` and `/api/_rt/schema`
//! are for the server identity only (401 without credentials, 403 for a client's) and tell
//! this node's sessions, channels and schema; `/_console` serves the embedded page.

mod collections_support;

use collections_support::{
    keys_config, ok, start_configured, user_token, Db, TestDb, CLIENT_KEY, SERVER_KEY,
};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_reads_are_for_the_server_only() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&keys_config())).await;
    for path in [
        "/api/_rt/connections",
        "/api/_rt/channels",
        "/api/_rt/schema",
    ] {
        let (status, body) = server.get_as(path, None).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (401, &json!("unauthorized")),
            "{path}"
        );
        let (status, body) = server.get_as(path, Some(CLIENT_KEY)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (403, &json!("forbidden")),
            "{path}"
        );
        let (status, body) = server
            .get_as(path, Some("not-a-key-at-all-0123456789"))
            .await;
        assert_eq!(status, 401, "{path}: {body}");
    }
    let (status, body) = server
        .get_as("/api/_rt/connections?pageSize=0", Some(SERVER_KEY))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("bad_request"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_and_channels_are_listed_in_pages() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&keys_config())).await;
    let mut alice = server.hub_as(Some(&user_token("alice"))).await;
    let mut anonymous = server.hub().await;
    ok(&alice.invoke("JoinGroup", json!(["app:room"])).await);
    ok(&alice.invoke("JoinGroup", json!(["app:lobby"])).await);
    ok(&anonymous.invoke("JoinGroup", json!(["app:room"])).await);
    // Two sends to the room: its count, not its members', is what the console's rate reads.
    for n in 0..2 {
        ok(&alice.invoke("SendToGroup", json!(["app:room", n])).await);
    }

    let (status, body) = server
        .get_as("/api/_rt/connections", Some(SERVER_KEY))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["count"], &body["pageNo"], &body["pageSize"]),
        (&json!(2), &json!(1), &json!(100))
    );
    let listed = body["connections"].as_array().unwrap();
    let ids: Vec<&str> = listed
        .iter()
        .map(|c| c["connectionId"].as_str().unwrap())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "in connection id order");
    let of = |id: &str| listed.iter().find(|c| c["connectionId"] == id).unwrap();
    let a = of(&alice.connection_id);
    assert_eq!(
        (
            &a["protocol"],
            &a["transport"],
            &a["userId"],
            &a["queuedBytes"]
        ),
        (
            &json!("signalr.json"),
            &json!("WebSockets"),
            &json!("alice"),
            &json!(0)
        )
    );
    let groups = a["groups"].as_array().unwrap();
    assert!(groups.contains(&json!("app:room")) && groups.contains(&json!("app:lobby")));
    assert_eq!(of(&anonymous.connection_id)["userId"], Value::Null);

    let (_, page) = server
        .get_as("/api/_rt/connections?pageSize=1&pageNo=2", Some(SERVER_KEY))
        .await;
    assert_eq!(page["count"], 2);
    assert_eq!(page["connections"][0]["connectionId"], json!(ids[1]));

    // Channels by name, bare and as groups; internal groups (with '/') are left out.
    let (status, body) = server.get_as("/api/_rt/channels", Some(SERVER_KEY)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["count"], 2, "{body}");
    assert_eq!(
        body["channels"],
        json!([
            {"channel": "lobby", "group": "app:lobby", "members": 1, "messages": 0},
            {"channel": "room", "group": "app:room", "members": 2, "messages": 2},
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_and_the_console_page_are_served() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&keys_config())).await;
    let (status, body) = server.get_as("/api/_rt/schema", Some(SERVER_KEY)).await;
    assert_eq!(status, 200, "{body}");
    let collections = body["collections"].as_array().unwrap();
    let orders = collections.iter().find(|c| c["name"] == "orders").unwrap();
    let customer = orders["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "customer")
        .unwrap();
    assert_eq!(
        customer,
        &json!({"name": "customer", "type": "lookup", "required": false, "target": "customers"})
    );

    let page = server
        .http
        .get(server.url("/_console"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(page.text().await.unwrap().contains("rthub console"));
    let bundle = server
        .http
        .get(server.url("/_console/signalr.min.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status().as_u16(), 200);
    assert!(bundle.text().await.unwrap().contains("MIT License"));
    let (status, body) = server.get_as("/_console/missing.js", None).await;
    assert_eq!((status, &body["error"]["code"]), (404, &json!("not_found")));
}
