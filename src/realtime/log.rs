//! Positions in the `/realtime` stream, and the custom events kept for resuming.
//!
//! **Ids.** A database event's id is its change's `seq` (`42`). A custom event's id is
//! `<seq>-<n>`: `seq` is the last database event this process had delivered when it was
//! published, `n` a counter of this process that starts at its start-up time in microseconds
//! (so ids of a later process sort after an earlier one's). Ordered as `(seq, n)` with a
//! database event at `n = 0`, ids follow delivery order, so `Last-Event-ID` says exactly what a
//! stream had: the database events after `seq` come from the change log (also across restarts
//! and from other processes sharing the database), the custom events after it from memory.
//!
//! Delivery and publishing take one short lock (never held across an await) so that an id is
//! handed out in the same order as its event reaches the streams.

use super::grants::{db_group, event_group, DbEvent, Visibility, ALL_EVENTS_GROUP};
use parking_lot::Mutex;
use router::{CustomEvent, Outbound, Payload, Router, Scope, Target};
use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId {
    pub seq: i64,
    /// 0 for a database event.
    pub n: u64,
}

impl EventId {
    /// `42` or `42-1764750000000001`; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (seq, n) = match text.split_once('-') {
            None => (text, None),
            Some((seq, n)) => (seq, Some(n)),
        };
        let all_digits =
            |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(seq) || n.is_some_and(|n| !all_digits(n)) {
            return None;
        }
        let seq = seq.parse().ok()?;
        let n = match n {
            None => 0,
            Some(n) => n.parse().ok().filter(|n| *n > 0)?,
        };
        Some(Self { seq, n })
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.n == 0 {
            write!(f, "{}", self.seq)
        } else {
            write!(f, "{}-{}", self.seq, self.n)
        }
    }
}

struct Kept {
    id: EventId,
    name: Arc<str>,
    at: Instant,
    message: Arc<Outbound>,
}

struct State {
    /// The last database event delivered.
    delivered: i64,
    next_n: u64,
    kept: VecDeque<Kept>,
    /// The newest custom event no longer kept: a stream that had not seen it cannot resume.
    dropped_through: Option<EventId>,
}

/// Why a stream cannot resume from its `Last-Event-ID`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Stale {
    #[error("custom events after {0} are no longer kept")]
    EventsDropped(EventId),
    #[error("{0} was issued by an earlier run of the server, whose custom events are gone")]
    EarlierRun(EventId),
    #[error("changes after {0} are no longer in the change log")]
    ChangesPruned(EventId),
    #[error("{0} is ahead of this server's stream")]
    Ahead(EventId),
    #[error("more than {0} events were missed")]
    TooMany(usize),
}

pub struct EventLog {
    router: Router,
    retention: Duration,
    /// This process's first custom-event counter.
    first_n: u64,
    state: Mutex<State>,
}

impl EventLog {
    /// `delivered`: the change feed's starting point.
    pub fn new(router: Router, delivered: i64, retention: Duration) -> Arc<Self> {
        let first_n = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_micros() as u64)
            .max(1);
        Arc::new(Self {
            router,
            retention,
            first_n,
            state: Mutex::new(State {
                delivered,
                next_n: first_n,
                kept: VecDeque::new(),
                dropped_through: None,
            }),
        })
    }

    /// The change feed delivers a change (in `seq` order) to the streams that may see it.
    pub fn deliver_change(&self, message: &Arc<Outbound>) {
        let Outbound::Change(change) = &**message else {
            return;
        };
        let group = db_group(DbEvent::of(change.operation), &change.collection);
        let mut state = self.state.lock();
        state.delivered = state.delivered.max(change.seq);
        self.router
            .send(Target::Group(group.into()), Scope::Local, message.clone());
    }

    /// Publish a custom event to the streams that may see it; its id.
    pub fn publish(&self, name: &str, data: Payload) -> EventId {
        let mut state = self.state.lock();
        let id = EventId {
            seq: state.delivered,
            n: state.next_n,
        };
        state.next_n += 1;
        let message = Arc::new(Outbound::Event(CustomEvent {
            name: name.into(),
            data,
            id: id.to_string().into(),
        }));
        let now = Instant::now();
        self.prune(&mut state, now);
        state.kept.push_back(Kept {
            id,
            name: name.into(),
            at: now,
            message: message.clone(),
        });
        let groups = vec![ALL_EVENTS_GROUP.into(), event_group(name).into()];
        self.router
            .send(Target::Groups(groups), Scope::Cluster, message);
        id
    }

    fn prune(&self, state: &mut State, now: Instant) {
        while let Some(oldest) = state.kept.front() {
            if now.duration_since(oldest.at) < self.retention {
                break;
            }
            state.dropped_through = Some(oldest.id);
            state.kept.pop_front();
        }
    }

    /// Run `attach` (register a stream and join its groups) at a fixed position: every event
    /// after the returned id reaches what `attach` registered, every event up to it did not.
    pub fn attach<R>(&self, attach: impl FnOnce() -> R) -> (R, EventId) {
        let state = self.state.lock();
        let now = EventId {
            seq: state.delivered,
            n: state.next_n - 1,
        };
        (attach(), now)
    }

    /// The kept custom events after `after` up to `through` that `visibility` lets through;
    /// [`Stale`] when some after `after` are gone.
    pub fn events_between(
        &self,
        after: EventId,
        through: EventId,
        visibility: &Visibility,
    ) -> Result<Vec<(EventId, Arc<Outbound>)>, Stale> {
        let mut state = self.state.lock();
        self.prune(&mut state, Instant::now());
        // Only a stream that may see custom events can have missed one.
        let sees_events = visibility.all_events || !visibility.events.is_empty();
        if sees_events && after.n != 0 && after.n < self.first_n {
            return Err(Stale::EarlierRun(after));
        }
        if sees_events && state.dropped_through.is_some_and(|dropped| dropped > after) {
            return Err(Stale::EventsDropped(after));
        }
        Ok(state
            .kept
            .iter()
            .filter(|kept| kept.id > after && kept.id <= through)
            .filter(|kept| visibility.sees_event(&kept.name))
            .map(|kept| (kept.id, kept.message.clone()))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_print_and_order_as_delivered() {
        for text in ["0", "42", "42-17"] {
            assert_eq!(EventId::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "",
            "-1",
            "x",
            "4-",
            "4-0",
            "4-x",
            "1-2-3",
            "99999999999999999999999",
        ] {
            assert_eq!(EventId::parse(bad), None, "{bad:?}");
        }
        let db = EventId::parse("42").unwrap();
        let custom = EventId::parse("42-5").unwrap();
        assert!(db < custom && custom < EventId::parse("43").unwrap());
    }

    #[test]
    fn custom_events_are_kept_for_the_window_and_then_make_resumes_stale() {
        let log = EventLog::new(Router::new(), 10, Duration::from_millis(30));
        let everything = Visibility::everything(&[]);
        let first = log.publish("GOAL", Payload::Text("1".into()));
        let (_, now) = log.attach(|| ());
        assert_eq!(now, first);
        let start = EventId { seq: 10, n: 0 };
        let kept = log.events_between(start, now, &everything).unwrap();
        assert_eq!(kept.len(), 1);
        let mut only_other = Visibility::default();
        only_other.events.insert("OTHER".into());
        assert!(log
            .events_between(start, now, &only_other)
            .unwrap()
            .is_empty());
        std::thread::sleep(Duration::from_millis(40));
        let second = log.publish("GOAL", Payload::Text("2".into()));
        assert_eq!(
            log.events_between(start, second, &everything),
            Err(Stale::EventsDropped(start))
        );
        assert_eq!(
            log.events_between(first, second, &everything)
                .unwrap()
                .len(),
            1
        );
        let earlier = EventId { seq: 10, n: 1 };
        assert_eq!(
            log.events_between(earlier, second, &everything),
            Err(Stale::EarlierRun(earlier))
        );
    }
}
