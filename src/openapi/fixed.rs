//! The endpoints every server has: health, service accounts, channels and presence,
//! `/realtime`, and this document itself. Bodies and answers are the handlers' types.

use super::{errors, json_body, json_response, security, Doc};
use crate::app::{ServiceAccountLogin, ServiceToken};
use crate::channels::rest::{JoinBody, Joined, LeaveBody, Left, MembersPage, SendBody, Sent};
use crate::realtime::endpoint::{PublishBody, Published};
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{Content, Required};

pub(super) fn describe(doc: &mut Doc) {
    doc.tag("health", "Liveness and readiness.");
    doc.tag("auth", "Service accounts.");
    doc.tag(
        "channels",
        "Channels (`<api-name>:<channel>` on the wire; REST takes the bare name) and presence.",
    );
    doc.tag(
        "realtime",
        "RestDB-style Server-Sent Events of database and custom events.",
    );
    doc.tag(
        "webpubsub",
        "Azure Web PubSub: client access URLs (the client protocols are WebSockets).",
    );
    health(doc);
    auth(doc);
    channels(doc);
    realtime(doc);
    webpubsub(doc);
}

fn webpubsub(doc: &mut Doc) {
    let access = doc.schema_of::<crate::webpubsub::ClientAccess>();
    let answer = ResponseBuilder::new()
        .description(
            "The client URL: as text, or `{url, baseUrl, token}` with `Accept: application/json`.",
        )
        .content(
            "text/plain",
            Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .content("application/json", Content::new(Some(access)));
    let operation = OperationBuilder::new()
        .tag("webpubsub")
        .operation_id(Some("webPubSubClientAccess"))
        .summary(Some(
            "A Web PubSub client URL whose token carries the caller's identity",
        ))
        .securities(Some(security(false)))
        .parameter(query_parameter(
            "group",
            "A group (`<api-name>:<channel>`) to join on connect; repeatable.",
        ))
        .response("200", answer.build());
    doc.operation(
        "/api/_rt/ws",
        HttpMethod::Get,
        errors(operation, &[400, 401, 403]).build(),
    );
}

fn status_object(statuses: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property(
            "status",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(statuses.iter().copied())),
        )
        .required("status")
}

fn health(doc: &mut Doc) {
    let alive = json_response("The process answers.", status_object(&["ok"]).into());
    doc.operation(
        "/healthz",
        HttpMethod::Get,
        OperationBuilder::new()
            .tag("health")
            .operation_id(Some("health"))
            .summary(Some("Liveness"))
            .response("200", alive.build())
            .build(),
    );
    let readiness = || {
        status_object(&["ready", "unavailable"])
            .property(
                "reason",
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some(
                        "Why it is not ready: `database` or `open-file limit`.",
                    )),
            )
            .property(
                "openFiles",
                ObjectBuilder::new()
                    .schema_type(SchemaType::AnyValue)
                    .description(Some(
                        "The open-file limit, what is in use, the pauses so far.",
                    )),
            )
            .into()
    };
    doc.operation(
        "/readyz",
        HttpMethod::Get,
        OperationBuilder::new()
            .tag("health")
            .operation_id(Some("ready"))
            .summary(Some(
                "Readiness: the database answers and connections are accepted",
            ))
            .response("200", json_response("Ready.", readiness()).build())
            .response("503", json_response("Not ready.", readiness()).build())
            .build(),
    );
    doc.operation(
        super::PATH,
        HttpMethod::Get,
        OperationBuilder::new()
            .tag("health")
            .operation_id(Some("openapi"))
            .summary(Some("This OpenAPI 3.1 document"))
            .response(
                "200",
                json_response(
                    "The document.",
                    ObjectBuilder::new().schema_type(Type::Object).into(),
                )
                .build(),
            )
            .build(),
    );
}

fn auth(doc: &mut Doc) {
    let login = doc.schema_of::<ServiceAccountLogin>();
    let token = doc.schema_of::<ServiceToken>();
    let operation = OperationBuilder::new()
        .tag("auth")
        .operation_id(Some("serviceAccountToken"))
        .summary(Some("A service account's token (the server identity)"))
        .request_body(Some(json_body(login)))
        .response("200", json_response("The token.", token).build());
    doc.operation(
        "/api/_auth",
        HttpMethod::Post,
        errors(operation, &[400, 401]).build(),
    );
}

fn channels(doc: &mut Doc) {
    let post = |doc: &mut Doc, path: &str, id: &str, summary: &str, body, answer, statuses| {
        let operation = OperationBuilder::new()
            .tag("channels")
            .operation_id(Some(id))
            .summary(Some(summary))
            .securities(Some(security(true)))
            .request_body(Some(json_body(body)))
            .response("200", json_response("Done.", answer).build());
        doc.operation(path, HttpMethod::Post, errors(operation, statuses).build());
    };
    let (body, answer) = (doc.schema_of::<JoinBody>(), doc.schema_of::<Joined>());
    post(
        doc,
        "/api/_rt/join",
        "joinChannel",
        "Add a connection to a channel (private channels: the server identity only)",
        body,
        answer,
        &[400, 401, 403, 404, 503],
    );
    let (body, answer) = (doc.schema_of::<LeaveBody>(), doc.schema_of::<Left>());
    post(
        doc,
        "/api/_rt/leave",
        "leaveChannel",
        "Remove a connection from a channel",
        body,
        answer,
        &[400, 401, 403, 404, 503],
    );
    let (body, answer) = (doc.schema_of::<SendBody>(), doc.schema_of::<Sent>());
    post(
        doc,
        "/api/_rt/send",
        "sendToChannel",
        "Send to every member of a channel (private channels: the server identity only)",
        body,
        answer,
        &[400, 401, 503],
    );

    let page = doc.schema_of::<MembersPage>();
    let operation = OperationBuilder::new()
        .tag("channels")
        .operation_id(Some("channelMembers"))
        .summary(Some(
            "Presence: a page of a channel's members (the server identity)",
        ))
        .securities(Some(security(false)))
        .parameter(
            ParameterBuilder::new()
                .name("channel")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The bare channel name."))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .parameter(page_parameter("pageNo", None))
        .parameter(page_parameter(
            "pageSize",
            Some(crate::channels::rest::MAX_MEMBERS_PAGE),
        ))
        .response("200", json_response("The page.", page).build());
    doc.operation(
        "/api/_rt/channels/{channel}/members",
        HttpMethod::Get,
        errors(operation, &[400, 401, 403]).build(),
    );
}

/// `pageNo` (from 1) or `pageSize` (up to `max`).
pub(super) fn page_parameter(name: &str, max: Option<usize>) -> ParameterBuilder {
    let schema = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(max.map(|m| m as isize))
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )));
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .schema(Some(schema))
}

fn query_parameter(name: &str, description: &str) -> ParameterBuilder {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(description))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
}

fn realtime(doc: &mut Doc) {
    let stream = ResponseBuilder::new()
        .description("The stream: `post`, `put`, `delete`, `publish`, `ping` and `reload` events.")
        .content(
            "text/event-stream",
            Content::new(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    let operation = OperationBuilder::new()
        .tag("realtime")
        .operation_id(Some("realtimeStream"))
        .summary(Some(
            "Open the event stream (what the credentials may see); it never ends by itself",
        ))
        .securities(Some(security(false)))
        .parameter(query_parameter(
            "jwt",
            "A user's JWT, for clients that cannot set headers.",
        ))
        .parameter(query_parameter(
            "lastEventId",
            "Resume after this event id (as the Last-Event-ID header).",
        ))
        .parameter(
            ParameterBuilder::new()
                .name("Last-Event-ID")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some("Resume after this event id."))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        )
        .response("200", stream.build());
    doc.operation(
        "/realtime",
        HttpMethod::Get,
        errors(operation, &[400, 401, 403]).build(),
    );

    let (body, answer) = (doc.schema_of::<PublishBody>(), doc.schema_of::<Published>());
    let operation = OperationBuilder::new()
        .tag("realtime")
        .operation_id(Some("realtimePublish"))
        .summary(Some(
            "Publish a custom event to the streams that may see it",
        ))
        .securities(Some(security(false)))
        .request_body(Some(json_body(body)))
        .response("200", json_response("Published.", answer).build());
    doc.operation(
        "/realtime",
        HttpMethod::Post,
        errors(operation, &[400, 401, 403, 413]).build(),
    );
}
