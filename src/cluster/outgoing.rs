//! Everything this node writes to Redis, in the order the router asked for it: one task
//! drains a queue into pipelines (a burst of sends is one round trip), and keeps what it
//! could not write while Redis is away, up to a bound, to write it once Redis is back.
//!
//! A group send is one script call (`PUBLISH_GROUP`): next offset, capped stream append,
//! publish with offset and epoch. Each carries this node's publish number, which the script
//! remembers per group, so a batch retried after a lost reply is never published twice.

use super::connection::{Connection, Connector};
use super::keys::Keys;
use super::status::Status;
use super::ClusterConfig;
use router::NodeId;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Operations per pipeline.
const BATCH: usize = 512;

pub const PUBLISH_GROUP: &str = r#"
local last = tonumber(redis.call('HGET', KEYS[1], ARGV[3]) or '0')
if tonumber(ARGV[4]) <= last then return 0 end
local offset = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if offset == 1 or not epoch then
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'epoch', epoch)
  redis.call('DEL', KEYS[2])
end
redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], offset .. '-1', 'm', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[7])
redis.call('EXPIRE', KEYS[2], ARGV[7])
redis.call(ARGV[8], ARGV[1], epoch .. '|' .. offset .. '|' .. ARGV[2])
return offset
"#;

/// A send to a user: to each node where the user has connections.
pub const PUBLISH_USER: &str = r#"
local nodes = redis.call('SMEMBERS', KEYS[1])
for _, node in ipairs(nodes) do redis.call('PUBLISH', ARGV[1] .. node, ARGV[2]) end
return #nodes
"#;

/// A send to a connection: to the node that owns it.
pub const PUBLISH_CONNECTION: &str = r#"
local node = redis.call('GET', KEYS[1])
if node then return redis.call('PUBLISH', ARGV[1] .. node, ARGV[2]) end
return 0
"#;

#[derive(Debug)]
pub enum Op {
    /// `body` is `origin|envelope`; `number` this node's publish number, given by the writer
    /// when the operation reaches its queue (0 until then).
    Group {
        group: Arc<str>,
        number: u64,
        body: Vec<u8>,
    },
    /// To every node (`Target::All`, targets of several groups or connections).
    All(Vec<u8>),
    /// A `NodeMessage::Deliver` for the node that owns a connection.
    Connection {
        connection_id: Arc<str>,
        body: Vec<u8>,
    },
    User {
        user: Arc<str>,
        body: Vec<u8>,
    },
    /// A command's reply (or anything for one node).
    Node {
        node: NodeId,
        body: Vec<u8>,
    },
    Owner {
        connection_id: Arc<str>,
        owned: bool,
    },
    UserHere {
        user: Arc<str>,
        here: bool,
    },
    /// This node is alive (every `ClusterConfig::heartbeat_every`); also how the writer notices that Redis
    /// went away while there was nothing else to write.
    Heartbeat,
    /// A member's record in the group's presence hash; `None` removes it.
    Member {
        group: Arc<str>,
        connection_id: Arc<str>,
        record: Option<Vec<u8>>,
    },
}

pub struct Scripts {
    group: redis::Script,
    user: redis::Script,
    connection: redis::Script,
}

impl Scripts {
    pub fn new() -> Self {
        Self {
            group: redis::Script::new(PUBLISH_GROUP),
            user: redis::Script::new(PUBLISH_USER),
            connection: redis::Script::new(PUBLISH_CONNECTION),
        }
    }

    pub async fn load(&self, connection: &mut Connection) -> redis::RedisResult<()> {
        for code in [PUBLISH_GROUP, PUBLISH_USER, PUBLISH_CONNECTION] {
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(code)
                .query_async::<String>(connection)
                .await?;
        }
        Ok(())
    }
}

/// What the writer has yet to write, and what this node has claimed in Redis so far.
#[derive(Default)]
struct Pending {
    ops: VecDeque<Op>,
    claims: Claims,
    /// The last publish number given. Numbers are given here, in queue order, not where the
    /// router publishes: two threads publishing at once could queue in the other order than
    /// they took numbers, and the script would drop the later-queued one as a repeat.
    numbered: u64,
}

impl Pending {
    fn push(&mut self, mut op: Op) {
        if let Op::Group { number, .. } = &mut op {
            self.numbered += 1;
            *number = self.numbered;
        }
        self.claims.note(&op);
        self.ops.push_back(op);
    }
}

/// This node's records in Redis (connection owners, users' node sets, group members), as
/// the operations queued so far leave them: what to write again when Redis comes back
/// without its data, or commands for this node's connections would find no owner, and the
/// presence lists would miss its members. Operations dropped from a full queue are in it
/// too, so a restore repairs them.
#[derive(Default)]
struct Claims {
    connections: HashSet<Arc<str>>,
    users: HashSet<Arc<str>>,
    members: HashMap<Arc<str>, HashMap<Arc<str>, Vec<u8>>>,
}

impl Claims {
    fn note(&mut self, op: &Op) {
        match op {
            Op::Owner {
                connection_id,
                owned,
            } => {
                if *owned {
                    self.connections.insert(connection_id.clone());
                } else {
                    self.connections.remove(connection_id);
                }
            }
            Op::UserHere { user, here } => {
                if *here {
                    self.users.insert(user.clone());
                } else {
                    self.users.remove(user);
                }
            }
            Op::Member {
                group,
                connection_id,
                record,
            } => match record {
                Some(record) => {
                    self.members
                        .entry(group.clone())
                        .or_default()
                        .insert(connection_id.clone(), record.clone());
                }
                None => {
                    if let Some(members) = self.members.get_mut(group) {
                        members.remove(connection_id);
                        if members.is_empty() {
                            self.members.remove(group);
                        }
                    }
                }
            },
            _ => {}
        }
    }

    /// The operations that write every claim again.
    fn restore(&self) -> Vec<Op> {
        let owners = self.connections.iter().map(|id| Op::Owner {
            connection_id: id.clone(),
            owned: true,
        });
        let users = self.users.iter().map(|user| Op::UserHere {
            user: user.clone(),
            here: true,
        });
        let members = self.members.iter().flat_map(|(group, members)| {
            members.iter().map(|(id, record)| Op::Member {
                group: group.clone(),
                connection_id: id.clone(),
                record: Some(record.clone()),
            })
        });
        owners.chain(users).chain(members).collect()
    }
}

pub struct Writer {
    pub config: ClusterConfig,
    pub keys: Keys,
    pub status: Arc<Status>,
    pub scripts: Scripts,
    /// The epoch a group gets when its offsets start (again), before the batch number:
    /// unique per node and start, and per batch, so a group that starts again under this
    /// node (Redis restarted empty) never gets the epoch it had.
    pub epoch: String,
}

impl Writer {
    pub async fn run(self, mut queue: mpsc::UnboundedReceiver<Op>, client: Connector) {
        let mut pending = Pending::default();
        let mut beaten = false;
        let mut connection: Option<Connection> = None;
        let mut backoff = Backoff::default();
        let mut batch = 0u64;
        loop {
            let Some(redis) = connection.as_mut() else {
                match client.connect().await {
                    Ok(mut made) => match self.scripts.load(&mut made).await {
                        Ok(()) => {
                            connection = Some(made);
                            self.status.up();
                        }
                        Err(error) => self.status.down("loading scripts", &error),
                    },
                    Err(error) => self.status.down("connecting", &error),
                }
                if connection.is_none() {
                    backoff.wait(&mut queue, &mut pending).await;
                    self.bound(&mut pending);
                }
                continue;
            };
            if pending.ops.is_empty() {
                match queue.recv().await {
                    Some(op) => pending.push(op),
                    None => return,
                }
            }
            while let Ok(op) = queue.try_recv() {
                pending.push(op);
            }
            self.bound(&mut pending);
            let n = pending.ops.len().min(BATCH);
            batch += 1;
            let pipe = self.pipeline(pending.ops.range(..n), &format!("{}.{batch:x}", self.epoch));
            match pipe
                .query_async::<Vec<redis::RedisResult<redis::Value>>>(redis)
                .await
            {
                Ok(results) => {
                    let mut results = results.into_iter();
                    let mut again = VecDeque::new();
                    let (mut restore, mut beat) = (false, false);
                    for op in pending.ops.drain(..n) {
                        let mut noscript = false;
                        for (i, result) in results.by_ref().take(self.commands(&op)).enumerate() {
                            match result {
                                // The heartbeat's field was new: Redis lost this node's
                                // records (restarted empty), or this is the first beat.
                                Ok(added) if i == 0 && matches!(op, Op::Heartbeat) => {
                                    beat = true;
                                    restore |= added == redis::Value::Int(1);
                                }
                                Err(error) if error.code() == Some("NOSCRIPT") => noscript = true,
                                Err(error) => {
                                    tracing::warn!(node = %self.status.node, %error, "cluster: Redis refused an operation")
                                }
                                Ok(_) => {}
                            }
                        }
                        if noscript {
                            again.push_back(op);
                        }
                    }
                    if restore {
                        // Ahead of what is queued, which was queued after these claims.
                        if beaten {
                            tracing::warn!(node = %self.status.node, "cluster: Redis lost this node's records (restarted without its data?); writing its connections, users and members again");
                        }
                        for op in pending.claims.restore().into_iter().rev() {
                            pending.ops.push_front(op);
                        }
                    }
                    beaten |= beat;
                    if !again.is_empty() {
                        // Redis restarted (or SCRIPT FLUSH): the operations that needed a
                        // script did not run. Only they go again (the others did run, and a
                        // publish must not be repeated), first, once the scripts are back.
                        tracing::info!(node = %self.status.node, "cluster: Redis lost the scripts (restarted?); loading them again");
                        again.append(&mut pending.ops);
                        pending.ops = again;
                        if let Err(error) = self.scripts.load(redis).await {
                            self.status.down("loading scripts", &error);
                            backoff.wait(&mut queue, &mut pending).await;
                        }
                        continue;
                    }
                    self.status.up();
                    backoff.reset();
                }
                Err(error) => {
                    // Nothing tells which of the batch ran: it goes again whole. Group sends
                    // are not repeated (the publish numbers); the bookkeeping is idempotent.
                    self.status.down("writing", &error);
                    backoff.wait(&mut queue, &mut pending).await;
                    self.bound(&mut pending);
                }
            }
        }
    }

    /// How many commands `op` is in a pipeline (see [`Self::pipeline`]).
    fn commands(&self, op: &Op) -> usize {
        match op {
            Op::Heartbeat if self.config.advertise_url.is_some() => 2,
            _ => 1,
        }
    }

    /// Keep at most `max_pending_operations`, dropping the oldest.
    fn bound(&self, pending: &mut Pending) {
        let max = self.config.max_pending_operations;
        if pending.ops.len() > max {
            let dropped = pending.ops.len() - max;
            pending.ops.drain(..dropped);
            self.status.dropped(dropped as u64);
            tracing::warn!(
                node = %self.status.node,
                dropped,
                "cluster: Redis is unreachable and the queue is full; dropped the oldest operations"
            );
        }
    }

    /// One pipeline of `ops`; a group that starts (again) in it gets `epoch`.
    fn pipeline<'a>(&self, ops: impl Iterator<Item = &'a Op>, epoch: &str) -> redis::Pipeline {
        let keys = &self.keys;
        let node = self.status.node.to_string();
        let publish = if self.config.is_redis_cluster() {
            "SPUBLISH"
        } else {
            "PUBLISH"
        };
        let ttl = self.config.stream_ttl.as_secs();
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for op in ops {
            match op {
                Op::Group {
                    group,
                    number,
                    body,
                } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.group.get_hash())
                        .arg(2)
                        .arg(keys.group_meta(group))
                        .arg(keys.group_stream(group))
                        .arg(keys.group_channel(group))
                        .arg(body.as_slice())
                        // Numbers start again with each process, so the script keeps the
                        // last one per process start (`self.epoch`: node id and start time),
                        // not per node id, which a restarted node may keep (`node_id`).
                        .arg(&self.epoch)
                        .arg(*number)
                        .arg(epoch)
                        .arg(self.config.stream_length)
                        .arg(ttl)
                        .arg(publish);
                }
                Op::All(body) => {
                    pipe.cmd("PUBLISH")
                        .arg(keys.all_channel())
                        .arg(body.as_slice());
                }
                Op::Connection {
                    connection_id,
                    body,
                } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.connection.get_hash())
                        .arg(1)
                        .arg(keys.connection_owner(connection_id))
                        .arg(keys.node_channel_prefix())
                        .arg(body.as_slice());
                }
                Op::User { user, body } => {
                    pipe.cmd("EVALSHA")
                        .arg(self.scripts.user.get_hash())
                        .arg(1)
                        .arg(keys.user_nodes(user))
                        .arg(keys.node_channel_prefix())
                        .arg(body.as_slice());
                }
                Op::Node { node, body } => {
                    pipe.cmd("PUBLISH")
                        .arg(keys.node_channel(*node))
                        .arg(body.as_slice());
                }
                Op::Heartbeat => {
                    pipe.cmd("HSET")
                        .arg(keys.nodes())
                        .arg(&node)
                        .arg(super::backplane::now_millis());
                    if let Some(url) = &self.config.advertise_url {
                        pipe.cmd("HSET").arg(keys.node_urls()).arg(&node).arg(url);
                    }
                }
                Op::Owner {
                    connection_id,
                    owned: true,
                } => {
                    pipe.cmd("SET")
                        .arg(keys.connection_owner(connection_id))
                        .arg(&node);
                }
                Op::Owner {
                    connection_id,
                    owned: false,
                } => {
                    // Only this node's claim: a connection recovered elsewhere meanwhile
                    // belongs to that node now.
                    pipe.cmd("EVAL")
                        .arg("if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0")
                        .arg(1)
                        .arg(keys.connection_owner(connection_id))
                        .arg(&node);
                }
                Op::UserHere { user, here: true } => {
                    pipe.cmd("SADD").arg(keys.user_nodes(user)).arg(&node);
                }
                Op::UserHere { user, here: false } => {
                    pipe.cmd("SREM").arg(keys.user_nodes(user)).arg(&node);
                }
                Op::Member {
                    group,
                    connection_id,
                    record: Some(record),
                } => {
                    pipe.cmd("HSET")
                        .arg(keys.group_members(group))
                        .arg(&**connection_id)
                        .arg(record.as_slice());
                }
                Op::Member {
                    group,
                    connection_id,
                    record: None,
                } => {
                    pipe.cmd("HDEL")
                        .arg(keys.group_members(group))
                        .arg(&**connection_id);
                }
            }
        }
        pipe
    }
}

/// 50 ms doubling to 2 s; while it waits, new operations keep queueing (bounded by the
/// caller), so the router never waits on Redis.
#[derive(Default)]
struct Backoff {
    attempt: u32,
}

impl Backoff {
    fn reset(&mut self) {
        self.attempt = 0;
    }

    async fn wait(&mut self, queue: &mut mpsc::UnboundedReceiver<Op>, pending: &mut Pending) {
        let delay = Duration::from_millis(50u64 << self.attempt.min(5)).min(Duration::from_secs(2));
        self.attempt += 1;
        let deadline = tokio::time::sleep(delay);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => return,
                op = queue.recv() => match op {
                    Some(op) => pending.push(op),
                    None => return,
                },
            }
        }
    }
}
