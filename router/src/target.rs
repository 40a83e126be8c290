//! Whom a message goes to, and how far.

use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// Every connection, everywhere.
    All,
    /// The members of a group.
    Group(Arc<str>),
    /// The members of a group but one connection (Web PubSub's `noEcho`).
    GroupExcept {
        group: Arc<str>,
        except: Arc<str>,
    },
    /// The members of several groups, each connection once.
    Groups(Vec<Arc<str>>),
    Connection(Arc<str>),
    /// Several connections, each once.
    Connections(Vec<Arc<str>>),
    /// Every connection of a user (identity kind `User`).
    User(Arc<str>),
    /// Another target's connections but these (Web PubSub's `excluded` ids).
    Excluding {
        target: Box<Target>,
        except: Arc<[Arc<str>]>,
    },
}

impl Target {
    pub fn group(name: &str) -> Self {
        Target::Group(name.into())
    }

    pub fn connection(id: &str) -> Self {
        Target::Connection(id.into())
    }

    /// This target without the connections `except` (itself when `except` is empty).
    pub fn excluding(self, except: Vec<Arc<str>>) -> Self {
        if except.is_empty() {
            self
        } else {
            Target::Excluding {
                target: Box::new(self),
                except: except.into(),
            }
        }
    }

    /// The groups whose subscribers (nodes with members) a backplane must reach; `None` for
    /// targets that are not about groups.
    pub fn groups(&self) -> Option<&[Arc<str>]> {
        match self {
            Target::Group(group) | Target::GroupExcept { group, .. } => {
                Some(std::slice::from_ref(group))
            }
            Target::Groups(groups) => Some(groups),
            Target::Excluding { target, .. } => target.groups(),
            _ => None,
        }
    }
}

/// How far a send reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This process only: change-feed deliveries, which every node reads from the change log
    /// itself.
    Local,
    /// Every node: channel messages and custom events go through the backplane.
    Cluster,
}
