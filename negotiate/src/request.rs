//! The HTTP request that connected a transport (the WebSocket upgrade, the EventSource GET or
//! the first long poll), kept for the connection's life as ASP.NET Core keeps the connection's
//! `HttpContext`: applications read its headers, cookies and query string.

use crate::query::Query;

#[derive(Clone, Default)]
pub struct ConnectRequest {
    pub uri: http::Uri,
    pub headers: http::HeaderMap,
}

impl ConnectRequest {
    pub fn new(uri: http::Uri, headers: http::HeaderMap) -> Self {
        Self { uri, headers }
    }

    /// A header's value, if present and visible ASCII.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The query string, read as ASP.NET reads it (keys case-insensitively, first value wins).
    pub fn query(&self) -> Query {
        Query::parse(self.uri.query())
    }

    /// A cookie's value, percent-decoded as ASP.NET Core's cookie collection does.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| percent_decode(value.trim_matches('"')))
    }
}

/// `%XX` escapes decoded; malformed escapes and non-UTF-8 results are kept as written.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Headers and query carry credentials (Authorization, access_token): never logged.
        f.debug_struct("ConnectRequest")
            .field("path", &self.uri.path())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_headers_cookies_and_query() {
        let mut headers = http::HeaderMap::new();
        headers.insert("content-type", "text/plain".parse().unwrap());
        headers.insert("cookie", "a=1; testCookie=a%20b; c=3".parse().unwrap());
        let request = ConnectRequest::new("/hub?id=x&NumRedirects=2".parse().unwrap(), headers);
        assert_eq!(request.header("Content-Type"), Some("text/plain"));
        assert_eq!(request.cookie("testCookie").as_deref(), Some("a b"));
        assert_eq!(request.cookie("missing"), None);
        assert_eq!(request.query().get("numRedirects"), Some("2"));
        assert_eq!(percent_decode("100%"), "100%");
    }
}
