//! One hub connection's life: handshake, then messages in and out, pings, the client timeout,
//! and a `Close` at the end. Invocations run one at a time, in order (.NET's default of one
//! parallel invocation per client).

use crate::caller::{ConnectionContext, ConnectionControl};
use crate::dispatch::{Caller, Started};
use crate::errors::{close_error, invocation_error};
use crate::handshake;
use crate::protocol::{Close, Completion, Decoded, HubMessage, HubProtocol, Invocation};
use crate::sequencing::{Admit, Sequencing};
use crate::server::Shared;
use crate::streams::Streams;
use crate::writer::Writer;
use bytes::{Bytes, BytesMut};
use negotiate::{Inbound, TransportConnection};
use router::{Encoder, Session};
use std::sync::Arc;
use tokio::time::{sleep, Instant};

/// Input buffers larger than this are given back once drained, so a connection that once
/// received a large message does not keep the memory while idle.
const RETAINED_INPUT_BYTES: usize = 4096;

const ACK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Handshakes that did not pick a protocol are counted under SignalR as a whole.
const HANDSHAKE: router::ProtocolId = router::ProtocolId::new("signalr");

const CLIENT_TIMEOUT: &str =
    "Connection closed with an error. The client sent nothing within the client timeout.";

/// What the connection does after a message.
enum Flow {
    Continue,
    /// End the connection, telling the client why if there is a `Close` to send.
    End(Option<Close>),
}

pub(crate) async fn run(shared: Arc<Shared>, mut transport: TransportConnection) {
    let mut input = BytesMut::new();
    let handshake = tokio::time::timeout(
        shared.options.handshake_timeout,
        read_handshake(&shared, &mut transport, &mut input),
    )
    .await;
    let (protocol, version) = match handshake {
        Ok(Ok(Some(chosen))) => chosen,
        // The peer left before finishing the handshake.
        Ok(Ok(None)) => {
            shared
                .router
                .count_event("handshake", HANDSHAKE, "abandoned");
            return;
        }
        Ok(Err(error)) => {
            tracing::debug!(%error, "handshake failed");
            shared.router.count_event("handshake", HANDSHAKE, "failed");
            transport
                .outbox
                .push_and_close(handshake::error_reply(&error));
            return;
        }
        Err(_elapsed) => {
            tracing::debug!("handshake timed out");
            shared.router.count_event("handshake", HANDSHAKE, "timeout");
            transport
                .outbox
                .push_and_close(handshake::error_reply(handshake::CANCELED));
            return;
        }
    };

    let outbox = &transport.outbox;
    outbox.set_transfer_format(protocol.transfer_format());
    outbox.set_farewell(shared.farewell(protocol.as_ref()));
    // Stateful reconnect needs both: negotiated on a WebSocket, and handshake version 2.
    let sequencing = (transport.stateful_reconnect && version >= 2).then(|| {
        let encoder = protocol.clone();
        outbox.enable_replay(Some(Box::new(move |sequence_id| {
            encoder.to_bytes(&HubMessage::Sequence { sequence_id })
        })));
        Sequencing::new()
    });
    // Reachable (groups, _listen, REST join) before the client hears the handshake reply, yet
    // the reply is still the first frame it gets: the outbox is held until the reply is in.
    outbox.hold();
    let encoder: Arc<dyn Encoder> = shared.encoder(&protocol);
    let protocol_id = encoder.protocol();
    shared.router.count_event("handshake", protocol_id, "ok");
    let session = Session::on_transport(
        transport.id.clone(),
        transport.identity.clone(),
        encoder,
        outbox.clone(),
        transport.transport.name(),
    );
    // Reachable by every target until dropped; dropping it leaves every group and tells the
    // router's observers.
    let registration = shared.router.register(session);
    outbox.release_with_first(Bytes::from_static(handshake::SUCCESS));
    tracing::debug!(
        protocol = protocol.name(),
        version,
        stateful_reconnect = sequencing.is_some(),
        "handshake completed"
    );

    let detailed = shared.options.enable_detailed_errors;
    let context = ConnectionContext::new(transport.transport, transport.request.clone(), detailed);
    let caller = Caller::new(
        transport.id.clone(),
        transport.identity.clone(),
        shared.router.clone(),
        context.clone(),
    );
    // Reachable by `HubServer::close_connection` from here on.
    shared
        .connections
        .insert(transport.id.as_arc().clone(), context.clone());
    let mut connection = HubConnection {
        caller,
        context,
        shared: shared.clone(),
        writer: Writer::new(transport.outbox.clone(), protocol.clone()),
        protocol,
        streams: Streams::new(),
        sequencing,
        input,
        client_pinged: false,
        protocol_id,
        end_reason: "transport",
    };
    // As in .NET, the application's OnConnected runs after the handshake reply and before any
    // message is handled; a refusal closes the connection with its error, and no reconnect.
    let refused = match &shared.on_connected {
        Some(hook) => hook(connection.caller.clone()).await.err(),
        None => None,
    };
    match refused {
        Some(error) => {
            tracing::debug!(connection_id = %transport.id.redacted(), "on_connected refused the connection");
            connection.end_reason = "refused";
            connection.writer.send_and_close(&HubMessage::Close(Close {
                error: Some(close_error(error, detailed)),
                allow_reconnect: false,
            }));
        }
        // Boxed for the same reason as message handling below: inline, the message loop's
        // state sat beside the handshake's for the connection's whole life.
        None => Box::pin(connection.run(&mut transport)).await,
    }
    connection.streams.end();
    let reason = if transport.outbox.overflowed() {
        "slow_consumer"
    } else {
        connection.end_reason
    };
    shared.router.count_event("close", protocol_id, reason);
    shared.connections.remove(transport.id.as_str());
    registration.unregister();
    for hook in &shared.on_disconnect {
        hook(&transport.id);
    }
    tracing::debug!("hub connection ended");
}

/// The protocol and the handshake's version; `Ok(None)` when the peer went away first.
async fn read_handshake(
    shared: &Shared,
    transport: &mut TransportConnection,
    input: &mut BytesMut,
) -> Result<Option<(Arc<dyn HubProtocol>, i64)>, String> {
    let limit = shared.options.max_message_bytes;
    loop {
        if let Some(request) = handshake::parse_request(input, limit)? {
            let binary = transport.transport.supports_binary();
            return handshake::select_protocol(&request, &shared.protocols, binary)
                .map(|protocol| Some((protocol, request.version)));
        }
        match transport.inbound.recv().await {
            Some(Inbound::Data(chunk)) => input.extend_from_slice(&chunk),
            Some(Inbound::Reattached) => input.clear(),
            None => return Ok(None),
        }
    }
}

struct HubConnection {
    shared: Arc<Shared>,
    caller: Caller,
    /// Shared with the caller and the server's table: how a close is asked for.
    context: Arc<ConnectionContext>,
    protocol: Arc<dyn HubProtocol>,
    writer: Writer,
    streams: Streams,
    /// Present when stateful reconnect is on for this connection.
    sequencing: Option<Sequencing>,
    input: BytesMut,
    /// The client timeout applies only to clients that ping (as in .NET; legacy clients never do).
    client_pinged: bool,
    /// The router's id of the protocol, for its counters.
    protocol_id: router::ProtocolId,
    /// Why the connection ended, for the close counter.
    end_reason: &'static str,
}

impl HubConnection {
    async fn run(&mut self, transport: &mut TransportConnection) {
        let options = self.shared.options.clone();
        let keep_alive = !transport.has_inherent_keep_alive();
        let mut last_received = Instant::now();
        let ping = sleep(options.keep_alive);
        let client_timeout = sleep(options.client_timeout);
        // Stateful reconnect: acknowledge what arrived about once a second, as .NET does.
        let ack = sleep(ACK_INTERVAL);
        let mut ack_armed = false;
        let context = self.context.clone();
        let control: &ConnectionControl = &context.control;
        let close_requested = control.requested();
        tokio::pin!(ping, client_timeout, ack, close_requested);

        // Anything that came with the handshake is handled first.
        let mut flow = Box::pin(self.drain_input()).await;
        while let Flow::Continue = flow {
            flow = tokio::select! {
                biased;
                () = self.shared.shutdown.cancelled() => {
                    self.end_reason = "shutdown";
                    Flow::End(Some(Close {
                        error: None,
                        allow_reconnect: true,
                    }))
                }
                close = &mut close_requested => {
                    self.end_reason = "server";
                    Flow::End(Some(close))
                }
                chunk = transport.inbound.recv() => match chunk {
                    None => {
                        self.end_reason = "transport";
                        Flow::End(None)
                    }
                    Some(Inbound::Reattached) => {
                        self.input.clear();
                        if let Some(sequencing) = self.sequencing.as_mut() {
                            sequencing.reattached();
                        }
                        Flow::Continue
                    }
                    Some(Inbound::Data(chunk)) => {
                        last_received = Instant::now();
                        let was_pinged = self.client_pinged;
                        self.input.extend_from_slice(&chunk);
                        // Boxed: handling a message nests the hub method's future, which would
                        // otherwise sit inline in this task for its whole life and make every
                        // idle connection pay for the largest method (S1 measured 4.3 KB per
                        // connection for this task before).
                        let flow = Box::pin(self.drain_input()).await;
                        if self.client_pinged && !was_pinged {
                            client_timeout.as_mut().reset(last_received + options.client_timeout);
                        }
                        if !ack_armed && self.sequencing.as_ref().is_some_and(Sequencing::ack_pending) {
                            ack.as_mut().reset(Instant::now() + ACK_INTERVAL);
                            ack_armed = true;
                        }
                        flow
                    }
                },
                () = &mut ack, if ack_armed => {
                    ack_armed = false;
                    if let Some(sequence_id) = self.sequencing.as_mut().and_then(Sequencing::take_ack) {
                        self.send(&HubMessage::Ack { sequence_id });
                    }
                    Flow::Continue
                }
                () = &mut ping, if keep_alive => {
                    self.send(&HubMessage::Ping);
                    ping.as_mut().reset(Instant::now() + options.keep_alive);
                    Flow::Continue
                }
                () = &mut client_timeout, if keep_alive && self.client_pinged => {
                    let deadline = last_received + options.client_timeout;
                    if Instant::now() >= deadline {
                        tracing::debug!("client timeout elapsed");
                        self.end_reason = "timeout";
                        Flow::End(Some(Close {
                            error: Some(CLIENT_TIMEOUT.to_owned()),
                            allow_reconnect: true,
                        }))
                    } else {
                        client_timeout.as_mut().reset(deadline);
                        Flow::Continue
                    }
                }
            };
        }
        if let Flow::End(Some(close)) = flow {
            self.writer.send_and_close(&HubMessage::Close(close));
        }
    }

    /// Handle every whole message in the input.
    async fn drain_input(&mut self) -> Flow {
        let limit = self.shared.options.max_message_bytes;
        loop {
            let before = self.input.len();
            let decoded = self.protocol.decode(&mut self.input, limit);
            if let Ok(Decoded::Message(_) | Decoded::Unknown) = &decoded {
                let bytes = (before - self.input.len()) as u64;
                self.shared
                    .router
                    .count_received(self.protocol_id, 1, bytes);
            }
            let flow = match decoded {
                Ok(Decoded::Message(message)) => match self.admit(message) {
                    Ok(Some(message)) => self.handle(message).await,
                    Ok(None) => Flow::Continue,
                    Err(error) => Flow::End(Some(Close {
                        error: Some(format!("Connection closed with an error. {error}")),
                        allow_reconnect: false,
                    })),
                },
                Ok(Decoded::Unknown) => {
                    tracing::debug!("ignored a message of an unknown type");
                    Flow::Continue
                }
                Ok(Decoded::Incomplete) => break,
                Err(error) => {
                    tracing::info!(%error, "closing the connection on a protocol error");
                    self.end_reason = "protocol_error";
                    Flow::End(Some(Close {
                        error: Some(format!("Connection closed with an error. {error}")),
                        allow_reconnect: false,
                    }))
                }
            };
            if let Flow::End(_) = flow {
                return flow;
            }
        }
        if self.input.is_empty() && self.input.capacity() > RETAINED_INPUT_BYTES {
            self.input = BytesMut::new();
        }
        Flow::Continue
    }

    /// Stateful reconnect's filter: Ack and Sequence are consumed here, duplicates dropped.
    fn admit(&mut self, message: HubMessage) -> Result<Option<HubMessage>, &'static str> {
        let Some(sequencing) = self.sequencing.as_mut() else {
            return Ok(Some(message));
        };
        match message {
            HubMessage::Ack { sequence_id } => {
                self.writer.outbox().ack(sequence_id);
                Ok(None)
            }
            HubMessage::Sequence { sequence_id } => sequencing.sequence(sequence_id).map(|()| None),
            message => Ok((sequencing.admit(&message) == Admit::Process).then_some(message)),
        }
    }

    async fn handle(&mut self, message: HubMessage) -> Flow {
        match message {
            HubMessage::Invocation(invocation) => self.invoke(invocation, false).await,
            HubMessage::StreamInvocation(invocation) => self.invoke(invocation, true).await,
            HubMessage::StreamItem(item) => {
                self.streams
                    .upload_item(&item.invocation_id, item.item)
                    .await
            }
            HubMessage::Completion(completion) => {
                self.streams
                    .upload_completed(&completion.invocation_id, completion.outcome)
                    .await
            }
            HubMessage::CancelInvocation { invocation_id, .. } => {
                self.streams.cancel(&invocation_id)
            }
            HubMessage::Ping => self.client_pinged = true,
            HubMessage::Close(close) => {
                if let Some(error) = close.error {
                    tracing::debug!(%error, "the client closed with an error");
                }
                self.end_reason = "client";
                return Flow::End(None);
            }
            // Without stateful reconnect, sequencing messages mean nothing.
            HubMessage::Ack { .. } | HubMessage::Sequence { .. } => {}
        }
        Flow::Continue
    }

    async fn invoke(&mut self, invocation: Invocation, streaming: bool) {
        let Invocation {
            invocation_id,
            target,
            arguments,
            stream_ids,
            ..
        } = invocation;
        let detailed = self.shared.options.enable_detailed_errors;
        let started = self.shared.methods.start(
            self.caller.clone(),
            &target,
            arguments,
            stream_ids.len(),
            streaming,
            detailed,
        );
        let outcome = match started {
            Ok(Started::Unary(running)) => running
                .await
                .map_err(|error| invocation_error(&target, error, detailed)),
            Ok(Started::Uploading(running, senders)) => {
                self.streams.start_upload(
                    &self.writer,
                    detailed,
                    target,
                    invocation_id,
                    running,
                    stream_ids,
                    senders,
                );
                return;
            }
            Ok(Started::Streaming(items)) => {
                // A StreamInvocation always carries an id (the codec requires it).
                if let Some(id) = invocation_id {
                    self.streams
                        .start_stream(&self.writer, detailed, target, id, items);
                }
                return;
            }
            Err(error) => Err(error),
        };
        // Non-blocking invocations get no reply of any kind, not even an error.
        if let Some(id) = invocation_id {
            self.writer.send(&HubMessage::Completion(match outcome {
                Ok(value) => Completion::result(id, value),
                Err(error) => Completion::error(id, error),
            }));
        }
    }

    fn send(&self, message: &HubMessage) {
        self.writer.send(message);
    }
}
