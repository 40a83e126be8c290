//! The hub crate as a library, as the official client's functional-test hub (`TestHub.cs`)
//! uses ASP.NET Core: detailed errors, streaming methods that fail before their first item,
//! connection lifecycle hooks, the connecting request in `Caller`, case-insensitive hub paths.

mod support;

use futures_util::stream;
use hub::{Caller, HubError, HubMethods, HubOptions, HubServer};
use negotiate::Identity;
use serde_json::{json, Value};
use support::{serve, Client};

fn test_hub() -> HubMethods {
    HubMethods::new()
        .method("ThrowException", |_: Caller, (message,): (String,)| async move {
            Err::<(), _>(HubError::exception("InvalidOperationException", message))
        })
        .method("Add", |_: Caller, (a, b): (i64, i64)| async move {
            Ok::<_, HubError>(a + b)
        })
        .try_stream("StreamThrowException", |_: Caller, (message,): (String,)| async move {
            Err::<stream::Empty<Result<i32, HubError>>, _>(HubError::exception(
                "InvalidOperationException",
                message,
            ))
        })
        .try_stream("Stream", |_: Caller, (): ()| async move {
            Ok::<_, HubError>(stream::iter(["a", "b", "c"].map(Ok::<_, HubError>)))
        })
        .stream("FailingItem", |_: Caller, (): ()| {
            stream::iter([Err::<i32, _>(HubError::exception("InvalidOperationException", "late"))])
        })
        .method("GetActiveTransportName", |caller: Caller, (): ()| async move {
            Ok::<_, HubError>(caller.transport().name())
        })
        .method("GetHeader", |caller: Caller, (name,): (String,)| async move {
            Ok::<_, HubError>(caller.header(&name).map(str::to_owned))
        })
        .method("GetCookie", |caller: Caller, (name,): (String,)| async move {
            Ok::<_, HubError>(caller.cookie(&name))
        })
        .method("GetQuery", |caller: Caller, (name,): (String,)| async move {
            Ok::<_, HubError>(caller.query().get(&name).map(str::to_owned))
        })
        .method("GetUser", |caller: Caller, (): ()| async move {
            Ok::<_, HubError>(caller.identity.user_id.as_deref().map(str::to_owned))
        })
        .method("CloseMe", |caller: Caller, (message,): (String,)| async move {
            caller.close(Some(HubError::Refused(message)));
            Ok::<_, HubError>("closing")
        })
}

async fn server(detailed: bool) -> (HubServer, String) {
    let hub = HubServer::builder(test_hub())
        .options(HubOptions {
            enable_detailed_errors: detailed,
            ..HubOptions::default()
        })
        // The bearer token is the user's name: enough to show the user reaches `Caller`.
        .authenticate(|credentials| {
            Ok(Identity {
                user_id: credentials.bearer.as_deref().map(Into::into),
                ..Identity::anonymous()
            })
        })
        .build();
    let origin = serve(&hub, "/testHub").await;
    (hub, format!("ws://{origin}/testHub"))
}

#[tokio::test]
async fn detailed_errors_show_the_exception_only_when_enabled() {
    let (_hub, url) = server(false).await;
    let mut client = Client::connect(&url, &[]).await;
    let completion = client
        .invoke("ThrowException", json!(["An error occurred."]))
        .await;
    assert_eq!(
        completion["error"],
        "An unexpected error occurred invoking 'ThrowException' on the server."
    );
    let bad = client.invoke("Add", json!(["x", 1])).await;
    assert_eq!(
        bad["error"],
        "Failed to invoke 'Add' due to an error on the server."
    );

    let (_hub, url) = server(true).await;
    let mut client = Client::connect(&url, &[]).await;
    let completion = client
        .invoke("ThrowException", json!(["An error occurred."]))
        .await;
    assert_eq!(
        completion["error"],
        "An unexpected error occurred invoking 'ThrowException' on the server. InvalidOperationException: An error occurred."
    );
    let bad = client.invoke("Add", json!(["x", 1])).await;
    assert_eq!(
        bad["error"],
        "Failed to invoke 'Add' due to an error on the server. InvalidDataException: Error binding arguments. Make sure that the types of the provided values match the types of the hub method being invoked."
    );
}

async fn stream(client: &mut Client, target: &str, arguments: Value) -> Vec<Value> {
    client
        .send(json!({"type": 4, "invocationId": "7", "target": target, "arguments": arguments}))
        .await;
    let mut messages = Vec::new();
    loop {
        let message = client.next().await;
        let done = message["type"] != 2;
        messages.push(message);
        if done {
            return messages;
        }
    }
}

#[tokio::test]
async fn a_stream_failing_before_its_first_item_ends_as_a_failed_invocation() {
    for (detailed, expected) in [
        (false, "An unexpected error occurred invoking 'StreamThrowException' on the server."),
        (true, "An unexpected error occurred invoking 'StreamThrowException' on the server. InvalidOperationException: An error occurred."),
    ] {
        let (_hub, url) = server(detailed).await;
        let mut client = Client::connect(&url, &[]).await;
        let messages = stream(&mut client, "StreamThrowException", json!(["An error occurred."])).await;
        assert_eq!(messages, vec![json!({"type": 3, "invocationId": "7", "error": expected})]);
        // An item's failure keeps the streaming text.
        let late = stream(&mut client, "FailingItem", json!([])).await;
        let streaming = if detailed {
            "An error occurred on the server while streaming results. InvalidOperationException: late"
        } else {
            "An error occurred on the server while streaming results."
        };
        assert_eq!(late, vec![json!({"type": 3, "invocationId": "7", "error": streaming})]);
        let items = stream(&mut client, "Stream", json!([])).await;
        let items: Vec<_> = items.iter().map(|m| m["item"].clone()).collect();
        assert_eq!(items, vec![json!("a"), json!("b"), json!("c"), Value::Null]);
    }
}

#[tokio::test]
async fn on_connected_may_refuse_the_connection_with_its_error() {
    let disconnected = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = disconnected.clone();
    let hub = HubServer::builder(test_hub())
        .on_connected(|caller: Caller| async move {
            match caller.query().get("name") {
                Some("refused") => Err(HubError::Refused("not today".into())),
                _ => Ok(()),
            }
        })
        .on_disconnect(move |_| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .build();
    let origin = serve(&hub, "/testHub").await;
    let mut refused = Client::connect(&format!("ws://{origin}/testHub?name=refused"), &[]).await;
    assert_eq!(
        refused.next().await,
        json!({"type": 7, "error": "Connection closed with an error. HubException: not today"})
    );
    assert_eq!(refused.next().await, Value::Null);
    let mut welcome = Client::connect(&format!("ws://{origin}/testHub?name=ok"), &[]).await;
    assert_eq!(welcome.invoke("Add", json!([1, 2])).await["result"], 3);
    // The refused connection's hooks ran (they run after its socket closed, so wait a little).
    for _ in 0..100 {
        if disconnected.load(std::sync::atomic::Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(disconnected.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_connection_can_be_closed_with_an_error_from_a_method_or_from_outside() {
    let (hub, url) = server(false).await;
    let mut client = Client::connect(&url, &[]).await;
    assert_eq!(
        client.invoke("CloseMe", json!(["bye"])).await["result"],
        "closing"
    );
    assert_eq!(
        client.next().await,
        json!({"type": 7, "error": "Connection closed with an error. HubException: bye"})
    );
    assert_eq!(client.next().await, Value::Null);

    let mut client = Client::connect(&url, &[]).await;
    let id = client.invoke("GetQuery", json!(["id"])).await;
    assert_eq!(
        id["result"],
        Value::Null,
        "no negotiate, so no id in the query"
    );
    // Its id, as the server knows it: the only connection left.
    let ids = hub.connection_ids();
    assert_eq!(ids.len(), 1);
    assert!(hub.close_connection(
        &ids[0],
        Some(HubError::exception("TimeoutException", "idle"))
    ));
    assert_eq!(
        client.next().await,
        json!({"type": 7, "error": "Connection closed with an error."})
    );
    assert!(!hub.close_connection("no-such-connection", None));
}

#[tokio::test]
async fn caller_sees_the_connecting_request_the_transport_and_the_user() {
    let (_hub, url) = server(false).await;
    let mut client = Client::connect(
        &format!("{url}?numRedirects=3"),
        &[
            ("cookie", "testCookie=testValue; other=x"),
            ("x-custom", "yes"),
            ("authorization", "Bearer alice"),
        ],
    )
    .await;
    let result = |message: Value| message["result"].clone();
    assert_eq!(
        result(client.invoke("GetActiveTransportName", json!([])).await),
        "WebSockets"
    );
    assert_eq!(
        result(client.invoke("GetHeader", json!(["X-Custom"])).await),
        "yes"
    );
    assert_eq!(
        result(client.invoke("GetCookie", json!(["testCookie"])).await),
        "testValue"
    );
    assert_eq!(
        result(client.invoke("GetCookie", json!(["missing"])).await),
        Value::Null
    );
    assert_eq!(
        result(client.invoke("GetQuery", json!(["NUMREDIRECTS"])).await),
        "3"
    );
    assert_eq!(result(client.invoke("GetUser", json!([])).await), "alice");
}

#[tokio::test]
async fn hub_paths_are_matched_case_insensitively() {
    let (_hub, url) = server(false).await;
    for spelling in ["/testhub", "/TESTHUB", "/testHub"] {
        let url = url.replace("/testHub", spelling);
        let mut client = Client::connect(&url, &[]).await;
        assert_eq!(client.invoke("add", json!([2, 3])).await["result"], 5);
    }
}
