//! `GET /api/_openapi.json`: an OpenAPI 3.1 document (it parses as one, every reference
//! resolves, every path parameter is declared) that describes the fixed endpoints and the
//! collections of the test schema, their properties and access rules included.
//! (`interop-tests/openapi-schemathesis.test.mjs` checks the server against it.)

mod collections_support;

use collections_support::{with_server, Db, Server};
use serde_json::Value;
use std::collections::HashSet;

const COLLECTIONS: [&str; 5] = ["customers", "orders", "secrets", "people", "notes"];

async fn fetch(server: &Server) -> (Value, String) {
    // Anyone may read it: no credentials.
    let response = server
        .http
        .get(server.url("/api/_openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    let text = response.text().await.unwrap();
    (serde_json::from_str(&text).unwrap(), text)
}

fn operation<'a>(document: &'a Value, path: &str, method: &str) -> &'a Value {
    let operation = &document["paths"][path][method];
    assert!(operation.is_object(), "no {method} {path} in the document");
    operation
}

/// Every `$ref` in `value`.
fn references<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                out.push(reference);
            }
            map.values().for_each(|v| references(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| references(v, out)),
        _ => {}
    }
}

async fn it_is_a_valid_openapi_3_1_document(server: Server) -> Server {
    let (document, text) = fetch(&server).await;
    let spec = oas3::from_json(&text).expect("the document parses as OpenAPI 3.1");
    let version = spec.validate_version().expect("an OpenAPI 3.1 version");
    assert_eq!((version.major, version.minor), (3, 1));
    assert!(document["info"]["title"].is_string());

    let mut refs = Vec::new();
    references(&document, &mut refs);
    assert!(!refs.is_empty());
    for reference in refs {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("a reference outside the schemas: {reference}"));
        assert!(
            document["components"]["schemas"][name].is_object(),
            "{reference} does not resolve"
        );
    }

    let mut ids = HashSet::new();
    for (path, method, op) in spec.operations() {
        let id = op.operation_id.clone().unwrap_or_default();
        assert!(
            ids.insert(id.clone()),
            "{method} {path}: operationId {id:?} twice"
        );
        assert!(!op.responses.clone().unwrap_or_default().is_empty());
        let raw = operation(&document, &path, &method.as_str().to_lowercase());
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let declared = raw["parameters"].as_array().is_some_and(|params| {
                params
                    .iter()
                    .any(|p| p["in"] == "path" && p["name"] == name && p["required"] == true)
            });
            assert!(
                declared,
                "{method} {path}: path parameter {name} is not declared"
            );
        }
        for (status, response) in raw["responses"].as_object().unwrap() {
            // `/readyz` answers 503 in its own shape (a status and the reason).
            if (status.starts_with('4') || status.starts_with('5')) && path != "/readyz" {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }

    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["apiKeyHeader"]["in"], "header");
    assert_eq!(schemes["apiKeyHeader"]["name"], "x-apikey");
    assert_eq!(schemes["apiKeyQuery"]["in"], "query");
    assert_eq!(schemes["apiKeyQuery"]["name"], "apikey");
    assert_eq!(schemes["bearerJwt"]["scheme"], "bearer");
    assert_eq!(schemes["bearerJwt"]["bearerFormat"], "JWT");
    server
}

async fn it_describes_the_fixed_endpoints(server: Server) -> Server {
    let (document, _) = fetch(&server).await;
    for (path, method) in [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/api/_openapi.json", "get"),
        ("/api/_auth", "post"),
        ("/api/_rt/join", "post"),
        ("/api/_rt/leave", "post"),
        ("/api/_rt/send", "post"),
        ("/api/_rt/channels/{channel}/members", "get"),
        ("/realtime", "get"),
        ("/realtime", "post"),
    ] {
        operation(&document, path, method);
    }
    let schemas = &document["components"]["schemas"];
    // From the handlers' types: serde's names, required fields and closed bodies.
    let join = &schemas["JoinBody"];
    assert_eq!(
        join["required"],
        serde_json::json!(["connectionId", "channel"])
    );
    assert_eq!(join["properties"]["readOnly"]["type"], "boolean");
    assert_eq!(join["additionalProperties"], false);
    let listen = &schemas["ListenBody"];
    assert_eq!(listen["properties"]["lookupIds"]["items"]["format"], "uuid");
    assert!(listen["properties"]["type"].is_object());
    assert_eq!(
        schemas["ServiceAccountLogin"]["required"],
        serde_json::json!(["authority", "clientId", "clientSecret"])
    );
    assert_eq!(
        schemas["ServiceToken"]["required"],
        serde_json::json!(["token"])
    );
    assert_eq!(
        schemas["MembersPage"]["properties"]["members"]["items"]["$ref"],
        "#/components/schemas/MemberView"
    );
    assert_eq!(
        schemas["ErrorDetail"]["required"],
        serde_json::json!(["code", "message"])
    );

    let members = operation(&document, "/api/_rt/channels/{channel}/members", "get");
    assert!(
        !members["security"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({})),
        "presence is for the server identity only"
    );
    let stream = operation(&document, "/realtime", "get");
    assert!(stream["responses"]["200"]["content"]["text/event-stream"].is_object());
    let auth = operation(&document, "/api/_auth", "post");
    for status in ["200", "400", "401"] {
        assert!(auth["responses"][status].is_object(), "_auth {status}");
    }
    server
}

async fn it_describes_each_collection(server: Server) -> Server {
    let (document, _) = fetch(&server).await;
    for name in COLLECTIONS {
        let base = format!("/api/{name}");
        let item = format!("{base}/{{id}}");
        operation(&document, &base, "get");
        operation(&document, &base, "post");
        for method in ["get", "put", "patch", "delete"] {
            operation(&document, &item, method);
        }
        for verb in ["_listen", "_unlisten"] {
            let listen = operation(&document, &format!("{base}/{verb}"), "post");
            assert_eq!(
                listen["requestBody"]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ListenBody"
            );
        }
        let put = operation(&document, &item, "put");
        for status in ["200", "400", "401", "403", "404", "412", "413"] {
            assert!(put["responses"][status].is_object(), "PUT {item} {status}");
        }
        let created = &operation(&document, &base, "post")["responses"]["201"];
        assert!(created["headers"]["ETag"].is_object(), "{name}: the ETag");
        assert_eq!(
            created["content"]["application/json"]["schema"]["$ref"],
            format!("#/components/schemas/{name}.item")
        );
        let list = operation(&document, &base, "get");
        let params: Vec<&str> = list["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for param in ["filter", "sortBy", "select", "pageNo", "pageSize", "count"] {
            assert!(params.contains(&param), "{name}: no {param}");
        }
    }
    // No collection that the schema does not have.
    let paths = document["paths"].as_object().unwrap();
    let listed: HashSet<&str> = paths
        .keys()
        .filter_map(|p| p.strip_prefix("/api/"))
        .filter(|p| !p.starts_with('_'))
        .map(|p| p.split('/').next().unwrap_or(p))
        .collect();
    assert_eq!(listed, COLLECTIONS.into_iter().collect());

    // The item schemas follow the properties.
    let schemas = &document["components"]["schemas"];
    let customers = &schemas["customers.write"];
    assert_eq!(customers["required"], serde_json::json!(["name"]));
    assert_eq!(customers["properties"]["name"]["type"], "string");
    assert_eq!(customers["properties"]["name"]["maxLength"], 20);
    assert_eq!(customers["properties"]["vip"]["default"], false);
    assert_eq!(customers["additionalProperties"], false);
    let orders = &schemas["orders.write"];
    assert_eq!(orders["properties"]["total"]["minimum"], 0.0);
    assert_eq!(
        orders["properties"]["total"]["type"],
        serde_json::json!(["number", "null"])
    );
    assert_eq!(orders["properties"]["customer"]["format"], "uuid");
    let notes = &schemas["notes.write"];
    assert_eq!(
        notes["properties"]["stock"]["type"],
        serde_json::json!(["integer", "null"])
    );
    assert_eq!(
        notes["properties"]["extra"]["type"],
        serde_json::json!(["object", "null"])
    );
    assert!(schemas["customers.patch"].get("required").is_none());
    let item = &schemas["orders.item"];
    assert_eq!(item["required"], serde_json::json!(["id"]));
    assert_eq!(item["properties"]["_version"]["type"], "integer");
    assert!(
        item["properties"]["customer"]["anyOf"].is_array(),
        "a lookup may be expanded"
    );

    // The access rules: customers' GET is open to everyone, secrets are the server's only.
    let open = operation(&document, "/api/customers", "get");
    assert!(open["security"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!({})));
    let closed = operation(&document, "/api/secrets", "get");
    let closed_security = closed["security"].as_array().unwrap();
    assert!(!closed_security.contains(&serde_json::json!({})));
    assert!(closed_security.contains(&serde_json::json!({"apiKeyHeader": []})));
    server
}

/// The error answers are the shape the document gives them.
async fn errors_have_the_described_shape(server: Server) -> Server {
    let (status, body) = server.get("/api/customers/not-an-id").await;
    assert_eq!(status, 404);
    let error = body["error"].as_object().unwrap();
    assert!(error["code"].is_string() && error["message"].is_string());
    assert!(error
        .keys()
        .all(|k| ["code", "message", "details"].contains(&k.as_str())));
    let (status, body) = server
        .post("/api/customers", serde_json::json!({"name": 5}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "invalid");
    assert!(body["error"]["details"].is_array());
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document() {
    with_server(Db::Sqlite, |server| async move {
        let server = it_is_a_valid_openapi_3_1_document(server).await;
        let server = it_describes_the_fixed_endpoints(server).await;
        let server = it_describes_each_collection(server).await;
        errors_have_the_described_shape(server).await
    })
    .await;
}
