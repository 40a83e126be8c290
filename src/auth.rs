//! Who is calling: JWT bearer tokens (HS256 secret or RS256 public key), API keys, and the
//! short-lived tokens of service accounts. Every HTTP endpoint and every new realtime
//! connection asks here.
//!
//! Without credentials a caller is anonymous. Credentials that are presented must be valid:
//! a bad token is 401, never a silent downgrade to anonymous.

use crate::api_error::ApiError;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use negotiate::{Credentials, Identity, IdentityKind, Query, Rejection};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY_SECS: u64 = 30;
/// Lifetime of a service account's token.
pub const SERVICE_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
const SERVICE_ISSUER: &str = "rthub";
const SERVICE_AUDIENCE: &str = "rthub-service";
/// Tokens handed out by `GET /api/_rt/signalr` for the caller's own identity.
const CONNECTION_AUDIENCE: &str = "rthub-connection";
/// Lifetime of such a token: enough to connect, and to reconnect a while later.
pub const CONNECTION_TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Whether `caller` may act on a connection that belongs to `owner`: the server identity on
/// any; anyone on an anonymous connection (its 128-bit id is a bearer capability); a user or a
/// service account on its own — the same kind *and* the same id, so a user whose `sub` reads
/// `serviceaccount:ops` owns nothing of the service account `ops`.
pub fn may_act_on(caller: &Identity, owner: &Identity) -> bool {
    caller.is_server || owner.user_id.is_none() || caller.same_principal(owner)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyRole {
    /// May do everything, including managing private channels.
    Server,
    /// A client application's key.
    Client,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKey {
    pub key: String,
    pub role: KeyRole,
    /// What the key sees on and publishes to `/realtime` (`POST:company`, `PUT:*`,
    /// `EVENT:GOAL`, `*`).
    #[serde(default)]
    pub realtime: Vec<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccount {
    pub client_id: String,
    pub client_secret: String,
}

/// Keys are secrets: never printed.
impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// How user tokens are verified.
#[derive(Clone)]
pub enum JwtKey {
    Hs256(Vec<u8>),
    /// PEM of an RSA public key.
    Rs256(Vec<u8>),
}

#[derive(Clone, Default)]
pub struct AuthSettings {
    pub jwt: Option<JwtKey>,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub api_keys: Vec<ApiKey>,
    pub service_accounts: Vec<ServiceAccount>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("jwt_public_key: {0}")]
    PublicKey(jsonwebtoken::errors::Error),
    #[error("jwt_secret must be at least 32 bytes")]
    ShortSecret,
}

#[derive(Serialize, Deserialize)]
struct Claims {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "roles"
    )]
    roles: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    /// Connection tokens only: the identity is the server's.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    server: bool,
    /// Connection tokens only: the kind of principal `sub` names (absent: a user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kind: Option<TokenKind>,
}

/// The principal kind carried in a connection token, so that a service account's connection
/// token does not come back as a user with the same id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum TokenKind {
    User,
    ServiceAccount,
}

/// `roles` may be a list or a single string.
fn roles<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Roles {
        One(String),
        Many(Vec<String>),
    }
    Ok(Option::<Roles>::deserialize(d)?.map(|r| match r {
        Roles::One(role) => vec![role],
        Roles::Many(roles) => roles,
    }))
}

struct UserTokens {
    key: DecodingKey,
    validation: Validation,
}

/// Verifies credentials; cheap to clone.
#[derive(Clone)]
pub struct Authenticator(Arc<Inner>);

struct Inner {
    users: Option<UserTokens>,
    api_keys: Vec<ApiKey>,
    service_accounts: Vec<ServiceAccount>,
    /// Signs and verifies service account tokens; random per process.
    service_signing: EncodingKey,
    service_verifying: DecodingKey,
    service_validation: Validation,
    connection_validation: Validation,
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new(AuthSettings::default()).expect("no key to parse")
    }
}

pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

impl Authenticator {
    pub fn new(settings: AuthSettings) -> Result<Self, AuthConfigError> {
        let users = match settings.jwt {
            None => None,
            Some(key) => {
                let (key, algorithm) = match key {
                    JwtKey::Hs256(secret) => {
                        if secret.len() < 32 {
                            return Err(AuthConfigError::ShortSecret);
                        }
                        (DecodingKey::from_secret(&secret), Algorithm::HS256)
                    }
                    JwtKey::Rs256(pem) => (
                        DecodingKey::from_rsa_pem(&pem).map_err(AuthConfigError::PublicKey)?,
                        Algorithm::RS256,
                    ),
                };
                // Exactly one algorithm: `alg: none` and algorithm confusion (an HS256 token
                // signed with the RSA public key as secret) are refused.
                let mut validation = Validation::new(algorithm);
                validation.leeway = LEEWAY_SECS;
                validation.validate_nbf = true;
                validation.set_required_spec_claims(&["exp"]);
                match &settings.issuer {
                    Some(issuer) => validation.set_issuer(&[issuer]),
                    None => validation.iss = None,
                }
                match &settings.audience {
                    Some(audience) => validation.set_audience(&[audience]),
                    None => validation.validate_aud = false,
                }
                Some(UserTokens { key, validation })
            }
        };
        let secret: [u8; 32] = rand_secret();
        let mut service_validation = Validation::new(Algorithm::HS256);
        service_validation.leeway = LEEWAY_SECS;
        service_validation.set_issuer(&[SERVICE_ISSUER]);
        service_validation.set_audience(&[SERVICE_AUDIENCE]);
        let mut connection_validation = service_validation.clone();
        connection_validation.set_audience(&[CONNECTION_AUDIENCE]);
        Ok(Self(Arc::new(Inner {
            users,
            api_keys: settings.api_keys,
            service_accounts: settings.service_accounts,
            service_signing: EncodingKey::from_secret(&secret),
            service_verifying: DecodingKey::from_secret(&secret),
            service_validation,
            connection_validation,
        })))
    }

    /// The configured key, if any, that matches; compared in constant time with every key.
    /// Every configured key (for checking their settings at start-up).
    pub fn api_keys(&self) -> &[ApiKey] {
        &self.0.api_keys
    }

    pub fn api_key(&self, presented: &str) -> Option<&ApiKey> {
        let mut found = None;
        for key in &self.0.api_keys {
            if constant_time_eq(&key.key, presented) && found.is_none() {
                found = Some(key);
            }
        }
        found
    }

    fn bearer(&self, token: &str) -> Result<Identity, Rejection> {
        if let Ok(data) = jsonwebtoken::decode::<Claims>(
            token,
            &self.0.service_verifying,
            &self.0.service_validation,
        ) {
            return Ok(Identity {
                kind: IdentityKind::ServiceAccount,
                user_id: data.claims.sub.map(Into::into),
                roles: Vec::new(),
                is_server: true,
                authenticated: true,
            });
        }
        if let Ok(data) = jsonwebtoken::decode::<Claims>(
            token,
            &self.0.service_verifying,
            &self.0.connection_validation,
        ) {
            let claims = data.claims;
            let kind = match (&claims.sub, claims.kind) {
                (None, _) => IdentityKind::Anonymous,
                (Some(_), Some(TokenKind::ServiceAccount)) => IdentityKind::ServiceAccount,
                (Some(_), _) => IdentityKind::User,
            };
            return Ok(Identity {
                kind,
                authenticated: claims.sub.is_some() || claims.server,
                user_id: claims.sub.map(Into::into),
                roles: claims
                    .roles
                    .unwrap_or_default()
                    .into_iter()
                    .map(Into::into)
                    .collect(),
                is_server: claims.server,
            });
        }
        let Some(users) = &self.0.users else {
            return Err(Rejection::unauthorized(
                "This server accepts no bearer tokens (no JWT key is configured).",
            ));
        };
        let data = jsonwebtoken::decode::<Claims>(token, &users.key, &users.validation).map_err(
            |error| {
                tracing::debug!(%error, "refused a bearer token");
                Rejection::unauthorized("The bearer token is invalid or expired.")
            },
        )?;
        let user_id = data
            .claims
            .sub
            .filter(|s| !s.is_empty())
            .ok_or_else(|| Rejection::unauthorized("The bearer token has no subject (sub)."))?;
        Ok(Identity {
            kind: IdentityKind::User,
            user_id: Some(user_id.into()),
            roles: data
                .claims
                .roles
                .unwrap_or_default()
                .into_iter()
                .map(Into::into)
                .collect(),
            is_server: false,
            authenticated: true,
        })
    }

    pub fn identify(&self, credentials: &Credentials) -> Result<Identity, Rejection> {
        let mut identity = match &credentials.bearer {
            Some(token) => self.bearer(token)?,
            None => Identity::anonymous(),
        };
        if let Some(presented) = &credentials.api_key {
            let key = self
                .api_key(presented)
                .ok_or_else(|| Rejection::unauthorized("The API key is not valid."))?;
            identity.is_server |= key.role == KeyRole::Server;
            identity.authenticated = true;
        }
        Ok(identity)
    }

    /// The identity of an HTTP request.
    pub fn identify_request(
        &self,
        headers: &axum::http::HeaderMap,
        query: Option<&str>,
    ) -> Result<Identity, ApiError> {
        let credentials = Credentials::from_request(headers, &Query::parse(query));
        self.identify(&credentials)
            .map_err(|refused| ApiError::unauthorized(refused.message))
    }

    /// A token for `identity` that this server's negotiate accepts (the connection-info answer
    /// of `GET /api/_rt/signalr`, for clients that follow `{url, accessToken}`).
    pub fn connection_token(&self, identity: &Identity) -> Option<String> {
        #[derive(Serialize)]
        struct ConnectionClaims<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            sub: Option<&'a str>,
            roles: Vec<&'a str>,
            #[serde(skip_serializing_if = "std::ops::Not::not")]
            server: bool,
            #[serde(skip_serializing_if = "Option::is_none")]
            kind: Option<TokenKind>,
            iss: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
        }
        let now = jsonwebtoken::get_current_timestamp();
        let claims = ConnectionClaims {
            sub: identity.user_id.as_deref(),
            roles: identity.roles.iter().map(|r| &**r).collect(),
            server: identity.is_server,
            kind: match identity.kind {
                IdentityKind::Anonymous => None,
                IdentityKind::User => Some(TokenKind::User),
                IdentityKind::ServiceAccount => Some(TokenKind::ServiceAccount),
            },
            iss: SERVICE_ISSUER,
            aud: CONNECTION_AUDIENCE,
            iat: now,
            exp: now + CONNECTION_TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.0.service_signing,
        )
        .map_err(|error| tracing::error!(%error, "could not sign a connection token"))
        .ok()
    }

    /// A service account's token, or `None` for a wrong client id or secret (which of the two
    /// is not said).
    pub fn service_token(&self, client_id: &str, client_secret: &str) -> Option<String> {
        let mut matched = false;
        for account in &self.0.service_accounts {
            let id = constant_time_eq(&account.client_id, client_id);
            let secret = constant_time_eq(&account.client_secret, client_secret);
            matched |= id & secret;
        }
        if !matched {
            return None;
        }
        #[derive(Serialize)]
        struct ServiceClaims<'a> {
            sub: String,
            iss: &'a str,
            aud: &'a str,
            iat: u64,
            exp: u64,
        }
        let now = jsonwebtoken::get_current_timestamp();
        let claims = ServiceClaims {
            sub: format!("serviceaccount:{client_id}"),
            iss: SERVICE_ISSUER,
            aud: SERVICE_AUDIENCE,
            iat: now,
            exp: now + SERVICE_TOKEN_LIFETIME.as_secs(),
        };
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.0.service_signing,
        )
        .map_err(|error| tracing::error!(%error, "could not sign a service token"))
        .ok()
    }
}

fn rand_secret() -> [u8; 32] {
    use rand::RngCore;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    secret
}

pub mod extract;
#[cfg(test)]
mod tests;
