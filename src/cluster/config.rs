//! `[cluster]` in the config file: the Redis that joins several rthub processes into one.
//! Without `redis`, rthub runs alone exactly as before.

use crate::config::{positive, ConfigError};
use router::NodeId;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileCluster {
    redis: Option<String>,
    prefix: Option<String>,
    node_id: Option<String>,
    stream_length: Option<u64>,
    stream_ttl_secs: Option<u64>,
    recovery_secs: Option<u64>,
    command_timeout_secs: Option<u64>,
    partitions: Option<u64>,
    max_pending_operations: Option<usize>,
    advertise_url: Option<String>,
    node_timeout_secs: Option<u64>,
    cleanup_interval_secs: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `redis://…` (or `rediss://…`); `redis+cluster://…` names a Redis Cluster.
    pub redis: String,
    /// Every key and channel starts with it, so that clusters (and tests) share a Redis.
    pub prefix: String,
    /// This process's id among the nodes; random unless configured.
    pub node_id: NodeId,
    /// Messages each group's stream keeps for gap filling and recovery (approximately: the
    /// stream is trimmed with `MAXLEN ~`).
    pub stream_length: u64,
    /// How long a group's stream and offset outlive its last message.
    pub stream_ttl: Duration,
    /// How long a dropped connection's session record stays in Redis for recovery on
    /// another node.
    pub recovery: Duration,
    /// How long a command on another node's connection may take.
    pub command_timeout: Duration,
    /// Sharded pub/sub partitions on a Redis Cluster (groups hash onto them).
    pub partitions: u32,
    /// Operations (publishes, presence updates) kept while Redis is unreachable, sent once
    /// it is back; beyond it the oldest are dropped, with a warning.
    pub max_pending_operations: usize,
    /// Where the other nodes send requests for this node's connections (`http://host:port`);
    /// the bound address unless configured.
    pub advertise_url: Option<String>,
    /// A node whose heartbeat is older is taken for dead: its members leave the presence
    /// lists, commands for its connections fail at once, and the cleanup removes what it left
    /// in Redis. Heartbeats go every third of it (at most every 2 s).
    pub node_timeout: Duration,
    /// How often each node looks for dead nodes' leftovers.
    pub cleanup_interval: Duration,
}

impl ClusterConfig {
    /// `None` without a Redis URL (from the file or `--redis`).
    pub fn resolve(
        file: FileCluster,
        redis_override: Option<String>,
    ) -> Result<Option<Self>, ConfigError> {
        let Some(redis) = redis_override.or(file.redis).filter(|url| !url.is_empty()) else {
            return Ok(None);
        };
        let schemes = [
            "redis://",
            "rediss://",
            "redis+cluster://",
            "rediss+cluster://",
        ];
        if !schemes.iter().any(|scheme| redis.starts_with(scheme)) {
            return Err(invalid(
                "cluster.redis",
                "a redis://, rediss:// or redis+cluster:// URL",
            ));
        }
        let prefix = file.prefix.unwrap_or_else(|| "rthub".into());
        let valid_prefix = !prefix.is_empty()
            && prefix.len() <= 64
            && prefix
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !valid_prefix {
            return Err(invalid(
                "cluster.prefix",
                "1 to 64 letters, digits, '_', '-' or '.'",
            ));
        }
        let node_id = match file.node_id {
            Some(text) => text
                .parse()
                .map_err(|_| invalid("cluster.node_id", "16 hexadecimal digits"))?,
            None => NodeId::random(),
        };
        if let Some(url) = &file.advertise_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(invalid(
                    "cluster.advertise_url",
                    "an http:// or https:// URL",
                ));
            }
        }
        let node_timeout = positive(
            file.node_timeout_secs.unwrap_or(15),
            "cluster.node_timeout_secs",
        )?;
        if node_timeout < 3 {
            return Err(invalid("cluster.node_timeout_secs", "at least 3"));
        }
        let partitions = positive(file.partitions.unwrap_or(16), "cluster.partitions")?;
        if partitions > 1024 {
            return Err(invalid("cluster.partitions", "at most 1024"));
        }
        Ok(Some(Self {
            redis,
            prefix,
            node_id,
            stream_length: positive(
                file.stream_length.unwrap_or(10_000),
                "cluster.stream_length",
            )?,
            stream_ttl: Duration::from_secs(positive(
                file.stream_ttl_secs.unwrap_or(24 * 3600),
                "cluster.stream_ttl_secs",
            )?),
            recovery: Duration::from_secs(positive(
                file.recovery_secs.unwrap_or(60),
                "cluster.recovery_secs",
            )?),
            command_timeout: Duration::from_secs(positive(
                file.command_timeout_secs.unwrap_or(5),
                "cluster.command_timeout_secs",
            )?),
            partitions: partitions as u32,
            max_pending_operations: positive(
                file.max_pending_operations.unwrap_or(100_000) as u64,
                "cluster.max_pending_operations",
            )? as usize,
            advertise_url: file
                .advertise_url
                .map(|url| url.trim_end_matches('/').to_owned()),
            node_timeout: Duration::from_secs(node_timeout),
            cleanup_interval: Duration::from_secs(positive(
                file.cleanup_interval_secs.unwrap_or(30),
                "cluster.cleanup_interval_secs",
            )?),
        }))
    }

    /// How often this node says it is alive.
    pub fn heartbeat_every(&self) -> Duration {
        (self.node_timeout / 3).min(Duration::from_secs(2))
    }

    /// Whether the URL names a Redis Cluster.
    pub fn is_redis_cluster(&self) -> bool {
        self.redis.contains("+cluster://")
    }

    /// The URL as the Redis crate takes it (without the `+cluster` marker).
    pub fn client_url(&self) -> String {
        self.redis.replacen("+cluster://", "://", 1)
    }
}

fn invalid(setting: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        setting,
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(toml_text: &str) -> FileCluster {
        toml::from_str(toml_text).unwrap()
    }

    #[test]
    fn absent_without_a_url() {
        assert!(ClusterConfig::resolve(FileCluster::default(), None)
            .unwrap()
            .is_none());
    }

    #[test]
    fn the_override_wins_and_defaults_apply() {
        let config =
            ClusterConfig::resolve(file("redis = \"redis://a:1\""), Some("redis://b:2".into()))
                .unwrap()
                .unwrap();
        assert_eq!(config.redis, "redis://b:2");
        assert_eq!(config.prefix, "rthub");
        assert_eq!(config.partitions, 16);
        assert!(!config.is_redis_cluster());
    }

    #[test]
    fn bad_settings_are_named() {
        let cases = [
            ("redis = \"http://x\"", "cluster.redis"),
            ("redis = \"redis://x\"\nprefix = \"a b\"", "cluster.prefix"),
            ("redis = \"redis://x\"\nnode_id = \"zz\"", "cluster.node_id"),
            (
                "redis = \"redis://x\"\nstream_length = 0",
                "cluster.stream_length",
            ),
        ];
        for (text, setting) in cases {
            match ClusterConfig::resolve(file(text), None) {
                Err(ConfigError::Invalid { setting: named, .. }) => assert_eq!(named, setting),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_cluster_url_is_recognized() {
        let config = ClusterConfig::resolve(file("redis = \"redis+cluster://h:7000\""), None)
            .unwrap()
            .unwrap();
        assert!(config.is_redis_cluster());
        assert_eq!(config.client_url(), "redis://h:7000");
    }
}
