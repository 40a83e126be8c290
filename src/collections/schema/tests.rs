use super::*;
use serde_json::json;
use std::sync::Arc;

const PRODUCT_EXAMPLE: &str = r#"{ "collections": [
    { "name": "customers",
      "properties": [ { "name": "name", "type": "string", "required": true, "maxLength": 100 } ],
      "access": [ { "method": "GET", "roleNames": ["_EVERYONE"] },
                  { "method": "LISTEN", "roleNames": ["_AUTHENTICATED_USER"] } ] },
    { "name": "orders",
      "properties": [ { "name": "customer", "type": "lookup", "target": "customers" },
                      { "name": "total", "type": "decimal", "min": 0 } ],
      "access": [ { "method": "POST", "roleNames": ["_AUTHENTICATED_USER"] } ] } ] }"#;

fn one(properties: serde_json::Value) -> Result<Schema, SchemaError> {
    Schema::from_json(
        &json!({"collections": [{"name": "c", "properties": properties}]}).to_string(),
    )
}

fn object(value: serde_json::Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

#[test]
fn the_product_example_and_the_development_example_load() {
    let schema = Schema::from_json(PRODUCT_EXAMPLE).unwrap();
    assert!(schema.is_collection("orders") && !schema.is_collection("nope"));
    assert_eq!(
        schema
            .collection("orders")
            .unwrap()
            .lookups()
            .collect::<Vec<_>>(),
        [("customer", "customers")]
    );
    let example = Schema::example();
    assert!(example.collections().count() >= 2);
    for collection in example.collections() {
        for method in [
            Method::Get,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
            Method::Listen,
        ] {
            assert!(
                collection.allows(method, &Identity::anonymous()),
                "{} {method:?}",
                collection.name
            );
        }
    }
}

#[test]
fn invalid_schemas_name_the_problem() {
    let cases = [
        (
            json!({"collections": [{"name": "1bad"}]}),
            "collection '1bad'",
        ),
        (
            json!({"collections": [{"name": "a"}, {"name": "a"}]}),
            "defined twice",
        ),
        (
            json!({"collections": [{"name": "a", "extra": 1}]}),
            "unknown field",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "x", "type": "text"}]}]}),
            "unknown variant",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "l", "type": "lookup", "target": "nope"}]}]}),
            "lookup target 'nope' is not a collection",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "l", "type": "lookup"}]}]}),
            "needs a target",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "s", "type": "string", "target": "a"}]}]}),
            "only lookups",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "n", "type": "integer", "min": 5, "max": 1}]}]}),
            "min 5 is greater than max 1",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "s", "type": "string", "minLength": 5, "maxLength": 1}]}]}),
            "minLength 5",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "n", "type": "integer", "default": "x"}]}]}),
            "default is invalid",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "id", "type": "string"}]}]}),
            "system field",
        ),
        (
            json!({"collections": [{"name": "a", "properties": [{"name": "_x", "type": "string"}]}]}),
            "property '_x'",
        ),
        (
            json!({"collections": [{"name": "a", "access": [{"method": "FETCH", "roleNames": ["_EVERYONE"]}]}]}),
            "unknown access method 'FETCH'",
        ),
        (
            json!({"collections": [{"name": "a", "access": [{"method": "GET", "roleNames": []}]}]}),
            "roleNames",
        ),
    ];
    for (schema, expected) in cases {
        let error = Schema::from_json(&schema.to_string())
            .unwrap_err()
            .to_string();
        assert!(error.contains(expected), "{schema}: {error}");
    }
    let error = Schema::load(Path::new("/nonexistent/schema.json"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("/nonexistent/schema.json"), "{error}");
}

#[test]
fn every_type_accepts_and_rejects() {
    let cases = [
        ("string", json!("x"), json!(1)),
        ("integer", json!(3), json!(3.5)),
        ("decimal", json!(3.5), json!("3.5")),
        ("boolean", json!(true), json!("true")),
        ("date", json!("2026-11-24"), json!("24/11/2026")),
        (
            "date-time",
            json!("2026-11-24T05:00:00Z"),
            json!("2026-11-24"),
        ),
        (
            "guid",
            json!("5b5e1c39-3c05-4c5e-9f77-0c3e7c1f3a11"),
            json!("nope"),
        ),
        ("object", json!({"a": 1}), json!([1])),
    ];
    for (kind, good, bad) in cases {
        let schema = one(json!([{"name": "p", "type": kind}])).unwrap();
        let c = schema.collection("c").unwrap();
        assert!(
            c.validate(WriteMode::Create, object(json!({"p": good})), None)
                .is_ok(),
            "{kind} good"
        );
        let errors = c
            .validate(WriteMode::Create, object(json!({"p": bad})), None)
            .unwrap_err();
        assert_eq!(errors.len(), 1, "{kind} bad");
        assert_eq!(errors[0].field, "p");
        assert!(
            c.validate(WriteMode::Create, object(json!({"p": null})), None)
                .is_ok(),
            "{kind} null"
        );
    }
    let schema = one(json!([{"name": "n", "type": "integer"}])).unwrap();
    assert!(schema
        .collection("c")
        .unwrap()
        .validate(WriteMode::Create, object(json!({"n": 2.0})), None)
        .is_ok());
}

#[test]
fn constraints_defaults_and_all_errors_at_once() {
    let schema = one(json!([
        {"name": "name", "type": "string", "required": true, "minLength": 2, "maxLength": 3},
        {"name": "n", "type": "decimal", "min": 0, "max": 10},
        {"name": "flag", "type": "boolean", "default": true}
    ]))
    .unwrap();
    let c = schema.collection("c").unwrap();
    let stored = c
        .validate(
            WriteMode::Create,
            object(json!({"name": "ééé", "id": "ignored", "_version": 9})),
            None,
        )
        .unwrap();
    assert_eq!(
        stored,
        object(json!({"name": "ééé", "flag": true})),
        "characters, not bytes; defaults; system fields dropped"
    );
    let errors = c
        .validate(
            WriteMode::Create,
            object(json!({"name": "x", "n": 11, "other": 1})),
            None,
        )
        .unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields.len(), 3, "{errors:?}");
    for field in ["name", "n", "other"] {
        assert!(fields.contains(&field));
    }
    assert_eq!(
        c.validate(WriteMode::Create, Map::new(), None).unwrap_err()[0].message,
        "is required"
    );
}

#[test]
fn patch_merges_and_replace_starts_over() {
    let schema = one(json!([
        {"name": "name", "type": "string", "required": true},
        {"name": "note", "type": "string"},
        {"name": "flag", "type": "boolean", "default": false}
    ]))
    .unwrap();
    let c = schema.collection("c").unwrap();
    let current = object(json!({"name": "a", "note": "keep", "flag": true}));
    let patched = c
        .validate(
            WriteMode::Patch,
            object(json!({"note": "new"})),
            Some(&current),
        )
        .unwrap();
    assert_eq!(
        patched,
        object(json!({"name": "a", "note": "new", "flag": true}))
    );
    let errors = c
        .validate(
            WriteMode::Patch,
            object(json!({"name": null})),
            Some(&current),
        )
        .unwrap_err();
    assert_eq!(errors[0].field, "name");
    let replaced = c
        .validate(
            WriteMode::Replace,
            object(json!({"name": "b"})),
            Some(&current),
        )
        .unwrap();
    assert_eq!(replaced, object(json!({"name": "b", "flag": false})));
}

#[test]
fn schemaless_collections_take_anything() {
    let schema = Schema::from_json(r#"{"collections": [{"name": "free"}]}"#).unwrap();
    let c = schema.collection("free").unwrap();
    assert!(c
        .validate(
            WriteMode::Create,
            object(json!({"any": [1], "thing": {}})),
            None
        )
        .is_ok());
}

#[test]
fn access_rules() {
    let schema = Schema::from_json(
        &json!({"collections": [{"name": "c", "access": [
            {"method": "GET", "roleNames": ["_EVERYONE"]},
            {"method": "POST", "roleNames": ["_AUTHENTICATED_USER"]},
            {"method": "PUT", "roleNames": ["editor"]}
        ]}]})
        .to_string(),
    )
    .unwrap();
    let c = schema.collection("c").unwrap();
    let anonymous = Identity::anonymous();
    let user = Identity {
        user_id: Some(Arc::from("u")),
        ..Identity::default()
    };
    let editor = Identity {
        user_id: Some(Arc::from("e")),
        roles: vec![Arc::from("editor")],
        ..Identity::default()
    };
    let server = Identity {
        is_server: true,
        ..Identity::default()
    };
    let table = [
        (Method::Get, [true, true, true, true]),
        (Method::Post, [false, true, true, true]),
        (Method::Put, [false, false, true, true]),
        (Method::Delete, [false, false, false, true]),
    ];
    for (method, expected) in table {
        let got = [&anonymous, &user, &editor, &server].map(|who| c.allows(method, who));
        assert_eq!(got, expected, "{method:?}");
    }
}
