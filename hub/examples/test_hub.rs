//! The hub the official TypeScript client's functional tests expect (`TestHub.cs` in
//! dotnet/aspnetcore's `src/SignalR/clients/ts/FunctionalTests`), written with the `hub`
//! crate's public API only, and using every library feature: detailed errors, a streaming
//! method that fails before its first item, `on_connected` (which refuses `?refuse=<text>`),
//! closing a connection with an error, the connecting request in `Caller`, and
//! case-insensitive hub paths.
//!
//! ```sh
//! cargo run -p hub --example test_hub -- 127.0.0.1:5000
//! ```
//! Then `withUrl("http://127.0.0.1:5000/testhub")` (any case) from `@microsoft/signalr`.

use futures_util::{stream, StreamExt};
use hub::{
    Caller, HubError, HubMethods, HubOptions, HubPaths, HubServer, HubValue, Timestamp,
    UploadStream,
};
use serde_json::{json, Value};
use tower::ServiceExt as _;

/// Tells the client its `InfiniteStream` was cancelled, when the server drops the stream.
struct OnCancel(Caller);

impl Drop for OnCancel {
    fn drop(&mut self) {
        self.0.send("StreamCanceled", vec![]);
    }
}

fn send_to_caller(caller: &Caller, target: &'static str, argument: Value) {
    caller.send(target, vec![argument]);
}

fn methods() -> HubMethods {
    HubMethods::new()
        .method("Echo", |_: Caller, (message,): (String,)| async move {
            Ok::<_, HubError>(message)
        })
        .method("GetCallerConnectionId", |caller: Caller, (): ()| async move {
            Ok::<_, HubError>(caller.connection_id.to_string())
        })
        .method("GetNumRedirects", |caller: Caller, (): ()| async move {
            let redirects = caller.query().get("numRedirects").map(str::parse::<i32>);
            match redirects {
                Some(Ok(n)) => Ok(n),
                _ => Err(HubError::exception("FormatException", "numRedirects is not a number")),
            }
        })
        .method("ThrowException", |_: Caller, (message,): (String,)| async move {
            Err::<(), _>(HubError::exception("InvalidOperationException", message))
        })
        .method("InvokeWithString", |caller: Caller, (message,): (String,)| async move {
            send_to_caller(&caller, "Message", json!(message));
            Ok::<_, HubError>(())
        })
        .method("SendCustomObject", |caller: Caller, (object,): (Value,)| async move {
            send_to_caller(&caller, "CustomObject", object);
            Ok::<_, HubError>(())
        })
        .stream("Stream", |_: Caller, (): ()| {
            stream::iter(["a", "b", "c"].map(Ok::<_, HubError>))
        })
        .stream("InfiniteStream", |caller: Caller, (): ()| {
            let guard = OnCancel(caller);
            stream::pending::<Result<String, HubError>>().map(move |item| {
                let _keep = &guard;
                item
            })
        })
        .upload("StreamingConcat", 1, |_: Caller, (): (), mut streams: Vec<UploadStream>| async move {
            let mut text = String::new();
            if let Some(items) = streams.first_mut() {
                while let Some(item) = items.next().await {
                    match item.map_err(HubError::Refused)? {
                        HubValue::String(s) => text.push_str(&s),
                        other => text.push_str(&other.to_string()),
                    }
                }
            }
            Ok::<_, HubError>(text)
        })
        .stream("EmptyStream", |_: Caller, (): ()| stream::empty::<Result<i32, HubError>>())
        // Fails before its stream exists: the client gets the failed-invocation text.
        .try_stream("StreamThrowException", |_: Caller, (message,): (String,)| async move {
            Err::<stream::Empty<Result<String, HubError>>, _>(HubError::exception(
                "InvalidOperationException",
                message,
            ))
        })
        .method("GetActiveTransportName", |caller: Caller, (): ()| async move {
            Ok::<_, HubError>(caller.transport().name())
        })
        // A `HubValue` keeps MessagePack's binary and timestamps, as .NET's `byte[]` and
        // `DateTime` fields of `ComplexObject` do.
        .method("EchoComplexObject", |_: Caller, (object,): (HubValue,)| async move {
            Ok::<_, HubError>(object)
        })
        // The .NET object: JSON clients get the bytes in base64 and the date in ISO 8601,
        // MessagePack clients `bin` and a timestamp.
        .method("SendComplexObject", |_: Caller, (): ()| async move {
            let mut object = hub::protocol::HubMap::new();
            object.insert("byteArray".into(), HubValue::from(vec![1u8, 2, 3]));
            object.insert(
                "dateTime".into(),
                Timestamp::new(946_684_800, 0).map_or(HubValue::Null, HubValue::Timestamp),
            );
            object.insert("guid".into(), "00010203-0405-0607-0706-050403020100".into());
            object.insert("intArray".into(), HubValue::from(json!([1, 2, 3])));
            object.insert("string".into(), "hello world".into());
            Ok::<_, HubError>(HubValue::Map(object))
        })
        .method("GetContentTypeHeader", |caller: Caller, (): ()| async move {
            Ok::<_, HubError>(caller.header("content-type").map(str::to_owned))
        })
        .method("GetCookie", |caller: Caller, (name,): (String,)| async move {
            Ok::<_, HubError>(caller.cookie(&name))
        })
        // Not in TestHub.cs: the connection closed with an error from a method.
        .method("CloseWithError", |caller: Caller, (message,): (String,)| async move {
            caller.close(Some(HubError::Refused(message)));
            Ok::<_, HubError>(())
        })
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:5000".into());
    let hub = HubServer::builder(methods())
        .protocol(std::sync::Arc::new(hub::protocol::MessagePackHubProtocol))
        .options(HubOptions {
            enable_detailed_errors: true,
            ..HubOptions::default()
        })
        .on_connected(|caller: Caller| async move {
            match caller.query().get("refuse") {
                Some(reason) => Err(HubError::Refused(reason.to_owned())),
                None => Ok(()),
            }
        })
        .build();
    let paths = HubPaths::new(["/testHub"]);
    let router = axum::Router::new().nest("/testHub", hub.endpoint(Default::default()));
    let app = router.map_request(move |request| paths.rewrite(request));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "test hub listening on http://{}/testHub",
        listener.local_addr()?
    );
    let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
    axum::serve(listener, service).await
}
