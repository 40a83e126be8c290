//! Presence: `GET /api/_rt/channels/{channel}/members` for the server identity, and the
//! `GroupMembers` hub method with the channel rules, over real connections.

mod collections_support;

use collections_support::{
    keys_config, ok, start_configured, user_token, Db, TestDb, CLIENT_KEY, SERVER_KEY,
};
use serde_json::{json, Value};
use std::time::Duration;

/// The presence path of `query` (`room/members?pageSize=2`).
fn channels(query: &str) -> String {
    format!("/api/_rt/channels/{query}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_are_listed_with_the_channel_rules() {
    let database = TestDb::new(Db::Sqlite).await;
    let server = start_configured(&database.url, Some(&keys_config())).await;
    let mut alice = server.hub_as(Some(&user_token("alice"))).await;
    let mut bob = server.hub_as(Some(&user_token("bob"))).await;
    let mut anonymous = server.hub().await;
    for hub in [&mut alice, &mut bob, &mut anonymous] {
        ok(&hub.invoke("JoinGroup", json!(["app:room"])).await);
    }

    // REST: the server identity only.
    let (status, body) = server.get_as(&channels("room/members"), None).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (401, &json!("unauthorized"))
    );
    let (status, body) = server
        .get_as(&channels("room/members"), Some(CLIENT_KEY))
        .await;
    assert_eq!((status, &body["error"]["code"]), (403, &json!("forbidden")));
    let (status, body) = server
        .get_as(&channels("room/members"), Some(SERVER_KEY))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (&body["count"], &body["pageNo"], &body["pageSize"]),
        (&json!(3), &json!(1), &json!(100))
    );
    let listed: Vec<(Value, Value, Value, Value)> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["connectionId"].clone(),
                m["userId"].clone(),
                m["protocol"].clone(),
                m["readOnly"].clone(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (
                json!(alice.connection_id),
                json!("alice"),
                json!("signalr.json"),
                json!(false)
            ),
            (
                json!(bob.connection_id),
                json!("bob"),
                json!("signalr.json"),
                json!(false)
            ),
            (
                json!(anonymous.connection_id),
                Value::Null,
                json!("signalr.json"),
                json!(false)
            ),
        ],
        "in join order"
    );

    // Pages.
    let (_, page) = server
        .get_as(
            &channels("room/members?pageSize=2&pageNo=2"),
            Some(SERVER_KEY),
        )
        .await;
    assert_eq!(page["count"], 3);
    assert_eq!(page["members"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["members"][0]["connectionId"],
        json!(anonymous.connection_id)
    );
    for bad in [
        "room/members?pageSize=0",
        "room/members?pageSize=1001",
        "room/members?pageNo=x",
    ] {
        let (status, body) = server.get_as(&channels(bad), Some(SERVER_KEY)).await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_request")),
            "{bad}"
        );
    }
    let (status, _) = server
        .get_as(&channels("bad%20name/members"), Some(SERVER_KEY))
        .await;
    assert_eq!(status, 400, "an invalid channel name");
    let (status, body) = server
        .get_as(&channels("customers/members"), Some(SERVER_KEY))
        .await;
    assert_eq!(status, 400, "an entity channel: {body}");
    let (_, empty) = server
        .get_as(&channels("nobody-here/members"), Some(SERVER_KEY))
        .await;
    assert_eq!(empty["count"], 0);

    // The hub method: others' connection ids stay hidden from a client.
    let result = ok(&alice.invoke("GroupMembers", json!(["app:room"])).await).clone();
    assert_eq!(result["count"], 3);
    let ids: Vec<&Value> = result["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["connectionId"])
        .collect();
    assert_eq!(
        ids,
        [&json!(alice.connection_id), &Value::Null, &Value::Null]
    );
    assert_eq!(result["members"][1]["userId"], "bob");

    // Private channels: listed for the server; a client's GroupMembers is refused.
    let join = server
        .http
        .post(server.url("/api/_rt/join"))
        .header("x-apikey", SERVER_KEY)
        .json(&json!({"connectionId": alice.connection_id, "channel": "room:1", "readOnly": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(join.status(), 200);
    let (_, private) = server
        .get_as(&channels("room:1/members"), Some(SERVER_KEY))
        .await;
    assert_eq!(private["members"][0]["readOnly"], true);
    let refused = alice.invoke("GroupMembers", json!(["app:room:1"])).await;
    assert!(
        refused["error"].as_str().unwrap().contains("private"),
        "{refused}"
    );
    let refused = alice.invoke("GroupMembers", json!(["other:room"])).await;
    assert!(
        refused["error"].as_str().is_some(),
        "a group outside the application: {refused}"
    );

    // A connection that ends leaves the list.
    drop(bob);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = server
            .get_as(&channels("room/members"), Some(SERVER_KEY))
            .await;
        if body["count"] == 2 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "bob is still listed: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
    database.drop_it().await;
}
