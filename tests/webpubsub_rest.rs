//! Azure Web PubSub's data-plane REST API (`/api/hubs/{hub}/…`) against a real server: the
//! service's authentication (a JWT signed with the access key, `aud` the request URL), each
//! send kind, membership, closes, existence checks and generateToken, observed by SignalR
//! clients on raw WebSockets (every protocol shares the one group space).

mod webpubsub_support;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use webpubsub_support::*;

// ------------------------------------------------------------------ authentication

#[tokio::test]
async fn only_tokens_signed_with_the_access_key_for_this_url_pass() {
    let s = server().await;
    let path = "/api/hubs/app/:send?api-version=2024-12-01";
    let url = format!("{}{path}", s.origin);
    let text = || Some(("text/plain", b"hi".to_vec()));
    let refused = |status: u16, body: &str| {
        assert_eq!(status, 401, "{body}");
        let error: Value = serde_json::from_str(body).unwrap();
        assert_eq!(error["error"]["code"], "unauthorized", "{body}");
    };

    let (status, body) = s.raw("POST", path, None, text()).await;
    refused(status, &body);
    let wrong_key = sdk_token("not-the-access-key-000000", &url, in_an_hour());
    let (status, body) = s
        .raw("POST", path, Some(&format!("Bearer {wrong_key}")), text())
        .await;
    refused(status, &body);
    let other_url = sdk_token(
        KEY,
        &format!("{}/api/hubs/app/:closeConnections", s.origin),
        in_an_hour(),
    );
    let (status, body) = s
        .raw("POST", path, Some(&format!("Bearer {other_url}")), text())
        .await;
    refused(status, &body);
    let expired = sdk_token(KEY, &url, jsonwebtoken::get_current_timestamp() - 600);
    let (status, body) = s
        .raw("POST", path, Some(&format!("Bearer {expired}")), text())
        .await;
    refused(status, &body);
    // rthub's own credentials are not the service's.
    let (status, body) = s
        .http
        .post(format!("{}{path}", s.origin))
        .header("x-apikey", KEY)
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    refused(status, &body.text().await.unwrap());
    let (status, body) = s
        .raw(
            "POST",
            path,
            Some(&format!("Bearer {}", user_token("alice"))),
            text(),
        )
        .await;
    refused(status, &body);

    // The SDK's own token, and one for the URL without its query (the emulator takes both).
    assert_eq!(s.call("POST", path, text()).await.0, 202);
    let without_query = sdk_token(
        KEY,
        &format!("{}/api/hubs/app/:send", s.origin),
        in_an_hour(),
    );
    let (status, _) = s
        .raw(
            "POST",
            path,
            Some(&format!("Bearer {without_query}")),
            text(),
        )
        .await;
    assert_eq!(status, 202);
    s.stop().await;
}

#[tokio::test]
async fn without_an_access_key_every_request_is_refused_and_says_what_to_set() {
    let s = server_with(None).await;
    let path = "/api/hubs/app/:send";
    let (status, body) = s
        .call("POST", path, Some(("text/plain", b"x".to_vec())))
        .await;
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("[webpubsub] access_key"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_never_a_500() {
    let s = server().await;
    let json_body = |text: &str| Some(("application/json", text.as_bytes().to_vec()));
    let cases: Vec<(&str, &str, Body, u16)> = vec![
        ("POST", "/api/hubs/other/:send", json_body("1"), 404),
        ("POST", "/api/hubs/app/:nothing", json_body("1"), 404),
        ("POST", "/api/hubs/app/:send", json_body("{nope"), 400),
        (
            "POST",
            "/api/hubs/app/:send",
            Some(("image/png", vec![1])),
            415,
        ),
        ("POST", "/api/hubs/app/:send", None, 415),
        (
            "POST",
            "/api/hubs/app/:send",
            Some(("text/plain", vec![0xff, 0xfe])),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:send?api-version=latest",
            json_body("1"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:send?messageTtlSeconds=301",
            json_body("1"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:send?filter=length(userId)%20gt%201",
            json_body("1"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/groups/room/:send",
            json_body("1"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/groups/app%3Abad%20name/:send",
            json_body("1"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/groups/app%3Aproducts/:send",
            json_body("1"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:addToGroups",
            json_body("{\"groups\":[\"room\"]}"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:addToGroups",
            json_body("{\"groups\":[\"app:a\"],\"filter\":\"userId gt 'a'\"}"),
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:removeFromGroups",
            Some(("text/plain", b"app:a".to_vec())),
            415,
        ),
        (
            "PUT",
            "/api/hubs/app/permissions/sendToGroup/connections/x",
            None,
            400,
        ),
        (
            "GET",
            "/api/hubs/app/groups/app%3Aa/connections?maxpagesize=0",
            None,
            400,
        ),
        (
            "GET",
            "/api/hubs/app/groups/app%3Aa/connections?continuationToken=x",
            None,
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:generateToken?minutesToExpire=0",
            None,
            400,
        ),
        (
            "POST",
            "/api/hubs/app/:generateToken?clientType=MQTT",
            None,
            400,
        ),
        (
            "PUT",
            "/api/hubs/app/groups/app%3Aa/connections/no-such-connection",
            None,
            404,
        ),
        (
            "POST",
            "/api/hubs/app/connections/no-such-connection/:send",
            json_body("1"),
            404,
        ),
        ("GET", "/api/hubs/app/connections/x", None, 405),
    ];
    for (method, path, body, expected) in cases {
        let (status, text) = s.call(method, path, body).await;
        assert_eq!(status, expected, "{method} {path}: {text}");
        let error: Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON: {text}"));
        assert!(
            error["error"]["message"].is_string(),
            "{method} {path}: {text}"
        );
    }
    let big = vec![b'a'; 1024 * 1024 + 1];
    let (status, _) = s
        .call("POST", "/api/hubs/app/:send", Some(("text/plain", big)))
        .await;
    assert_eq!(status, 413);
    s.stop().await;
}

// ------------------------------------------------------------------ sends

#[tokio::test]
async fn each_send_kind_reaches_a_signalr_client() {
    let s = server().await;
    let (id, mut socket) = s.signalr(Some("alice")).await;
    let (other_id, mut other) = s.signalr(None).await;

    // Everyone, in each content type: a `message` with a null group, from the server.
    assert_eq!(
        s.send_json("/api/hubs/app/:send", json!({"a": 1})).await,
        202
    );
    let expected =
        json!({"group": null, "data": {"a": 1}, "fromUserId": null, "fromConnectionId": null});
    assert_eq!(next_channel_message(&mut socket).await, expected);
    assert_eq!(next_channel_message(&mut other).await, expected);
    let text = Some(("text/plain; charset=utf-8", "héllo".as_bytes().to_vec()));
    assert_eq!(s.call("POST", "/api/hubs/app/:send", text).await.0, 202);
    assert_eq!(next_channel_message(&mut socket).await["data"], "héllo");
    assert_eq!(next_channel_message(&mut other).await["data"], "héllo");
    let binary = Some(("application/octet-stream", vec![1, 2, 3]));
    assert_eq!(s.call("POST", "/api/hubs/app/:send", binary).await.0, 202);
    assert_eq!(next_channel_message(&mut socket).await["data"], "AQID");
    assert_eq!(next_channel_message(&mut other).await["data"], "AQID");

    // `excluded` leaves connections out.
    let path = format!("/api/hubs/app/:send?excluded={other_id}&excluded=unknown");
    assert_eq!(s.send_json(&path, json!("not for other")).await, 202);
    assert_eq!(
        next_channel_message(&mut socket).await["data"],
        "not for other"
    );
    nothing_before_marker(&s, &other_id, &mut other).await;

    // A user, a connection.
    assert_eq!(
        s.send_json("/api/hubs/app/users/alice/:send", json!("for alice"))
            .await,
        202
    );
    assert_eq!(next_channel_message(&mut socket).await["data"], "for alice");
    nothing_before_marker(&s, &other_id, &mut other).await;
    let path = format!("/api/hubs/app/connections/{id}/:send");
    assert_eq!(s.send_json(&path, json!("for the connection")).await, 202);
    assert_eq!(
        next_channel_message(&mut socket).await["data"],
        "for the connection"
    );

    // A group: the channel message every protocol gets.
    s.call(
        "PUT",
        &format!("/api/hubs/app/groups/app%3Aroom/connections/{id}"),
        None,
    )
    .await;
    let path = "/api/hubs/app/groups/app%3Aroom/:send";
    assert_eq!(s.send_json(path, json!({"g": 1})).await, 202);
    let group_message = json!({"group": "app:room", "data": {"g": 1}, "fromUserId": null, "fromConnectionId": null});
    assert_eq!(next_channel_message(&mut socket).await, group_message);
    nothing_before_marker(&s, &other_id, &mut other).await;
    let path = format!("/api/hubs/app/groups/app%3Aroom/:send?excluded={id}");
    assert_eq!(s.send_json(&path, json!("excluded")).await, 202);
    nothing_before_marker(&s, &id, &mut socket).await;
    s.stop().await;
}

// ------------------------------------------------------------------ membership

#[tokio::test]
async fn connections_and_users_join_and_leave_groups() {
    let s = server().await;
    let (id, mut socket) = s.signalr(None).await;
    let (_, mut first) = s.signalr(Some("bob")).await;
    let (_, mut second) = s.signalr(Some("bob")).await;
    let member = format!("/api/hubs/app/groups/app%3Aroom%3A1/connections/{id}");
    let send = "/api/hubs/app/groups/app%3Aroom%3A1/:send";

    // A private channel: the server's to join.
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/groups/app%3Aroom%3A1", None)
            .await
            .0,
        404
    );
    assert_eq!(s.call("PUT", &member, None).await.0, 200);
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/groups/app%3Aroom%3A1", None)
            .await
            .0,
        200
    );
    assert_eq!(s.send_json(send, json!("in")).await, 202);
    assert_eq!(next_channel_message(&mut socket).await["data"], "in");
    let (status, list) = s
        .call(
            "GET",
            "/api/hubs/app/groups/app%3Aroom%3A1/connections",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap(),
        json!({"value": [{"connectionId": id}]})
    );
    assert_eq!(s.call("DELETE", &member, None).await.0, 204);
    assert_eq!(s.send_json(send, json!("out")).await, 202);
    nothing_before_marker(&s, &id, &mut socket).await;

    // Every connection of a user.
    let user_group = "/api/hubs/app/users/bob/groups/app%3Abobs";
    assert_eq!(s.call("PUT", user_group, None).await.0, 200);
    let send = "/api/hubs/app/groups/app%3Abobs/:send";
    assert_eq!(s.send_json(send, json!("bobs")).await, 202);
    assert_eq!(next_channel_message(&mut first).await["data"], "bobs");
    assert_eq!(next_channel_message(&mut second).await["data"], "bobs");
    let (_, list) = s
        .call(
            "GET",
            "/api/hubs/app/groups/app%3Abobs/connections?maxpagesize=1",
            None,
        )
        .await;
    let page: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    assert_eq!(page["value"][0]["userId"], "bob");
    let next = page["nextLink"].as_str().expect("a next link");
    let next = next.strip_prefix(&s.origin).unwrap();
    let (_, list) = s.call("GET", next, None).await;
    let page: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    assert!(page.get("nextLink").is_none(), "{page}");

    assert_eq!(s.call("DELETE", user_group, None).await.0, 204);
    assert_eq!(s.send_json(send, json!("gone")).await, 202);
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/groups/app%3Abobs", None)
            .await
            .0,
        404
    );
    assert_eq!(s.call("PUT", user_group, None).await.0, 200);
    assert_eq!(
        s.call("DELETE", "/api/hubs/app/users/bob/groups", None)
            .await
            .0,
        204
    );
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/groups/app%3Abobs", None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call("PUT", "/api/hubs/app/users/nobody/groups/app%3Abobs", None)
            .await
            .0,
        404
    );

    // A connection out of every group at once.
    for group in ["app%3Aa", "app%3Ab"] {
        let path = format!("/api/hubs/app/groups/{group}/connections/{id}");
        assert_eq!(s.call("PUT", &path, None).await.0, 200);
    }
    let path = format!("/api/hubs/app/connections/{id}/groups");
    assert_eq!(s.call("DELETE", &path, None).await.0, 204);
    for group in ["app%3Aa", "app%3Ab"] {
        let path = format!("/api/hubs/app/groups/{group}");
        assert_eq!(s.call("HEAD", &path, None).await.0, 404);
    }
    s.stop().await;
}

// ------------------------------------------------------------------ filters

#[tokio::test]
async fn filters_select_connections_by_user_id_and_group() {
    let s = server().await;
    let (a_id, mut a) = s.signalr(Some("filter-a")).await;
    let (b_id, mut b) = s.signalr(Some("filter-b")).await;
    let join = |id: &str| format!("/api/hubs/app/groups/app%3Avip/connections/{id}");
    assert_eq!(s.call("PUT", &join(&b_id), None).await.0, 200);

    // `userId eq 'filter-a'`, as the SDK's odata helper writes it.
    let path = "/api/hubs/app/:send?filter=userId%20eq%20%27filter-a%27";
    assert_eq!(s.send_json(path, json!("only a")).await, 202);
    assert_eq!(next_channel_message(&mut a).await["data"], "only a");
    nothing_before_marker(&s, &b_id, &mut b).await;
    let path = "/api/hubs/app/:send?filter=%27app%3Avip%27%20in%20groups";
    assert_eq!(s.send_json(path, json!("vips")).await, 202);
    assert_eq!(next_channel_message(&mut b).await["data"], "vips");
    nothing_before_marker(&s, &a_id, &mut a).await;

    // Within a group, and the bulk join of the connections a filter selects.
    let path = "/api/hubs/app/groups/app%3Avip/:send?filter=not%20(userId%20eq%20%27filter-b%27)";
    assert_eq!(s.send_json(path, json!("nobody")).await, 202);
    nothing_before_marker(&s, &b_id, &mut b).await;
    let body = json!({"groups": ["app:vip", "app:more"], "filter": "userId eq 'filter-a'"});
    assert_eq!(s.send_json("/api/hubs/app/:addToGroups", body).await, 200);
    assert_eq!(
        s.send_json("/api/hubs/app/groups/app%3Amore/:send", json!("more"))
            .await,
        202
    );
    assert_eq!(next_channel_message(&mut a).await["data"], "more");
    let body = json!({"groups": ["app:vip"], "filter": "connectionId ne 'nobody'"});
    assert_eq!(
        s.send_json("/api/hubs/app/:removeFromGroups", body).await,
        200
    );
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/groups/app%3Avip", None)
            .await
            .0,
        404
    );
    s.stop().await;
}

// ------------------------------------------------------------------ close and existence

#[tokio::test]
async fn closes_and_existence_checks() {
    let s = server().await;
    let (id, mut socket) = s.signalr(Some("carol")).await;
    assert_eq!(
        s.call("HEAD", &format!("/api/hubs/app/connections/{id}"), None)
            .await
            .0,
        200
    );
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/connections/nope", None)
            .await
            .0,
        404
    );
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/users/carol", None).await.0,
        200
    );
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/users/dave", None).await.0,
        404
    );

    let path = format!("/api/hubs/app/connections/{id}?reason=maintenance");
    assert_eq!(s.call("DELETE", &path, None).await.0, 204);
    let close = expect_close(&mut socket).await;
    assert_eq!(close["error"], "maintenance");
    assert_eq!(
        s.call("DELETE", "/api/hubs/app/connections/nope", None)
            .await
            .0,
        204
    );

    // A user's connections, a group's, everyone's but the excluded.
    let (_, mut user) = s.signalr(Some("carol")).await;
    assert_eq!(
        s.call("POST", "/api/hubs/app/users/carol/:closeConnections", None)
            .await
            .0,
        204
    );
    expect_close(&mut user).await;
    let (member_id, mut member) = s.signalr(None).await;
    let path = format!("/api/hubs/app/groups/app%3Aroom/connections/{member_id}");
    assert_eq!(s.call("PUT", &path, None).await.0, 200);
    assert_eq!(
        s.call(
            "POST",
            "/api/hubs/app/groups/app%3Aroom/:closeConnections",
            None
        )
        .await
        .0,
        204
    );
    expect_close(&mut member).await;
    let (kept_id, mut kept) = s.signalr(None).await;
    let (_, mut closed) = s.signalr(None).await;
    let path = format!("/api/hubs/app/:closeConnections?excluded={kept_id}&reason=all");
    assert_eq!(s.call("POST", &path, None).await.0, 204);
    assert_eq!(expect_close(&mut closed).await["error"], "all");
    nothing_before_marker(&s, &kept_id, &mut kept).await;
    s.stop().await;
}

// ------------------------------------------------------------------ tokens

#[tokio::test]
async fn generate_token_signs_a_client_token_for_the_hub() {
    let s = server().await;
    let path = "/api/hubs/app/:generateToken?userId=erin&role=webpubsub.joinLeaveGroup&role=webpubsub.sendToGroup&group=app%3Aa&group=app%3Ab&minutesToExpire=5";
    let (status, body) = s.call("POST", path, None).await;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[format!("{}/client/hubs/app", s.origin)]);
    let claims = jsonwebtoken::decode::<Value>(
        &token,
        &DecodingKey::from_secret(KEY.as_bytes()),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims["sub"], "erin");
    assert_eq!(
        claims["role"],
        json!(["webpubsub.joinLeaveGroup", "webpubsub.sendToGroup"])
    );
    assert_eq!(claims["webpubsub.group"], json!(["app:a", "app:b"]));
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 300);
    s.stop().await;
}

#[tokio::test]
async fn a_generated_token_opens_the_client_endpoint_and_rest_sends_reach_it() {
    let s = server().await;
    let path = "/api/hubs/app/:generateToken?userId=frank&group=app%3Ajoined";
    let (status, body) = s.call("POST", path, None).await;
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!(
        "{}/client/hubs/app?access_token={token}",
        s.origin.replacen("http", "ws", 1)
    );
    let (id, mut socket) = webpubsub(&url).await;
    assert_eq!(
        s.call("HEAD", "/api/hubs/app/users/frank", None).await.0,
        200
    );

    assert_eq!(
        s.send_json("/api/hubs/app/users/frank/:send", json!({"u": 1}))
            .await,
        202
    );
    assert_eq!(
        next_webpubsub(&mut socket).await,
        json!({"type": "message", "from": "server", "dataType": "json", "data": {"u": 1}})
    );
    let text = Some(("text/plain", b"joined".to_vec()));
    let (status, _) = s
        .call("POST", "/api/hubs/app/groups/app%3Ajoined/:send", text)
        .await;
    assert_eq!(status, 202);
    let got = next_webpubsub(&mut socket).await;
    assert_eq!(
        (&got["from"], &got["group"]),
        (&json!("group"), &json!("app:joined"))
    );
    assert_eq!(
        (&got["dataType"], &got["data"]),
        (&json!("text"), &json!("joined"))
    );

    let path = format!("/api/hubs/app/connections/{id}?reason=done");
    assert_eq!(s.call("DELETE", &path, None).await.0, 204);
    assert_eq!(
        next_webpubsub(&mut socket).await,
        json!({"type": "system", "event": "disconnected", "message": "done"})
    );
    s.stop().await;
}
