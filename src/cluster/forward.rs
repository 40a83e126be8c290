//! No sticky sessions (`docs/DECISIONS.md`, "No sticky sessions"): a transport request that
//! reaches a node which does not have its connection is sent on to the node that does.
//!
//! Every SignalR connection token and every Web PubSub reconnection token of a cluster node
//! starts with the node's id (`<16 hex digits>.<random>`). A node that gets a SignalR
//! transport request (`GET`/`POST`/`DELETE {hub}?id=<token>`, WebSocket upgrades included)
//! for a token it does not know, or a Web PubSub recovery (`awps_connection_id` and
//! `awps_reconnection_token`) for a connection it does not have, looks the named node's
//! address up in Redis and, if that node is live, forwards the request there: HTTP exchanges
//! as a streaming proxy, WebSockets accepted here and piped to a WebSocket to the owner.
//! Forwarded requests carry [`FORWARDED`], and a request carrying it is never forwarded
//! again, so a stale or forged hint cannot make nodes send a request round in circles.
//! Anything else (a dead owner, no hint, Redis away) is served here as before: an unknown
//! token is a 404, an unknown recovery a 1008 close. So is an owner that died since its last
//! heartbeat (nothing listens at its address any more).

mod http;
mod socket;

use super::{Cluster, RedisBackplane};
use axum::extract::{OriginalUri, Request, State};
use axum::http::{header, HeaderMap, HeaderName};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::Response;
use router::NodeId;
use std::sync::Arc;
use std::time::Duration;

/// Set on a forwarded request, to the forwarding node's id: its receiver serves it itself.
pub const FORWARDED: HeaderName = HeaderName::from_static("x-rthub-forwarded");

/// How long a node may take to accept a forwarded request's connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// This node's side of forwarding: who it is, and where the others are.
pub struct Forwarder {
    node: NodeId,
    backplane: Arc<RedisBackplane>,
    /// No overall timeout: long polls wait up to `[signalr] long_poll` and Server-Sent
    /// Events streams last as long as their connection.
    http: reqwest::Client,
}

/// The prefix of the tokens `node` issues (see [`negotiate::Connections::with_token_prefix`]).
pub fn token_prefix(node: NodeId) -> String {
    format!("{node}.")
}

/// The node a token's prefix names, if it has one of [`token_prefix`]'s form.
pub fn hinted_node(token: &str) -> Option<NodeId> {
    let (node, rest) = token.split_once('.')?;
    let well_formed =
        node.len() == 16 && node.bytes().all(|b| b.is_ascii_hexdigit()) && !rest.is_empty();
    well_formed.then(|| node.parse().ok()).flatten()
}

impl Forwarder {
    /// Fails only if the HTTP client's TLS backend cannot start.
    pub fn new(cluster: &Cluster) -> Result<Arc<Self>, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            // Node to node: never through a proxy from the environment, never redirected.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(Arc::new(Self {
            node: cluster.node(),
            backplane: cluster.backplane().clone(),
            http,
        }))
    }

    /// The prefix of this node's tokens.
    pub fn token_prefix(&self) -> String {
        token_prefix(self.node)
    }

    /// Where a request presenting `token`, which this node does not know, should go: the
    /// address of the live other node its hint names; `None` to serve it here.
    async fn destination(&self, token: &str, headers: &HeaderMap) -> Option<(NodeId, String)> {
        if let Some(from) = headers.get(&FORWARDED) {
            tracing::debug!(from = ?from, "a forwarded request for a token this node does not know");
            return None;
        }
        let owner = hinted_node(token).filter(|node| *node != self.node)?;
        match self.backplane.node_url(owner).await {
            Ok(Some(url)) => Some((owner, url)),
            Ok(None) => {
                tracing::debug!(%owner, "the node of a token is gone: not forwarded");
                None
            }
            Err(error) => {
                tracing::warn!(%owner, %error, "cannot look up the node of a token: not forwarded");
                None
            }
        }
    }

    /// `router` (the SignalR endpoint) forwarding the transport requests for other nodes'
    /// connections.
    pub fn signalr(
        self: &Arc<Self>,
        router: axum::Router,
        connections: negotiate::Connections,
    ) -> axum::Router {
        router.layer(from_fn_with_state(
            (self.clone(), connections),
            forward_signalr,
        ))
    }

    /// `router` (the Web PubSub client endpoints) forwarding recoveries of other nodes'
    /// connections.
    pub fn webpubsub(
        self: &Arc<Self>,
        router: axum::Router,
        webpubsub: Arc<crate::webpubsub::WebPubSub>,
    ) -> axum::Router {
        router.layer(from_fn_with_state(
            (self.clone(), webpubsub),
            forward_webpubsub,
        ))
    }

    /// Send `request` to `url` (a node's address): piped if it is a WebSocket upgrade; served
    /// by `next` here if the node turns out to be gone before anything was sent.
    async fn forward(&self, owner: NodeId, url: &str, request: Request, next: Next) -> Response {
        let target = format!("{url}{}", path_and_query(&request));
        tracing::debug!(%owner, method = %request.method(), "forwarding a transport request");
        if is_upgrade(request.headers()) {
            match socket::pipe(self.node, &target, request).await {
                Ok(response) => response,
                Err(request) => next.run(request).await,
            }
        } else {
            http::proxy(&self.http, self.node, &target, request).await
        }
    }
}

async fn forward_signalr(
    State((forwarder, connections)): State<(Arc<Forwarder>, negotiate::Connections)>,
    request: Request,
    next: Next,
) -> Response {
    // Inside the endpoint: `/` is the transports' route, `/negotiate` is served anywhere.
    if !request.uri().path().trim_end_matches('/').is_empty() {
        return next.run(request).await;
    }
    let query = negotiate::Query::parse(request.uri().query());
    let Some(token) = query.get("id").filter(|t| !connections.knows_token(t)) else {
        return next.run(request).await;
    };
    match forwarder.destination(token, request.headers()).await {
        Some((owner, url)) => forwarder.forward(owner, &url, request, next).await,
        None => next.run(request).await,
    }
}

async fn forward_webpubsub(
    State((forwarder, webpubsub)): State<(Arc<Forwarder>, Arc<crate::webpubsub::WebPubSub>)>,
    request: Request,
    next: Next,
) -> Response {
    if !is_upgrade(request.headers()) {
        return next.run(request).await;
    }
    let query = negotiate::Query::parse(request.uri().query());
    let recovery = query
        .get("awps_connection_id")
        .zip(query.get("awps_reconnection_token"));
    let Some((_, token)) = recovery.filter(|(id, _)| !webpubsub.connections.contains(id)) else {
        return next.run(request).await;
    };
    match forwarder.destination(token, request.headers()).await {
        Some((owner, url)) => forwarder.forward(owner, &url, request, next).await,
        None => next.run(request).await,
    }
}

/// The path and query the client asked for (before any `nest` stripped a prefix).
fn path_and_query(request: &Request) -> String {
    let uri = request
        .extensions()
        .get::<OriginalUri>()
        .map_or(request.uri(), |original| &original.0);
    uri.path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned())
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    let has = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|v| v.trim().eq_ignore_ascii_case(token))
    };
    has(header::UPGRADE, "websocket") && has(header::CONNECTION, "upgrade")
}

/// Headers that describe one hop, never passed on (RFC 9110 7.6.1), and the ones the
/// client library of the next hop writes itself.
fn is_hop_header(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_node_id_and_a_dot_make_a_hint() {
        let node = NodeId(0x00ab_cdef_0123_4567);
        let token = format!("{}Zm9vYmFyYmF6cXV4cXV1eA", token_prefix(node));
        assert_eq!(hinted_node(&token), Some(node));
        for token in [
            "Zm9vYmFyYmF6cXV4cXV1eA",
            "00abcdef01234567.",
            "abcdef01234567.xyz",
            "+0abcdef01234567.xyz",
            "00abcdef0123456g.xyz",
            "00abcdef012345678.xyz",
        ] {
            assert_eq!(hinted_node(token), None, "{token}");
        }
    }

    #[test]
    fn upgrades_are_told_by_both_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(header::UPGRADE, "websocket".parse().unwrap());
        assert!(!is_upgrade(&headers));
        headers.insert(header::CONNECTION, "keep-alive, Upgrade".parse().unwrap());
        assert!(is_upgrade(&headers));
    }
}
