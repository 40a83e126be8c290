//! The HTTP application: routes, CORS and the hub, assembled from the config.

use crate::api_error::ApiError;
use crate::auth::Authenticator;
use crate::channels::rest::ChannelsApi;
use crate::channels::{self, ChannelService, Channels};
use crate::collections::{
    self,
    feed::ChangeFeed,
    filter::Dialect,
    listen::Subscriptions,
    schema::{Schema, SchemaError},
    service::Collections,
    store::{self, SharedStore, StoreError},
};
use crate::config::Config;
use crate::limits::AcceptState;
use crate::metrics::{Metrics, MetricsState, TimedStore};
use crate::realtime::{EventLog, Realtime};
use axum::extract::State;
use axum::http::StatusCode;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hub::protocol::MessagePackHubProtocol;
use hub::{HubMethods, HubOptions, HubServer};
use negotiate::ConnectionOptions;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Largest WebSocket message or POST body: a client's batch of queued hub messages.
pub const MAX_BATCH_BYTES: usize = 16 * 1024 * 1024;

/// The path every SignalR client is pointed at.
pub const SIGNALR_PATH: &str = "/api/_rt/signalr";

pub struct App {
    pub router: Router,
    pub hub: HubServer,
    /// Web PubSub's connections, closed on shutdown.
    pub webpubsub: Arc<crate::webpubsub::WebPubSub>,
    /// Whether the listener is paused at the open-file limit (reported by `/readyz`).
    pub accept: Arc<AcceptState>,
    /// Stops the background work (the change feed) on shutdown.
    pub background: CancellationToken,
}

/// Why the application could not be assembled.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("authentication settings: {0}")]
    Auth(#[from] crate::auth::AuthConfigError),
    #[error(transparent)]
    Schema(#[from] SchemaError),
    #[error(transparent)]
    Realtime(#[from] crate::realtime::GrantError),
    #[error("database {url}: {source}")]
    Store { url: String, source: StoreError },
    #[error("the OpenAPI description: {0}")]
    OpenApi(serde_json::Error),
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    #[error("cluster forwarding: {0}")]
    Forwarding(reqwest::Error),
}

pub async fn build(config: &Config) -> Result<App, BuildError> {
    let auth = Authenticator::new(config.auth.clone())?;
    let schema = Arc::new(match &config.schema {
        Some(path) => Schema::load(path)?,
        None => Schema::example(),
    });
    let names: Vec<String> = schema.collections().map(|c| c.name.clone()).collect();
    // A static path: it wins over the collection routes' `/api/{collection}` (whose
    // `/api/_…` guard it never reaches).
    let openapi =
        crate::openapi::routes(&crate::openapi::document(&schema)).map_err(BuildError::OpenApi)?;
    let store_error = |source| BuildError::Store {
        url: redact_url(&config.database),
        source,
    };
    let metrics = Metrics::new();
    let store = store::open(&config.database).await.map_err(store_error)?;
    let store = TimedStore::wrap(store, metrics.db_duration.clone());
    store.prepare(&names).await.map_err(store_error)?;
    let dialect = if config.database.starts_with("postgres") {
        Dialect::Postgres
    } else {
        Dialect::Sqlite
    };

    let background = CancellationToken::new();
    // The one group space of every protocol (of every node, with a cluster); its observers
    // hear every session end.
    let cluster = match &config.cluster {
        Some(cluster) => Some(crate::cluster::Cluster::start(
            cluster.clone(),
            background.clone(),
        )?),
        None => None,
    };
    let groups = match &cluster {
        Some(cluster) => router::Router::with_backplane(cluster.backplane.clone()),
        None => router::Router::new(),
    };
    // With a cluster, tokens name the node that has their connection, so that any node can
    // take a client's transport requests (cluster::forward).
    let forwarder = match &cluster {
        Some(cluster) => {
            Some(crate::cluster::forward::Forwarder::new(cluster).map_err(BuildError::Forwarding)?)
        }
        None => None,
    };
    let connections = match &forwarder {
        Some(forwarder) => negotiate::Connections::with_token_prefix(&forwarder.token_prefix()),
        None => negotiate::Connections::default(),
    };
    let subscriptions = Arc::new(Subscriptions::default());
    groups.observe(subscriptions.clone());
    groups.add_extension(
        collections::rest::LISTEN_EXTENSION,
        Arc::new(collections::rest::ListenExtension(subscriptions.clone())),
    );
    let lookups = schema
        .collections()
        .map(|c| {
            (
                c.name.clone(),
                c.lookups().map(|(name, _)| name.to_owned()).collect(),
            )
        })
        .collect();
    // Deliver what is committed from now on (older changes are StreamChanges' replay): read
    // before serving, so a change written right after start-up is never behind the start.
    let start = store.last_seq().await.map_err(store_error)?;
    let event_log = EventLog::new(groups.clone(), start, config.realtime.event_retention);
    let feed = ChangeFeed::new(
        store.clone(),
        subscriptions,
        groups.clone(),
        event_log.clone(),
        lookups,
    );
    metrics.register(Box::new(feed.delay_histogram().clone()));
    if let Some(cluster) = &cluster {
        metrics.register(Box::new(crate::cluster::StatusMetrics::new(
            cluster.status.clone(),
        )));
    }
    feed.spawn(start, config.change_retention, background.clone());
    let collections = Arc::new(Collections {
        schema: schema.clone(),
        store: store.clone(),
        dialect,
        feed,
        router: groups.clone(),
        connections: connections.clone(),
        auth: auth.clone(),
        max_body_bytes: config.max_body_bytes,
    });

    let names = Channels::new(&config.api_name).with_entities(names);
    let channels = ChannelService::new(names, groups.clone());
    let methods = channels::hub_methods::hub_methods(channels.clone(), HubMethods::new());
    let methods = collections::hub_methods::hub_methods(collections.clone(), methods);
    let s = &config.signalr;
    let hub_auth = auth.clone();
    let info_auth = auth.clone();
    let public_url = config.public_url.clone();
    let hub = HubServer::builder(methods)
        .connection_info(move |credentials, headers| {
            let identity = info_auth.identify(credentials)?;
            let base = match &public_url {
                Some(url) => url.clone(),
                None => request_origin(headers),
            };
            Ok(json!({
                "url": format!("{base}{SIGNALR_PATH}"),
                "accessToken": info_auth.connection_token(&identity),
            }))
        })
        .protocol(Arc::new(MessagePackHubProtocol))
        .router(groups.clone())
        .authenticate(move |credentials| hub_auth.identify(credentials))
        .options(HubOptions {
            keep_alive: s.keep_alive,
            client_timeout: s.client_timeout,
            handshake_timeout: s.handshake_timeout,
            max_message_bytes: s.max_message_bytes,
            ..HubOptions::default()
        })
        .build();
    let connection_options = ConnectionOptions {
        disconnect_timeout: s.disconnect_timeout,
        long_poll_timeout: s.long_poll,
        allow_stateful_reconnect: s.stateful_reconnect,
        max_outbound_queue_bytes: s.max_outbound_queue_bytes,
        // Clients batch everything they have queued into one WebSocket message or POST (the
        // JS client sends megabytes at once after a burst), so the transport takes large
        // batches; the hub enforces the per-message limit with a clear error.
        max_websocket_message_bytes: MAX_BATCH_BYTES.max(s.max_message_bytes * 4),
        max_send_bytes: MAX_BATCH_BYTES.max(s.max_message_bytes * 4),
        ..ConnectionOptions::default()
    };
    let realtime = Arc::new(Realtime::new(
        event_log,
        store.clone(),
        schema.clone(),
        auth.clone(),
        config.realtime.clone(),
        groups.clone(),
        background.clone(),
    )?);
    let webpubsub = crate::webpubsub::WebPubSub::new(
        config.webpubsub.clone(),
        groups.clone(),
        channels.clone(),
        auth.clone(),
        &config.api_name,
        config.public_url.clone(),
    );
    let mut signalr = hub.endpoint_with(connection_options, &connections);
    let mut webpubsub_routes = webpubsub.routes();
    if let Some(forwarder) = &forwarder {
        webpubsub
            .connections
            .set_token_prefix(forwarder.token_prefix());
        signalr = forwarder.signalr(signalr, connections.clone());
        webpubsub_routes = forwarder.webpubsub(webpubsub_routes, webpubsub.clone());
    }
    let channels_api = Arc::new(ChannelsApi {
        channels,
        connections: connections.clone(),
        auth: auth.clone(),
    });
    let console_api = Arc::new(crate::console::api::ConsoleApi {
        router: groups.clone(),
        schema: schema.clone(),
        auth: auth.clone(),
        api_name: config.api_name.clone(),
    });
    let accept = Arc::new(AcceptState::default());
    let own = Router::new()
        .route(
            "/healthz",
            get(|| async { Json(json!({ "status": "ok" })) }),
        )
        .route(
            "/readyz",
            get(ready).with_state(Readiness {
                store: store.clone(),
                accept: accept.clone(),
                cluster: cluster.as_ref().map(|c| c.status.clone()),
            }),
        )
        .route(
            "/metrics",
            get(crate::metrics::serve).with_state(MetricsState {
                metrics: metrics.clone(),
                router: groups.clone(),
                feed: collections.feed.clone(),
                store: store.clone(),
                auth: auth.clone(),
                open: config.listen.ip().is_loopback(),
                token: config.metrics_token.clone(),
            }),
        )
        .route("/api/_auth", post(service_account_token).with_state(auth))
        .merge(channels::rest::routes(channels_api))
        .merge(crate::realtime::routes(realtime))
        .merge(crate::webpubsub::rest::routes(webpubsub.clone()))
        .merge(webpubsub_routes)
        .merge(openapi)
        .merge(crate::console::api::routes(console_api))
        .merge(crate::console::routes())
        .method_not_allowed_fallback(crate::api_error::method_not_allowed);
    // The SignalR endpoint answers as ASP.NET Core does (plain text errors); every other
    // endpoint, and every unknown path, in the JSON error shape.
    let mut router = Router::new()
        .nest(SIGNALR_PATH, signalr)
        .merge(own)
        .merge(collections::rest::routes(collections))
        .fallback(crate::api_error::fallback)
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            crate::metrics::track_requests,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(crate::logging::request_span));
    if let Some(cors) = cors(&config.cors_origins) {
        router = router.layer(cors);
    }
    Ok(App {
        router,
        hub,
        webpubsub,
        accept,
        background,
    })
}

#[derive(Clone)]
struct Readiness {
    store: SharedStore,
    accept: Arc<AcceptState>,
    cluster: Option<Arc<crate::cluster::Status>>,
}

/// `/readyz`: the database answers and new connections are accepted (not paused at the
/// open-file limit); `openFiles` tells the limit, what is in use and the pauses so far.
/// With a cluster, `cluster` tells this node's id and whether it reaches Redis; without
/// Redis the node still serves its own clients, so it is `degraded` (200), not unready.
async fn ready(State(readiness): State<Readiness>) -> Response {
    let open_files = readiness.accept.report();
    let unavailable = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": reason, "openFiles": open_files })),
        )
            .into_response()
    };
    if let Err(error) = readiness.store.ping().await {
        tracing::warn!(%error, "not ready: the database does not answer");
        return unavailable("database");
    }
    if readiness.accept.at_limit() {
        return unavailable("open-file limit");
    }
    match &readiness.cluster {
        Some(cluster) => {
            let status = if cluster.is_up() { "ready" } else { "degraded" };
            let body =
                json!({ "status": status, "openFiles": open_files, "cluster": cluster.report() });
            Json(body).into_response()
        }
        None => Json(json!({ "status": "ready", "openFiles": open_files })).into_response(),
    }
}

/// `scheme://host` of a request, as the client addressed it.
pub(crate) fn request_origin(headers: &axum::http::HeaderMap) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let scheme = header("x-forwarded-proto").unwrap_or("http");
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .unwrap_or("127.0.0.1");
    format!("{scheme}://{host}")
}

/// A database URL for messages: without its password.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

// A type, so that the OpenAPI description derives from it.
/// A service account's login.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ServiceAccountLogin {
    /// Always `serviceaccount`.
    #[schema(pattern = "^serviceaccount$")]
    authority: String,
    client_id: String,
    client_secret: String,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct ServiceToken {
    /// A JWT of the server identity.
    token: String,
}

/// `POST /api/_auth {authority: "serviceaccount", clientId, clientSecret}` → `{token}`.
async fn service_account_token(
    State(auth): State<Authenticator>,
    body: axum::body::Bytes,
) -> Result<Json<ServiceToken>, ApiError> {
    let login: ServiceAccountLogin = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid body: {e}")))?;
    if login.authority != "serviceaccount" {
        return Err(ApiError::bad_request("authority must be 'serviceaccount'."));
    }
    let token = auth
        .service_token(&login.client_id, &login.client_secret)
        .ok_or_else(|| ApiError::unauthorized("Invalid client id or secret."))?;
    Ok(Json(ServiceToken { token }))
}

/// Browsers send credentials by default with `@microsoft/signalr`, so the exact origin is
/// echoed (never `*`) and credentials allowed.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| match HeaderValue::from_str(o.trim_end_matches('/')) {
            Ok(value) => Some(value),
            Err(_) => {
                tracing::warn!(origin = %o, "ignored an invalid CORS origin");
                None
            }
        })
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static("x-requested-with"),
                HeaderName::from_static("x-signalr-user-agent"),
                HeaderName::from_static("x-apikey"),
            ]),
    )
}
