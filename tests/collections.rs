//! Collections over REST and their change feed, on SQLite and on PostgreSQL.

mod collections_support;

use collections_support::{with_server, Db};
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

on_both_databases!(
    create_read_replace_merge_delete,
    validation_errors_list_every_field,
    if_match_guards_versions,
    unknown_collections_items_and_bad_input,
    list_filter_sort_page_count,
    select_expands_lookups,
    access_rules_without_credentials,
    listen_delivers_changes_with_the_exact_payload,
    listen_filters_by_id_and_lookup,
    hub_listen_and_stream_changes_from_seq,
    entity_channels_are_refused,
);

async fn create_read_replace_merge_delete(db: Db) {
    with_server(db, |s| async move {
        let (status, created) = s.post("/api/customers", json!({"name": "Ada"})).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap().to_owned();
        assert_eq!(created["name"], "Ada");
        assert_eq!(created["vip"], false, "default applied");
        assert_eq!(created["_version"], 1);
        assert!(created["_created"].is_string() && created["_changed"].is_string());

        let (status, read) = s.get(&format!("/api/customers/{id}")).await;
        assert_eq!((status, &read), (200, &created));

        let (status, replaced) = s
            .call(
                Method::PUT,
                &format!("/api/customers/{id}"),
                Some(json!({"name": "Ada L.", "vip": true})),
            )
            .await;
        assert_eq!(status, 200, "{replaced}");
        assert_eq!(
            (replaced["name"].clone(), replaced["_version"].clone()),
            (json!("Ada L."), json!(2))
        );
        assert_eq!(replaced["_created"], created["_created"]);

        let (status, merged) = s
            .call(
                Method::PATCH,
                &format!("/api/customers/{id}"),
                Some(json!({"vip": false})),
            )
            .await;
        assert_eq!(status, 200, "{merged}");
        assert_eq!(
            (
                merged["name"].clone(),
                merged["vip"].clone(),
                merged["_version"].clone()
            ),
            (json!("Ada L."), json!(false), json!(3))
        );

        let (status, deleted) = s
            .call(Method::DELETE, &format!("/api/customers/{id}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(deleted["id"], json!(id));
        assert_eq!(s.get(&format!("/api/customers/{id}")).await.0, 404);
        assert_eq!(
            s.call(Method::DELETE, &format!("/api/customers/{id}"), None)
                .await
                .0,
            404
        );
        s
    })
    .await;
}

async fn validation_errors_list_every_field(db: Db) {
    with_server(db, |s| async move {
        let (status, body) = s
            .post(
                "/api/customers",
                json!({"name": "x".repeat(21), "vip": "yes", "extra": 1}),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "invalid");
        let fields: Vec<&str> = body["error"]["details"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for field in ["name", "vip", "extra"] {
            assert!(fields.contains(&field), "{field} missing from {body}");
        }
        let (status, body) = s.post("/api/customers", json!({})).await;
        assert_eq!(status, 400, "required: {body}");
        // Nothing was written.
        let (_, list) = s.get("/api/customers?count=true").await;
        assert_eq!(list["meta"]["count"], 0);
        s
    })
    .await;
}

async fn if_match_guards_versions(db: Db) {
    with_server(db, |s| async move {
        let (_, created) = s.post("/api/customers", json!({"name": "Bo"})).await;
        let path = format!("/api/customers/{}", created["id"].as_str().unwrap());
        let patch = |version: &'static str| {
            s.http
                .patch(s.url(&path))
                .header("if-match", version)
                .json(&json!({"vip": true}))
                .send()
        };
        let stale = patch("\"7\"").await.unwrap();
        assert_eq!(stale.status(), 412);
        let good = patch("1").await.unwrap();
        assert_eq!(good.status(), 200);
        assert_eq!(good.headers()["etag"], "\"2\"");
        let delete = s
            .http
            .delete(s.url(&path))
            .header("if-match", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(delete.status(), 412);
        let delete = s
            .http
            .delete(s.url(&path))
            .header("if-match", "\"2\"")
            .send()
            .await
            .unwrap();
        assert_eq!(delete.status(), 200);
        s
    })
    .await;
}

async fn unknown_collections_items_and_bad_input(db: Db) {
    with_server(db, |s| async move {
        assert_eq!(s.get("/api/nothing").await.0, 404);
        assert_eq!(s.get("/api/customers/not-a-uuid").await.0, 404);
        assert_eq!(
            s.get(&format!("/api/customers/{}", uuid::Uuid::new_v4()))
                .await
                .0,
            404
        );
        let (status, body) = s.get("/api/customers?filter=name%20eq").await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(s.get("/api/customers?pageSize=1001").await.0, 400);
        assert_eq!(s.get("/api/customers?pageNo=0").await.0, 400);
        let bad_json = s
            .http
            .post(s.url("/api/customers"))
            .header("content-type", "application/json")
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(bad_json.status(), 400);
        assert_eq!(s.post("/api/customers", json!([1, 2])).await.0, 400);
        let huge = json!({"name": "x", "blob": "y".repeat(2 * 1024 * 1024)});
        let too_large = s
            .http
            .post(s.url("/api/customers"))
            .json(&huge)
            .send()
            .await
            .unwrap();
        assert_eq!(too_large.status(), 413);
        // The unread rest of the body ends the connection, and the client is told so.
        assert_eq!(too_large.headers()["connection"], "close");
        // Injection attempts are values, never SQL.
        let (status, body) = s
            .get("/api/customers?filter=name%20eq%20%22x'%20OR%201=1%20--%22")
            .await;
        assert_eq!((status, body), (200, json!([])));
        s
    })
    .await;
}

async fn list_filter_sort_page_count(db: Db) {
    with_server(db, |s| async move {
        for (name, total) in [("a", 5), ("b", 15), ("c", 25), ("d", 35)] {
            let (status, _) = s.post("/api/orders", json!({"note": name, "total": total})).await;
            assert_eq!(status, 201);
        }
        let notes = |body: &Value| -> Vec<String> {
            body.as_array()
                .unwrap()
                .iter()
                .map(|o| o["note"].as_str().unwrap().to_owned())
                .collect()
        };
        let (_, body) = s.get("/api/orders?filter=total%20gt%2010&sortBy=total-").await;
        assert_eq!(notes(&body), ["d", "c", "b"]);
        let (_, body) = s
            .get("/api/orders?filter=note%20eq%20%22a%22%20or%20(total%20ge%2025%20and%20total%20lt%2030)&sortBy=note")
            .await;
        assert_eq!(notes(&body), ["a", "c"]);
        let (_, body) = s.get("/api/orders?sortBy=total&pageSize=2&pageNo=2").await;
        assert_eq!(notes(&body), ["c", "d"]);
        let (_, body) = s.get("/api/orders?sortBy=total&pageSize=3&count=true").await;
        assert_eq!(body["meta"]["count"], 4);
        assert_eq!(notes(&body["items"]), ["a", "b", "c"]);
        let (_, body) = s.get("/api/orders?filter=note%20eq~%20%22A%22").await;
        assert_eq!(notes(&body), ["a"]);
        s
    })
    .await;
}

async fn select_expands_lookups(db: Db) {
    with_server(db, |s| async move {
        let (_, customer) = s.post("/api/customers", json!({"name": "Cy"})).await;
        let (_, order) = s
            .post("/api/orders", json!({"customer": customer["id"], "total": 3, "note": "n"}))
            .await;
        let (status, body) = s.get("/api/orders?select=total,customer.name").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!([{"id": order["id"], "total": 3, "customer": {"id": customer["id"], "name": "Cy"}}])
        );
        assert_eq!(s.get("/api/orders?select=note.x").await.0, 400);
        s
    })
    .await;
}

async fn access_rules_without_credentials(db: Db) {
    with_server(db, |s| async move {
        // No rule for a method: only the server identity.
        assert_eq!(s.get("/api/secrets").await.0, 401);
        assert_eq!(s.post("/api/secrets", json!({"value": "v"})).await.0, 401);
        let as_server = s
            .http
            .post(s.url("/api/secrets"))
            .header("x-apikey", "test-server-key-0123456789")
            .json(&json!({"value": "v"}))
            .send()
            .await
            .unwrap();
        assert_eq!(as_server.status(), 201);
        let bad_key = s
            .http
            .get(s.url("/api/customers"))
            .header("x-apikey", "wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(bad_key.status(), 401);
        // `orders` has no PUT rule.
        let (_, order) = s.post("/api/orders", json!({"total": 1})).await;
        let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
        assert_eq!(
            s.call(Method::PUT, &path, Some(json!({"total": 2})))
                .await
                .0,
            401
        );
        s
    })
    .await;
}

async fn listen_delivers_changes_with_the_exact_payload(db: Db) {
    with_server(db, |s| async move {
        let mut hub = s.hub().await;
        let (status, body) = s
            .post(
                "/api/customers/_listen",
                json!({"connectionId": hub.connection_id, "type": "signalr"}),
            )
            .await;
        assert_eq!((status, body), (200, json!({"listening": true})));
        let (_, created) = s.post("/api/customers", json!({"name": "Di"})).await;
        let change = hub.next_change().await;
        assert_eq!(change["collection"], "customers");
        assert_eq!(change["operation"], "create");
        assert_eq!(change["id"], created["id"]);
        assert_eq!(change["data"], created);
        assert!(change["seq"].as_i64().unwrap() > 0);
        assert!(chrono::DateTime::parse_from_rfc3339(change["ts"].as_str().unwrap()).is_ok());
        let path = format!("/api/customers/{}", created["id"].as_str().unwrap());
        let (_, patched) = s
            .call(Method::PATCH, &path, Some(json!({"vip": true})))
            .await;
        let update = hub.next_change().await;
        assert_eq!(
            (update["operation"].clone(), update["data"].clone()),
            (json!("update"), patched.clone())
        );
        assert!(update["seq"].as_i64() > change["seq"].as_i64());
        s.call(Method::DELETE, &path, None).await;
        let delete = hub.next_change().await;
        assert_eq!(
            (delete["operation"].clone(), delete["data"].clone()),
            (json!("delete"), patched)
        );
        // Unlisten: no more changes; a write to another collection never arrived.
        let (status, _) = s
            .post(
                "/api/customers/_unlisten",
                json!({"connectionId": hub.connection_id}),
            )
            .await;
        assert_eq!(status, 200);
        s.post("/api/customers", json!({"name": "Ed"})).await;
        s.post("/api/orders", json!({"total": 1})).await;
        hub.expect_silence(Duration::from_millis(1500)).await;
        // Errors: unknown connection, collection, bad body.
        assert_eq!(
            s.post("/api/customers/_listen", json!({"connectionId": "nope"}))
                .await
                .0,
            404
        );
        assert_eq!(
            s.post(
                "/api/nothing/_listen",
                json!({"connectionId": hub.connection_id})
            )
            .await
            .0,
            404
        );
        assert_eq!(
            s.post("/api/customers/_listen", json!({"connection": 1}))
                .await
                .0,
            400
        );
        assert_eq!(
            s.post(
                "/api/secrets/_listen",
                json!({"connectionId": hub.connection_id})
            )
            .await
            .0,
            401
        );
        s
    })
    .await;
}

async fn listen_filters_by_id_and_lookup(db: Db) {
    with_server(db, |s| async move {
        let (_, alice) = s.post("/api/customers", json!({"name": "Al"})).await;
        let (_, bob) = s.post("/api/customers", json!({"name": "Bob"})).await;
        let (_, first) = s
            .post("/api/orders", json!({"customer": alice["id"], "total": 1}))
            .await;
        // A subscription gets what the feed dispatches after it starts: wait until the setup
        // writes have been dispatched, so they are not counted below.
        let mut barrier = s.hub().await;
        barrier.invoke("Listen", json!(["orders"])).await;
        let (_, marker) = s.post("/api/orders", json!({"total": 0})).await;
        while barrier.next_change().await["id"] != marker["id"] {}
        let mut by_id = s.hub().await;
        let mut by_lookup = s.hub().await;
        s.post(
            "/api/orders/_listen",
            json!({"connectionId": by_id.connection_id, "id": first["id"]}),
        )
        .await;
        s.post(
            "/api/orders/_listen",
            json!({"connectionId": by_lookup.connection_id, "lookupIds": [bob["id"]]}),
        )
        .await;
        // An order of Bob's: only the lookup listener.
        let (_, second) = s
            .post("/api/orders", json!({"customer": bob["id"], "total": 2}))
            .await;
        assert_eq!(by_lookup.next_change().await["id"], second["id"]);
        // The first order moves from Alice to Bob: both (lookup matches after the write).
        let path = format!("/api/orders/{}", first["id"].as_str().unwrap());
        s.call(Method::PATCH, &path, Some(json!({"customer": bob["id"]})))
            .await;
        assert_eq!(by_id.next_change().await["id"], first["id"]);
        assert_eq!(by_lookup.next_change().await["id"], first["id"]);
        // ...and back: still the lookup listener (Bob held it before the write).
        s.call(Method::PATCH, &path, Some(json!({"customer": alice["id"]})))
            .await;
        assert_eq!(by_lookup.next_change().await["id"], first["id"]);
        assert_eq!(by_id.next_change().await["id"], first["id"]);
        s.post("/api/orders", json!({"customer": alice["id"], "total": 3}))
            .await;
        by_id.expect_silence(Duration::from_millis(1200)).await;
        by_lookup.expect_silence(Duration::from_millis(100)).await;
        s
    })
    .await;
}

async fn hub_listen_and_stream_changes_from_seq(db: Db) {
    with_server(db, |s| async move {
        let mut hub = s.hub().await;
        let done = hub.invoke("Listen", json!(["customers"])).await;
        assert_eq!(done, json!({"type": 3, "invocationId": "1", "result": null}));
        let (_, one) = s.post("/api/customers", json!({"name": "One"})).await;
        let first = hub.next_change().await;
        assert_eq!(first["id"], one["id"]);
        let from = first["seq"].as_i64().unwrap();
        s.post("/api/customers", json!({"name": "Two"})).await;
        s.post("/api/customers", json!({"name": "Three"})).await;
        assert_eq!(hub.invoke("Unlisten", json!(["customers"])).await["result"], Value::Null);
        let refused = hub.invoke("Listen", json!(["nothing"])).await;
        assert!(refused["error"].as_str().unwrap().contains("nothing"), "{refused}");
        let refused = hub.invoke("Listen", json!(["secrets"])).await;
        assert!(refused["error"].is_string(), "{refused}");

        // Replay after `from` (Two, Three), then live (Four), with no duplicate.
        hub.send(json!({"type": 4, "invocationId": "s", "target": "StreamChanges", "arguments": ["customers", null, from]}))
            .await;
        let mut names = Vec::new();
        while names.len() < 2 {
            let message = hub.next_message().await;
            if message["type"] == 2 && message["invocationId"] == "s" {
                names.push(message["item"]["data"]["name"].as_str().unwrap().to_owned());
            }
        }
        s.post("/api/customers", json!({"name": "Four"})).await;
        loop {
            let message = hub.next_message().await;
            if message["type"] == 2 && message["invocationId"] == "s" {
                names.push(message["item"]["data"]["name"].as_str().unwrap().to_owned());
                break;
            }
        }
        assert_eq!(names, ["Two", "Three", "Four"]);
        hub.send(json!({"type": 5, "invocationId": "s"})).await;
        loop {
            let message = hub.next_message().await;
            if message["type"] == 3 && message["invocationId"] == "s" {
                assert!(message.get("error").is_none(), "{message}");
                break;
            }
        }
        s
    })
    .await;
}

async fn entity_channels_are_refused(db: Db) {
    with_server(db, |s| async move {
        let mut hub = s.hub().await;
        let refused = hub.invoke("JoinGroup", json!(["app:customers"])).await;
        assert!(
            refused["error"].as_str().unwrap().contains("collection"),
            "{refused}"
        );
        let refused = hub.invoke("SendToGroup", json!(["app:orders", 1])).await;
        assert!(refused["error"].is_string(), "{refused}");
        let (status, _) = s
            .post(
                "/api/_rt/join",
                json!({"connectionId": hub.connection_id, "channel": "customers"}),
            )
            .await;
        assert_eq!(status, 400);
        s
    })
    .await;
}
