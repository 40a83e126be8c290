//! Who listens to which changes. Subscriptions are indexed by collection, then by item id and
//! by lookup id, so matching a change costs the subscribers it concerns, not every subscriber.

use super::store::Change;
use parking_lot::RwLock;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;
use uuid::Uuid;

/// `{ "id"?, "lookupIds"? }`: both given means both must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ListenFilter {
    #[serde(default)]
    pub id: Option<Uuid>,
    /// Kept sorted and unique, so equal filters compare equal.
    #[serde(default, deserialize_with = "sorted_ids")]
    pub lookup_ids: BTreeSet<Uuid>,
}

fn sorted_ids<'de, D: serde::Deserializer<'de>>(d: D) -> Result<BTreeSet<Uuid>, D::Error> {
    Option::<Vec<Uuid>>::deserialize(d).map(|ids| ids.unwrap_or_default().into_iter().collect())
}

impl ListenFilter {
    /// Whether a change passes, given the lookup ids it touches (before or after the write).
    fn matches(&self, id: Uuid, lookups: &HashSet<Uuid>) -> bool {
        self.id.is_none_or(|wanted| wanted == id)
            && (self.lookup_ids.is_empty() || self.lookup_ids.iter().any(|l| lookups.contains(l)))
    }
}

/// Who gets a change: a connection (through the hub) or a `StreamChanges` stream.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Subscriber {
    Connection(Arc<str>),
    Stream(u64),
}

#[derive(Default)]
struct CollectionIndex {
    /// Subscribers with no filter.
    everything: HashSet<Subscriber>,
    /// Filters with an id, by that id.
    by_id: HashMap<Uuid, HashSet<(Subscriber, ListenFilter)>>,
    /// Filters with lookup ids and no id, by each lookup id.
    by_lookup: HashMap<Uuid, HashSet<(Subscriber, ListenFilter)>>,
    /// Every filter of every subscriber, to undo them.
    filters: HashMap<Subscriber, HashSet<ListenFilter>>,
}

impl CollectionIndex {
    fn add(&mut self, subscriber: Subscriber, filter: ListenFilter) {
        if !self
            .filters
            .entry(subscriber.clone())
            .or_default()
            .insert(filter.clone())
        {
            return;
        }
        if let Some(id) = filter.id {
            self.by_id
                .entry(id)
                .or_default()
                .insert((subscriber, filter));
        } else if !filter.lookup_ids.is_empty() {
            for lookup in &filter.lookup_ids {
                self.by_lookup
                    .entry(*lookup)
                    .or_default()
                    .insert((subscriber.clone(), filter.clone()));
            }
        } else {
            self.everything.insert(subscriber);
        }
    }

    fn remove(&mut self, subscriber: &Subscriber, filter: &ListenFilter) -> bool {
        let Some(filters) = self.filters.get_mut(subscriber) else {
            return false;
        };
        if !filters.remove(filter) {
            return false;
        }
        if filters.is_empty() {
            self.filters.remove(subscriber);
        }
        let key = (subscriber.clone(), filter.clone());
        if let Some(id) = filter.id {
            remove_from(&mut self.by_id, id, &key);
        } else if !filter.lookup_ids.is_empty() {
            for lookup in &filter.lookup_ids {
                remove_from(&mut self.by_lookup, *lookup, &key);
            }
        } else {
            self.everything.remove(subscriber);
        }
        true
    }

    fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }
}

fn remove_from(
    index: &mut HashMap<Uuid, HashSet<(Subscriber, ListenFilter)>>,
    key: Uuid,
    entry: &(Subscriber, ListenFilter),
) {
    if let Some(set) = index.get_mut(&key) {
        set.remove(entry);
        if set.is_empty() {
            index.remove(&key);
        }
    }
}

/// Every subscription of this process.
#[derive(Default)]
pub struct Subscriptions {
    collections: RwLock<HashMap<String, CollectionIndex>>,
    streams: RwLock<HashMap<u64, mpsc::Sender<Arc<Change>>>>,
    next_stream: std::sync::atomic::AtomicU64,
}

/// How many changes a `StreamChanges` stream may fall behind before it is ended.
pub const STREAM_BUFFER: usize = 1024;

impl Subscriptions {
    /// Add a subscription; the same filter twice is one subscription.
    pub fn listen(&self, collection: &str, subscriber: Subscriber, filter: ListenFilter) {
        self.collections
            .write()
            .entry(collection.to_owned())
            .or_default()
            .add(subscriber, filter);
    }

    /// Remove a subscription; whether it existed.
    pub fn unlisten(
        &self,
        collection: &str,
        subscriber: &Subscriber,
        filter: &ListenFilter,
    ) -> bool {
        let mut collections = self.collections.write();
        let Some(index) = collections.get_mut(collection) else {
            return false;
        };
        let removed = index.remove(subscriber, filter);
        if index.is_empty() {
            collections.remove(collection);
        }
        removed
    }

    /// Remove every subscription of a subscriber (a connection that ended).
    pub fn forget(&self, subscriber: &Subscriber) {
        let mut collections = self.collections.write();
        collections.retain(|_, index| {
            if let Some(filters) = index.filters.get(subscriber).cloned() {
                for filter in &filters {
                    index.remove(subscriber, filter);
                }
            }
            !index.is_empty()
        });
        if let Subscriber::Stream(id) = subscriber {
            self.streams.write().remove(id);
        }
    }

    /// A `StreamChanges` subscription: changes arrive on the receiver until it is dropped and
    /// [`Subscriptions::forget`] is called with the returned subscriber.
    pub fn open_stream(
        &self,
        collection: &str,
        filter: ListenFilter,
    ) -> (Subscriber, mpsc::Receiver<Arc<Change>>) {
        let id = self
            .next_stream
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        self.streams.write().insert(id, tx);
        let subscriber = Subscriber::Stream(id);
        self.listen(collection, subscriber.clone(), filter);
        (subscriber, rx)
    }

    /// The subscribers a change concerns, each once. `lookup_names` are the collection's
    /// lookup properties; their values before and after the write both count.
    pub fn matching(&self, change: &Change, lookup_names: &[String]) -> Vec<Subscriber> {
        let collections = self.collections.read();
        let Some(index) = collections.get(&change.collection) else {
            return Vec::new();
        };
        let lookups = lookup_values(change, lookup_names);
        let mut found: HashSet<&Subscriber> = index.everything.iter().collect();
        if let Some(with_id) = index.by_id.get(&change.id) {
            found.extend(
                with_id
                    .iter()
                    .filter(|(_, filter)| filter.matches(change.id, &lookups))
                    .map(|(subscriber, _)| subscriber),
            );
        }
        for lookup in &lookups {
            if let Some(with_lookup) = index.by_lookup.get(lookup) {
                found.extend(with_lookup.iter().map(|(subscriber, _)| subscriber));
            }
        }
        found.into_iter().cloned().collect()
    }

    /// Hand a change to a stream; `false` if the stream is gone or fell too far behind (it is
    /// then ended by its reader).
    pub fn push_to_stream(&self, stream: u64, change: &Arc<Change>) -> bool {
        let streams = self.streams.read();
        streams
            .get(&stream)
            .is_some_and(|tx| tx.try_send(change.clone()).is_ok())
    }

    pub fn is_listening(&self, collection: &str, subscriber: &Subscriber) -> bool {
        self.collections
            .read()
            .get(collection)
            .is_some_and(|index| index.filters.contains_key(subscriber))
    }
}

/// Connections' subscriptions end with the connection, whatever protocol it spoke.
impl router::SessionObserver for Subscriptions {
    fn disconnected(&self, session: &Arc<router::Session>) {
        self.forget(&Subscriber::Connection(session.id().as_arc().clone()));
    }
}

/// Whether `filter` lets `change` through (for replays from the log).
pub fn accepts(filter: &ListenFilter, change: &Change, lookup_names: &[String]) -> bool {
    filter.matches(change.id, &lookup_values(change, lookup_names))
}

/// The ids held by the lookup properties of the item before and after the write.
fn lookup_values(change: &Change, lookup_names: &[String]) -> HashSet<Uuid> {
    let mut ids = HashSet::new();
    for state in std::iter::once(&change.data).chain(change.before.as_ref()) {
        for name in lookup_names {
            if let Some(Value::String(text)) = state.get(name) {
                if let Ok(id) = Uuid::parse_str(text) {
                    ids.insert(id);
                }
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collections::store::Operation;
    use serde_json::json;

    fn change(id: Uuid, data: Value, before: Option<Value>) -> Change {
        Change {
            seq: 1,
            collection: "orders".into(),
            operation: Operation::Update,
            id,
            data,
            before,
            ts: chrono::Utc::now(),
        }
    }

    fn conn(name: &str) -> Subscriber {
        Subscriber::Connection(name.into())
    }

    fn sorted(mut subscribers: Vec<Subscriber>) -> Vec<Subscriber> {
        subscribers.sort_by_key(|s| format!("{s:?}"));
        subscribers
    }

    #[test]
    fn filters_by_id_lookup_both_and_none() {
        let subs = Subscriptions::default();
        let (item, other, customer, other_customer) = (
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
            Uuid::new_v4(),
        );
        let lookups = vec!["customer".to_owned()];
        subs.listen("orders", conn("all"), ListenFilter::default());
        subs.listen(
            "orders",
            conn("by-id"),
            ListenFilter {
                id: Some(item),
                ..Default::default()
            },
        );
        subs.listen(
            "orders",
            conn("by-lookup"),
            ListenFilter {
                id: None,
                lookup_ids: [customer].into(),
            },
        );
        subs.listen(
            "orders",
            conn("both"),
            ListenFilter {
                id: Some(item),
                lookup_ids: [other_customer].into(),
            },
        );
        subs.listen("customers", conn("elsewhere"), ListenFilter::default());

        let c = change(item, json!({"customer": customer.to_string()}), None);
        assert_eq!(
            sorted(subs.matching(&c, &lookups)),
            sorted(vec![conn("all"), conn("by-id"), conn("by-lookup")])
        );

        let c = change(other, json!({"customer": other_customer.to_string()}), None);
        assert_eq!(subs.matching(&c, &lookups), vec![conn("all")]);

        // The lookup held the id before the write: that counts too.
        let c = change(
            item,
            json!({"customer": null}),
            Some(json!({"customer": other_customer.to_string()})),
        );
        assert_eq!(
            sorted(subs.matching(&c, &lookups)),
            sorted(vec![conn("all"), conn("by-id"), conn("both")])
        );
    }

    #[test]
    fn a_subscriber_matched_twice_gets_the_change_once() {
        let subs = Subscriptions::default();
        let (item, customer) = (Uuid::new_v4(), Uuid::new_v4());
        subs.listen("orders", conn("a"), ListenFilter::default());
        subs.listen(
            "orders",
            conn("a"),
            ListenFilter {
                id: Some(item),
                ..Default::default()
            },
        );
        subs.listen(
            "orders",
            conn("a"),
            ListenFilter {
                id: None,
                lookup_ids: [customer].into(),
            },
        );
        let c = change(item, json!({"customer": customer.to_string()}), None);
        assert_eq!(subs.matching(&c, &["customer".into()]), vec![conn("a")]);
    }

    #[test]
    fn unlisten_and_forget_remove_exactly_what_was_added() {
        let subs = Subscriptions::default();
        let item = Uuid::new_v4();
        let by_id = ListenFilter {
            id: Some(item),
            ..Default::default()
        };
        subs.listen("orders", conn("a"), by_id.clone());
        subs.listen("orders", conn("a"), by_id.clone());
        subs.listen("orders", conn("a"), ListenFilter::default());
        assert!(subs.unlisten("orders", &conn("a"), &ListenFilter::default()));
        assert!(!subs.unlisten("orders", &conn("a"), &ListenFilter::default()));
        let c = change(item, json!({}), None);
        assert_eq!(subs.matching(&c, &[]), vec![conn("a")]);
        subs.forget(&conn("a"));
        assert!(subs.matching(&c, &[]).is_empty());
        assert!(
            subs.collections.read().is_empty(),
            "empty indexes are dropped"
        );
    }

    #[test]
    fn filters_parse_from_the_wire_shape() {
        let id = Uuid::new_v4();
        let filter: ListenFilter =
            serde_json::from_value(json!({"id": id, "lookupIds": [id, id]})).unwrap();
        assert_eq!(filter.id, Some(id));
        assert_eq!(filter.lookup_ids.len(), 1);
        assert!(serde_json::from_value::<ListenFilter>(json!({"nope": 1})).is_err());
        assert!(serde_json::from_value::<ListenFilter>(json!({"id": "not-a-uuid"})).is_err());
    }

    #[tokio::test]
    async fn streams_receive_until_forgotten() {
        let subs = Subscriptions::default();
        let (subscriber, mut rx) = subs.open_stream("orders", ListenFilter::default());
        let c = Arc::new(change(Uuid::new_v4(), json!({}), None));
        let Subscriber::Stream(id) = subscriber.clone() else {
            panic!()
        };
        assert_eq!(subs.matching(&c, &[]), vec![subscriber.clone()]);
        assert!(subs.push_to_stream(id, &c));
        assert_eq!(rx.recv().await.unwrap().id, c.id);
        subs.forget(&subscriber);
        assert!(!subs.push_to_stream(id, &c));
    }
}
