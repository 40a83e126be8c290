//! Micro-benchmarks of the hub hot path: a client's `SendToGroup` frame is decoded, turned into
//! one channel message, encoded once per protocol and fanned out to the group.
//!
//! Kept short (see `configure`) so a full run fits in about a minute on a small CI machine; the
//! figures are for spotting regressions, not for absolute claims.

use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use futures_util::FutureExt;
use hub::protocol::{
    Decoded, Headers, HubMessage, HubProtocol, Invocation, JsonHubProtocol, MessagePackHubProtocol,
};
use hub::router::{
    Encoder, GroupMessage, Membership, Outbound, Payload, Registration, Router, Scope, Session,
    Target,
};
use hub::HubServer;
use negotiate::{Identity, Next, Outbox, RandomId};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `HubOptions::default().max_message_bytes`, the limit a real connection decodes with.
const LIMIT: usize = 32 * 1024;
const GROUP: &str = "bench";
const DATA: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(20)
}

/// The client's frame, written by the protocol's own encoder so the bytes are exactly what
/// that protocol produces (and what a conforming client sends).
fn send_to_group_frame(protocol: &dyn HubProtocol) -> Vec<u8> {
    let message = HubMessage::Invocation(Invocation {
        headers: Headers::new(),
        invocation_id: None,
        target: "SendToGroup".into(),
        arguments: vec![json!(GROUP).into(), json!(DATA).into()],
        stream_ids: Vec::new(),
    });
    let mut frame = Vec::new();
    protocol.encode_message(&message, &mut frame);
    frame
}

/// A channel message from a connection, as the application's `SendToGroup` builds it.
fn channel_message(group: &str, data: Value) -> Outbound {
    Outbound::Group(GroupMessage {
        group: group.into(),
        data: Payload::Json(data),
        from_user_id: None,
        from_connection_id: Some("abc".into()),
    })
}

/// The router encoders of the hub's two protocols, as its connections use them.
fn encoders() -> [(&'static str, Arc<dyn Encoder>); 2] {
    let hub = HubServer::builder(hub::HubMethods::new())
        .protocol(Arc::new(MessagePackHubProtocol))
        .build();
    [
        ("json", hub.encoder_for("json").expect("json is built in")),
        (
            "messagepack",
            hub.encoder_for("messagepack").expect("just added"),
        ),
    ]
}

fn decode(protocol: &dyn HubProtocol, input: &mut BytesMut) -> Invocation {
    match protocol.decode(input, LIMIT) {
        Ok(Decoded::Message(HubMessage::Invocation(invocation))) => invocation,
        other => panic!("expected an Invocation, got {other:?}"),
    }
}

fn protocols() -> [(&'static str, Arc<dyn HubProtocol>); 2] {
    [
        ("json", Arc::new(JsonHubProtocol)),
        ("messagepack", Arc::new(MessagePackHubProtocol)),
    ]
}

fn bench_decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (name, protocol) in protocols() {
        let frame = send_to_group_frame(&*protocol);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        // A fresh buffer per iteration because decode consumes the record from it, as it does
        // from a connection's read buffer.
        group.bench_function(name, |b| {
            b.iter_batched_ref(
                || BytesMut::from(&frame[..]),
                |input| black_box(decode(&*protocol, input)),
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    let message = channel_message(GROUP, json!(DATA));
    let mut group = c.benchmark_group("encode");
    for (name, encoder) in encoders() {
        group.bench_function(name, |b| {
            b.iter(|| black_box(encoder.encode(black_box(&message))))
        });
    }
    group.finish();
}

/// Waits for nothing: a local join never suspends, and a pending one would mean the benchmark
/// measured something other than the fan-out.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    future
        .now_or_never()
        .expect("a local join completes without waiting")
}

/// Takes everything queued, as the transport's writer would; never waits because a frame was
/// just pushed.
fn drain(outbox: &Outbox, batch: &mut VecDeque<bytes::Bytes>) {
    if let Some(Next::Frames) = outbox.next(batch).now_or_never() {
        batch.clear();
    }
}

fn bench_route(c: &mut Criterion) {
    // Half the members speak each protocol: the fan-out encodes once per protocol id.
    let encoders = encoders();
    let message = Arc::new(channel_message(GROUP, json!(DATA)));
    let mut group = c.benchmark_group("route/send_group");
    for members in [100usize, 1_000] {
        let router = Router::new();
        let (outboxes, _registrations): (Vec<Outbox>, Vec<Registration>) = (0..members)
            .map(|i| {
                let outbox = Outbox::new(1 << 20);
                let session = Session::new(
                    RandomId::generate(),
                    Arc::new(Identity::anonymous()),
                    encoders[i % 2].1.clone(),
                    outbox.clone(),
                );
                let id = session.id().as_str().to_owned();
                let registration = router.register(session);
                ready(router.join(&id, GROUP, Membership { read_only: false }))
                    .expect("the session was just registered");
                (outbox, registration)
            })
            .unzip();
        let send = || router.send(Target::group(GROUP), Scope::Cluster, message.clone());
        let mut batch = VecDeque::new();
        let delivery = send();
        assert_eq!(
            (delivery.delivered, delivery.overflowed, delivery.encodings),
            (members, 0, 2)
        );
        outboxes.iter().for_each(|o| drain(o, &mut batch));

        // Per element, so criterion's throughput line reads as members per second.
        group.throughput(Throughput::Elements(members as u64));
        group.bench_with_input(BenchmarkId::from_parameter(members), &members, |b, _| {
            // Draining is the writers' work, not the sender's: it is left out of the timing,
            // but done every iteration so queues stay as short as on a healthy server.
            b.iter_custom(|iters| {
                let mut sending = Duration::ZERO;
                for _ in 0..iters {
                    let start = Instant::now();
                    black_box(send());
                    sending += start.elapsed();
                    outboxes.iter().for_each(|o| drain(o, &mut batch));
                }
                sending
            })
        });
    }
    group.finish();
}

fn bench_pipeline(c: &mut Criterion) {
    let encoders = encoders();
    let mut group = c.benchmark_group("pipeline");
    for (name, protocol) in protocols() {
        let frame = send_to_group_frame(&*protocol);
        group.bench_function(BenchmarkId::new("decode_build_encode_both", name), |b| {
            b.iter_batched_ref(
                || BytesMut::from(&frame[..]),
                |input| {
                    let invocation = decode(&*protocol, input);
                    let mut arguments = invocation.arguments.into_iter();
                    let (Some(hub::HubValue::String(group)), Some(data)) =
                        (arguments.next(), arguments.next())
                    else {
                        panic!("SendToGroup takes a group name and data");
                    };
                    let message = channel_message(&group, data.into());
                    encoders
                        .iter()
                        .map(|(_, encoder)| encoder.encode(&message))
                        .for_each(|frame| {
                            black_box(frame);
                        });
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = bench_decode, bench_encode, bench_route, bench_pipeline
}
criterion_main!(benches);
