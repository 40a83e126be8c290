//! `tracing` output: human-readable by default, JSON lines with `--log-format json`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second init (tests) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Query parameters whose values grant access: connection tokens (`id`), bearer tokens for
/// browsers (`access_token`), API keys, and the reconnection tokens of later protocols. Their
/// values never reach a log line, at any level.
const SECRET_PARAMETERS: &[&str] = &[
    "id",
    "access_token",
    "apikey",
    "api_key",
    "x-apikey",
    "token",
    "connectiontoken",
    "awps_reconnection_token",
    "reconnection_token",
    "client_secret",
    "clientsecret",
    "secret",
    "password",
    "key",
];

/// `path?query` with the value of every secret parameter replaced by `***` (a connection
/// token keeps its first six characters, as connection ids do in logs, so a request can still
/// be followed). Names are compared case-insensitively after percent-decoding, so `ID=` or
/// `access%5Ftoken=` are caught too.
pub fn redacted_uri(uri: &axum::http::Uri) -> String {
    let Some(query) = uri.query() else {
        return uri.path().to_owned();
    };
    let mut out = String::with_capacity(uri.path().len() + query.len() + 1);
    out.push_str(uri.path());
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        let (raw_name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name: String = form_urlencoded::parse(raw_name.as_bytes())
            .next()
            .map(|(name, _)| name.to_ascii_lowercase())
            .unwrap_or_default();
        if !SECRET_PARAMETERS.contains(&name.as_str()) || value.is_empty() {
            out.push_str(pair);
            continue;
        }
        out.push_str(raw_name);
        out.push('=');
        if name == "id" {
            // Characters of a base64url id need no decoding; anything else is not shown.
            let shown: String = value
                .chars()
                .take(6)
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect();
            out.push_str(&shown);
            out.push('…');
        } else {
            out.push_str("***");
        }
    }
    out
}

/// The span of one HTTP request: method and redacted URI, never headers (they carry
/// `Authorization` and `x-apikey`).
pub fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %request.method(),
        uri = %redacted_uri(request.uri()),
        version = ?request.version(),
    )
}

#[cfg(test)]
mod tests {
    use super::redacted_uri;

    #[test]
    fn secrets_in_the_query_are_redacted() {
        let uri = |text: &str| redacted_uri(&text.parse().unwrap());
        assert_eq!(uri("/api/x"), "/api/x");
        assert_eq!(
            uri("/api/_rt/signalr?id=AbCdEfGhIjKlMnOpQrStUv&_=123"),
            "/api/_rt/signalr?id=AbCdEf…&_=123"
        );
        assert_eq!(
            uri("/r?access_token=eyJhbGciOi.x.y&apikey=k3y&ApiKey=k&access%5Ftoken=t&other=v"),
            "/r?access_token=***&apikey=***&ApiKey=***&access%5Ftoken=***&other=v"
        );
        assert_eq!(uri("/r?id=&apikey"), "/r?id=&apikey");
        assert_eq!(uri("/r?id=%41%42%43%44"), "/r?id=4142…");
    }
}
