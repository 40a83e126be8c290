use super::document;
use crate::collections::schema::Schema;
use serde_json::Value;
use std::collections::HashSet;

/// Collections named like the fixed schemas and tags, or like another collection's derived
/// schema names, leave the document whole.
#[test]
fn collection_names_never_collide_with_the_rest() {
    let schema = Schema::from_json(
        r#"{ "collections": [
            { "name": "ErrorBody", "properties": [ { "name": "x", "type": "string" } ] },
            { "name": "channels" },
            { "name": "a", "properties": [ { "name": "n", "type": "integer" } ] },
            { "name": "aWrite" }, { "name": "a-write" } ] }"#,
    )
    .unwrap();
    let text = document(&schema).to_json().unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(schemas["ErrorBody"]["properties"]["error"].is_object());
    assert!(schemas["ErrorBody.item"]["properties"]["x"].is_object());
    assert!(schemas["a.write"]["properties"]["n"].is_object());
    assert!(schemas["aWrite.item"].is_object());
    let tags: Vec<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(
        tags.len(),
        tags.iter().collect::<HashSet<_>>().len(),
        "{tags:?}"
    );
    let mut ids = HashSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} twice");
        }
    }
    assert_eq!(ids.len(), 5 * 8 + 11);
}
