//! Group churn: filling a 20,000-member group, checking one membership (what every
//! `SendToGroup` from a member of a private channel pays), and emptying it again.
//!
//! Joins and leaves must stay O(1) amortised and the check O(1), so the figures here should
//! grow linearly with the group (fill, empty) or not at all (check).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use futures_util::FutureExt;
use hub::protocol::JsonHubProtocol;
use hub::{LifetimeManager, LocalLifetimeManager, Member, Membership};
use negotiate::{Identity, Outbox, RandomId};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

const GROUP: &str = "churn";
const MEMBERSHIP: Membership = Membership { read_only: false };

fn configure() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

/// `n` connected members, not yet in any group.
fn connected(n: usize) -> (LocalLifetimeManager, Vec<RandomId>) {
    let manager = LocalLifetimeManager::new();
    let ids: Vec<RandomId> = (0..n).map(|_| RandomId::generate()).collect();
    for id in &ids {
        let member = Member::new(
            id.clone(),
            Arc::new(Identity::anonymous()),
            Arc::new(JsonHubProtocol),
            Outbox::new(1 << 20),
        );
        manager.on_connected(member).now_or_never().unwrap();
    }
    (manager, ids)
}

fn join_all(manager: &LocalLifetimeManager, ids: &[RandomId]) {
    for id in ids {
        manager
            .add_to_group(id.as_str(), GROUP, MEMBERSHIP)
            .now_or_never()
            .unwrap()
            .unwrap();
    }
}

fn leave_all(manager: &LocalLifetimeManager, ids: &[RandomId]) {
    for id in ids {
        manager
            .remove_from_group(id.as_str(), GROUP)
            .now_or_never()
            .unwrap()
            .unwrap();
    }
}

fn bench_churn(c: &mut Criterion) {
    let mut group = c.benchmark_group("group_churn");
    for n in [2_000usize, 20_000] {
        let (manager, ids) = connected(n);
        group.bench_with_input(BenchmarkId::new("fill_then_empty", n), &n, |b, _| {
            b.iter(|| {
                join_all(&manager, &ids);
                leave_all(&manager, &ids);
            })
        });
        join_all(&manager, &ids);
        let probe = ids[n / 2].clone();
        group.bench_with_input(BenchmarkId::new("membership_check", n), &n, |b, _| {
            b.iter(|| {
                black_box(
                    manager
                        .membership(black_box(probe.as_str()), GROUP)
                        .now_or_never()
                        .unwrap(),
                )
            })
        });
        leave_all(&manager, &ids);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = configure();
    targets = bench_churn
}
criterion_main!(benches);
