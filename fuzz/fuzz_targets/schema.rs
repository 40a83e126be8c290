//! The schema file: any text is a schema or a `SchemaError`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rthub::collections::schema::Schema;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(schema) = Schema::from_json(text) {
        for collection in schema.collections() {
            let _ = schema.collection(&collection.name);
        }
    }
});
