//! The `filter` and `sortBy` parsers: any text parses or gives a `FilterError` within the
//! input, and whatever parses turns into SQL for both dialects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rthub::collections::filter::{parse, parse_sort, Dialect};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The first byte picks the parser, so one corpus serves both.
    let (kind, text) = match text.split_at_checked(1) {
        Some((kind, rest)) => (kind, rest),
        None => return,
    };
    if kind == "s" {
        if let Ok(sort) = parse_sort(text) {
            for dialect in [Dialect::Sqlite, Dialect::Postgres] {
                let _ = sort.to_sql(dialect, 1);
            }
        }
        return;
    }
    if let Ok(filter) = parse(text) {
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let _ = filter.to_sql(dialect, 1);
        }
    }
});
