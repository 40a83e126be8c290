//! S9's tables: create → SSE event latency and memory per idle subscriber, rthub (SQLite and
//! PostgreSQL) against PocketBase.

use super::{figure, ratio, Key, Summary};
use std::fmt::Write;

const PEER: &str = "pocketbase";

pub(super) fn tables(summary: &Summary, keys: &[&Key], out: &mut String) {
    let is_memory = |k: &&&Key| k.1.ends_with("idle subscribers");
    let load: Vec<&Key> = keys.iter().filter(|k| !is_memory(k)).copied().collect();
    let memory: Vec<&Key> = keys.iter().filter(is_memory).copied().collect();
    if !load.is_empty() {
        out.push_str("Create → event (latency from the create's intended send time to the event at each subscriber):\n\n");
        out.push_str("| setting | server | events/s | p50 ms | p99 ms | server user µs/event | server sys µs/event | server CPU | loader CPU | p50 × pocketbase | p99 × pocketbase | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for key in load {
            let peer: Key = (key.0, key.1.clone(), PEER);
            let p50 = |k: &Key| summary.load(k, |m| m.p50_ms);
            let p99 = |k: &Key| summary.load(k, |m| m.p99_ms);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                key.1,
                key.2,
                figure(summary.load(key, |m| m.delivered_per_s), 0),
                figure(p50(key), 2),
                figure(p99(key), 2),
                figure(summary.load(key, |m| m.server_user_us_per_delivery), 2),
                figure(summary.load(key, |m| m.server_system_us_per_delivery), 2),
                figure(summary.load(key, |m| m.server_cpu_share * 100.0), 0) + " %",
                figure(summary.load(key, |m| m.loader_cpu_share * 100.0), 0) + " %",
                ratio(p50(key), p50(&peer)),
                ratio(p99(key), p99(&peer)),
                summary.invalid_reason(key)
            );
        }
        out.push('\n');
    }
    if !memory.is_empty() {
        out.push_str("Memory per idle subscriber (server RSS growth over the subscribers, after 10 warm-up streams and 2 s idle):\n\n");
        out.push_str("| subscribers | server | bytes/subscriber (server RSS) | kernel slab/subscriber | × pocketbase | note |\n|---|---|---|---|---|---|\n");
        for key in memory {
            let per = |k: &Key| summary.memory(k, |m| m.bytes_per_connection);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                key.1.trim_end_matches(" idle subscribers"),
                key.2,
                figure(per(key), 0),
                figure(summary.memory(key, |m| m.kernel_bytes_per_connection), 0),
                ratio(per(key), per(&(key.0, key.1.clone(), PEER))),
                summary.invalid_reason(key)
            );
        }
        out.push('\n');
    }
}
