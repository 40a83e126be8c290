//! S10's table: a group of mixed protocols, its share per protocol and all together, beside
//! groups of the same size on one protocol each.

use super::{figure, ratio, Key, Summary};
use std::fmt::Write;

/// The single-protocol group every row's p99 is compared with.
const BASE: &str = "rthub-json";

pub(super) fn table(summary: &Summary, keys: &[&Key], out: &mut String) {
    out.push_str("Members on SignalR JSON (`rthub-json`), SignalR MessagePack (`rthub-msgpack`) and Web PubSub (`rthub-wps`: `json.webpubsub.azure.v1`; `rthub-wps-reliable`: `json.reliable.webpubsub.azure.v1`, acking sequence ids); `mixed: …` rows are one protocol's third of the mixed group, `mixed: all` all of it. The publisher is one SignalR JSON connection, not a member. Server CPU per delivery is the whole run's; RSS/member is the server's growth while those members connected and joined.\n\n");
    out.push_str("| setting | members | delivered | of expected | delivered/s | p50 ms | p99 ms | p99 × rthub-json | server user µs/delivery | server sys µs/delivery | server CPU | server RSS MB | RSS/member B | loader CPU | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for key in keys {
        let p99 = |k: &Key| summary.load(k, |m| m.p99_ms);
        let base: Key = (key.0, key.1.clone(), BASE);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            key.1,
            key.2,
            figure(summary.load(key, |m| m.delivered as f64), 0),
            figure(summary.load(key, |m| m.expected as f64), 0),
            figure(summary.load(key, |m| m.delivered_per_s), 0),
            figure(summary.load(key, |m| m.p50_ms), 2),
            figure(p99(key), 2),
            ratio(p99(key), p99(&base)),
            figure(summary.load(key, |m| m.server_user_us_per_delivery), 2),
            figure(summary.load(key, |m| m.server_system_us_per_delivery), 2),
            figure(summary.load(key, |m| m.server_cpu_share * 100.0), 0) + " %",
            figure(
                summary.load(key, |m| m.server_rss_bytes.unwrap_or(0) as f64 / 1e6),
                1
            ),
            figure(
                summary.load(key, |m| m.server_rss_per_member.unwrap_or(0.0)),
                0
            ),
            figure(summary.load(key, |m| m.loader_cpu_share * 100.0), 0) + " %",
            summary.invalid_reason(key)
        );
    }
    out.push('\n');
}
