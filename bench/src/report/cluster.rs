//! S11's table: one group on one rthub, beside the same group split over two nodes joined
//! through Redis, with the latency of each node's members and the CPU of every process.

use super::{figure, ratio, Key, Summary};
use std::fmt::Write;

/// The configuration every row's CPU per delivery is compared with.
const BASE: &str = "single";

pub(super) fn table(summary: &Summary, keys: &[&Key], out: &mut String) {
    out.push_str("Members on SignalR JSON; `single` is the group on one rthub without `[cluster]`; `cluster: …` the same group split evenly over nodes A and B joined through the machine's Redis (a fresh key prefix per run), the publisher (one SignalR JSON connection, not a member) on node A — `publisher's node` rows are node A's members, `other node` node B's, `all` both. Nodes' CPU per delivery is both nodes' summed over every delivery of the run; Redis's is the `redis-server` process's over the same window (`/proc`, pid from `info server`). Both nodes (or the single server) are pinned to CPU 0, the loader to CPU 1, Redis is not pinned: Redis and the nodes share the machine's 2 cores.\n\n");
    out.push_str("| setting | configuration | delivered | of expected | p50 ms | p99 ms | max ms | nodes' user µs/delivery | nodes' sys µs/delivery | nodes' CPU µs × single | nodes' CPU | Redis user µs/delivery | Redis sys µs/delivery | Redis CPU | loader CPU | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for key in keys {
        let cpu = |k: &Key| {
            summary.load(k, |m| {
                m.server_user_us_per_delivery + m.server_system_us_per_delivery
            })
        };
        let base: Key = (key.0, key.1.clone(), BASE);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            key.1,
            key.2,
            figure(summary.load(key, |m| m.delivered as f64), 0),
            figure(summary.load(key, |m| m.expected as f64), 0),
            figure(summary.load(key, |m| m.p50_ms), 2),
            figure(summary.load(key, |m| m.p99_ms), 2),
            figure(summary.load(key, |m| m.max_ms), 2),
            figure(summary.load(key, |m| m.server_user_us_per_delivery), 2),
            figure(summary.load(key, |m| m.server_system_us_per_delivery), 2),
            ratio(cpu(key), cpu(&base)),
            figure(summary.load(key, |m| m.server_cpu_share * 100.0), 0) + " %",
            figure(
                known(summary.load(key, |m| m.redis_user_us_per_delivery.unwrap_or(f64::NAN))),
                2
            ),
            figure(
                known(summary.load(key, |m| m.redis_system_us_per_delivery.unwrap_or(f64::NAN))),
                2
            ),
            figure(
                known(summary.load(key, |m| m.redis_cpu_share.unwrap_or(f64::NAN) * 100.0)),
                1
            ) + " %",
            figure(summary.load(key, |m| m.loader_cpu_share * 100.0), 0) + " %",
            summary.invalid_reason(key)
        );
    }
    out.push('\n');
}

/// A figure Redis's CPU could not be read for (NaN) is shown as missing.
fn known(value: Option<f64>) -> Option<f64> {
    value.filter(|v| v.is_finite())
}
