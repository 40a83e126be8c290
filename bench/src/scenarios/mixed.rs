//! S10: one group, members on several protocols. rthub routes every message once and encodes
//! it once per protocol (PRODUCT.md: one group space for SignalR, Web PubSub and `/realtime`),
//! so a group whose members are split over SignalR JSON, SignalR MessagePack and Web PubSub
//! should cost about what a group of one protocol costs. The mixed group runs beside groups of
//! the same total size on one protocol each, in the same round, with the same publisher: one
//! SignalR JSON connection, not a member, sending `SendToGroup` open loop.
//!
//! Members are [`crate::member`]s: they ping (the recorded window is longer than the other
//! scenarios', past SignalR's 30 s client timeout with connecting and draining) and, on the
//! reliable Web PubSub subprotocol, ack sequence ids. Figures per protocol: latency and
//! delivered/expected; the server's CPU per delivery is the whole run's (one process serves
//! every protocol) and its RSS growth while each protocol's members connected and joined.

use super::*;
use crate::member::{member, Health};
use crate::webpubsub::NoEndpoint;

/// The protocols of the mixed group, in the order their members connect.
pub const MIXED: [Subject; 3] = [
    Subject::RthubJson,
    Subject::RthubMsgpack,
    Subject::RthubWebPubSub,
];

/// The groups of one protocol run beside the mixed one, at its total size, in this order.
const SINGLE: [Subject; 4] = [
    Subject::RthubJson,
    Subject::RthubWebPubSub,
    Subject::RthubMsgpack,
    Subject::RthubWebPubSubReliable,
];

/// The row of every mixed-group member together.
const MIXED_ALL: &str = "mixed: all";

/// The row of one protocol's members within the mixed group.
fn mixed_label(subject: Subject) -> &'static str {
    match subject {
        Subject::RthubJson => "mixed: rthub-json",
        Subject::RthubMsgpack => "mixed: rthub-msgpack",
        Subject::RthubWebPubSub => "mixed: rthub-wps",
        Subject::RthubWebPubSubReliable => "mixed: rthub-wps-reliable",
        _ => "mixed: other",
    }
}

/// One run of S10: its group's (protocol, members) and the rows it gives.
pub struct GroupSpec {
    pub labels: Vec<&'static str>,
    pub parts: Vec<(Subject, usize)>,
}

impl GroupSpec {
    /// Every run of one step: the mixed group of `per_protocol` members per protocol, then
    /// each single-protocol group of the same total size.
    pub fn all(per_protocol: usize) -> Vec<GroupSpec> {
        let total = per_protocol * MIXED.len();
        let mixed = GroupSpec {
            labels: MIXED
                .iter()
                .map(|s| mixed_label(*s))
                .chain([MIXED_ALL])
                .collect(),
            parts: MIXED.iter().map(|s| (*s, per_protocol)).collect(),
        };
        let single = SINGLE.iter().map(|s| GroupSpec {
            labels: vec![s.label()],
            parts: vec![(*s, total)],
        });
        std::iter::once(mixed).chain(single).collect()
    }
}

/// Connections per protocol that warm the server's allocator before the RSS baseline (in a
/// group of their own, kept alive, never counted).
const WARM: usize = 5;

/// What a group run gave: one figure set per part (and one for all of them, for more than
/// one part), or why the run could not happen on this server.
pub enum GroupRun {
    Ran(Vec<Measured>),
    Skipped(String),
}

impl Runner {
    /// S10: one group of `parts` (protocol, members), the publisher sending at `rate`.
    pub async fn group_fanout(
        &self,
        parts: &[(Subject, usize)],
        rate: f64,
        window: Window,
    ) -> GroupRun {
        match self.try_group_fanout(parts, rate, window).await {
            Ok(measured) => GroupRun::Ran(measured),
            Err(error) if error.chain().any(|e| e.is::<NoEndpoint>()) => {
                GroupRun::Skipped(error.to_string())
            }
            Err(error) => {
                let rows = parts.len() + usize::from(parts.len() > 1);
                GroupRun::Ran(vec![invalid(format!("{error:#}")); rows])
            }
        }
    }

    async fn try_group_fanout(
        &self,
        parts: &[(Subject, usize)],
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Vec<Measured>> {
        let settings = RthubSettings {
            server_key: Some(crate::servers::SERVER_KEY.into()),
            ..RthubSettings::default()
        };
        let server = self.start(Subject::RthubJson, &settings)?;
        let mut keepers = Vec::new();
        for &(subject, _) in parts {
            for socket in connect_many(&self.http, &server, subject, WARM, Some("warm")).await? {
                keepers.push(tokio::spawn(keep_idle(socket, subject.dialect())));
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let baseline = rss_bytes(server.pid).context("server RSS")?;
        let mut rss = baseline;
        let mut members = Vec::with_capacity(parts.len());
        let mut readers = Vec::new();
        for &(subject, count) in parts {
            let sockets = connect_many(&self.http, &server, subject, count, Some("bench")).await?;
            let now = rss_bytes(server.pid).context("server RSS")?;
            let per_member = now.saturating_sub(rss) as f64 / count.max(1) as f64;
            rss = now;
            let (recorder, health) = (Recorder::new(), Arc::new(Health::default()));
            for socket in sockets {
                let reader = member(socket, subject.dialect(), recorder.clone(), health.clone());
                readers.push(tokio::spawn(reader));
            }
            members.push((recorder, health, count, per_member));
        }
        let total: usize = parts.iter().map(|p| p.1).sum();
        let all_per_member = rss.saturating_sub(baseline) as f64 / total.max(1) as f64;
        let group = Subject::RthubJson.group("bench");
        let publish = self.publish_on_schedule(
            &server,
            Subject::RthubJson.dialect(),
            &group,
            rate,
            window,
            |schedule| {
                for (recorder, _, count, _) in &members {
                    recorder.expect(schedule, *count);
                }
            },
        );
        let (watch, mut sink) = publish.await?;
        let recorders: Vec<&Recorder> = members.iter().map(|m| m.0.as_ref()).collect();
        let offered: Vec<f64> = members.iter().map(|m| rate * m.2 as f64).collect();
        let mut measured = watch.finish_each(&recorders, &offered).await;
        let end_rss = rss_bytes(server.pid);
        let problems: Vec<Vec<String>> = members.iter().map(|m| m.1.problems()).collect();
        let every_problem: Vec<String> = problems.concat();
        for (index, figures) in measured.iter_mut().enumerate() {
            let (per_member, problems) = match members.get(index) {
                Some(part) => (part.3, &problems[index]),
                None => (all_per_member, &every_problem),
            };
            figures.server_rss_bytes = end_rss;
            figures.server_rss_per_member = Some(per_member);
            if !problems.is_empty() {
                figures.valid = false;
                figures.invalid_because.extend(problems.iter().cloned());
            }
        }
        for task in readers.into_iter().chain(keepers) {
            task.abort();
        }
        let _ = sink.close().await;
        Ok(measured)
    }
}
