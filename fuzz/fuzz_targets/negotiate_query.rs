//! Negotiate's query string: any text parses, and every key it holds can be looked up.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let query = negotiate::Query::parse(Some(text));
    // The keys the negotiate and connect requests read.
    for key in [
        "negotiateVersion",
        "id",
        "access_token",
        "useStatefulReconnect",
    ] {
        let _ = query.get(key);
    }
});
