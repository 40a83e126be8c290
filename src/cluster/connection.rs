//! One connection type for a single Redis and for a Redis Cluster, so the writer, the reader
//! and the queries do not care which it is.
//!
//! On a Redis Cluster a pipeline may only touch one slot; ours mix slots (a batch of the
//! writer, the presence read), so [`Connection`] splits a pipeline by slot, sends the parts
//! side by side, and puts the replies back in order. Each part keeps its commands' order,
//! and a group's keys and channel share one slot, so a group's sends stay in order.

use futures_util::future::{join_all, BoxFuture};
use futures_util::StreamExt;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::Slot;
use redis::{Arg, Cmd, Pipeline, PushKind, RedisFuture, RedisResult, Value};
use std::collections::HashMap;
use std::time::Duration;
use tokio::sync::mpsc;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes the connections of one node, to a single Redis or to a cluster.
#[derive(Clone)]
pub enum Connector {
    Single(redis::Client),
    Cluster {
        client: Box<ClusterClient>,
        /// The seed URLs, for the subscribers' clients (each with its own push channel).
        nodes: Vec<String>,
    },
}

impl Connector {
    pub fn open(url: &str, cluster: bool) -> RedisResult<Self> {
        if !cluster {
            return Ok(Self::Single(redis::Client::open(url)?));
        }
        let nodes = vec![url.to_owned()];
        let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(1)
            .build()?;
        Ok(Self::Cluster {
            client: Box::new(client),
            nodes,
        })
    }

    /// The writer's and the queries' connection: it reconnects itself.
    pub async fn connect(&self) -> RedisResult<Connection> {
        match self {
            Self::Single(client) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(2));
                let manager = ConnectionManager::new_with_config(client.clone(), config).await?;
                Ok(Connection::Managed(manager))
            }
            Self::Cluster { client, .. } => {
                Ok(Connection::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// The reader's connection for the streams: a plain one on a single Redis, as the
    /// reader reconnects it itself along with its subscription.
    pub async fn connect_plain(&self) -> RedisResult<Connection> {
        match self {
            Self::Single(client) => {
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(RESPONSE_TIMEOUT));
                let connection = client
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Connection::Plain(connection))
            }
            Self::Cluster { .. } => self.connect().await,
        }
    }

    pub async fn subscriber(&self) -> RedisResult<Subscriber> {
        match self {
            Self::Single(client) => {
                let (sink, stream) = client.get_async_pubsub().await?.split();
                Ok(Subscriber::Single { sink, stream })
            }
            Self::Cluster { nodes, .. } => {
                // RESP3: the cluster connection hands subscribed messages to a push channel.
                let (pushes, receiver) = mpsc::unbounded_channel();
                let client = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .retries(1)
                    .use_protocol(redis::ProtocolVersion::RESP3)
                    .push_sender(pushes)
                    .build()?;
                let connection = client.get_async_connection().await?;
                Ok(Subscriber::Cluster {
                    connection,
                    pushes: receiver,
                })
            }
        }
    }
}

#[derive(Clone)]
pub enum Connection {
    Managed(ConnectionManager),
    Plain(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Managed(connection) => connection.req_packed_command(cmd),
            Self::Plain(connection) => connection.req_packed_command(cmd),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Managed(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Plain(connection) => connection.req_packed_commands(pipeline, offset, count),
            Self::Cluster(connection) => Box::pin(by_slot(connection.clone(), pipeline)),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// `pipeline` on a cluster: one part per slot (the commands without a key together), sent
/// side by side; the replies in the pipeline's order. A server error stays in its place,
/// as a single connection's pipeline has it.
async fn by_slot(connection: ClusterConnection, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
    let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
    let mut parts: HashMap<Option<Slot>, Vec<usize>> = HashMap::new();
    for (at, cmd) in commands.iter().enumerate() {
        parts
            .entry(slot_key(cmd).map(Slot::for_key))
            .or_default()
            .push(at);
    }
    let sends = parts.into_values().map(|indices| {
        let mut connection = connection.clone();
        let mut part = redis::pipe();
        for at in &indices {
            part.add_command(commands[*at].clone());
        }
        async move {
            let count = indices.len();
            let replies = connection.req_packed_commands(&part, 0, count).await;
            (indices, replies)
        }
    });
    let mut values = vec![Value::Nil; commands.len()];
    for (indices, replies) in join_all(sends).await {
        for (at, value) in indices.into_iter().zip(replies?) {
            values[at] = value;
        }
    }
    Ok(values)
}

/// The key that decides a command's slot: a script's first key, else the first argument
/// (the channel of an `SPUBLISH`); none for commands without keys (`PUBLISH`, `SCRIPT`).
fn slot_key(cmd: &Cmd) -> Option<Vec<u8>> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .filter_map(|arg| match arg {
            Arg::Simple(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    match name.as_slice() {
        b"EVAL" | b"EVALSHA" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            (keys > 0).then(|| args.get(3).map(|key| key.to_vec()))?
        }
        b"PUBLISH" | b"SCRIPT" | b"PING" => None,
        _ => args.get(1).map(|key| key.to_vec()),
    }
}

/// The reader's subscriptions: plain pub/sub on a single Redis; on a cluster, plain for the
/// node and everyone channels and sharded for the groups (whose channels carry their
/// partition's hash tag, so they live on the shard of the group's keys).
pub enum Subscriber {
    Single {
        sink: redis::aio::PubSubSink,
        stream: redis::aio::PubSubStream,
    },
    Cluster {
        connection: ClusterConnection,
        pushes: mpsc::UnboundedReceiver<redis::PushInfo>,
    },
}

impl Subscriber {
    pub async fn subscribe(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } => sink.subscribe(channels).await,
            Self::Cluster { connection, .. } => connection.subscribe(channels).await,
        }
    }

    /// Every group's channel at once (after a reconnection).
    pub async fn subscribe_groups(&mut self, channels: &[String]) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } if !channels.is_empty() => sink.subscribe(channels).await,
            Self::Single { .. } => Ok(()),
            // One by one: a sharded subscription names channels of one slot.
            Self::Cluster { connection, .. } => {
                for channel in channels {
                    connection.ssubscribe(channel).await?;
                }
                Ok(())
            }
        }
    }

    pub async fn subscribe_group(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } => sink.subscribe(channel).await,
            Self::Cluster { connection, .. } => connection.ssubscribe(channel).await,
        }
    }

    pub async fn unsubscribe_group(&mut self, channel: &str) -> RedisResult<()> {
        match self {
            Self::Single { sink, .. } => sink.unsubscribe(channel).await,
            Self::Cluster { connection, .. } => connection.sunsubscribe(channel).await,
        }
    }

    /// The next message, as (channel, payload); `None` when the subscription is lost (the
    /// caller reconnects and fills the gaps).
    pub fn next(&mut self) -> BoxFuture<'_, Option<(String, Vec<u8>)>> {
        Box::pin(async move {
            match self {
                Self::Single { stream, .. } => {
                    let message = stream.next().await?;
                    let channel = message.get_channel_name().to_owned();
                    Some((channel, message.get_payload_bytes().to_vec()))
                }
                Self::Cluster { pushes, .. } => loop {
                    let push = pushes.recv().await?;
                    match push.kind {
                        PushKind::Disconnection => return None,
                        PushKind::Message | PushKind::SMessage => {
                            if let [channel, payload] = push.data.as_slice() {
                                let channel: Option<String> =
                                    redis::from_redis_value_ref(channel).ok();
                                let payload: Option<Vec<u8>> =
                                    redis::from_redis_value_ref(payload).ok();
                                if let (Some(channel), Some(payload)) = (channel, payload) {
                                    return Some((channel, payload));
                                }
                            }
                        }
                        _ => {} // subscription confirmations
                    }
                },
            }
        })
    }
}
