//! What a dead node leaves in Redis: its connections' owner keys, its place in users' node
//! sets, its members in the groups' presence hashes, its heartbeat. A node that stops
//! gracefully removes all of it itself; one that is killed cannot. Readers already skip a
//! dead node's entries (by its heartbeat), so this is about memory, not correctness: every
//! `cleanup_interval`, each node looks for nodes silent for longer than `node_timeout` and
//! removes their entries. Two nodes cleaning at once do no harm: each removal checks that the
//! entry is still the dead node's.

use super::backplane::{now_millis, MemberRecord, RedisBackplane};
use super::connection::Connection;
use super::wire;
use std::collections::HashSet;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Keys per `SCAN` step.
const SCAN_COUNT: usize = 500;

/// Delete an owner key only if the dead node still owns it.
const DELETE_IF_OWNED: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

#[derive(Debug, Default, PartialEq, Eq)]
struct Removed {
    connections: u64,
    users: u64,
    members: u64,
}

pub async fn run(backplane: Arc<RedisBackplane>, shutdown: CancellationToken) {
    let mut every = tokio::time::interval(backplane.config.cleanup_interval);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = every.tick() => {}
        }
        let Ok(mut redis) = backplane.query_connection().await else {
            continue;
        };
        if let Err(error) = clean(&backplane, &mut redis).await {
            tracing::debug!(%error, "cluster: cleaning up after dead nodes failed; trying again later");
        }
    }
}

async fn clean(backplane: &RedisBackplane, redis: &mut Connection) -> redis::RedisResult<()> {
    let keys = &backplane.keys;
    let heartbeats: Vec<(String, u64)> = redis::cmd("HGETALL")
        .arg(keys.nodes())
        .query_async(redis)
        .await?;
    let timeout = backplane.config.node_timeout.as_millis() as u64;
    let now = now_millis();
    let dead: HashSet<String> = heartbeats
        .into_iter()
        .filter(|(_, seen)| now.saturating_sub(*seen) > timeout)
        .map(|(node, _)| node)
        .collect();
    if dead.is_empty() {
        return Ok(());
    }
    let mut removed = Removed::default();
    // `SCAN` on a Redis Cluster visits one shard only; there the dead nodes' entries stay
    // (readers skip them by the missing heartbeat) and only the heartbeats go.
    if backplane.config.is_redis_cluster() {
        return forget(backplane, redis, &dead, &removed).await;
    }
    let prefix = keys.connection_owner("");
    for key in scan(redis, &format!("{prefix}*")).await? {
        let owner: Option<String> = redis::cmd("GET").arg(&key).query_async(redis).await?;
        if let Some(owner) = owner.filter(|owner| dead.contains(owner)) {
            let deleted: u64 = redis::cmd("EVAL")
                .arg(DELETE_IF_OWNED)
                .arg(1)
                .arg(&key)
                .arg(&owner)
                .query_async(redis)
                .await?;
            removed.connections += deleted;
        }
    }
    let prefix = keys.user_nodes("");
    for key in scan(redis, &format!("{prefix}*")).await? {
        let taken: u64 = redis::cmd("SREM")
            .arg(&key)
            .arg(dead.iter().collect::<Vec<_>>())
            .query_async(redis)
            .await?;
        removed.users += taken;
    }
    for key in scan(redis, &keys.any_group_members()).await? {
        let records: Vec<(String, Vec<u8>)> =
            redis::cmd("HGETALL").arg(&key).query_async(redis).await?;
        let gone: Vec<String> = records
            .into_iter()
            .filter(|(_, record)| {
                wire::decode::<MemberRecord>(record)
                    .is_ok_and(|record| dead.contains(&record.node.to_string()))
            })
            .map(|(connection_id, _)| connection_id)
            .collect();
        if !gone.is_empty() {
            let taken: u64 = redis::cmd("HDEL")
                .arg(&key)
                .arg(&gone)
                .query_async(redis)
                .await?;
            removed.members += taken;
        }
    }
    forget(backplane, redis, &dead, &removed).await
}

/// Remove the dead nodes' heartbeats and addresses, and say what went with them.
async fn forget(
    backplane: &RedisBackplane,
    redis: &mut Connection,
    dead: &HashSet<String>,
    removed: &Removed,
) -> redis::RedisResult<()> {
    let keys = &backplane.keys;
    let dead: Vec<&String> = dead.iter().collect();
    redis::pipe()
        .cmd("HDEL")
        .arg(keys.nodes())
        .arg(&dead)
        .ignore()
        .cmd("HDEL")
        .arg(keys.node_urls())
        .arg(&dead)
        .ignore()
        .query_async::<()>(redis)
        .await?;
    tracing::info!(
        nodes = ?dead,
        connections = removed.connections,
        users = removed.users,
        members = removed.members,
        "cluster: removed what dead nodes left in Redis"
    );
    Ok(())
}

/// Every key matching `pattern`, by `SCAN` (never `KEYS`, which blocks Redis).
async fn scan(redis: &mut Connection, pattern: &str) -> redis::RedisResult<Vec<String>> {
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(redis)
            .await?;
        keys.extend(batch);
        if next == 0 {
            return Ok(keys);
        }
        cursor = next;
    }
}
