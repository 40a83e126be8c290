//! Who hears sessions come and go: change subscriptions, metrics, the console. The router
//! calls them, so no protocol endpoint has to remember to.

use crate::session::Session;
use std::sync::Arc;

pub trait SessionObserver: Send + Sync + 'static {
    /// The session is registered: reachable by every target.
    fn connected(&self, _session: &Arc<Session>) {}
    /// The session is gone: out of every table, no longer reachable, and refused by
    /// [`crate::Router::with_live_session`], so nothing can attach to it after this call.
    fn disconnected(&self, _session: &Arc<Session>) {}
}
