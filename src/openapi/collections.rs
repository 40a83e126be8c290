//! One path set per collection of the loaded schema: list, create, read, replace, merge,
//! delete, `_listen` and `_unlisten`, with item schemas made from the collection's properties
//! and the security of its access rules.

use super::fixed::page_parameter;
use super::{errors, json_body, json_response, security, Doc};
use crate::collections::rest::{ListenBody, Listening, MAX_PAGE_SIZE};
use crate::collections::schema::{Collection, Method, Property, PropertyType, Schema};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, ObjectBuilder, OneOfBuilder,
    Schema as OpenApiSchema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{KnownFormat, RefOr, Required};

pub(super) fn describe(doc: &mut Doc, schema: &Schema) {
    let listen_body = doc.schema_of::<ListenBody>();
    let listening = doc.schema_of::<Listening>();
    for collection in schema.collections() {
        let name = collection.name.as_str();
        // A collection may be named anything a fixed schema or tag is (`ErrorBody`,
        // `channels`); a collection name has no `.` and no space, so these never collide.
        let tag = format!("collection {name}");
        doc.tag(&tag, &format!("The collection '{name}'."));
        let schemas = Schemas {
            item: doc.named(&format!("{name}.item"), item(collection)),
            write: doc.named(&format!("{name}.write"), write(collection, true)),
            patch: doc.named(&format!("{name}.patch"), write(collection, false)),
        };
        let page = doc.named(
            &format!("{name}.page"),
            ObjectBuilder::new()
                .schema_type(Type::Object)
                .property(
                    "meta",
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .property("count", integer())
                        .required("count"),
                )
                .property("items", ArrayBuilder::new().items(schemas.item.clone()))
                .required("meta")
                .required("items"),
        );
        let list = OneOfBuilder::new()
            .item(ArrayBuilder::new().items(schemas.item.clone()))
            .item(page)
            .description(Some(
                "The items; with `count=true`, `{meta: {count}, items}`.",
            ));
        let base = format!("/api/{name}");
        let path = format!("{base}/{{id}}");
        let op = |method: Method, verb: &str, summary: &str| {
            OperationBuilder::new()
                .tag(&tag)
                .operation_id(Some(format!("{verb}_{name}")))
                .summary(Some(summary))
                .description(Some(who_may(collection, method)))
                .securities(Some(security(allows_anyone(collection, method))))
        };

        let list = op(Method::Get, "list", "List items")
            .parameter(query(
                "filter",
                "A filter: `name eq \"widget\" and (price gt 10 or tag con \"x\")`.",
            ))
            .parameter(
                query(
                    "sortBy",
                    "A property to sort by; a `-` suffix sorts descending.",
                )
                .schema(Some(string(None).pattern(Some(SORT_PATTERN)))),
            )
            .parameter(select())
            .parameter(page_parameter("pageNo", None))
            .parameter(page_parameter("pageSize", Some(MAX_PAGE_SIZE as usize)))
            .parameter(
                ParameterBuilder::new()
                    .name("count")
                    .parameter_in(ParameterIn::Query)
                    .required(Required::False)
                    .description(Some("`true`: answer `{meta: {count}, items}`."))
                    .schema(Some(ObjectBuilder::new().schema_type(Type::Boolean))),
            )
            .response("200", json_response("The items.", list.into()).build());
        doc.operation(
            &base,
            HttpMethod::Get,
            errors(list, &[400, 401, 403]).build(),
        );

        let create = op(Method::Post, "create", "Create an item")
            .request_body(Some(json_body(schemas.write.clone())))
            .response("201", versioned("The stored item.", &schemas.item));
        doc.operation(
            &base,
            HttpMethod::Post,
            errors(create, &[400, 401, 403, 413]).build(),
        );

        let read = op(Method::Get, "read", "Read an item")
            .parameter(id())
            .parameter(select())
            .response("200", versioned("The item.", &schemas.item));
        doc.operation(
            &path,
            HttpMethod::Get,
            errors(read, &[400, 401, 403, 404]).build(),
        );

        for (method, http, verb, summary, body) in [
            (
                Method::Put,
                HttpMethod::Put,
                "replace",
                "Replace an item",
                &schemas.write,
            ),
            (
                Method::Patch,
                HttpMethod::Patch,
                "merge",
                "Merge into an item",
                &schemas.patch,
            ),
        ] {
            let update = op(method, verb, summary)
                .parameter(id())
                .parameter(if_match())
                .request_body(Some(json_body(body.clone())))
                .response("200", versioned("The item after the write.", &schemas.item));
            doc.operation(
                &path,
                http,
                errors(update, &[400, 401, 403, 404, 412, 413]).build(),
            );
        }

        let delete = op(Method::Delete, "delete", "Delete an item")
            .parameter(id())
            .parameter(if_match())
            .response("200", versioned("The item's last state.", &schemas.item));
        doc.operation(
            &path,
            HttpMethod::Delete,
            errors(delete, &[400, 401, 403, 404, 412]).build(),
        );

        for (verb, summary) in [
            (
                "listen",
                "Subscribe a realtime connection to the collection's changes",
            ),
            ("unlisten", "Remove such a subscription"),
        ] {
            let listen = op(Method::Listen, verb, summary)
                .request_body(Some(json_body(listen_body.clone())))
                .response("200", json_response("Done.", listening.clone()).build());
            doc.operation(
                &format!("{base}/_{verb}"),
                HttpMethod::Post,
                errors(listen, &[400, 401, 403, 404, 413]).build(),
            );
        }
    }
}

struct Schemas {
    item: RefOr<OpenApiSchema>,
    write: RefOr<OpenApiSchema>,
    patch: RefOr<OpenApiSchema>,
}

fn allows_anyone(collection: &Collection, method: Method) -> bool {
    collection
        .roles(method)
        .is_some_and(|roles| roles.iter().any(|r| r == "_EVERYONE"))
}

/// The access rule in words (PRODUCT.md section 3).
fn who_may(collection: &Collection, method: Method) -> String {
    match collection.roles(method) {
        None => format!("{}: the server identity only.", method.as_str()),
        Some(roles) => format!(
            "{}: roles {} and the server identity.",
            method.as_str(),
            roles.join(", ")
        ),
    }
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
}

fn string(format: Option<KnownFormat>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(format.map(SchemaFormat::KnownFormat))
}

fn query(name: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(string(None)))
}

/// The names `sortBy` and `select` take (the server's own checks; the filter grammar is
/// beyond a pattern).
const SORT_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_-]*$";
const SELECT_PATTERN: &str = r"^[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)?(,[A-Za-z_][A-Za-z0-9_-]*(\.[A-Za-z_][A-Za-z0-9_-]*)?)*$";

fn select() -> ParameterBuilder {
    query(
        "select",
        "Fields to answer with, comma-separated; `lookup.field` expands a lookup (needs GET on its target).",
    )
    .schema(Some(string(None).pattern(Some(SELECT_PATTERN))))
}

fn id() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("id")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("The item's id (anything else is no item: 404)."))
        .schema(Some(string(Some(KnownFormat::Uuid))))
}

fn if_match() -> ParameterBuilder {
    ParameterBuilder::new()
        .name("If-Match")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "Write only if the item is at this `_version` (the ETag, `\"3\"` or `3`): else 412.",
        ))
        // What the server reads: the ETag it handed out, quoted or not, maybe weak.
        .schema(Some(
            string(None).pattern(Some(r#"^(W/)?"?[0-9]{1,18}"?$"#)),
        ))
}

/// An item answer, with its `_version` as the ETag.
fn versioned(description: &str, item: &RefOr<OpenApiSchema>) -> utoipa::openapi::Response {
    json_response(description, item.clone())
        .header(
            "ETag",
            HeaderBuilder::new()
                .schema(string(None))
                .description(Some("The item's `_version`, quoted."))
                .build(),
        )
        .build()
}

/// A property's JSON type and constraints; `nullable` when null may stand for "no value".
fn value(property: &Property, nullable: bool) -> ObjectBuilder {
    let (kind, format) = match property.kind {
        PropertyType::String => (Type::String, None),
        PropertyType::Integer => (Type::Integer, Some(KnownFormat::Int64)),
        PropertyType::Decimal => (Type::Number, None),
        PropertyType::Boolean => (Type::Boolean, None),
        PropertyType::Date => (Type::String, Some(KnownFormat::Date)),
        PropertyType::DateTime => (Type::String, Some(KnownFormat::DateTime)),
        PropertyType::Guid | PropertyType::Lookup => (Type::String, Some(KnownFormat::Uuid)),
        PropertyType::Object => (Type::Object, None),
    };
    let schema_type = if nullable {
        SchemaType::from_iter([kind, Type::Null])
    } else {
        SchemaType::Type(kind)
    };
    let mut builder = ObjectBuilder::new()
        .schema_type(schema_type)
        .format(format.map(SchemaFormat::KnownFormat))
        .min_length(property.min_length)
        .max_length(property.max_length)
        .minimum(property.min)
        .maximum(property.max)
        .default(property.default.clone());
    if let Some(target) = &property.target {
        builder = builder.description(Some(format!("The id of an item of '{target}'.")));
    }
    builder
}

/// A stored item as answered: the system fields, then the properties (null when unset). Only
/// `id` is sure to be there: `select` answers a part; other fields may be stored from before
/// a schema change, so more properties are allowed.
fn item(collection: &Collection) -> ObjectBuilder {
    let mut item = ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("id", string(Some(KnownFormat::Uuid)))
        .property("_created", string(Some(KnownFormat::DateTime)))
        .property("_changed", string(Some(KnownFormat::DateTime)))
        .property("_version", integer())
        .required("id");
    for property in &collection.properties {
        let schema: RefOr<OpenApiSchema> = match property.target {
            // `select=lookup.field` answers the target's fields in place of its id.
            Some(_) => AnyOfBuilder::new()
                .item(value(property, true))
                .item(
                    ObjectBuilder::new()
                        .schema_type(Type::Object)
                        .property("id", string(Some(KnownFormat::Uuid)))
                        .required("id"),
                )
                .into(),
            None => value(property, true).into(),
        };
        item = item.property(&property.name, schema);
    }
    item
}

/// A write's body: for create and replace (`full`) the required properties without a
/// default must be there; a merge sends any of them. A collection without properties takes
/// any fields; system fields in a body are ignored.
fn write(collection: &Collection, full: bool) -> ObjectBuilder {
    let mut body = ObjectBuilder::new().schema_type(Type::Object);
    if collection.properties.is_empty() {
        return body;
    }
    body = body.additional_properties(Some(AdditionalProperties::FreeForm(false)));
    for property in &collection.properties {
        body = body.property(&property.name, value(property, !property.required));
        if full && property.required && property.default.is_none() {
            body = body.required(&property.name);
        }
    }
    body
}
