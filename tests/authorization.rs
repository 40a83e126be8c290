//! Who may do what, as a table: identities × endpoints × channel kinds, over REST and over
//! SignalR. 401 means missing or invalid credentials, 403 valid but not allowed.

mod collections_support;

use collections_support::{Db, TestDb};
use jsonwebtoken::{encode, EncodingKey, Header};
use rthub::{Cli, Config, RunningServer};
use serde_json::{json, Value};

const SECRET: &str = "authorization-tests-secret-0123456789";
const SERVER_KEY: &str = "matrix-server-key-0123456789";
const CLIENT_KEY: &str = "matrix-client-key-0123456789";
const SCHEMA: &str = r#"{"collections": [{"name": "docs",
  "properties": [{"name": "title", "type": "string"}],
  "access": [{"method": "GET", "roleNames": ["_EVERYONE"]},
             {"method": "POST", "roleNames": ["_AUTHENTICATED_USER"]},
             {"method": "PUT", "roleNames": ["editor"]},
             {"method": "PATCH", "roleNames": ["editor"]},
             {"method": "LISTEN", "roleNames": ["_AUTHENTICATED_USER"]}]}]}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Anonymous,
    User,
    Editor,
    ClientKey,
    ServerKey,
    ServiceAccount,
    Expired,
    Forged,
}

use Who::*;
const EVERYONE: [Who; 8] = [
    Anonymous,
    User,
    Editor,
    ClientKey,
    ServerKey,
    ServiceAccount,
    Expired,
    Forged,
];

fn jwt(claims: Value, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

struct Matrix {
    server: RunningServer,
    base: String,
    http: reqwest::Client,
    service_token: String,
    rows: usize,
    files: Vec<std::path::PathBuf>,
    /// The hub connections opened so far, kept open.
    hubs: Vec<Hub>,
}

impl Matrix {
    async fn start(database: &str) -> Self {
        let dir = std::env::temp_dir();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let schema = dir.join(format!("authz_schema_{id}.json"));
        let config = dir.join(format!("authz_config_{id}.toml"));
        std::fs::write(&schema, SCHEMA).unwrap();
        std::fs::write(
            &config,
            format!(
                "[auth]\njwt_secret = \"{SECRET}\"\n\n[[api_keys]]\nkey = \"{SERVER_KEY}\"\nrole = \"server\"\n\n[[api_keys]]\nkey = \"{CLIENT_KEY}\"\nrole = \"client\"\n\n[[service_accounts]]\nclient_id = \"backend\"\nclient_secret = \"backend-secret\"\n"
            ),
        )
        .unwrap();
        let cli = Cli {
            config: Some(config.clone()),
            listen: Some("127.0.0.1:0".parse().unwrap()),
            database: Some(database.to_owned()),
            schema: Some(schema.clone()),
            ..Default::default()
        };
        let server = RunningServer::start(Config::load(cli).unwrap())
            .await
            .unwrap();
        let base = format!("http://{}", server.local_addr());
        let http = reqwest::Client::new();
        let wrong: Value = http
            .post(format!("{base}/api/_auth"))
            .json(&json!({"authority": "serviceaccount", "clientId": "backend", "clientSecret": "nope"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            wrong["error"]["code"], "unauthorized",
            "no hint which part was wrong: {wrong}"
        );
        let token: Value = http
            .post(format!("{base}/api/_auth"))
            .json(&json!({"authority": "serviceaccount", "clientId": "backend", "clientSecret": "backend-secret"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Matrix {
            server,
            base,
            http,
            service_token: token["token"].as_str().unwrap().to_owned(),
            rows: 0,
            files: vec![schema, config],
            hubs: Vec::new(),
        }
    }

    fn credentials(&self, who: Who, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let now = jsonwebtoken::get_current_timestamp();
        match who {
            Anonymous => request,
            User => request.bearer_auth(jwt(json!({"sub": "u1", "exp": now + 600}), SECRET)),
            Editor => request.bearer_auth(jwt(
                json!({"sub": "u2", "roles": ["editor"], "exp": now + 600}),
                SECRET,
            )),
            ClientKey => request.header("x-apikey", CLIENT_KEY),
            ServerKey => request.header("x-apikey", SERVER_KEY),
            ServiceAccount => request.bearer_auth(&self.service_token),
            Expired => request.bearer_auth(jwt(json!({"sub": "u1", "exp": now - 600}), SECRET)),
            Forged => request.bearer_auth(jwt(
                json!({"sub": "u1", "exp": now + 600}),
                "some-other-secret-of-32-bytes!!",
            )),
        }
    }

    async fn call(
        &mut self,
        who: Who,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self.credentials(
            who,
            self.http.request(method, format!("{}{path}", self.base)),
        );
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        self.rows += 1;
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A hub connection negotiated with `who`'s credentials; `None` if negotiate refused.
    async fn connection(&mut self, who: Who) -> Option<String> {
        let request = self.credentials(
            who,
            self.http.post(format!(
                "{}/api/_rt/signalr/negotiate?negotiateVersion=1",
                self.base
            )),
        );
        let response = request.send().await.unwrap();
        if response.status() != 200 {
            return None;
        }
        let body: Value = response.json().await.unwrap();
        let token = body["connectionToken"].as_str().unwrap();
        let url = format!(
            "{}/api/_rt/signalr?id={token}",
            self.base.replacen("http", "ws", 1)
        );
        // Transport requests carry the credentials that negotiated, as clients send them.
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.as_str().into_client_request().unwrap();
        let presented = self.credentials(who, self.http.get(&url)).build().unwrap();
        for (name, value) in presented.headers() {
            request.headers_mut().insert(name, value.clone());
        }
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let mut hub = Hub { socket };
        hub.send("{\"protocol\":\"json\",\"version\":1}\u{1e}")
            .await;
        hub.next().await;
        // Keep the socket alive for the rest of the test (on this test's runtime: a static
        // shared by tests would hand one test's socket to another's dead runtime).
        self.hubs.push(hub);
        Some(body["connectionId"].as_str().unwrap().to_owned())
    }
}

struct Hub {
    socket: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Hub {
    async fn send(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.socket
            .send(tokio_tungstenite::tungstenite::Message::text(text))
            .await
            .unwrap();
    }

    async fn next(&mut self) -> String {
        use futures_util::StreamExt;
        loop {
            let frame =
                tokio::time::timeout(std::time::Duration::from_secs(10), self.socket.next())
                    .await
                    .unwrap()
                    .unwrap()
                    .unwrap();
            if let tokio_tungstenite::tungstenite::Message::Text(text) = frame {
                if text.as_str() != "{\"type\":6}\u{1e}" {
                    return text.to_string();
                }
            }
        }
    }

    /// Invoke and say whether it completed without an error.
    async fn invoke(&mut self, target: &str, arguments: Value) -> bool {
        self.send(&format!(
            "{}\u{1e}",
            json!({"type": 1, "invocationId": "1", "target": target, "arguments": arguments})
        ))
        .await;
        loop {
            let text = self.next().await;
            for record in text.split('\u{1e}').filter(|r| !r.is_empty()) {
                let message: Value = serde_json::from_str(record).unwrap();
                if message["type"] == 3 {
                    return message.get("error").is_none();
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_matrix() {
    let database = TestDb::new(Db::Sqlite).await;
    let mut m = Matrix::start(&database.url).await;
    let (_, doc) = m
        .call(
            ServerKey,
            reqwest::Method::POST,
            "/api/docs",
            Some(json!({"title": "seed"})),
        )
        .await;
    let doc_path = format!("/api/docs/{}", doc["id"].as_str().unwrap());
    let mut failures: Vec<String> = Vec::new();
    fn check(failures: &mut Vec<String>, who: Who, what: &str, got: u16, expected: u16) {
        if got != expected {
            failures.push(format!("{who:?} {what}: got {got}, expected {expected}"));
        }
    }

    // REST on a collection with rules for GET/_EVERYONE, POST/_AUTHENTICATED_USER,
    // PUT+PATCH/editor, LISTEN/_AUTHENTICATED_USER and no rule for DELETE.
    for who in EVERYONE {
        let invalid = matches!(who, Expired | Forged);
        let user = matches!(who, User | Editor);
        let server = matches!(who, ServerKey | ServiceAccount);
        let expect = |allowed: bool, ok: u16| {
            if invalid {
                401
            } else if allowed {
                ok
            } else if who == Anonymous {
                401
            } else {
                403
            }
        };
        let (got, _) = m.call(who, reqwest::Method::GET, "/api/docs", None).await;
        check(&mut failures, who, "GET list", got, expect(true, 200));
        let (got, _) = m.call(who, reqwest::Method::GET, &doc_path, None).await;
        check(&mut failures, who, "GET item", got, expect(true, 200));
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/docs",
                Some(json!({"title": "t"})),
            )
            .await;
        check(&mut failures, who, "POST", got, expect(user || server, 201));
        let (got, _) = m
            .call(
                who,
                reqwest::Method::PUT,
                &doc_path,
                Some(json!({"title": "p"})),
            )
            .await;
        check(
            &mut failures,
            who,
            "PUT",
            got,
            expect(who == Editor || server, 200),
        );
        let (got, _) = m
            .call(
                who,
                reqwest::Method::PATCH,
                &doc_path,
                Some(json!({"title": "q"})),
            )
            .await;
        check(
            &mut failures,
            who,
            "PATCH",
            got,
            expect(who == Editor || server, 200),
        );
        let (_, extra) = m
            .call(
                ServerKey,
                reqwest::Method::POST,
                "/api/docs",
                Some(json!({"title": "d"})),
            )
            .await;
        let (got, _) = m
            .call(
                who,
                reqwest::Method::DELETE,
                &format!("/api/docs/{}", extra["id"].as_str().unwrap()),
                None,
            )
            .await;
        check(
            &mut failures,
            who,
            "DELETE (no rule: server only)",
            got,
            expect(server, 200),
        );

        // Realtime: a connection of the caller's own.
        let connection = m.connection(who).await;
        if invalid {
            assert!(
                connection.is_none(),
                "{who:?}: negotiate must refuse invalid credentials"
            );
            continue;
        }
        let id = connection.expect("negotiate accepts valid or no credentials");
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/docs/_listen",
                Some(json!({"connectionId": id})),
            )
            .await;
        check(
            &mut failures,
            who,
            "_listen",
            got,
            expect(user || server, 200),
        );
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/join",
                Some(json!({"connectionId": id, "channel": "room"})),
            )
            .await;
        check(&mut failures, who, "join regular", got, 200);
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/join",
                Some(json!({"connectionId": id, "channel": "room:1"})),
            )
            .await;
        check(
            &mut failures,
            who,
            "join private",
            got,
            if server { 200 } else { 400 },
        );
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/join",
                Some(json!({"connectionId": id, "channel": "docs"})),
            )
            .await;
        check(&mut failures, who, "join entity channel", got, 400);
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/leave",
                Some(json!({"connectionId": id, "channel": "room"})),
            )
            .await;
        check(&mut failures, who, "leave", got, 200);
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/send",
                Some(json!({"channel": "room", "body": 1})),
            )
            .await;
        check(&mut failures, who, "send regular", got, 200);
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/send",
                Some(json!({"channel": "room:1", "body": 1})),
            )
            .await;
        check(
            &mut failures,
            who,
            "send private",
            got,
            if server { 200 } else { 400 },
        );
        let (got, _) = m
            .call(
                who,
                reqwest::Method::POST,
                "/api/_rt/send",
                Some(json!({"channel": "docs", "body": 1})),
            )
            .await;
        check(&mut failures, who, "send entity channel", got, 400);

        // The same rules through the hub, on the caller's own connection.
        let hub_checks: [(&str, Value, bool); 5] = [
            ("Listen", json!(["docs"]), user || server),
            ("JoinGroup", json!(["app:room"]), true),
            ("JoinGroup", json!(["app:room:2"]), server),
            ("SendToGroup", json!(["app:room:3", 1]), server),
            ("JoinGroup", json!(["app:docs"]), false),
        ];
        for (target, arguments, allowed) in hub_checks {
            let ok = m
                .hubs
                .last_mut()
                .unwrap()
                .invoke(target, arguments.clone())
                .await;
            m.rows += 1;
            if ok != allowed {
                failures.push(format!(
                    "{who:?} hub {target}{arguments}: allowed {ok}, expected {allowed}"
                ));
            }
        }
    }

    // Acting on another identity's connection.
    let editors = m.connection(Editor).await.unwrap();
    let (got, _) = m
        .call(
            User,
            reqwest::Method::POST,
            "/api/_rt/join",
            Some(json!({"connectionId": editors, "channel": "room"})),
        )
        .await;
    assert_eq!(got, 403, "a user joining another user's connection");
    let (got, _) = m
        .call(
            User,
            reqwest::Method::POST,
            "/api/docs/_listen",
            Some(json!({"connectionId": editors})),
        )
        .await;
    assert_eq!(got, 403, "a user listening with another user's connection");
    let (got, _) = m
        .call(
            ServerKey,
            reqwest::Method::POST,
            "/api/_rt/join",
            Some(json!({"connectionId": editors, "channel": "room:9", "readOnly": true})),
        )
        .await;
    assert_eq!(got, 200, "the server acts on any connection");
    let anonymous = m.connection(Anonymous).await.unwrap();
    let (got, _) = m
        .call(
            User,
            reqwest::Method::POST,
            "/api/_rt/join",
            Some(json!({"connectionId": anonymous, "channel": "room"})),
        )
        .await;
    assert_eq!(got, 200, "anonymous connections are bearer capabilities");
    // GET /api/_rt/signalr hands out a token negotiate accepts, for the caller's identity.
    let (status, info) = m
        .call(Editor, reqwest::Method::GET, "/api/_rt/signalr", None)
        .await;
    assert_eq!(status, 200);
    assert!(info["url"].as_str().unwrap().ends_with("/api/_rt/signalr"));
    let negotiated = m
        .http
        .post(format!(
            "{}/api/_rt/signalr/negotiate?negotiateVersion=1",
            m.base
        ))
        .bearer_auth(info["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(negotiated.status(), 200);
    assert_eq!(
        m.call(Forged, reqwest::Method::GET, "/api/_rt/signalr", None)
            .await
            .0,
        401
    );

    assert!(
        failures.is_empty(),
        "{} of {} rows wrong:\n{}",
        failures.len(),
        m.rows,
        failures.join("\n")
    );
    eprintln!("authorization matrix: {} rows", m.rows);
    m.hubs.clear();
    m.server.shutdown().await.unwrap();
    for file in m.files {
        let _ = std::fs::remove_file(file);
    }
    database.drop_it().await;
}

/// A user JWT whose `sub` spells a service account's formatted id owns nothing of that
/// account's connections: identities compare by kind and id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_named_like_a_service_account_cannot_act_on_its_connections() {
    let database = TestDb::new(Db::Sqlite).await;
    let mut m = Matrix::start(&database.url).await;
    let connection = m.connection(ServiceAccount).await.unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let impostor = jwt(
        json!({"sub": "serviceaccount:backend", "exp": now + 600}),
        SECRET,
    );
    let join = json!({"connectionId": connection, "channel": "lobby"});
    let refused = m
        .http
        .post(format!("{}/api/_rt/join", m.base))
        .bearer_auth(&impostor)
        .json(&join)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let listen = m
        .http
        .post(format!("{}/api/docs/_listen", m.base))
        .bearer_auth(&impostor)
        .json(&json!({"connectionId": connection, "type": "signalr"}))
        .send()
        .await
        .unwrap();
    assert_eq!(listen.status(), 403);
    let (status, _) = m
        .call(
            ServiceAccount,
            reqwest::Method::POST,
            "/api/_rt/join",
            Some(join),
        )
        .await;
    assert_eq!(status, 200, "the account itself may");
}
