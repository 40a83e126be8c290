//! `POST {hub}/negotiate`: versions 0 and 1, exactly as ASP.NET Core answers them.

use crate::endpoint::Endpoint;
use crate::handler::ConnectionHandler;
use crate::identity::Credentials;
use crate::query::Query;
use crate::response::{json, rejection};
use axum::extract::{Request, State};
use axum::response::Response;
use serde::Serialize;
use std::sync::Arc;

/// The highest negotiate version this server speaks; higher requests are clamped to it.
const MAX_NEGOTIATE_VERSION: i64 = 1;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NegotiateResponse<'a> {
    /// Only when the client asked and the server allows it: the JS client refuses a server
    /// that volunteers it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    use_stateful_reconnect: bool,
    negotiate_version: i64,
    connection_id: &'a str,
    /// Absent for version 0, whose clients put the `connectionId` in `id`.
    #[serde(skip_serializing_if = "Option::is_none")]
    connection_token: Option<&'a str>,
    available_transports: Vec<AvailableTransport>,
}

#[derive(Serialize, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AvailableTransport {
    transport: &'static str,
    transfer_formats: &'static [&'static str],
}

#[derive(Serialize)]
struct NegotiateError {
    error: String,
}

/// The version the client asked for, read the way .NET reads it.
pub(crate) fn requested_version(query: &Query) -> Result<i64, String> {
    let Some(raw) = query.get("negotiateVersion") else {
        return Ok(0);
    };
    let version: i64 = raw
        .parse()
        .map_err(|_| "The client requested a non-integer protocol version.".to_owned())?;
    if version < 0 {
        return Err(format!(
            "The client requested version '{version}', but the server does not support this version."
        ));
    }
    Ok(version.min(MAX_NEGOTIATE_VERSION))
}

pub(crate) fn available_transports(
    transports: &crate::options::Transports,
) -> Vec<AvailableTransport> {
    // Clients try the entries in order: WebSockets first.
    let mut available = Vec::with_capacity(3);
    if transports.websockets {
        available.push(AvailableTransport {
            transport: "WebSockets",
            transfer_formats: &["Text", "Binary"],
        });
    }
    if transports.server_sent_events {
        available.push(AvailableTransport {
            transport: "ServerSentEvents",
            transfer_formats: &["Text"],
        });
    }
    if transports.long_polling {
        available.push(AvailableTransport {
            transport: "LongPolling",
            transfer_formats: &["Text", "Binary"],
        });
    }
    available
}

pub(crate) async fn negotiate<H: ConnectionHandler>(
    State(endpoint): State<Arc<Endpoint<H>>>,
    request: Request,
) -> Response {
    let query = Query::parse(request.uri().query());
    let version = match requested_version(&query) {
        Ok(version) => version,
        // .NET answers protocol errors with 200 so that clients show the text.
        Err(error) => return json(axum::http::StatusCode::OK, &NegotiateError { error }),
    };
    let credentials = Credentials::from_request(request.headers(), &query);
    let identity = match endpoint.handler.authenticate(&credentials) {
        Ok(identity) => identity,
        Err(refused) => return rejection(&refused),
    };
    let stateful = endpoint.options.allow_stateful_reconnect
        && query
            .get("useStatefulReconnect")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let legacy = version == 0;
    let slot = endpoint.manager.create(identity, legacy, stateful);
    tracing::debug!(connection_id = %slot.id.redacted(), version, "negotiated");
    json(
        axum::http::StatusCode::OK,
        &NegotiateResponse {
            use_stateful_reconnect: stateful,
            negotiate_version: version,
            // Version 0 clients put their `connectionId` in `id`: they are told the token, and
            // the public id (in `fromConnectionId` and the like) stays a different value.
            connection_id: if legacy {
                &slot.token
            } else {
                slot.id.as_str()
            },
            connection_token: (!legacy).then_some(&*slot.token),
            available_transports: available_transports(&endpoint.options.transports),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(raw: &str) -> Result<i64, String> {
        requested_version(&Query::parse(Some(raw)))
    }

    #[test]
    fn absent_is_0_higher_is_clamped_and_junk_is_an_error() {
        assert_eq!(version(""), Ok(0));
        assert_eq!(version("negotiateVersion=0"), Ok(0));
        assert_eq!(version("negotiateVersion=1"), Ok(1));
        assert_eq!(version("negotiateversion=5"), Ok(1));
        assert_eq!(
            version("negotiateVersion=abc"),
            Err("The client requested a non-integer protocol version.".into())
        );
        assert_eq!(
            version("negotiateVersion=-1"),
            Err(
                "The client requested version '-1', but the server does not support this version."
                    .into()
            )
        );
    }

    #[test]
    fn websockets_come_first_and_sse_is_text_only() {
        let listed = available_transports(&Default::default());
        assert_eq!(
            serde_json::to_string(&listed).unwrap(),
            concat!(
                r#"[{"transport":"WebSockets","transferFormats":["Text","Binary"]},"#,
                r#"{"transport":"ServerSentEvents","transferFormats":["Text"]},"#,
                r#"{"transport":"LongPolling","transferFormats":["Text","Binary"]}]"#
            )
        );
    }

    #[test]
    fn disabled_transports_are_not_listed() {
        let only_lp = crate::options::Transports {
            websockets: false,
            server_sent_events: false,
            long_polling: true,
        };
        let listed = available_transports(&only_lp);
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].transport, "LongPolling");
    }
}
