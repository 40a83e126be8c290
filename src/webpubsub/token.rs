//! Client access tokens, as Azure Web PubSub makes and checks them: HS256 JWTs signed with the
//! access key whose `aud` is the http(s) form of the client URL (`…/client/hubs/{hub}`), with
//! `sub` (the user id), `role` (Web PubSub roles) and `webpubsub.group` (groups joined on
//! connect). Tokens from `GET /api/_rt/ws` carry the rthub identity too (`rthub.kind`,
//! `rthub.roles`, `rthub.server`), so a connection acts as the identity that asked for it.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rt_core::{Identity, IdentityKind};
use serde::{Deserialize, Deserializer, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// Leeway for clocks that disagree, as the service allows.
const LEEWAY_SECS: u64 = 300;

/// What a client token says.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientClaims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub role: Vec<String>,
    #[serde(
        rename = "webpubsub.group",
        default,
        deserialize_with = "one_or_many",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub groups: Vec<String>,
    #[serde(default)]
    pub aud: String,
    #[serde(default)]
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    /// The rthub identity kind of the principal that asked (`user`, `serviceaccount`).
    #[serde(
        rename = "rthub.kind",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
    /// Its rthub roles (the JWT `roles` it authenticated with).
    #[serde(rename = "rthub.roles", default, skip_serializing_if = "Vec::is_empty")]
    pub rthub_roles: Vec<String>,
    /// It was the server identity.
    #[serde(rename = "rthub.server", default, skip_serializing_if = "is_false")]
    pub server: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// The service writes a single role or group as a string and several as an array.
fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(one)) => vec![one],
        Some(OneOrMany::Many(many)) => many,
    })
}

impl ClientClaims {
    /// The identity a connection with these claims acts as.
    pub fn identity(&self) -> Identity {
        let kind = match (self.kind.as_deref(), &self.sub) {
            (_, None) => IdentityKind::Anonymous,
            (Some("serviceaccount"), Some(_)) => IdentityKind::ServiceAccount,
            (_, Some(_)) => IdentityKind::User,
        };
        Identity {
            kind,
            user_id: self.sub.as_deref().map(Arc::from),
            roles: self
                .rthub_roles
                .iter()
                .map(|r| Arc::from(r.as_str()))
                .collect(),
            is_server: self.server,
            authenticated: true,
        }
    }
}

/// The `aud` of client tokens for `hub` at `origin` (`http://host:port`; a `ws(s)://` origin
/// is turned into its http(s) form, as the server SDK does).
pub fn client_audience(origin: &str, hub: &str) -> String {
    let origin = origin.trim_end_matches('/');
    let origin = if let Some(rest) = origin.strip_prefix("ws://") {
        format!("http://{rest}")
    } else if let Some(rest) = origin.strip_prefix("wss://") {
        format!("https://{rest}")
    } else {
        origin.to_owned()
    };
    format!("{origin}/client/hubs/{hub}")
}

/// Sign `claims` for `audience`, good for `lifetime` from now.
pub fn issue(
    access_key: &str,
    audience: String,
    mut claims: ClientClaims,
    lifetime: Duration,
) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    claims.aud = audience;
    claims.iat = Some(now);
    claims.exp = now + lifetime.as_secs();
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(access_key.as_bytes()),
    )
    // HS256 over serializable claims cannot fail.
    .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is missing")]
    Missing,
    #[error("the access token is invalid or expired: {0}")]
    Invalid(String),
    #[error("the access token is for another hub or endpoint ({0})")]
    WrongAudience(String),
}

/// Check a client token: the signature with the access key, `exp` (an open connection is not
/// cut when it expires: only the handshake checks it) and that `aud` names `hub`'s client
/// path. The host part of `aud` is not compared: behind a proxy the server cannot know the
/// origin the SDK was given, and the key already binds the token to this server.
pub fn verify(access_key: &str, token: &str, hub: &str) -> Result<ClientClaims, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Missing);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = LEEWAY_SECS;
    validation.validate_aud = false;
    validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
    let data = jsonwebtoken::decode::<ClientClaims>(
        token,
        &DecodingKey::from_secret(access_key.as_bytes()),
        &validation,
    )
    .map_err(|e| TokenError::Invalid(e.to_string()))?;
    let claims = data.claims;
    let path = format!("/client/hubs/{hub}");
    let aud = claims.aud.trim_end_matches('/').to_ascii_lowercase();
    let origin_and_path = aud.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    let path_of_aud = origin_and_path
        .find('/')
        .map_or("", |index| &origin_and_path[index..]);
    if path_of_aud != path.to_ascii_lowercase() {
        return Err(TokenError::WrongAudience(claims.aud.clone()));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "an-access-key-of-some-length";

    #[test]
    fn a_token_made_here_verifies_and_names_its_identity() {
        let claims = ClientClaims {
            sub: Some("alice".into()),
            role: vec!["webpubsub.sendToGroup".into()],
            groups: vec!["app:a".into()],
            ..ClientClaims::default()
        };
        let aud = client_audience("ws://127.0.0.1:8080", "app");
        assert_eq!(aud, "http://127.0.0.1:8080/client/hubs/app");
        let token = issue(KEY, aud, claims, Duration::from_secs(60));
        let back = verify(KEY, &token, "app").unwrap();
        assert_eq!(back.sub.as_deref(), Some("alice"));
        assert_eq!(back.groups, ["app:a"]);
        let identity = back.identity();
        assert_eq!(identity.kind, IdentityKind::User);
        assert!(!identity.is_server);
        assert_eq!(
            verify(KEY, &token, "other"),
            Err(TokenError::WrongAudience(back.aud.clone()))
        );
        assert!(matches!(
            verify("another-key-entirely-000", &token, "app"),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn the_service_shapes_of_roles_and_groups_parse() {
        let header = Header::new(Algorithm::HS256);
        let exp = jsonwebtoken::get_current_timestamp() + 60;
        let claims = serde_json::json!({
            "aud": "HTTPS://Example.com/client/hubs/APP",
            "exp": exp,
            "role": "webpubsub.joinLeaveGroup",
            "webpubsub.group": ["app:x", "app:y"],
        });
        let token =
            jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(KEY.as_bytes()))
                .unwrap();
        let parsed = verify(KEY, &token, "app").unwrap();
        assert_eq!(parsed.role, ["webpubsub.joinLeaveGroup"]);
        assert_eq!(parsed.groups, ["app:x", "app:y"]);
        assert_eq!(parsed.identity().kind, IdentityKind::Anonymous);
    }
}
