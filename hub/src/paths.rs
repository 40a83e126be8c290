//! Hub paths matched case-insensitively, as ASP.NET Core's routing matches them
//! (`/testHub` and `/testhub` reach the same hub). axum's router is case-sensitive and a
//! router's own layers run after it has routed, so the rewrite goes in front of the router:
//!
//! ```no_run
//! use tower::ServiceExt as _;
//!
//! # async fn run() -> std::io::Result<()> {
//! let hub = hub::HubServer::builder(hub::HubMethods::new()).build();
//! let paths = hub::HubPaths::new(["/testHub"]);
//! let router = axum::Router::new().nest("/testHub", hub.endpoint(Default::default()));
//! let app = router.map_request(move |request| paths.rewrite(request));
//! let service = axum::ServiceExt::<axum::extract::Request>::into_make_service(app);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5000").await?;
//! axum::serve(listener, service).await
//! # }
//! ```

/// The canonical spellings of hub paths; a request path that starts with one of them, ignoring
/// ASCII case, is given that spelling.
#[derive(Debug, Clone, Default)]
pub struct HubPaths {
    paths: Vec<String>,
}

impl HubPaths {
    pub fn new(paths: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Self {
            paths: paths.into_iter().map(Into::into).collect(),
        }
    }

    /// The request with its path prefix spelled as registered, if it matches one; otherwise
    /// unchanged.
    pub fn rewrite<B>(&self, mut request: http::Request<B>) -> http::Request<B> {
        if let Some(uri) = self.canonical(request.uri()) {
            *request.uri_mut() = uri;
        }
        request
    }

    fn canonical(&self, uri: &http::Uri) -> Option<http::Uri> {
        let path = uri.path();
        let canonical = self.paths.iter().find(|canonical| {
            let n = canonical.len();
            let bytes = path.as_bytes();
            bytes.len() >= n
                && bytes[..n].eq_ignore_ascii_case(canonical.as_bytes())
                && &bytes[..n] != canonical.as_bytes()
                // A whole segment: `/testhubx` is another path.
                && matches!(bytes.get(n), None | Some(b'/'))
        })?;
        // The prefix differs only in ASCII case, so `n` is a character boundary of `path`.
        let rest = path.get(canonical.len()..)?;
        let path_and_query = match uri.query() {
            Some(query) => format!("{canonical}{rest}?{query}"),
            None => format!("{canonical}{rest}"),
        };
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(path_and_query.parse().ok()?);
        http::Uri::from_parts(parts).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewritten(path: &str) -> String {
        let paths = HubPaths::new(["/testHub", "/api/_rt/signalr"]);
        let request = http::Request::get(path).body(()).unwrap();
        paths.rewrite(request).uri().to_string()
    }

    #[test]
    fn prefixes_take_the_registered_spelling() {
        assert_eq!(rewritten("/testhub"), "/testHub");
        assert_eq!(
            rewritten("/TESTHUB/negotiate?negotiateVersion=1"),
            "/testHub/negotiate?negotiateVersion=1"
        );
        assert_eq!(rewritten("/testHub?id=AbC"), "/testHub?id=AbC");
        assert_eq!(rewritten("/testhubs"), "/testhubs");
        assert_eq!(rewritten("/API/_RT/SignalR"), "/api/_rt/signalr");
    }
}
