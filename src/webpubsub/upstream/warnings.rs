//! Failures to reach the event handler, logged once per kind: a handler that is down fails
//! every event, and a warning per message would bury the log. The first of a kind is a
//! warning, the rest debug lines, until the handler answers again (an info line), which arms
//! every kind anew.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

/// A connection id as logs show it, like `RandomId::redacted`: the first six characters, to
/// follow a connection without handing out the id.
pub struct LogId<'a>(pub &'a str);

impl fmt::Display for LogId<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = self.0.get(..6).unwrap_or(self.0);
        write!(f, "{shown}…")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Connection refused, DNS, TLS, a reset.
    Unreachable,
    /// No answer within `event_timeout`.
    Timeout,
    /// A non-2xx status (for the unblocking events and user events).
    Status,
    /// A 2xx answer we cannot use (bad JSON, too big, a bad connection state).
    BadReply,
    /// The abuse-protection check said no.
    NotAllowed,
    /// Too many `connected`/`disconnected` events waiting: some were dropped.
    Overloaded,
}

const KINDS: usize = 6;

impl Kind {
    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Default)]
pub struct Warnings {
    warned: [AtomicBool; KINDS],
}

impl Warnings {
    pub fn warn(&self, kind: Kind, connection_id: Option<&str>, message: &str) {
        let connection_id = connection_id.map(LogId);
        if !self.warned[kind.index()].swap(true, Ordering::AcqRel) {
            tracing::warn!(
                connection_id = connection_id.map(tracing::field::display),
                ?kind,
                "{message} (further failures of this kind are logged at debug level until the \
                 event handler answers again)"
            );
        } else {
            tracing::debug!(
                connection_id = connection_id.map(tracing::field::display),
                ?kind,
                "{message}"
            );
        }
    }

    /// The handler answered: log the recovery once and arm every kind again.
    pub fn answered(&self) {
        let mut recovered = false;
        for (index, flag) in self.warned.iter().enumerate() {
            // Overloaded and NotAllowed are not about the handler's answers.
            if index == Kind::Overloaded.index() || index == Kind::NotAllowed.index() {
                continue;
            }
            if flag.load(Ordering::Acquire) && flag.swap(false, Ordering::AcqRel) {
                recovered = true;
            }
        }
        if recovered {
            tracing::info!("the event handler answers again");
        }
    }

    /// The abuse-protection check said yes (after a no): warn again on the next no.
    pub fn allowed_again(&self) {
        self.warned[Kind::NotAllowed.index()].store(false, Ordering::Release);
    }
}
