//! Upstream events: what a Web PubSub connection does that the application hears about, sent
//! to `[webpubsub] event_handler` as CloudEvents over HTTP (the service's "event handler"), so
//! an Express app with `@azure/web-pubsub-express` handles them unchanged. With no handler
//! configured every event is acknowledged and dropped (a debug log line).
//!
//! `connect` and user events block their caller until the handler answers (at most
//! `event_timeout`); `connected` and `disconnected` are sent from background tasks, a bounded
//! number at once, `disconnected` always after the same connection's `connected`. A handler
//! is validated (abuse protection, `validation.rs`) before it gets any event. The connection
//! state a blocking event's answer sets (`ce-connectionState`) goes with every later event of
//! the connection; `disconnected` forgets it, so the endpoint calls `disconnected` for every
//! connection whose `connect` succeeded (as the service does).

mod cloudevent;
mod validation;
mod warnings;

pub use cloudevent::signature;

use super::WebPubSubConfig;
use bytes::Bytes;
use cloudevent::{Envelope, CONNECTION_STATE, JSON_UTF8};
use dashmap::DashMap;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::{StatusCode, Url};
use router::Payload;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use validation::Validator;
use warnings::{Kind, LogId, Warnings};

/// Who a connection is, as every upstream event names it.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub hub: Arc<str>,
    pub connection_id: Arc<str>,
    pub user_id: Option<Arc<str>>,
    /// The subprotocol the connection speaks.
    pub subprotocol: &'static str,
}

/// The blocking `connect` event: sent before the connection is accepted.
#[derive(Debug, Clone)]
pub struct ConnectRequest {
    pub context: ConnectionContext,
    /// The token's claims, each as a list of strings (the service's shape).
    pub claims: HashMap<String, Vec<String>>,
    pub query: HashMap<String, Vec<String>>,
    pub headers: HashMap<String, Vec<String>>,
    pub subprotocols: Vec<String>,
}

/// What the handler may change about a connecting client; `None` keeps the token's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectResponse {
    pub user_id: Option<String>,
    pub groups: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub subprotocol: Option<String>,
}

/// Why the handler refused a connection (the upgrade request gets the matching status).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConnectRefusal {
    #[error("the event handler refused the connection (400): {0}")]
    BadRequest(String),
    #[error("the event handler refused the connection (401): {0}")]
    Unauthorized(String),
    #[error("the event handler refused the connection (403): {0}")]
    Forbidden(String),
    #[error("the event handler failed: {0}")]
    Failed(String),
}

/// Why a user event got no answer: the client's ack says `InternalServerError` (the service
/// does not pass the handler's text on).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("the event handler failed: {0}")]
pub struct EventFailure(pub String);

/// The largest answer read from the handler (the service's limit): the reply becomes one
/// message to the caller.
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;
/// The most of a refusal's or error's body kept for the log and the refusal text.
const MAX_DETAIL_BYTES: usize = 1024;
/// The largest connection state kept; it goes back in a header of every later event, and
/// Node's default limit for all of a request's headers is 16 KiB.
const MAX_STATE_BYTES: usize = 8 * 1024;
/// `connected`/`disconnected` requests in flight at once.
const NOTIFY_CONCURRENCY: usize = 32;
/// `connected`/`disconnected` events waiting or in flight before new ones are dropped: a
/// handler that is slow or down must not grow memory without bound.
const MAX_QUEUED_NOTIFICATIONS: usize = 4096;
/// `WebHook-Request-Origin` until [`Upstream::with_origin`] names our public host.
pub const DEFAULT_ORIGIN: &str = "localhost";

#[derive(Clone)]
pub struct Upstream {
    inner: Arc<Inner>,
}

struct Inner {
    config: Arc<WebPubSubConfig>,
    /// `None`: no handler configured, or one that cannot be used (logged at start).
    handler: Option<Handler>,
    origin: String,
    warnings: Arc<Warnings>,
    /// Connections with a state or a `connected` event under way.
    connections: DashMap<Arc<str>, Tracked>,
    notify_permits: Arc<Semaphore>,
    queued: AtomicUsize,
}

struct Handler {
    url: Url,
    client: reqwest::Client,
    validator: Arc<Validator>,
}

#[derive(Default)]
struct Tracked {
    state: Option<HeaderValue>,
    /// The `connected` request, which `disconnected` waits for.
    connected: Option<JoinHandle<()>>,
}

/// Why an event did not get a usable answer.
#[derive(Debug, thiserror::Error)]
enum SendError {
    #[error("the event handler is not usable (see the log at start)")]
    NoHandler,
    #[error("the event handler does not allow deliveries from '{0}'")]
    NotAllowed(String),
    #[error("the event handler could not be reached: {0}")]
    Unreachable(String),
    #[error("the event handler did not answer within {0:?}")]
    Timeout(Duration),
    #[error("the event handler answered {0}: {1}")]
    Status(StatusCode, String),
    #[error("the event handler's answer is unusable: {0}")]
    BadReply(String),
}

struct Answer {
    content_type: Option<HeaderValue>,
    state: Option<HeaderValue>,
    body: Bytes,
}

/// A reqwest error with its causes ("error sending request" alone says little), without the
/// URL: a handler's query may hold its key (an Azure Functions `code=`).
pub(crate) fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `host[:port]` of a URL, or the text itself when it is not one.
fn origin_of(origin: &str) -> String {
    match Url::parse(origin) {
        Ok(url) if url.host_str().is_some() => {
            let host = url.host_str().unwrap_or_default();
            match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            }
        }
        _ => origin.trim().trim_end_matches('/').to_owned(),
    }
}

/// A handler URL for logs: no user info, no query (either may hold a secret).
pub(crate) fn shown_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn handler(config: &WebPubSubConfig, origin: &str) -> Option<Handler> {
    let raw = config.event_handler.as_deref()?;
    // The service's URL template: `{hub}` is our one hub (letters, digits, `_`: no escaping).
    let url = match Url::parse(&raw.replace("{hub}", &config.hub)) {
        Ok(url) => url,
        Err(error) => {
            tracing::error!(%error, "webpubsub.event_handler is not a URL; no events are sent");
            return None;
        }
    };
    if raw.contains("{event}") {
        tracing::warn!(
            event_handler = %shown_url(&url),
            "webpubsub.event_handler: the {{event}} template is not expanded; every event goes to this one URL"
        );
    }
    let client = reqwest::Client::builder()
        // A redirect would turn the POST into a GET elsewhere; the service does not follow.
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(config.event_timeout.min(Duration::from_secs(10)))
        // Below Node's 5 s keep-alive timeout, so a pooled connection is not reused just as
        // Express closes it (a POST on it would fail and must not be retried).
        .pool_idle_timeout(Duration::from_secs(4))
        .user_agent(concat!("rthub/", env!("CARGO_PKG_VERSION")))
        .build();
    match client {
        Ok(client) => Some(Handler {
            validator: Arc::new(Validator::new(url.clone(), origin.to_owned())),
            url,
            client,
        }),
        Err(error) => {
            tracing::error!(error = %describe(error), "the event handler's HTTP client could not be built; no events are sent");
            None
        }
    }
}

impl Upstream {
    pub fn new(config: Arc<WebPubSubConfig>) -> Self {
        Self::build(config, DEFAULT_ORIGIN.to_owned())
    }

    /// The host we say we are in `WebHook-Request-Origin` (what a handler's
    /// `allowedEndpoints` lists): our public URL, e.g. `https://rt.example.com`, or a bare
    /// `host[:port]`.
    pub fn with_origin(self, origin: &str) -> Self {
        Self::build(self.inner.config.clone(), origin_of(origin))
    }

    fn build(config: Arc<WebPubSubConfig>, origin: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                handler: handler(&config, &origin),
                config,
                origin,
                warnings: Arc::default(),
                connections: DashMap::new(),
                notify_permits: Arc::new(Semaphore::new(NOTIFY_CONCURRENCY)),
                queued: AtomicUsize::new(0),
            }),
        }
    }

    pub fn config(&self) -> &WebPubSubConfig {
        &self.inner.config
    }

    /// The `WebHook-Request-Origin` sent.
    pub fn origin(&self) -> &str {
        &self.inner.origin
    }

    /// The blocking `connect` event. `Ok(None)`: no handler takes it; accept as the token says.
    /// `Ok(Some(_))`: accepted, with what the handler changes (all `None` for a 204).
    pub async fn connect(
        &self,
        request: &ConnectRequest,
    ) -> Result<Option<ConnectResponse>, ConnectRefusal> {
        let inner = &self.inner;
        if !inner.config.forwards_system_event("connect") {
            return Ok(None);
        }
        let context = &request.context;
        let body = cloudevent::connect_body(request);
        let sent = inner
            .send(context, "sys.connect", "connect", None, JSON_UTF8, body)
            .await;
        match sent {
            Ok(answer) => {
                let response = cloudevent::connect_reply(&answer.body).map_err(|error| {
                    inner.report(&SendError::BadReply(error.clone()), context, "connect");
                    ConnectRefusal::Failed(error)
                })?;
                inner.keep_state(context, answer.state);
                Ok(Some(response))
            }
            Err(SendError::Status(status, detail)) if status.is_client_error() => {
                tracing::debug!(connection_id = %LogId(&context.connection_id), %status, "the event handler refused the connection");
                Err(match status {
                    StatusCode::BAD_REQUEST => ConnectRefusal::BadRequest(detail),
                    StatusCode::UNAUTHORIZED => ConnectRefusal::Unauthorized(detail),
                    StatusCode::FORBIDDEN => ConnectRefusal::Forbidden(detail),
                    _ => ConnectRefusal::Failed(format!("{status}: {detail}")),
                })
            }
            Err(error) => {
                inner.report(&error, context, "connect");
                Err(ConnectRefusal::Failed(error.to_string()))
            }
        }
    }

    /// The `connected` event, after the connection is accepted; never waits.
    pub fn connected(&self, context: &ConnectionContext) {
        let inner = &self.inner;
        if !inner.config.forwards_system_event("connected") {
            return;
        }
        let tracked = Tracked {
            state: inner.state_of(context),
            connected: None,
        };
        let Some(task) = inner.notify(context, "connected", b"{}".to_vec(), tracked) else {
            return;
        };
        inner
            .connections
            .entry(context.connection_id.clone())
            .or_default()
            .connected = Some(task);
    }

    /// The `disconnected` event; never waits. Forgets the connection's state either way.
    pub fn disconnected(&self, context: &ConnectionContext, reason: Option<&str>) {
        let inner = &self.inner;
        let tracked = inner
            .connections
            .remove(&context.connection_id)
            .map(|(_, tracked)| tracked)
            .unwrap_or_default();
        if !inner.config.forwards_system_event("disconnected") {
            return;
        }
        let body = cloudevent::disconnected_body(reason);
        inner.notify(context, "disconnected", body, tracked);
    }

    /// A user event (`event` messages, `invoke`): the handler's answer, if it has a body.
    pub async fn event(
        &self,
        context: &ConnectionContext,
        name: &str,
        data: &Payload,
    ) -> Result<Option<Payload>, EventFailure> {
        let inner = &self.inner;
        if !inner.config.forwards_user_event(name) {
            tracing::debug!(
                connection_id = %LogId(&context.connection_id),
                event = name,
                "user event acknowledged and dropped: no event handler takes it"
            );
            return Ok(None);
        }
        if HeaderValue::from_str(name).is_err() {
            return Err(EventFailure(
                "the event name has a character a header cannot carry".into(),
            ));
        }
        let (content_type, body) = cloudevent::user_event_body(data);
        let ce_type = format!("user.{name}");
        match inner
            .send(
                context,
                &ce_type,
                name,
                inner.state_of(context),
                content_type,
                body,
            )
            .await
        {
            Ok(answer) => {
                inner.keep_state(context, answer.state);
                cloudevent::reply_payload(answer.content_type.as_ref(), answer.body).map_err(
                    |error| {
                        inner.report(&SendError::BadReply(error.clone()), context, name);
                        EventFailure(error)
                    },
                )
            }
            Err(error) => {
                inner.report(&error, context, name);
                Err(EventFailure(error.to_string()))
            }
        }
    }
}

impl Inner {
    /// Sends one event and reads the answer: `Ok` for 2xx only.
    async fn send(
        &self,
        context: &ConnectionContext,
        ce_type: &str,
        event_name: &str,
        state: Option<HeaderValue>,
        content_type: &'static str,
        body: impl Into<reqwest::Body>,
    ) -> Result<Answer, SendError> {
        let handler = self.handler.as_ref().ok_or(SendError::NoHandler)?;
        if !handler
            .validator
            .allowed(&handler.client, &self.warnings)
            .await
        {
            return Err(SendError::NotAllowed(self.origin.clone()));
        }
        let envelope = Envelope {
            context,
            ce_type: ce_type.to_owned(),
            event_name,
            signature: self
                .config
                .access_key
                .as_deref()
                .map(|key| signature(key, &context.connection_id)),
            origin: &self.origin,
            // The `connect` event has no subprotocol yet (its body lists the client's).
            with_subprotocol: ce_type != "sys.connect",
            state,
        };
        let timeout = self.config.event_timeout;
        let failed = |error: reqwest::Error| {
            if error.is_timeout() {
                SendError::Timeout(timeout)
            } else {
                SendError::Unreachable(describe(error))
            }
        };
        let mut response = handler
            .client
            .post(handler.url.clone())
            .headers(envelope.headers(content_type))
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status();
        let headers = response.headers();
        let content_type = headers.get(CONTENT_TYPE).cloned();
        let state = headers
            .get_all(CONNECTION_STATE)
            .iter()
            .next_back()
            .cloned();
        let limit = if status.is_success() {
            MAX_REPLY_BYTES
        } else {
            MAX_DETAIL_BYTES
        };
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failed)? {
            if body.len() + chunk.len() > limit {
                if status.is_success() {
                    return Err(SendError::BadReply(format!(
                        "more than {MAX_REPLY_BYTES} bytes"
                    )));
                }
                body.extend_from_slice(&chunk[..limit - body.len()]);
                break;
            }
            body.extend_from_slice(&chunk);
        }
        self.warnings.answered();
        if !status.is_success() {
            return Err(SendError::Status(
                status,
                String::from_utf8_lossy(&body).trim().to_owned(),
            ));
        }
        Ok(Answer {
            content_type,
            state,
            body: Bytes::from(body),
        })
    }

    fn state_of(&self, context: &ConnectionContext) -> Option<HeaderValue> {
        self.connections
            .get(&context.connection_id)
            .and_then(|tracked| tracked.state.clone())
    }

    /// Logs a failed event, once per kind at warning level.
    fn report(&self, error: &SendError, context: &ConnectionContext, event: &str) {
        let kind = match error {
            // Logged where they were found.
            SendError::NoHandler | SendError::NotAllowed(_) => {
                tracing::debug!(connection_id = %LogId(&context.connection_id), event, %error, "event not sent");
                return;
            }
            SendError::Unreachable(_) => Kind::Unreachable,
            SendError::Timeout(_) => Kind::Timeout,
            SendError::Status(..) => Kind::Status,
            SendError::BadReply(_) => Kind::BadReply,
        };
        self.warnings.warn(
            kind,
            Some(&context.connection_id),
            &format!("the {event} event failed: {error}"),
        );
    }

    /// Keeps the connection state a blocking event's answer set; an empty one clears it.
    fn keep_state(&self, context: &ConnectionContext, state: Option<HeaderValue>) {
        let Some(state) = state else { return };
        let id = &context.connection_id;
        if state.is_empty() {
            if let Some(mut tracked) = self.connections.get_mut(id) {
                tracked.state = None;
            }
        } else if state.len() > MAX_STATE_BYTES {
            self.warnings.warn(
                Kind::BadReply,
                Some(id),
                &format!("a connection state over {MAX_STATE_BYTES} bytes was not kept"),
            );
        } else {
            self.connections.entry(id.clone()).or_default().state = Some(state);
        }
    }

    /// Sends `connected` or `disconnected` from a background task with `tracked`'s state (as
    /// it was when the event happened: `disconnected` may come before `connected` is sent),
    /// after `tracked`'s `connected` task (for `disconnected`) is done. `None`: not sent.
    fn notify(
        self: &Arc<Self>,
        context: &ConnectionContext,
        event: &'static str,
        body: Vec<u8>,
        tracked: Tracked,
    ) -> Option<JoinHandle<()>> {
        let connection_id = &context.connection_id;
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::debug!(connection_id = %LogId(connection_id), event, "no async runtime; event not sent");
            return None;
        };
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_NOTIFICATIONS {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            self.warnings.warn(
                Kind::Overloaded,
                Some(connection_id),
                &format!("more than {MAX_QUEUED_NOTIFICATIONS} connected/disconnected events are waiting for the event handler; the {event} event was dropped"),
            );
            return None;
        }
        let this = self.clone();
        let context = context.clone();
        Some(runtime.spawn(async move {
            if let Some(connected) = tracked.connected {
                let _ = connected.await;
            }
            // Never closed, so acquiring only waits.
            let _permit = this.notify_permits.clone().acquire_owned().await;
            let ce_type = format!("sys.{event}");
            let sent = this
                .send(&context, &ce_type, event, tracked.state, JSON_UTF8, body)
                .await;
            if let Err(error) = sent {
                this.report(&error, &context, event);
            }
            this.queued.fetch_sub(1, Ordering::AcqRel);
        }))
    }
}
