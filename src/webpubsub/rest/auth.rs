//! How the service authenticates its data-plane API, and so how the server SDK signs: with an
//! access key credential (`AccessKey=` of the connection string) each request carries
//! `Authorization: Bearer <JWT>`, HS256 with the key, `aud` the request's URL (with its query:
//! `webPubSubKeyCredentialPolicy` signs `request.url`), `exp` an hour ahead.
//!
//! As the official emulator does, `aud` may name the URL with or without its query, compares
//! case-insensitively and percent-decoded (the WHATWG URL parser the SDK sends through may
//! encode what the signed string left bare, like `'`). Unlike the emulator, the scheme and
//! host are not compared: behind a proxy the server cannot know the origin the SDK was given,
//! and the key already binds the token to this server. Nothing else authenticates here —
//! not rthub's API keys, not its user tokens — so a request is the SDK's or it is refused.

use super::{WebPubSub, API_VERSION};
use crate::api_error::ApiError;
use axum::extract::{Request, State};
use axum::http::{header, Uri};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::sync::Arc;

/// Clock skew tolerated on `exp` and `nbf`, as the service allows.
const LEEWAY_SECS: u64 = 300;

/// The layer in front of every data-plane route: the token, then the API version, then the
/// hub (so an unauthenticated caller learns nothing about hubs).
pub(super) async fn authenticate(
    State(state): State<Arc<WebPubSub>>,
    request: Request,
    next: Next,
) -> Response {
    let authorization = request.headers().get(header::AUTHORIZATION);
    let checked = state
        .config
        .access_key
        .as_deref()
        .ok_or_else(|| {
            ApiError::unauthorized(
                "No Web PubSub access key is configured: set [webpubsub] access_key, or a \
                 server API key ([[api_keys]] with role = \"server\"), and use it as the \
                 connection string's AccessKey.",
            )
        })
        .and_then(|key| {
            verify(
                key,
                authorization.and_then(|v| v.to_str().ok()),
                request.uri(),
            )
        })
        .and_then(|()| check_api_version(request.uri()))
        .and_then(|()| check_hub(&state.config.hub, request.uri()));
    match checked {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Check `authorization` (the header's value) for a request to `uri`.
pub(super) fn verify(key: &str, authorization: Option<&str>, uri: &Uri) -> Result<(), ApiError> {
    let token = authorization
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty())
        .ok_or_else(|| {
            ApiError::unauthorized(
                "This API takes Authorization: Bearer <JWT> signed (HS256) with the Web PubSub \
                 access key, as @azure/web-pubsub sends with a connection string.",
            )
        })?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_aud = false;
    validation.validate_nbf = true;
    validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
    let claims = jsonwebtoken::decode::<Value>(
        token,
        &DecodingKey::from_secret(key.as_bytes()),
        &validation,
    )
    .map_err(|error| {
        tracing::debug!(%error, "refused a Web PubSub REST token");
        ApiError::unauthorized(
            "The access token is invalid or expired (is it signed with this server's access key?).",
        )
    })?
    .claims;
    let audiences: Vec<&str> = match &claims["aud"] {
        Value::String(one) => vec![one.as_str()],
        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if audiences.iter().any(|aud| audience_matches(aud, uri)) {
        Ok(())
    } else {
        Err(ApiError::unauthorized(
            "The access token's audience (aud) is not this request's URL.",
        ))
    }
}

/// Whether `aud` (an absolute URL) names the request `uri`: its path and query, or its path.
fn audience_matches(aud: &str, uri: &Uri) -> bool {
    let Some((_, after_scheme)) = aud.split_once("://") else {
        return false;
    };
    let Some(slash) = after_scheme.find('/') else {
        return false;
    };
    let aud = normalize(&after_scheme[slash..]);
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path(), |pq| pq.as_str());
    aud == normalize(path_and_query) || aud == normalize(uri.path())
}

/// Percent-decoded and lower-cased, so that two spellings of one URL compare equal.
fn normalize(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .to_lowercase()
}

/// `api-version`, when given, is one date-shaped version (`2024-12-01`, `2023-07-01-preview`):
/// every version the SDKs send means the same operations here.
fn check_api_version(uri: &Uri) -> Result<(), ApiError> {
    let versions: Vec<String> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .filter(|(key, _)| key == "api-version")
        .map(|(_, value)| value.into_owned())
        .collect();
    let date_shaped = |v: &str| {
        let date = v.strip_suffix("-preview").unwrap_or(v);
        date.len() == 10
            && date.bytes().enumerate().all(|(i, b)| match i {
                4 | 7 => b == b'-',
                _ => b.is_ascii_digit(),
            })
    };
    match versions.as_slice() {
        [] => Ok(()),
        [one] if date_shaped(one) => Ok(()),
        _ => Err(ApiError::bad_request(format!(
            "The specified API version is not supported: give one api-version, such as \
             {API_VERSION}."
        ))),
    }
}

/// The hub in `/api/hubs/{hub}/…` is the configured one (case-insensitively: the service's
/// hub names are).
fn check_hub(hub: &str, uri: &Uri) -> Result<(), ApiError> {
    let asked = uri.path().split('/').nth(3).unwrap_or("");
    if asked.eq_ignore_ascii_case(hub) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!(
            "There is no hub '{}' here: this server's hub is '{hub}' ([webpubsub] hub).",
            percent_encoding::percent_decode_str(asked).decode_utf8_lossy()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    const KEY: &str = "a-web-pubsub-access-key-0123";

    fn token(claims: Value, key: &str) -> String {
        let header = Header::new(Algorithm::HS256);
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(key.as_bytes()));
        format!("Bearer {}", token.unwrap())
    }

    fn in_an_hour() -> u64 {
        jsonwebtoken::get_current_timestamp() + 3600
    }

    #[test]
    fn the_sdk_audience_with_or_without_its_query_passes() {
        let uri: Uri = "/api/hubs/app/groups/app%3Aroom/:send?api-version=2024-12-01&filter=userId%20eq%20%27a%27"
            .parse()
            .unwrap();
        for aud in [
            "http://127.0.0.1:8080/api/hubs/app/groups/app%3Aroom/:send?api-version=2024-12-01&filter=userId%20eq%20'a'",
            "HTTPS://proxy.example/API/hubs/APP/groups/app:room/:send",
        ] {
            let auth = token(json!({"aud": aud, "exp": in_an_hour()}), KEY);
            assert_eq!(verify(KEY, Some(&auth), &uri), Ok(()), "{aud}");
        }
        let many = token(
            json!({"aud": ["x", "http://h/api/hubs/app/groups/app%3Aroom/:send"], "exp": in_an_hour()}),
            KEY,
        );
        assert_eq!(verify(KEY, Some(&many), &uri), Ok(()));
    }

    #[test]
    fn everything_else_is_refused() {
        let uri: Uri = "/api/hubs/app/:send?api-version=2024-12-01"
            .parse()
            .unwrap();
        let aud = "http://127.0.0.1/api/hubs/app/:send?api-version=2024-12-01";
        let refused = |authorization: Option<&str>| {
            verify(KEY, authorization, &uri).map_err(|e| e.status.as_u16())
        };
        assert_eq!(refused(None), Err(401));
        assert_eq!(refused(Some(KEY)), Err(401), "the key itself");
        assert_eq!(refused(Some(&format!("Bearer {KEY}"))), Err(401));
        let wrong_key = token(
            json!({"aud": aud, "exp": in_an_hour()}),
            "another-key-0123456789",
        );
        assert_eq!(refused(Some(&wrong_key)), Err(401));
        let other_path = token(
            json!({"aud": "http://127.0.0.1/api/hubs/app/:closeConnections", "exp": in_an_hour()}),
            KEY,
        );
        assert_eq!(refused(Some(&other_path)), Err(401));
        let expired = jsonwebtoken::get_current_timestamp() - LEEWAY_SECS - 60;
        let old = token(json!({"aud": aud, "exp": expired}), KEY);
        assert_eq!(refused(Some(&old)), Err(401));
        let no_exp = token(json!({"aud": aud}), KEY);
        assert_eq!(refused(Some(&no_exp)), Err(401));
        let no_host = token(
            json!({"aud": "/api/hubs/app/:send", "exp": in_an_hour()}),
            KEY,
        );
        assert_eq!(refused(Some(&no_host)), Err(401));
        let ok = token(json!({"aud": aud, "exp": in_an_hour()}), KEY);
        assert_eq!(refused(Some(&ok)), Ok(()));
    }

    #[test]
    fn api_versions_and_hubs() {
        let check = |uri: &str| check_api_version(&uri.parse().unwrap()).is_ok();
        assert!(check("/api/hubs/app/:send"));
        assert!(check("/api/hubs/app/:send?api-version=2024-12-01"));
        assert!(check("/api/hubs/app/:send?api-version=2021-08-01-preview"));
        assert!(!check("/api/hubs/app/:send?api-version=latest"));
        assert!(!check(
            "/api/hubs/app/:send?api-version=2024-12-01&api-version=2024-12-01"
        ));
        assert!(check_hub("app", &"/api/hubs/APP/:send".parse().unwrap()).is_ok());
        let other = check_hub("app", &"/api/hubs/chat/:send".parse().unwrap());
        assert_eq!(other.map_err(|e| e.status.as_u16()), Err(404));
    }
}
