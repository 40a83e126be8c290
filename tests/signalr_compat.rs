//! What older and non-JavaScript clients rely on, in raw HTTP: negotiate version 0 connections
//! whose id other clients see, credentials on transport requests, and a send that comes
//! before the first long poll (signalrcore's handshake).

use rthub::{Cli, Config, RunningServer};
use serde_json::{json, Value};
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SECRET: &str = "compat-tests-secret-0123456789abcdef";

struct Server {
    server: RunningServer,
    origin: String,
    base: String,
    http: reqwest::Client,
    dir: std::path::PathBuf,
}

impl Server {
    async fn start() -> Self {
        let dir =
            std::env::temp_dir().join(format!("rthub_compat_{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cli = Cli {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            database: Some(format!("sqlite://{}", dir.join("db").display())),
            jwt_secret: Some(SECRET.into()),
            ..Default::default()
        };
        cli.signalr.long_poll_secs = Some(2);
        let server = RunningServer::start(Config::load(cli).unwrap())
            .await
            .unwrap();
        let origin = format!("http://{}", server.local_addr());
        Server {
            base: format!("{origin}/api/_rt/signalr"),
            origin,
            server,
            http: reqwest::Client::new(),
            dir,
        }
    }

    async fn stop(self) {
        self.server.shutdown().await.unwrap();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    /// The negotiate answer, with `bearer` if given.
    async fn negotiate(&self, query: &str, bearer: Option<&str>) -> Value {
        let mut request = self.http.post(format!("{}/negotiate{query}", self.base));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    fn url(&self, id: &str) -> String {
        format!("{}?id={id}", self.base)
    }

    async fn post(&self, id: &str, body: String) -> u16 {
        let response = self.http.post(self.url(id)).body(body).send().await;
        response.unwrap().status().as_u16()
    }

    /// One long poll, with its status and body.
    async fn poll(&self, id: &str) -> (u16, String) {
        let response = self.http.get(self.url(id)).send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Polls until the hub messages other than pings include one that `wanted` picks
    /// (bounded: the server answers an idle poll within its 2 s poll timeout).
    async fn poll_for(&self, id: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..10 {
            let (status, body) = self.poll(id).await;
            assert_eq!(status, 200, "{body}");
            let found = records(&body).into_iter().find(|m| wanted(m));
            if let Some(message) = found {
                return message;
            }
        }
        panic!("no such message within 10 polls");
    }

    async fn rest(&self, path: &str, body: Value) -> u16 {
        let response = self
            .http
            .post(format!("{}{path}", self.origin))
            .json(&body)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}

fn records(body: &str) -> Vec<Value> {
    body.split('\u{1e}')
        .filter(|r| !r.is_empty())
        .map(|r| serde_json::from_str(r).unwrap())
        .collect()
}

fn handshake() -> String {
    "{\"protocol\":\"json\",\"version\":1}\u{1e}".to_owned()
}

fn invocation(id: &str, target: &str, arguments: Value) -> String {
    let message = json!({"type": 1, "invocationId": id, "target": target, "arguments": arguments});
    format!("{message}\u{1e}")
}

fn user_token(user: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": user, "exp": now + 600}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

/// A long-polling hub connection past its handshake: what the client puts in `id=`, and the
/// `connectionId` negotiate told it (the same value for version 0).
async fn long_polling(s: &Server, negotiate_query: &str) -> (String, String) {
    let negotiated = s.negotiate(negotiate_query, None).await;
    let connection_id = negotiated["connectionId"].as_str().unwrap().to_owned();
    let id = negotiated["connectionToken"]
        .as_str()
        .unwrap_or(&connection_id)
        .to_owned();
    assert_eq!(s.poll(&id).await, (200, String::new()), "the first poll");
    assert_eq!(s.post(&id, handshake()).await, 200);
    assert_eq!(records(&s.poll(&id).await.1), vec![json!({})]);
    (id, connection_id)
}

#[tokio::test]
async fn a_version_0_connection_cannot_be_taken_over_by_the_id_others_see() {
    let s = Server::start().await;
    // The victim, a version 0 client (signalrcore, @aspnet/signalr 1.x): its `connectionId`
    // is what it puts in `id`.
    let (victim, victim_id) = long_polling(&s, "").await;
    assert_eq!(victim, victim_id);
    let (other, other_id) = long_polling(&s, "?negotiateVersion=1").await;
    // Both join over REST by the `connectionId` negotiate gave them.
    for id in [&victim_id, &other_id] {
        let joined = s
            .rest(
                "/api/_rt/join",
                json!({"connectionId": id, "channel": "room"}),
            )
            .await;
        assert_eq!(joined, 200);
    }
    assert_eq!(
        s.post(
            &victim,
            invocation("1", "SendToGroup", json!(["app:room", "hi"]))
        )
        .await,
        200
    );
    let message = s.poll_for(&other, |m| m["target"] == "message").await;
    let seen = message["arguments"][0]["fromConnectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(seen, victim, "the public id is not the victim's token");
    // What the other member saw opens nothing: no sending as the victim, no reading its
    // messages, no ending it.
    let forged = invocation("2", "SendToGroup", json!(["app:room", "forged"]));
    assert_eq!(s.post(&seen, forged).await, 404);
    assert_eq!(s.poll(&seen).await.0, 404);
    let ended = s.http.delete(s.url(&seen)).send().await.unwrap();
    assert_eq!(ended.status(), 404);
    // REST takes the public id too, beside the version 0 client's own id.
    let left = s
        .rest(
            "/api/_rt/leave",
            json!({"connectionId": seen, "channel": "room"}),
        )
        .await;
    assert_eq!(left, 200);
    let listened = s
        .rest(
            "/api/customers/_listen",
            json!({"connectionId": victim, "type": "signalr"}),
        )
        .await;
    assert_eq!(listened, 200);
    // The victim's connection still works.
    assert_eq!(
        s.post(&victim, invocation("3", "JoinGroup", json!(["app:room"])))
            .await,
        200
    );
    let done = s.poll_for(&victim, |m| m["invocationId"] == "3").await;
    assert_eq!(done["type"], 3);
    s.stop().await;
}

#[tokio::test]
async fn transport_requests_are_checked_against_the_identity_that_negotiated() {
    let s = Server::start().await;
    let (alice, bob) = (user_token("alice"), user_token("bob"));
    let negotiated = s.negotiate("?negotiateVersion=1", Some(&alice)).await;
    let token = negotiated["connectionToken"].as_str().unwrap().to_owned();
    let socket = |bearer: Option<&str>| {
        let mut url = s.url(&token).replacen("http", "ws", 1);
        if let Some(bearer) = bearer {
            url.push_str(&format!("&access_token={bearer}"));
        }
        async move {
            match tokio_tungstenite::connect_async(url.into_client_request().unwrap()).await {
                Ok(_) => 101,
                Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                    response.status().as_u16()
                }
                Err(other) => panic!("{other}"),
            }
        }
    };
    // The token alone is not enough, nor another user's credentials.
    assert_eq!(socket(None).await, 401);
    assert_eq!(socket(Some(&bob)).await, 403);
    assert_eq!(socket(Some("not-a-token")).await, 401);
    assert_eq!(socket(Some(&alice)).await, 101);

    // The same on long polling: sends need the owner; a poll may come without credentials
    // (signalrcore sends none on its polls) but not with someone else's.
    let negotiated = s.negotiate("", Some(&alice)).await;
    let id = negotiated["connectionId"].as_str().unwrap().to_owned();
    let poll = |bearer: &str| s.http.get(s.url(&id)).bearer_auth(bearer.to_owned()).send();
    assert_eq!(poll(&bob).await.unwrap().status(), 403);
    assert_eq!(s.poll(&id).await, (200, String::new()), "the first poll");
    let send = |bearer: Option<&str>| {
        let mut request = s.http.post(s.url(&id)).body(handshake());
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    assert_eq!(send(None).await.unwrap().status(), 401);
    assert_eq!(send(Some(&bob)).await.unwrap().status(), 403);
    assert_eq!(send(Some(&alice)).await.unwrap().status(), 200);
    assert_eq!(records(&s.poll(&id).await.1), vec![json!({})]);
    let ended = s.http.delete(s.url(&id)).send().await.unwrap();
    assert_eq!(ended.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn a_send_before_the_first_poll_is_kept_for_the_connection() {
    let s = Server::start().await;
    // signalrcore POSTs its handshake before it polls.
    let id = s.negotiate("", None).await["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let early = format!(
        "{}{}",
        handshake(),
        invocation("1", "JoinGroup", json!(["app:e"]))
    );
    assert_eq!(s.post(&id, early).await, 200);
    assert_eq!(
        s.post(&id, invocation("2", "LeaveGroup", json!(["app:e"])))
            .await,
        200
    );
    assert_eq!(s.poll(&id).await, (200, String::new()), "the first poll");
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let (status, body) = tokio::time::timeout(Duration::from_secs(10), s.poll(&id))
            .await
            .expect("a poll answers");
        assert_eq!(status, 200);
        seen.extend(records(&body));
    }
    assert_eq!(
        seen,
        vec![
            json!({}),
            json!({"type": 3, "invocationId": "1", "result": null}),
            json!({"type": 3, "invocationId": "2", "result": null}),
        ]
    );
    // What waits is bounded: a connection that never starts does not hold unbounded input.
    let id = s.negotiate("", None).await["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut statuses = Vec::new();
    for _ in 0..20 {
        statuses.push(s.post(&id, handshake()).await);
    }
    assert!(
        statuses[..16].iter().all(|&status| status == 200),
        "{statuses:?}"
    );
    assert_eq!(statuses[16..], [400, 400, 400, 400]);
    s.stop().await;
}
