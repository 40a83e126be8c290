//! `GET /realtime` (the stream) and `POST /realtime` (publish a custom event).

use super::encoder::{self, SseEncoder};
use super::grants::{DbEvent, Visibility};
use super::log::{EventId, Stale};
use super::Realtime;
use crate::api_error::ApiError;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::{Bytes, BytesMut};
use negotiate::{Credentials, Identity, Query};
use router::{Membership, Payload, Registration, Session};
use rt_core::{Next, Outbox, RandomId};
use serde::Deserialize;
use serde_json::Value;
use std::collections::VecDeque;
use std::sync::Arc;

/// Changes read from the log per query while replaying.
const REPLAY_BATCH: i64 = 500;
pub const MAX_EVENT_NAME: usize = 128;
/// Names the stock RestDB client gives its own meaning.
const RESERVED: [&str; 7] = ["post", "put", "delete", "ping", "publish", "init", "reload"];

pub fn routes(realtime: Arc<Realtime>) -> Router {
    Router::new()
        .route("/realtime", get(stream).post(publish))
        .with_state(realtime)
}

/// The credentials of a `/realtime` request; RestDB's generated client passes a user's token
/// as `jwt` in the query.
fn credentials(headers: &HeaderMap, query: Option<&str>) -> Credentials {
    let query = Query::parse(query);
    let mut credentials = Credentials::from_request(headers, &query);
    if credentials.bearer.is_none() {
        credentials.bearer = query
            .get("jwt")
            .filter(|t| !t.is_empty())
            .map(str::to_owned);
    }
    credentials
}

fn identify(realtime: &Realtime, credentials: &Credentials) -> Result<Identity, ApiError> {
    realtime
        .auth
        .identify(credentials)
        .map_err(|refused| ApiError::unauthorized(refused.message))
}

fn refused(identity: &Identity, what: &str) -> ApiError {
    if identity.authenticated {
        ApiError::forbidden(format!("These credentials may not {what}."))
    } else {
        ApiError::unauthorized(format!("Credentials are needed to {what}."))
    }
}

async fn stream(
    State(realtime): State<Arc<Realtime>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let credentials = credentials(&headers, query.as_deref());
    let identity = identify(&realtime, &credentials)?;
    let visibility = realtime.visibility(&identity, &credentials);
    if visibility.is_empty() {
        return Err(refused(&identity, "open /realtime (no realtime rights)"));
    }
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            Query::parse(query.as_deref())
                .get("lastEventId")
                .map(str::to_owned)
        })
        .filter(|id| !id.trim().is_empty());
    let resume = last_event_id
        .as_deref()
        .map(|text| {
            EventId::parse(text)
                .ok_or_else(|| ApiError::bad_request("Last-Event-ID is not an id of this stream."))
        })
        .transpose()?;

    let outbox = Outbox::new(realtime.config.max_queue_bytes);
    outbox.set_farewell(Bytes::from_static(encoder::FAREWELL));
    // Live events queue behind the held outbox while the replay is read.
    outbox.hold();
    let session = Session::on_transport(
        RandomId::generate(),
        Arc::new(identity),
        Arc::new(SseEncoder),
        outbox.clone(),
        "sse",
    );
    let (registration, now) = realtime.log.attach(|| {
        let registration = realtime.router.register(session.clone());
        for group in visibility.groups() {
            // A session just registered on this node: the join cannot fail.
            let _ = realtime
                .router
                .join_session(&session, &group, Membership::default());
        }
        registration
    });
    let mut first = vec![encoder::opening(realtime.config.retry.as_millis())];
    if let Some(after) = resume {
        match replay(&realtime, after, now, &visibility).await {
            Ok(frames) => first.extend(frames),
            Err(stale) => {
                tracing::debug!(%stale, "a /realtime stream cannot resume");
                first.push(encoder::reload(&after.to_string(), &stale.to_string()));
            }
        }
    }
    outbox.release_with_front(first);
    tracing::debug!(
        connection_id = %session.id().redacted(),
        resumed = resume.is_some(),
        "a /realtime stream opened"
    );
    let body = Body::from_stream(body(
        realtime.config.ping,
        outbox,
        registration,
        realtime.shutdown.clone(),
    ));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

/// The events after `after` up to `now` that the stream may see, in id order: database events
/// from the change log, custom events from memory.
async fn replay(
    realtime: &Realtime,
    after: EventId,
    now: EventId,
    visibility: &Visibility,
) -> Result<Vec<Bytes>, Stale> {
    if after.seq > now.seq {
        return Err(Stale::Ahead(after));
    }
    let limit = realtime.config.max_replay_events;
    let mut events = realtime.log.events_between(after, now, visibility)?;
    let mut cursor = after.seq;
    let mut checked_gap = false;
    while cursor < now.seq {
        let batch = realtime
            .store
            .changes_after(cursor, REPLAY_BATCH)
            .await
            .map_err(|_| Stale::ChangesPruned(after))?;
        if !checked_gap {
            // The log is gapless above what retention pruned: a first change past `cursor + 1`
            // means the ones between are gone.
            if batch.first().is_none_or(|c| c.seq > cursor + 1) {
                return Err(Stale::ChangesPruned(after));
            }
            checked_gap = true;
        }
        let Some(last) = batch.last().map(|c| c.seq) else {
            break;
        };
        for change in batch.iter().filter(|c| c.seq <= now.seq) {
            if visibility.sees_db(DbEvent::of(change.operation), &change.collection) {
                let message =
                    router::Outbound::Change(crate::collections::feed::change_message(change));
                events.push((
                    EventId {
                        seq: change.seq,
                        n: 0,
                    },
                    Arc::new(message),
                ));
                if events.len() > limit {
                    return Err(Stale::TooMany(limit));
                }
            }
        }
        cursor = last;
    }
    events.sort_by_key(|(id, _)| *id);
    Ok(events
        .iter()
        .filter_map(
            |(_, message)| match router::Encoder::encode(&SseEncoder, message) {
                Some(router::Frame::Whole(frame)) => Some(frame),
                _ => None,
            },
        )
        .collect())
}

/// The response body: whatever the outbox has, batched, with a ping every `ping`. Ends when
/// the outbox closes (a slow consumer); dropping it (the client left) unregisters the stream.
fn body(
    ping: std::time::Duration,
    outbox: Outbox,
    registration: Registration,
    shutdown: tokio_util::sync::CancellationToken,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>> {
    struct State {
        outbox: Outbox,
        batch: VecDeque<Bytes>,
        ping: tokio::time::Interval,
        shutdown: tokio_util::sync::CancellationToken,
        _registration: Registration,
    }
    let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + ping, ping);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let state = State {
        outbox,
        batch: VecDeque::new(),
        ping,
        shutdown,
        _registration: registration,
    };
    futures_util::stream::unfold(state, |mut state| async move {
        loop {
            if !state.batch.is_empty() {
                let mut chunk = BytesMut::new();
                for frame in state.batch.drain(..) {
                    chunk.extend_from_slice(&frame);
                }
                return Some((Ok(chunk.freeze()), state));
            }
            let State {
                outbox,
                batch,
                ping,
                shutdown,
                ..
            } = &mut state;
            tokio::select! {
                () = shutdown.cancelled() => return None,
                next = outbox.next(batch) => match next {
                    Next::Frames => {}
                    Next::Close | Next::Abort => return None,
                },
                _ = ping.tick() => {
                    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                    let _ = outbox.push_control(encoder::ping(&now));
                }
            }
        }
    })
}

// Types, so that the OpenAPI description derives from them.
/// `POST /realtime`: a custom event.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublishBody {
    /// 1-128 letters, digits, `-`, `_`, `.`, `:`; not one of the stream's own event names.
    #[schema(pattern = "^[A-Za-z0-9._:-]{1,128}$")]
    event: String,
    data: Value,
}

#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Published {
    /// `OK`.
    message: String,
}

async fn publish(
    State(realtime): State<Arc<Realtime>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Published>, ApiError> {
    let credentials = credentials(&headers, query.as_deref());
    let identity = identify(&realtime, &credentials)?;
    let limit = realtime.config.max_event_bytes;
    // The envelope around `data` is small; a body far over the limit is not read at all.
    let bytes = axum::body::to_bytes(body, limit + 1024)
        .await
        .map_err(|_| {
            ApiError::too_large(format!("A custom event's data is at most {limit} bytes."))
        })?;
    let body: PublishBody = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::bad_request(format!("Invalid body: {e} (expected {{event, data}})"))
    })?;
    let name = body.event;
    let valid = !name.is_empty()
        && name.len() <= MAX_EVENT_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    if !valid {
        return Err(ApiError::bad_request(
            "Event names are 1-128 characters of letters, digits, '-', '_', '.' and ':'.",
        ));
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ApiError::bad_request(format!(
            "'{name}' is reserved for the stream's own events."
        )));
    }
    if body.data.to_string().len() > limit {
        return Err(ApiError::too_large(format!(
            "A custom event's data is at most {limit} bytes."
        )));
    }
    if !realtime.may_publish(&identity, &credentials, &name) {
        return Err(refused(&identity, &format!("publish '{name}'")));
    }
    let id = realtime.log.publish(&name, Payload::Json(body.data));
    tracing::debug!(event = %name, %id, "published a custom event");
    Ok(Json(Published {
        message: "OK".into(),
    }))
}
