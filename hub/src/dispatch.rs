//! Hub methods: registered by the application as plain async functions, found by name
//! case-insensitively (as .NET does), their arguments bound from the invocation's values.
//!
//! ```
//! use hub::{Caller, HubError, HubMethods};
//!
//! let methods = HubMethods::new()
//!     .method("Echo", |_caller: Caller, (text,): (String,)| async move {
//!         Ok::<_, HubError>(text)
//!     })
//!     .method("Add", |_caller: Caller, (a, b): (i64, Option<i64>)| async move {
//!         Ok::<_, HubError>(a + b.unwrap_or(0))
//!     })
//!     // Server-to-client: the client calls `connection.stream("Count", 3)`.
//!     .stream("Count", |_caller: Caller, (n,): (u32,)| {
//!         futures_util::stream::iter((0..n).map(Ok::<_, HubError>))
//!     })
//!     // Client-to-server: `connection.send("Sum", subject)`; the stream comes after the arguments.
//!     .upload("Sum", 1, |_caller: Caller, (): (), mut streams| async move {
//!         let mut total = 0;
//!         while let Some(Ok(item)) = streams[0].next().await {
//!             total += item.as_i64().unwrap_or(0);
//!         }
//!         Ok::<_, HubError>(total)
//!     });
//! assert!(methods.contains("echo") && methods.contains("count") && methods.contains("SUM"));
//! ```

pub use crate::caller::Caller;
pub use crate::errors::HubError;
use crate::errors::{binding_error, invocation_error};
use crate::protocol::HubValue;
use futures_util::{Stream, StreamExt};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use tokio::sync::mpsc;

/// The invocation's arguments did not fit the method's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindError;

/// Parameters a hub method can take: tuples of deserialisable values, each deserialised from
/// its [`HubValue`] (so `Vec<u8>`, `Bytes` and `chrono::DateTime` bind to MessagePack binary
/// and timestamps, and to their JSON strings; a `HubValue` parameter gets the value as sent).
/// Missing trailing arguments bind as `null`, so trailing `Option` parameters may be omitted by
/// the client.
pub trait FromArguments: Sized + Send + 'static {
    fn from_arguments(arguments: Vec<HubValue>) -> Result<Self, BindError>;
}

impl FromArguments for () {
    fn from_arguments(arguments: Vec<HubValue>) -> Result<Self, BindError> {
        arguments.is_empty().then_some(()).ok_or(BindError)
    }
}

macro_rules! tuple_arguments {
    ($count:literal; $($name:ident),+) => {
        impl<$($name: DeserializeOwned + Send + 'static),+> FromArguments for ($($name,)+) {
            fn from_arguments(arguments: Vec<HubValue>) -> Result<Self, BindError> {
                if arguments.len() > $count {
                    return Err(BindError);
                }
                let mut values = arguments.into_iter();
                Ok(($(
                    $name::deserialize(values.next().unwrap_or_default()).map_err(|_| BindError)?,
                )+))
            }
        }
    };
}

tuple_arguments!(1; A);
tuple_arguments!(2; A, B);
tuple_arguments!(3; A, B, C);
tuple_arguments!(4; A, B, C, D);

type MethodFuture = Pin<Box<dyn Future<Output = Result<HubValue, HubError>> + Send>>;

/// The items a streaming method produces; an `Err` ends the stream with an error Completion.
pub type ItemStream = Pin<Box<dyn Stream<Item = Result<HubValue, HubError>> + Send>>;

/// A streaming method starting: `Err` is a failure before the first item, which ends the
/// invocation with the Completion of a failed invocation (not of a failed stream), as .NET does
/// when a streaming method throws.
pub(crate) type OpeningStream = Pin<Box<dyn Future<Output = Result<ItemStream, HubError>> + Send>>;

/// How many items of one client-to-server stream wait before the connection stops reading
/// (.NET's `StreamBufferCapacity`).
pub const UPLOAD_BUFFER_ITEMS: usize = 10;

/// One client-to-server stream, as a parameter of an upload method. It ends when the client
/// completes it; a completion with an error yields `Err(text)` last.
pub struct UploadStream {
    items: mpsc::Receiver<Result<HubValue, String>>,
}

impl UploadStream {
    pub(crate) fn channel() -> (mpsc::Sender<Result<HubValue, String>>, Self) {
        let (sender, items) = mpsc::channel(UPLOAD_BUFFER_ITEMS);
        (sender, Self { items })
    }

    pub async fn next(&mut self) -> Option<Result<HubValue, String>> {
        self.items.recv().await
    }
}

trait Unary: Send + Sync {
    fn call(&self, caller: Caller, arguments: Vec<HubValue>) -> Result<MethodFuture, BindError>;
}

trait Streaming: Send + Sync {
    fn call(&self, caller: Caller, arguments: Vec<HubValue>) -> Result<OpeningStream, BindError>;
}

trait Uploading: Send + Sync {
    fn call(
        &self,
        caller: Caller,
        arguments: Vec<HubValue>,
        streams: Vec<UploadStream>,
    ) -> Result<MethodFuture, BindError>;
}

struct Function<F, A> {
    function: F,
    _arguments: PhantomData<fn(A)>,
}

impl<F, A> Function<F, A> {
    fn new(function: F) -> Self {
        Self {
            function,
            _arguments: PhantomData,
        }
    }
}

/// A result or stream item as sent: `Vec<u8>` and `Bytes` as binary, `Timestamp` as a timestamp.
fn to_value<R: Serialize>(value: R) -> Result<HubValue, HubError> {
    HubValue::from_serialize(&value).map_err(|e| HubError::Internal(e.to_string()))
}

impl<F, A, Fut, R> Unary for Function<F, A>
where
    F: Fn(Caller, A) -> Fut + Send + Sync,
    A: FromArguments,
    Fut: Future<Output = Result<R, HubError>> + Send + 'static,
    R: Serialize,
{
    fn call(&self, caller: Caller, arguments: Vec<HubValue>) -> Result<MethodFuture, BindError> {
        let running = (self.function)(caller, A::from_arguments(arguments)?);
        Ok(Box::pin(async move { to_value(running.await?) }))
    }
}

fn item_stream<S, T>(items: S) -> ItemStream
where
    S: Stream<Item = Result<T, HubError>> + Send + 'static,
    T: Serialize,
{
    Box::pin(items.map(|item| item.and_then(to_value)))
}

impl<F, A, S, T> Streaming for Function<F, A>
where
    F: Fn(Caller, A) -> S + Send + Sync,
    A: FromArguments,
    S: Stream<Item = Result<T, HubError>> + Send + 'static,
    T: Serialize,
{
    fn call(&self, caller: Caller, arguments: Vec<HubValue>) -> Result<OpeningStream, BindError> {
        let items = item_stream((self.function)(caller, A::from_arguments(arguments)?));
        Ok(Box::pin(std::future::ready(Ok(items))))
    }
}

/// A streaming method that may fail before its stream exists (`try_stream`).
struct Opening<F, A>(Function<F, A>);

impl<F, A, Fut, S, T> Streaming for Opening<F, A>
where
    F: Fn(Caller, A) -> Fut + Send + Sync,
    A: FromArguments,
    Fut: Future<Output = Result<S, HubError>> + Send + 'static,
    S: Stream<Item = Result<T, HubError>> + Send + 'static,
    T: Serialize,
{
    fn call(&self, caller: Caller, arguments: Vec<HubValue>) -> Result<OpeningStream, BindError> {
        let opening = (self.0.function)(caller, A::from_arguments(arguments)?);
        Ok(Box::pin(async move { opening.await.map(item_stream) }))
    }
}

impl<F, A, Fut, R> Uploading for Function<F, A>
where
    F: Fn(Caller, A, Vec<UploadStream>) -> Fut + Send + Sync,
    A: FromArguments,
    Fut: Future<Output = Result<R, HubError>> + Send + 'static,
    R: Serialize,
{
    fn call(
        &self,
        caller: Caller,
        arguments: Vec<HubValue>,
        streams: Vec<UploadStream>,
    ) -> Result<MethodFuture, BindError> {
        let running = (self.function)(caller, A::from_arguments(arguments)?, streams);
        Ok(Box::pin(async move { to_value(running.await?) }))
    }
}

enum Kind {
    Unary(Box<dyn Unary>),
    Streaming(Box<dyn Streaming>),
    Uploading {
        streams: usize,
        method: Box<dyn Uploading>,
    },
}

/// A method started by an invocation.
pub(crate) enum Started {
    /// Await it in order with the connection's other invocations.
    Unary(MethodFuture),
    /// Runs beside the connection, which feeds `senders` from the client's StreamItems.
    Uploading(MethodFuture, Vec<mpsc::Sender<Result<HubValue, String>>>),
    /// Server-to-client items (for a StreamInvocation), once the method has opened them.
    Streaming(OpeningStream),
}

/// The methods a hub serves.
#[derive(Default)]
pub struct HubMethods {
    methods: Vec<(&'static str, Kind)>,
}

impl HubMethods {
    pub fn new() -> Self {
        Self::default()
    }

    fn add(mut self, name: &'static str, kind: Kind) -> Self {
        debug_assert!(!self.contains(name), "hub method {name} registered twice");
        self.methods.push((name, kind));
        self
    }

    /// Register `name`. A method returning `()` completes with `result: null`, as .NET does.
    pub fn method<F, A, Fut, R>(self, name: &'static str, function: F) -> Self
    where
        F: Fn(Caller, A) -> Fut + Send + Sync + 'static,
        A: FromArguments,
        Fut: Future<Output = Result<R, HubError>> + Send + 'static,
        R: Serialize + 'static,
    {
        self.add(name, Kind::Unary(Box::new(Function::new(function))))
    }

    /// Register a server-to-client streaming method (invoked with a StreamInvocation): each
    /// item of the returned stream becomes a StreamItem; its end, a Completion. The client's
    /// CancelInvocation drops the stream.
    pub fn stream<F, A, S, T>(self, name: &'static str, function: F) -> Self
    where
        F: Fn(Caller, A) -> S + Send + Sync + 'static,
        A: FromArguments,
        S: Stream<Item = Result<T, HubError>> + Send + 'static,
        T: Serialize + 'static,
    {
        self.add(name, Kind::Streaming(Box::new(Function::new(function))))
    }

    /// Register a server-to-client streaming method that may fail before its first item
    /// (.NET's streaming method that throws): an `Err` from `function` ends the invocation with
    /// "An unexpected error occurred invoking '…'", where an `Err` item gives the streaming
    /// error text.
    pub fn try_stream<F, A, Fut, S, T>(self, name: &'static str, function: F) -> Self
    where
        F: Fn(Caller, A) -> Fut + Send + Sync + 'static,
        A: FromArguments,
        Fut: Future<Output = Result<S, HubError>> + Send + 'static,
        S: Stream<Item = Result<T, HubError>> + Send + 'static,
        T: Serialize + 'static,
    {
        self.add(
            name,
            Kind::Streaming(Box::new(Opening(Function::new(function)))),
        )
    }

    /// Register a method that takes `streams` client-to-server streams after its arguments.
    pub fn upload<F, A, Fut, R>(self, name: &'static str, streams: usize, function: F) -> Self
    where
        F: Fn(Caller, A, Vec<UploadStream>) -> Fut + Send + Sync + 'static,
        A: FromArguments,
        Fut: Future<Output = Result<R, HubError>> + Send + 'static,
        R: Serialize + 'static,
    {
        self.add(
            name,
            Kind::Uploading {
                streams,
                method: Box::new(Function::new(function)),
            },
        )
    }

    pub fn contains(&self, target: &str) -> bool {
        self.find(target).is_some()
    }

    fn find(&self, target: &str) -> Option<&Kind> {
        // A few methods: a scan without allocating beats lower-casing into a hash key.
        self.methods
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(target))
            .map(|(_, kind)| kind)
    }

    /// Start `target` for an Invocation (`streaming: false`) or a StreamInvocation, with
    /// `stream_count` client streams. `Err` is the Completion's error text, in .NET's words
    /// (with `detailed` errors, as `HubOptions::enable_detailed_errors` has them).
    pub(crate) fn start(
        &self,
        caller: Caller,
        target: &str,
        arguments: Vec<HubValue>,
        stream_count: usize,
        streaming: bool,
        detailed: bool,
    ) -> Result<Started, String> {
        let kind = self
            .find(target)
            .ok_or_else(|| format!("Unknown hub method '{target}'"))?;
        let bind_failed = |BindError| binding_error(target, detailed);
        let expected_streams = match kind {
            Kind::Uploading { streams, .. } => *streams,
            _ => 0,
        };
        match (kind, streaming) {
            (Kind::Streaming(_), false) => {
                return Err(format!("The client attempted to invoke the streaming '{target}' method with a non-streaming invocation."))
            }
            (Kind::Unary(_) | Kind::Uploading { .. }, true) => {
                return Err(format!("The client attempted to invoke the non-streaming '{target}' method with a streaming invocation."))
            }
            _ => {}
        }
        if stream_count != expected_streams {
            return Err(format!(
                "An unexpected error occurred invoking '{target}' on the server. HubException: Client sent {stream_count} stream(s), Hub method expects {expected_streams}."
            ));
        }
        match kind {
            Kind::Unary(method) => method
                .call(caller, arguments)
                .map(Started::Unary)
                .map_err(bind_failed),
            Kind::Streaming(method) => method
                .call(caller, arguments)
                .map(Started::Streaming)
                .map_err(bind_failed),
            Kind::Uploading { method, .. } => {
                let (senders, streams): (Vec<_>, Vec<_>) =
                    (0..stream_count).map(|_| UploadStream::channel()).unzip();
                method
                    .call(caller, arguments, streams)
                    .map(|running| Started::Uploading(running, senders))
                    .map_err(bind_failed)
            }
        }
    }

    /// Run a unary `target` to its end; `Err` is the Completion's error text.
    pub async fn invoke(
        &self,
        caller: Caller,
        target: &str,
        arguments: Vec<HubValue>,
    ) -> Result<HubValue, String> {
        match self.start(caller, target, arguments, 0, false, false)? {
            Started::Unary(running) | Started::Uploading(running, _) => running
                .await
                .map_err(|error| invocation_error(target, error, false)),
            Started::Streaming(_) => unreachable!("start refuses streaming methods here"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn args(values: Vec<serde_json::Value>) -> Vec<HubValue> {
        values.into_iter().map(HubValue::from).collect()
    }

    fn caller() -> Caller {
        Caller::for_tests()
    }

    fn methods() -> HubMethods {
        HubMethods::new()
            .method("Add", |_: Caller, (a, b): (i64, Option<i64>)| async move {
                Ok::<_, HubError>(a + b.unwrap_or(100))
            })
            .method("Nothing", |_: Caller, (): ()| async {
                Ok::<_, HubError>(())
            })
            .method("Refuse", |_: Caller, (): ()| async {
                Err::<(), _>(HubError::Refused("not here".into()))
            })
            .method("Break", |_: Caller, (): ()| async {
                Err::<(), _>(HubError::Internal("secret detail".into()))
            })
    }

    #[tokio::test]
    async fn names_are_case_insensitive_and_trailing_options_may_be_omitted() {
        let m = methods();
        assert_eq!(
            m.invoke(caller(), "add", args(vec![json!(1), json!(2)]))
                .await,
            Ok(HubValue::from(3))
        );
        assert_eq!(
            m.invoke(caller(), "ADD", args(vec![json!(1)])).await,
            Ok(HubValue::from(101))
        );
        assert_eq!(
            m.invoke(caller(), "nothing", vec![]).await,
            Ok(HubValue::Null)
        );
    }

    #[tokio::test]
    async fn errors_use_the_net_texts() {
        let m = methods();
        assert_eq!(
            m.invoke(caller(), "Missing", vec![]).await,
            Err("Unknown hub method 'Missing'".into())
        );
        for bad in [vec![], vec![json!("x")], vec![json!(1), json!(2), json!(3)]] {
            assert_eq!(
                m.invoke(caller(), "Add", args(bad)).await,
                Err("Failed to invoke 'Add' due to an error on the server.".into())
            );
        }
        assert_eq!(
            m.invoke(caller(), "Refuse", vec![]).await,
            Err("An unexpected error occurred invoking 'Refuse' on the server. HubException: not here".into())
        );
        let hidden = m.invoke(caller(), "Break", vec![]).await.unwrap_err();
        assert!(!hidden.contains("secret"));
    }
}
