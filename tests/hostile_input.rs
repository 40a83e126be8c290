//! Input a careless or hostile client sends: the same clear JSON error on SQLite and on
//! PostgreSQL, never a 500, and lookups that expand only what the caller may read.

mod collections_support;

use collections_support::{with_server, Db, Server, SERVER_KEY};
use serde_json::{json, Value};

on_both_databases!(
    nul_characters_are_refused_alike,
    integers_must_fit_64_bits,
    expansion_applies_the_target_collections_read_rule,
    bad_paths_and_reserved_names_answer_in_json,
);

/// Every error is the JSON envelope with a code and a message.
fn assert_envelope(status: u16, body: &Value, expected: u16) {
    assert_eq!(status, expected, "{body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "not the JSON error shape: {body}"
    );
}

async fn as_server(s: &Server, method: reqwest::Method, path: &str) -> (u16, Value) {
    let response = s
        .http
        .request(method, s.url(path))
        .header("x-apikey", SERVER_KEY)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn nul_characters_are_refused_alike(db: Db) {
    with_server(db, |s| async move {
        for body in [
            json!({"name": "a\u{0}b"}),
            json!({"name": "ok", "vip": true, "a\u{0}": 1}),
        ] {
            let (status, error) = s.post("/api/customers", body).await;
            assert_envelope(status, &error, 400);
            assert!(error["error"]["details"][0]["message"]
                .as_str()
                .unwrap()
                .contains("NUL"));
        }
        let (status, error) = s
            .post("/api/notes", json!({"extra": {"deep": ["x\u{0}"]}}))
            .await;
        assert_envelope(status, &error, 400);
        assert_eq!(error["error"]["details"][0]["field"], "extra");
        let (status, error) = s.post("/api/notes", json!({"extra": {"k\u{0}": 1}})).await;
        assert_envelope(status, &error, 400);
        let (status, error) = s.get("/api/customers?filter=name%20eq%20%22a%00b%22").await;
        assert_envelope(status, &error, 400);
        // Nothing was stored by the refused writes.
        assert_eq!(s.get("/api/customers").await, (200, json!([])));
        s
    })
    .await;
}

async fn integers_must_fit_64_bits(db: Db) {
    with_server(db, |s| async move {
        for too_big in [
            "99999999999999999999999999",
            "18446744073709551615",
            "9223372036854775808",
            "-9223372036854775809",
            "1e26",
            "-9.3e18",
        ] {
            let response = s
                .http
                .post(s.url("/api/notes"))
                .header("content-type", "application/json")
                .body(format!("{{\"stock\": {too_big}}}"))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert_envelope(status, &body, 400);
            assert_eq!(body["error"]["details"][0]["field"], "stock", "{too_big}");
        }
        assert_eq!(s.post("/api/notes", json!({"stock": 2.5})).await.0, 400);
        for fits in [json!(i64::MAX), json!(i64::MIN), json!(3.0), json!(-7)] {
            let (status, item) = s.post("/api/notes", json!({ "stock": fits })).await;
            assert_eq!(status, 201, "{item}");
            assert_eq!(item["stock"], fits);
        }
        s
    })
    .await;
}

async fn expansion_applies_the_target_collections_read_rule(db: Db) {
    with_server(db, |s| async move {
        // `people` is readable by the server identity only; `notes` by everyone.
        let person = s
            .http
            .post(s.url("/api/people"))
            .header("x-apikey", SERVER_KEY)
            .json(&json!({"name": "Pat", "ssn": "123-45-6789"}))
            .send()
            .await
            .unwrap();
        assert_eq!(person.status(), 201);
        let person: Value = person.json().await.unwrap();
        let (_, note) = s
            .post("/api/notes", json!({"text": "hi", "person": person["id"]}))
            .await;
        let note_path = format!("/api/notes/{}", note["id"].as_str().unwrap());
        assert_eq!(
            s.get(&format!("/api/people/{}", person["id"].as_str().unwrap()))
                .await
                .0,
            401
        );
        for path in [
            "/api/notes?select=text,person.ssn".to_owned(),
            format!("{note_path}?select=text,person.ssn"),
        ] {
            let (status, body) = s.get(&path).await;
            assert_envelope(status, &body, 401);
            assert!(!body.to_string().contains("123-45-6789"));
        }
        // Without an expansion the bare id is the caller's to see, on lists and items alike.
        let (status, body) = s.get(&format!("{note_path}?select=text,person")).await;
        assert_eq!(status, 200);
        assert_eq!(
            body,
            json!({"id": note["id"], "text": "hi", "person": person["id"]})
        );
        // The server identity may read people, so it gets the expansion.
        let expanded = json!({"id": note["id"], "text": "hi",
            "person": {"id": person["id"], "ssn": "123-45-6789"}});
        let (status, body) = as_server(
            &s,
            reqwest::Method::GET,
            "/api/notes?select=text,person.ssn",
        )
        .await;
        assert_eq!((status, body), (200, json!([expanded.clone()])));
        let (status, body) = as_server(
            &s,
            reqwest::Method::GET,
            &format!("{note_path}?select=text,person.ssn"),
        )
        .await;
        assert_eq!((status, body), (200, expanded));
        s
    })
    .await;
}

async fn bad_paths_and_reserved_names_answer_in_json(db: Db) {
    with_server(db, |s| async move {
        for path in [
            "/api/customers/%ff%fe",
            "/api/%ff/x",
            "/api/customers/%ff%fe/_listen",
        ] {
            let response = s.http.get(s.url(path)).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            assert!(status == 400 || status == 404, "{path}: {status}");
            assert_envelope(status, &body, status);
        }
        for path in [
            "/api/_rt/nothing",
            "/api/_rt/nothing/here",
            "/api/_secret",
            "/api/_x/_listen",
            "/nothing",
        ] {
            let (status, body) = s.get(path).await;
            assert_envelope(status, &body, 404);
            let message = body["error"]["message"].as_str().unwrap();
            assert!(message.contains("no endpoint"), "{path}: {message}");
            assert!(!message.contains("collection"), "{path}: {message}");
        }
        let (status, body) = s.call(reqwest::Method::PUT, "/api/customers", None).await;
        assert_envelope(status, &body, 405);
        let (status, body) = s.get("/api/_rt/join").await;
        assert_envelope(status, &body, 405);
        s
    })
    .await;
}
