//! `GET /api/_openapi.json`: the OpenAPI 3.1 description of the REST API (PRODUCT.md section
//! 2), generated when the server starts, never written by hand: the fixed endpoints' bodies
//! and answers are the handlers' own types (`#[derive(ToSchema)]`), and each collection of
//! the loaded schema file gets its paths with an item schema made from its properties.
//!
//! The document model is `utoipa`'s (its `openapi` builder types speak 3.1), so the output is
//! a well-formed OpenAPI document by construction rather than hand-formatted JSON.

mod collections;
mod fixed;

use crate::api_error::ErrorBody;
use crate::collections::schema::Schema;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use utoipa::openapi::path::{HttpMethod, Operation, OperationBuilder};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::ComponentsBuilder;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    Content, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, Tag,
};
use utoipa::ToSchema;

/// Where the document is served.
pub const PATH: &str = "/api/_openapi.json";

/// The security schemes' names, as operations refer to them.
const API_KEY_HEADER: &str = "apiKeyHeader";
const API_KEY_QUERY: &str = "apiKeyQuery";
const BEARER: &str = "bearerJwt";

/// The document for a server with `schema`'s collections.
pub fn document(schema: &Schema) -> OpenApi {
    let mut doc = Doc::default();
    fixed::describe(&mut doc);
    collections::describe(&mut doc, schema);
    let Doc {
        paths,
        components,
        tags,
    } = doc;
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("rthub")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The REST API of rthub: the collections of this server's schema file, their \
                     realtime subscriptions, channels, presence, the /realtime stream and service \
                     accounts. Errors are `{\"error\": {\"code\", \"message\", \"details\"?}}`.",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components.build()))
        .tags(Some(tags))
        .build()
}

/// `GET /api/_openapi.json` for anyone: the document, serialized once.
pub fn routes(document: &OpenApi) -> Result<Router, serde_json::Error> {
    let body = Bytes::from(document.to_json()?);
    let serve = move || {
        let body = body.clone();
        async move {
            (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response()
        }
    };
    Ok(Router::new().route(PATH, get(serve)))
}

/// What the describing functions add to: paths, named schemas and tags.
pub(crate) struct Doc {
    paths: Paths,
    components: ComponentsBuilder,
    tags: Vec<Tag>,
}

impl Default for Doc {
    fn default() -> Self {
        let components = ComponentsBuilder::new()
            .security_scheme(
                API_KEY_HEADER,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "x-apikey",
                    "An API key of the config (`[[api_keys]]`); a server key is the server identity.",
                ))),
            )
            .security_scheme(
                API_KEY_QUERY,
                SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                    "apikey",
                    "The same API key, as a query parameter.",
                ))),
            )
            .security_scheme(
                BEARER,
                SecurityScheme::Http(
                    HttpBuilder::new()
                        .scheme(HttpAuthScheme::Bearer)
                        .bearer_format("JWT")
                        .description(Some(
                            "A user's JWT (HS256 or RS256 as configured), or a service \
                             account's token from POST /api/_auth.",
                        ))
                        .build(),
                ),
            );
        let mut doc = Doc {
            paths: Paths::new(),
            components,
            tags: Vec::new(),
        };
        doc.schema_of::<ErrorBody>();
        doc
    }
}

impl Doc {
    /// A reference to `T`'s schema, which is added (with the schemas it refers to) under
    /// `components/schemas`.
    pub(crate) fn schema_of<T: ToSchema>(&mut self) -> RefOr<utoipa::openapi::schema::Schema> {
        let mut referred = Vec::new();
        T::schemas(&mut referred);
        let name = T::name();
        let components = std::mem::take(&mut self.components)
            .schemas_from_iter(referred)
            .schema(name.clone(), T::schema());
        self.components = components;
        Ref::from_schema_name(name).into()
    }

    /// A reference to `schema`, added under `components/schemas` as `name`.
    pub(crate) fn named(
        &mut self,
        name: &str,
        schema: impl Into<RefOr<utoipa::openapi::schema::Schema>>,
    ) -> RefOr<utoipa::openapi::schema::Schema> {
        let components = std::mem::take(&mut self.components).schema(name, schema);
        self.components = components;
        Ref::from_schema_name(name).into()
    }

    pub(crate) fn operation(&mut self, path: &str, method: HttpMethod, operation: Operation) {
        self.paths.add_path_operation(path, vec![method], operation);
    }

    pub(crate) fn tag(&mut self, name: &str, description: &str) {
        let mut tag = Tag::new(name);
        tag.description = Some(description.to_owned());
        self.tags.push(tag);
    }
}

/// Who may call an operation: the credentials it accepts, and whether it also answers
/// anonymous callers (an empty requirement).
pub(crate) fn security(anonymous: bool) -> Vec<SecurityRequirement> {
    let mut requirements: Vec<SecurityRequirement> = [API_KEY_HEADER, API_KEY_QUERY, BEARER]
        .into_iter()
        .map(|name| SecurityRequirement::new(name, Vec::<String>::new()))
        .collect();
    if anonymous {
        requirements.push(SecurityRequirement::default());
    }
    requirements
}

/// A JSON request body.
pub(crate) fn json_body(
    schema: RefOr<utoipa::openapi::schema::Schema>,
) -> utoipa::openapi::request_body::RequestBody {
    RequestBodyBuilder::new()
        .required(Some(Required::True))
        .content("application/json", Content::new(Some(schema)))
        .build()
}

/// A JSON response.
pub(crate) fn json_response(
    description: &str,
    schema: RefOr<utoipa::openapi::schema::Schema>,
) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/json", Content::new(Some(schema)))
}

/// The error answers of an operation, each with the JSON error shape.
pub(crate) fn errors(mut operation: OperationBuilder, statuses: &[u16]) -> OperationBuilder {
    for status in statuses {
        let description = match status {
            400 => "The request is malformed or breaks a rule.",
            401 => "Credentials are needed, or the ones given are not valid.",
            403 => "These credentials may not do this.",
            404 => "There is no such item or connection.",
            412 => "If-Match does not match the item's current version.",
            413 => "The body is too large.",
            503 => "The cluster backplane is unavailable.",
            _ => "An error.",
        };
        operation = operation.response(
            status.to_string(),
            json_response(description, Ref::from_schema_name("ErrorBody").into()).build(),
        );
    }
    operation
}

#[cfg(test)]
mod tests;
