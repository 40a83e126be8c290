//! Who a connection belongs to. Resolved once, when the connection is created (negotiate or an
//! id-less WebSocket), by the application's [`crate::ConnectionHandler::authenticate`].

pub use rt_core::{Identity, IdentityKind};

/// Credentials as presented on a request: `Authorization: Bearer`, or `access_token` in the query
/// for browsers that cannot set headers on WebSocket and EventSource requests; `x-apikey` or
/// `apikey`. Extracted here so every endpoint reads them the same way; judged by the application.
#[derive(Clone, Default)]
pub struct Credentials {
    pub bearer: Option<String>,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Tokens and keys are never logged.
        f.debug_struct("Credentials")
            .field("bearer", &self.bearer.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl Credentials {
    /// Read from `Authorization: Bearer`, `access_token`, `x-apikey` and `apikey`.
    pub fn from_request(headers: &http::HeaderMap, query: &crate::query::Query) -> Self {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        // An empty value is no credential (clients may send `access_token=` with nothing).
        let query_value = |name: &str| {
            query
                .get(name)
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let bearer = header("authorization")
            .and_then(|v| {
                let (scheme, token) = v.split_once(' ')?;
                scheme
                    .eq_ignore_ascii_case("bearer")
                    .then(|| token.trim().to_owned())
            })
            .or_else(|| query_value("access_token"));
        let api_key = header("x-apikey")
            .map(str::to_owned)
            .or_else(|| query_value("apikey"));
        Self { bearer, api_key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Query;

    #[test]
    fn headers_win_and_empty_values_are_absent() {
        let mut headers = http::HeaderMap::new();
        let query = Query::parse(Some("access_token=&apikey="));
        let none = Credentials::from_request(&headers, &query);
        assert!(none.bearer.is_none() && none.api_key.is_none());
        headers.insert("authorization", "Bearer abc".parse().unwrap());
        headers.insert("x-apikey", "key".parse().unwrap());
        let query = Query::parse(Some("access_token=other&apikey=other"));
        let both = Credentials::from_request(&headers, &query);
        assert_eq!(both.bearer.as_deref(), Some("abc"));
        assert_eq!(both.api_key.as_deref(), Some("key"));
        let query_only = Credentials::from_request(&http::HeaderMap::new(), &query);
        assert_eq!(query_only.bearer.as_deref(), Some("other"));
        assert!(format!("{both:?}").contains("redacted") && !format!("{both:?}").contains("abc"));
    }
}
