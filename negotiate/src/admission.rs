//! Who may use a connection: a transport request (`id=<token>`) is judged against the identity
//! that negotiated the connection, not by the token alone.
//!
//! The token is secret (it is never the public id, see `manager`), but it travels in URLs,
//! where proxies log it. So a request must also present the owner's credentials: the same
//! principal (kind and id), and the server flag only if the owner had it. Anonymous
//! connections stay bearer capabilities (there is nothing else to check). One leniency, for a
//! client that exists:
//! signalrcore sends no credentials on its long polls (its POSTs and DELETE carry them), so
//! a poll without credentials is judged by the token alone; a poll that carries credentials
//! must match like any other request.

use crate::handler::{ConnectionHandler, Rejection};
use crate::identity::{Credentials, Identity};
use axum::http::{HeaderMap, StatusCode};

/// Why a request may not use the connection it names.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum Denied {
    #[error("This connection was negotiated with credentials: present them on every request.")]
    CredentialsRequired,
    #[error("These credentials are not the ones this connection was negotiated with.")]
    OtherIdentity,
    /// The credentials are not valid at all: answered as negotiate answers them.
    #[error("{}", .0.message)]
    Invalid(Rejection),
}

impl Denied {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::CredentialsRequired => StatusCode::UNAUTHORIZED,
            Self::OtherIdentity => StatusCode::FORBIDDEN,
            Self::Invalid(rejection) => rejection.status,
        }
    }
}

/// The same principal: kind, user id and server flag. Unlike [`Identity::same_principal`],
/// two identities without a user id match here (an anonymous connection and a request without
/// credentials; a server key's connection and the server key). Roles may differ (a refreshed
/// token may carry others; the connection keeps the ones recorded at negotiate).
fn same_principal(owner: &Identity, presented: &Identity) -> bool {
    owner.kind == presented.kind
        && owner.user_id == presented.user_id
        && owner.is_server == presented.is_server
}

/// Whether a request with these headers and query may use a connection of `owner`.
pub(crate) fn admit<H: ConnectionHandler>(
    handler: &H,
    owner: &Identity,
    headers: &HeaderMap,
    query: &crate::query::Query,
    is_poll: bool,
) -> Result<(), Denied> {
    let credentials = Credentials::from_request(headers, query);
    let presented = credentials.bearer.is_some() || credentials.api_key.is_some();
    if !presented {
        return if is_poll || same_principal(owner, &Identity::anonymous()) {
            Ok(())
        } else {
            Err(Denied::CredentialsRequired)
        };
    }
    let identity = handler
        .authenticate(&credentials)
        .map_err(Denied::Invalid)?;
    if same_principal(owner, &identity) {
        Ok(())
    } else {
        Err(Denied::OtherIdentity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connection::TransportConnection;
    use crate::query::Query;
    use std::sync::Arc;

    /// Bearer `alice` is user alice, `server` the server identity; anything else is refused.
    struct Users;

    impl ConnectionHandler for Users {
        fn authenticate(&self, credentials: &Credentials) -> Result<Identity, Rejection> {
            match credentials.bearer.as_deref() {
                Some("server") => Ok(Identity {
                    is_server: true,
                    authenticated: true,
                    ..Identity::default()
                }),
                Some("alice") | Some("bob") => Ok(Identity {
                    kind: crate::identity::IdentityKind::User,
                    user_id: credentials.bearer.as_deref().map(Arc::from),
                    authenticated: true,
                    ..Identity::default()
                }),
                _ => Err(Rejection::unauthorized("bad token")),
            }
        }

        fn on_connected(
            &self,
            _connection: TransportConnection,
        ) -> impl std::future::Future<Output = ()> + Send + 'static {
            std::future::ready(())
        }
    }

    fn judge(owner: &Identity, bearer: Option<&str>, is_poll: bool) -> Option<StatusCode> {
        let query = Query::parse(bearer.map(|b| format!("access_token={b}")).as_deref());
        admit(&Users, owner, &HeaderMap::new(), &query, is_poll)
            .err()
            .map(|denied| denied.status())
    }

    #[test]
    fn only_the_owner_may_use_an_authenticated_connection() {
        let alice = Users.authenticate(&Credentials {
            bearer: Some("alice".into()),
            api_key: None,
        });
        let alice = alice.unwrap();
        assert_eq!(judge(&alice, Some("alice"), false), None);
        assert_eq!(
            judge(&alice, Some("bob"), false),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            judge(&alice, Some("server"), false),
            Some(StatusCode::FORBIDDEN)
        );
        assert_eq!(
            judge(&alice, Some("junk"), false),
            Some(StatusCode::UNAUTHORIZED)
        );
        assert_eq!(judge(&alice, None, false), Some(StatusCode::UNAUTHORIZED));
        // signalrcore's polls carry nothing; credentials on a poll still have to match.
        assert_eq!(judge(&alice, None, true), None);
        assert_eq!(
            judge(&alice, Some("bob"), true),
            Some(StatusCode::FORBIDDEN)
        );
    }

    #[test]
    fn an_anonymous_connection_is_its_token_and_a_server_one_needs_the_server() {
        let anonymous = Identity::anonymous();
        assert_eq!(judge(&anonymous, None, false), None);
        assert_eq!(
            judge(&anonymous, Some("alice"), false),
            Some(StatusCode::FORBIDDEN)
        );
        let server = Users
            .authenticate(&Credentials {
                bearer: Some("server".into()),
                api_key: None,
            })
            .unwrap();
        assert_eq!(judge(&server, Some("server"), false), None);
        assert_eq!(judge(&server, None, false), Some(StatusCode::UNAUTHORIZED));
    }
}
