//! What a client's message does. Order as the service's: `ping` and `sequenceAck` first, then
//! the duplicate check of the ack id, then the `webpubsub.*` roles (`Forbidden`), then
//! rthub's channel rules (`BadRequest` for names, `Forbidden` for rules), then the work. A
//! request with an `ackId` always gets its ack; a malformed message closes the connection
//! (1007) after a `system/disconnected` saying why.

use super::connection::Logical;
use super::WebPubSub;
use crate::channels::{ChannelError, On, Refusal, Sender};
use router::{DirectMessage, Outbound, Payload};
use rt_core::Identity;
use webpubsub::frames::{self, AckError};
use webpubsub::inbound::{self, ClientMessage, InvalidMessage};

type Refused = (AckError, String);

pub(crate) async fn message(wps: &WebPubSub, logical: &Logical, frame: &[u8]) {
    wps.router
        .count_received(logical.session.protocol(), 1, frame.len() as u64);
    let message = match inbound::parse(frame) {
        Ok(message) => message,
        Err(InvalidMessage(reason)) => {
            tracing::debug!(
                connection_id = %logical.session.id().redacted(),
                %reason,
                "closing a Web PubSub connection: invalid message"
            );
            let text = format!("The client message is not a valid JSON protocol message: {reason}");
            logical.close_with(1007, frames::disconnected(&text));
            return;
        }
    };
    let outbox = &logical.outbox;
    match message {
        ClientMessage::Ping => {
            let _ = outbox.push_control(frames::pong());
        }
        ClientMessage::SequenceAck { sequence_id } => {
            if logical.subprotocol.is_reliable() {
                outbox.ack(sequence_id);
            }
        }
        // Messages are handled one at a time: an invocation has been answered by the time
        // its cancellation is read.
        ClientMessage::CancelInvocation { .. } => {}
        ClientMessage::Invoke {
            invocation_id,
            event,
            data,
        } => {
            let data = data.unwrap_or(Payload::Text("".into()));
            let frame = match wps.upstream.event(&logical.context, &event, &data).await {
                Ok(answer) => frames::invoke_ok(&invocation_id, answer.as_ref()),
                Err(failure) => {
                    tracing::debug!(connection_id = %logical.session.id().redacted(), %failure, "an invoke failed");
                    frames::invoke_error(
                        &invocation_id,
                        AckError::InternalServerError,
                        "The event handler did not answer.",
                    )
                }
            };
            let _ = outbox.push_control(frame);
        }
        request => {
            let ack_id = request.ack_id();
            if let Some(id) = ack_id {
                if logical.acks.lock().contains(id) {
                    let text = format!("Message with ack-id: {id} has been processed");
                    let _ = outbox.push_control(frames::ack_error(id, AckError::Duplicate, &text));
                    return;
                }
            }
            let outcome = request_outcome(wps, logical, request).await;
            match (ack_id, outcome) {
                (Some(id), Ok(())) => {
                    logical.acks.lock().insert(id);
                    let _ = outbox.push_control(frames::ack_ok(id));
                }
                (Some(id), Err((error, text))) => {
                    let _ = outbox.push_control(frames::ack_error(id, error, &text));
                }
                (None, Err((error, text))) => tracing::debug!(
                    connection_id = %logical.session.id().redacted(),
                    error = error.name(),
                    %text,
                    "a Web PubSub request without an ack id failed"
                ),
                (None, Ok(())) => {}
            }
        }
    }
}

async fn request_outcome(
    wps: &WebPubSub,
    logical: &Logical,
    request: ClientMessage,
) -> Result<(), Refused> {
    let own = logical.session.id().as_str();
    let identity: &Identity = &logical.identity;
    match request {
        ClientMessage::JoinGroup { group, .. } => {
            if !logical.permissions.may_join_leave(&group) {
                return Err(forbidden(format!(
                    "The client does not have permission to join group '{group}'."
                )));
            }
            let channel = wps.channels.wire(&group).map_err(channel_refusal)?;
            wps.channels
                .join(identity, On::Own(own), &channel, false)
                .await
                .map_err(channel_refusal)
        }
        ClientMessage::LeaveGroup { group, .. } => {
            if !logical.permissions.may_join_leave(&group) {
                return Err(forbidden(format!(
                    "The client does not have permission to leave group '{group}'."
                )));
            }
            let channel = wps.channels.wire(&group).map_err(channel_refusal)?;
            wps.channels
                .leave(identity, On::Own(own), &channel)
                .await
                .map_err(channel_refusal)
        }
        ClientMessage::SendToGroup {
            group,
            data,
            no_echo,
            ..
        } => {
            if !logical.permissions.may_send(&group) {
                return Err(forbidden(format!(
                    "The client does not have permission to send to group '{group}'."
                )));
            }
            let channel = wps.channels.wire(&group).map_err(channel_refusal)?;
            let sender = Sender {
                identity,
                connection_id: Some(own),
                echo: !no_echo,
            };
            wps.channels
                .send(sender, &channel, data)
                .map(|_| ())
                .map_err(channel_refusal)
        }
        ClientMessage::Event { event, data, .. } => {
            match wps.upstream.event(&logical.context, &event, &data).await {
                // The handler's answer reaches the caller before the ack, as a server message.
                Ok(Some(answer)) => {
                    let direct = Outbound::Direct(DirectMessage { data: answer });
                    if let Some(frame) = logical.session.encoder().encode(&direct) {
                        let _ = frame.push_to(&logical.outbox);
                    }
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(failure) => {
                    tracing::debug!(connection_id = %logical.session.id().redacted(), %failure, "a user event failed");
                    Err((
                        AckError::InternalServerError,
                        "The event handler did not answer.".into(),
                    ))
                }
            }
        }
        ClientMessage::Ping
        | ClientMessage::SequenceAck { .. }
        | ClientMessage::Invoke { .. }
        | ClientMessage::CancelInvocation { .. } => Ok(()),
    }
}

fn forbidden(text: String) -> Refused {
    (AckError::Forbidden, text)
}

fn channel_refusal(error: ChannelError) -> Refused {
    let name = match error.refusal() {
        Refusal::BadRequest => AckError::BadRequest,
        Refusal::Rule | Refusal::NotOwner => AckError::Forbidden,
        Refusal::NotFound | Refusal::Unavailable => AckError::InternalServerError,
    };
    (name, error.to_string())
}
