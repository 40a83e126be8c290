//! `/realtime`: RestDB.io's EventSource stream of database and custom events, resumable with
//! `Last-Event-ID` (PRODUCT.md sections 2, 3 and 5; `docs/DECISIONS.md`, "Realtime").
//!
//! A stream is a router session of protocol `realtime.sse` in the internal groups of what it
//! may see ([`grants`]); the change feed and `POST /realtime` send to those groups through the
//! [`EventLog`], which numbers events so a reconnecting stream gets exactly what it missed.

pub mod config;
mod encoder;
pub(crate) mod endpoint;
pub mod grants;
mod log;

pub use config::RealtimeConfig;
pub use endpoint::routes;
pub use log::{EventId, EventLog};

use crate::auth::Authenticator;
use crate::collections::schema::{Method, Schema};
use crate::collections::store::SharedStore;
use grants::{Grant, Visibility};
use negotiate::{Credentials, Identity};
use std::sync::Arc;

pub struct Realtime {
    pub log: Arc<EventLog>,
    pub store: SharedStore,
    pub schema: Arc<Schema>,
    pub auth: Authenticator,
    pub config: RealtimeConfig,
    pub router: router::Router,
    /// Ends every stream when the server shuts down (clients reconnect with `Last-Event-ID`).
    pub shutdown: tokio_util::sync::CancellationToken,
    collections: Vec<String>,
}

/// A key's `realtime` entry that does not parse (checked when the server starts).
#[derive(Debug, thiserror::Error)]
#[error("api_keys: realtime entry {0}")]
pub struct GrantError(String);

impl Realtime {
    pub fn new(
        log: Arc<EventLog>,
        store: SharedStore,
        schema: Arc<Schema>,
        auth: Authenticator,
        config: RealtimeConfig,
        router: router::Router,
        shutdown: tokio_util::sync::CancellationToken,
    ) -> Result<Self, GrantError> {
        for key in auth.api_keys() {
            for entry in &key.realtime {
                Grant::parse(entry).map_err(GrantError)?;
            }
        }
        let collections = schema.collections().map(|c| c.name.clone()).collect();
        Ok(Self {
            log,
            store,
            schema,
            auth,
            config,
            router,
            shutdown,
            collections,
        })
    }

    /// The grants of the presented API key, if there is one.
    fn key_grants(&self, credentials: &Credentials) -> Option<Vec<Grant>> {
        let key = self.auth.api_key(credentials.api_key.as_deref()?)?;
        Some(
            key.realtime
                .iter()
                .filter_map(|entry| Grant::parse(entry).ok())
                .collect(),
        )
    }

    /// What a stream with these credentials sees: everything for the server identity and,
    /// with `global`, for any valid key; a key's list otherwise; and for a user, the
    /// collections whose LISTEN rule admits them.
    pub fn visibility(&self, identity: &Identity, credentials: &Credentials) -> Visibility {
        if identity.is_server {
            return Visibility::everything(&self.collections);
        }
        let mut visibility = Visibility::default();
        if let Some(grants) = self.key_grants(credentials) {
            if self.config.global {
                return Visibility::everything(&self.collections);
            }
            for grant in &grants {
                visibility.add(grant, &self.collections);
            }
        }
        if identity.kind == negotiate::IdentityKind::User {
            let listenable = self
                .schema
                .collections()
                .filter(|c| c.allows(Method::Listen, identity))
                .map(|c| &c.name);
            visibility.add_collections(listenable);
        }
        visibility
    }

    /// Whether these credentials may publish custom event `name`.
    pub fn may_publish(&self, identity: &Identity, credentials: &Credentials, name: &str) -> bool {
        if identity.is_server {
            return true;
        }
        match self.key_grants(credentials) {
            Some(_) if self.config.global => true,
            Some(grants) => grants::may_publish(&grants, name),
            None => false,
        }
    }
}
