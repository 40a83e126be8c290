//! Who a connection belongs to. Resolved once, when the connection is created, by the
//! application; every protocol and the router see the same type.

use std::sync::Arc;

/// What kind of principal an identity is. Ids are only unique within a kind: a user JWT may
/// carry any `sub`, including one that looks like a service account's, so ownership compares
/// the kind and the id together ([`Identity::same_principal`]), never a formatted string.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum IdentityKind {
    /// No user: no credentials, or only an API key.
    #[default]
    Anonymous,
    /// A user of the application (the `sub` of a JWT the application signed).
    User,
    /// A service account of this server (`POST /api/_auth`).
    ServiceAccount,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Identity {
    /// Which namespace `user_id` belongs to.
    pub kind: IdentityKind,
    /// The user id (`sub` of a JWT); `None` for anonymous connections.
    pub user_id: Option<Arc<str>>,
    /// Custom roles.
    pub roles: Vec<Arc<str>>,
    /// The server identity (server API keys, service accounts) may act on every connection.
    pub is_server: bool,
    /// Valid credentials were presented (a token or a key): refusals are 403, not 401.
    pub authenticated: bool,
}

impl Identity {
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Whether both are the same user or the same service account: kind and id compared
    /// together. Identities without a user id are never the same principal.
    pub fn same_principal(&self, other: &Identity) -> bool {
        self.kind == other.kind && self.user_id.is_some() && self.user_id == other.user_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_compare_by_kind_and_id() {
        let user = |kind, id: &str| Identity {
            kind,
            user_id: Some(id.into()),
            ..Identity::default()
        };
        let alice = user(IdentityKind::User, "alice");
        assert!(alice.same_principal(&user(IdentityKind::User, "alice")));
        assert!(!alice.same_principal(&user(IdentityKind::User, "bob")));
        let account = user(IdentityKind::ServiceAccount, "serviceaccount:ops");
        let impostor = user(IdentityKind::User, "serviceaccount:ops");
        assert!(!impostor.same_principal(&account) && !account.same_principal(&impostor));
        assert!(!Identity::anonymous().same_principal(&Identity::anonymous()));
    }
}
