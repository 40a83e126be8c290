//! Group churn: filling a 20,000-member group, checking one membership (what every
//! `SendToGroup` from a member of a private channel pays), and emptying it again.
//!
//! Joins and leaves must stay O(1) amortised and the check O(1), so the figures here should
//! grow linearly with the group (fill, empty) or not at all (check).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures_util::FutureExt;
use router::{Encoder, Frame, Membership, Outbound, ProtocolId, Registration, Router, Session};
use rt_core::{Identity, Outbox, RandomId};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const GROUP: &str = "churn";
const MEMBERSHIP: Membership = Membership { read_only: false };

struct Silent;

impl Encoder for Silent {
    fn protocol(&self) -> ProtocolId {
        ProtocolId::new("silent")
    }
    fn encode(&self, _: &Outbound) -> Option<Frame> {
        None
    }
}

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

/// `n` registered sessions, not yet in any group.
fn connected(n: usize) -> (Router, Vec<RandomId>, Vec<Registration>) {
    let router = Router::new();
    let ids: Vec<RandomId> = (0..n).map(|_| RandomId::generate()).collect();
    let registrations = ids
        .iter()
        .map(|id| {
            router.register(Session::new(
                id.clone(),
                Arc::new(Identity::anonymous()),
                Arc::new(Silent),
                Outbox::new(1 << 20),
            ))
        })
        .collect();
    (router, ids, registrations)
}

fn join_all(router: &Router, ids: &[RandomId]) {
    for id in ids {
        router
            .join(id.as_str(), GROUP, MEMBERSHIP)
            .now_or_never()
            .unwrap()
            .unwrap();
    }
}

fn leave_all(router: &Router, ids: &[RandomId]) {
    for id in ids {
        router
            .leave(id.as_str(), GROUP)
            .now_or_never()
            .unwrap()
            .unwrap();
    }
}

fn bench_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_churn");
    for n in [2_000usize, 20_000] {
        let (router, ids, _registrations) = connected(n);
        group.bench_with_input(BenchmarkId::new("fill_then_empty", n), &n, |b, _| {
            b.iter(|| {
                join_all(&router, &ids);
                leave_all(&router, &ids);
            })
        });
        join_all(&router, &ids);
        let probe = ids[n / 2].clone();
        group.bench_with_input(BenchmarkId::new("membership_check", n), &n, |b, _| {
            b.iter(|| black_box(router.membership(black_box(probe.as_str()), GROUP)))
        });
        leave_all(&router, &ids);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = bench_churn
}
criterion_main!(benches);
