//! What `/realtime` reads from clients and from the config: `Last-Event-ID` and the keys'
//! `realtime` entries. Any text parses or is refused; an id that parses prints back as itself;
//! a grant that parses expands over a schema without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rthub::realtime::grants::{Grant, Visibility};
use rthub::realtime::EventId;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(id) = EventId::parse(text) {
        let printed = id.to_string();
        assert_eq!(EventId::parse(&printed), Some(id), "{printed} round-trips");
    }
    if let Ok(grant) = Grant::parse(text) {
        let collections = vec!["customers".to_owned(), "orders".to_owned(), text.to_owned()];
        let mut visibility = Visibility::default();
        visibility.add(&grant, &collections);
        for group in visibility.groups() {
            assert!(group.contains('/'), "internal group names keep their '/'");
        }
    }
});
