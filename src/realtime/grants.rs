//! Who sees what on `/realtime` (PRODUCT.md section 3): an API key's `realtime` list
//! (`POST:company`, `PUT:*`, `*:orders`, `EVENT:GOAL`, `EVENT:*`, `*`), `[realtime] global`,
//! the server identity, and for JWT users the collections whose LISTEN rule admits them.
//!
//! A stream joins one internal router group per (event type, collection) it may see and one per
//! custom event name (or the all-events group), so a write is sent to one group and encoded
//! once for every stream, whatever they are allowed. The group names contain `/`, which channel
//! names cannot, so no client can join or send to them.

use std::collections::BTreeSet;

/// A database event type as `/realtime` names it: PUT and PATCH are both `put`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DbEvent {
    Post,
    Put,
    Delete,
}

impl DbEvent {
    pub const ALL: [DbEvent; 3] = [DbEvent::Post, DbEvent::Put, DbEvent::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            DbEvent::Post => "post",
            DbEvent::Put => "put",
            DbEvent::Delete => "delete",
        }
    }

    pub fn of(operation: router::Operation) -> Self {
        match operation {
            router::Operation::Create => DbEvent::Post,
            router::Operation::Update => DbEvent::Put,
            router::Operation::Delete => DbEvent::Delete,
        }
    }
}

/// The router group of one database event type of one collection.
pub fn db_group(event: DbEvent, collection: &str) -> String {
    format!("realtime/db/{}/{collection}", event.as_str())
}

/// The router group of one custom event name.
pub fn event_group(name: &str) -> String {
    format!("realtime/event/{name}")
}

/// The router group of streams that see every custom event.
pub const ALL_EVENTS_GROUP: &str = "realtime/event/*";

/// One entry of a key's `realtime` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    Everything,
    /// `METHOD:COLLECTION`; `None` is `*`.
    Db {
        event: Option<DbEvent>,
        collection: Option<String>,
    },
    /// `EVENT:NAME`; `None` is `EVENT:*`.
    Event(Option<String>),
}

impl Grant {
    pub fn parse(entry: &str) -> Result<Self, String> {
        if entry == "*" {
            return Ok(Grant::Everything);
        }
        let (kind, target) = entry
            .split_once(':')
            .ok_or_else(|| format!("'{entry}' is neither '*', METHOD:COLLECTION nor EVENT:NAME"))?;
        let target = match target {
            "" => return Err(format!("'{entry}' names nothing after the ':'")),
            "*" => None,
            name => Some(name.to_owned()),
        };
        let event = match kind.to_ascii_uppercase().as_str() {
            "EVENT" => return Ok(Grant::Event(target)),
            "*" => None,
            "POST" => Some(DbEvent::Post),
            "PUT" | "PATCH" => Some(DbEvent::Put),
            "DELETE" => Some(DbEvent::Delete),
            other => {
                return Err(format!(
                    "'{entry}': {other} is not POST, PUT, PATCH, DELETE, * or EVENT"
                ))
            }
        };
        Ok(Grant::Db {
            event,
            collection: target,
        })
    }
}

/// What one stream may see, expanded over the schema's collections.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Visibility {
    pub db: BTreeSet<(DbEvent, String)>,
    pub all_events: bool,
    pub events: BTreeSet<String>,
}

impl Visibility {
    pub fn everything(collections: &[String]) -> Self {
        let mut visibility = Self {
            all_events: true,
            ..Self::default()
        };
        visibility.add_collections(collections);
        visibility
    }

    /// Every event type of these collections.
    pub fn add_collections<'a>(&mut self, collections: impl IntoIterator<Item = &'a String>) {
        for collection in collections {
            for event in DbEvent::ALL {
                self.db.insert((event, collection.clone()));
            }
        }
    }

    pub fn add(&mut self, grant: &Grant, collections: &[String]) {
        match grant {
            Grant::Everything => {
                *self = {
                    let mut all = Self::everything(collections);
                    all.db.extend(std::mem::take(&mut self.db));
                    all
                }
            }
            Grant::Event(None) => self.all_events = true,
            Grant::Event(Some(name)) => {
                self.events.insert(name.clone());
            }
            Grant::Db { event, collection } => {
                for name in collections {
                    if collection.as_ref().is_some_and(|wanted| wanted != name) {
                        continue;
                    }
                    for candidate in DbEvent::ALL {
                        if event.is_none_or(|wanted| wanted == candidate) {
                            self.db.insert((candidate, name.clone()));
                        }
                    }
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.db.is_empty() && !self.all_events && self.events.is_empty()
    }

    pub fn sees_db(&self, event: DbEvent, collection: &str) -> bool {
        self.db.contains(&(event, collection.to_owned()))
    }

    pub fn sees_event(&self, name: &str) -> bool {
        self.all_events || self.events.contains(name)
    }

    /// The router groups a stream with this visibility joins.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = self
            .db
            .iter()
            .map(|(event, collection)| db_group(*event, collection))
            .collect();
        if self.all_events {
            groups.push(ALL_EVENTS_GROUP.to_owned());
        } else {
            groups.extend(self.events.iter().map(|name| event_group(name)));
        }
        groups
    }
}

/// Whether an entry list lets its key publish `name`.
pub fn may_publish(grants: &[Grant], name: &str) -> bool {
    grants.iter().any(|grant| match grant {
        Grant::Everything | Grant::Event(None) => true,
        Grant::Event(Some(allowed)) => allowed == name,
        Grant::Db { .. } => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["company".into(), "orders".into()]
    }

    #[test]
    fn entries_parse_with_their_wildcards() {
        assert_eq!(Grant::parse("*"), Ok(Grant::Everything));
        assert_eq!(
            Grant::parse("POST:company"),
            Ok(Grant::Db {
                event: Some(DbEvent::Post),
                collection: Some("company".into())
            })
        );
        assert_eq!(
            Grant::parse("patch:*"),
            Ok(Grant::Db {
                event: Some(DbEvent::Put),
                collection: None
            })
        );
        assert_eq!(
            Grant::parse("EVENT:GOAL"),
            Ok(Grant::Event(Some("GOAL".into())))
        );
        assert_eq!(Grant::parse("EVENT:*"), Ok(Grant::Event(None)));
        for bad in ["", "company", "GET:company", "POST:", "EVENT:"] {
            assert!(Grant::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn visibility_expands_over_the_schema() {
        let mut visibility = Visibility::default();
        visibility.add(&Grant::parse("PUT:*").unwrap(), &names());
        visibility.add(&Grant::parse("*:orders").unwrap(), &names());
        visibility.add(&Grant::parse("EVENT:GOAL").unwrap(), &names());
        assert!(visibility.sees_db(DbEvent::Put, "company"));
        assert!(!visibility.sees_db(DbEvent::Post, "company"));
        assert!(visibility.sees_db(DbEvent::Delete, "orders"));
        assert!(visibility.sees_event("GOAL") && !visibility.sees_event("OTHER"));
        assert_eq!(visibility.groups().len(), 5);
        assert!(visibility.groups().iter().all(|g| g.contains('/')));
        let mut all = Visibility::default();
        all.add(&Grant::Everything, &names());
        assert_eq!(all, Visibility::everything(&names()));
        assert!(may_publish(&[Grant::parse("EVENT:GOAL").unwrap()], "GOAL"));
        assert!(!may_publish(&[Grant::parse("POST:*").unwrap()], "GOAL"));
    }
}
