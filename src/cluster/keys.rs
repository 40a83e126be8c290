//! Every Redis key and channel the cluster uses, in one place.
//!
//! A group's keys carry its partition as a hash tag (`{p7}`), so that on a Redis Cluster the
//! publish script's keys and its sharded channel share one slot; on a single Redis the tag
//! is just part of the name.

use router::NodeId;

#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    partitions: u32,
}

impl Keys {
    pub fn new(prefix: &str, partitions: u32) -> Self {
        Self {
            prefix: prefix.to_owned(),
            partitions: partitions.max(1),
        }
    }

    /// FNV-1a: stable across processes and versions (unlike std's hasher), which every
    /// node must agree on.
    pub fn partition(&self, group: &str) -> u32 {
        let mut hash: u32 = 0x811c_9dc5;
        for byte in group.as_bytes() {
            hash ^= u32::from(*byte);
            hash = hash.wrapping_mul(0x0100_0193);
        }
        hash % self.partitions
    }

    /// The group's offset, epoch and each origin's last publish (a hash).
    pub fn group_meta(&self, group: &str) -> String {
        format!("{}:{{p{}}}:gm:{group}", self.prefix, self.partition(group))
    }

    /// The group's recent messages (a stream, ids `offset-1`).
    pub fn group_stream(&self, group: &str) -> String {
        format!("{}:{{p{}}}:gs:{group}", self.prefix, self.partition(group))
    }

    /// The group's members on every node (a hash: connection id → member).
    pub fn group_members(&self, group: &str) -> String {
        format!("{}:{{p{}}}:gp:{group}", self.prefix, self.partition(group))
    }

    /// A `SCAN` pattern for every group's presence hash.
    pub fn any_group_members(&self) -> String {
        format!("{}:{{p*}}:gp:*", self.prefix)
    }

    /// Where a group's messages are published. The partition's tag puts it, on a Redis
    /// Cluster, in the slot of the group's keys: the publish script's `SPUBLISH` must be.
    pub fn group_channel(&self, group: &str) -> String {
        format!("{}:{{p{}}}:g:{group}", self.prefix, self.partition(group))
    }

    /// Which group a group channel name belongs to, if it is one.
    pub fn group_of_channel<'a>(&self, channel: &'a str) -> Option<&'a str> {
        let rest = channel
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix(":{p")?;
        let (partition, rest) = rest.split_once('}')?;
        if partition.is_empty() || !partition.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.strip_prefix(":g:")
    }

    /// Sends to everyone, and targets no single node owns.
    pub fn all_channel(&self) -> String {
        format!("{}:all", self.prefix)
    }

    /// A node's own channel: sends to its connections and users, commands, replies.
    pub fn node_channel(&self, node: NodeId) -> String {
        format!("{}:n:{node}", self.prefix)
    }

    /// The start of every node channel (scripts append the node id).
    pub fn node_channel_prefix(&self) -> String {
        format!("{}:n:", self.prefix)
    }

    /// Which node owns a connection (a string: the node id).
    pub fn connection_owner(&self, connection_id: &str) -> String {
        format!("{}:c:{connection_id}", self.prefix)
    }

    /// The nodes where a user has connections (a set of node ids).
    pub fn user_nodes(&self, user: &str) -> String {
        format!("{}:u:{user}", self.prefix)
    }

    /// Where each node takes requests for its connections (a hash: node id → URL).
    pub fn node_urls(&self) -> String {
        format!("{}:node-urls", self.prefix)
    }

    /// Every node's heartbeat (a hash: node id → milliseconds since the epoch).
    pub fn nodes(&self) -> String {
        format!("{}:nodes", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_groups_keys_share_a_hash_tag() {
        let keys = Keys::new("t", 16);
        let tag = format!("{{p{}}}", keys.partition("room"));
        for key in [
            keys.group_meta("room"),
            keys.group_stream("room"),
            keys.group_members("room"),
            keys.group_channel("room"),
        ] {
            assert!(key.contains(&tag), "{key}");
        }
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        let keys = Keys::new("t", 16);
        // FNV-1a of "room" is 0x37fd_327a: fixed, whatever the platform.
        assert_eq!(keys.partition("room"), 0x37fd_327a % 16);
        assert!((0..1000).all(|i| keys.partition(&format!("g{i}")) < 16));
    }

    #[test]
    fn group_channels_round_trip() {
        let keys = Keys::new("t", 4);
        assert_eq!(
            keys.group_of_channel(&keys.group_channel("a:b")),
            Some("a:b")
        );
        assert_eq!(keys.group_of_channel(&keys.all_channel()), None);
    }
}
