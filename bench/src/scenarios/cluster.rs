//! S11: fan-out across nodes. One group of M SignalR JSON members split evenly over two rthub
//! processes joined through Redis (`[cluster]`, a fresh key prefix per run), the publisher — one
//! SignalR JSON connection, not a member — on node A sending `SendToGroup` open loop; beside
//! it, in the same step, the same group on one rthub without `[cluster]`. A group send on a
//! node delivers to that node's members at once and makes one Redis script call (offset,
//! stream append, publish); the other node gets the publication and delivers to its members.
//! So node A's members show what the backplane costs the publisher's node, node B's members
//! what a hop through Redis costs, and the CPU columns what the whole cluster spends per
//! delivery: both nodes summed, and Redis itself (the machine's `redis-server`, read from
//! `/proc`).
//!
//! Members are [`crate::member`]s (pings, duplicates counted), as in S10.

use super::*;
use crate::member::{member, Health};
use crate::procfs::CpuWindow;
use crate::report::{Figures, Row};
use std::path::PathBuf;
use std::process::Command;

/// The rows of one step, in the order [`Runner::cluster_step`] returns them.
const LABELS: [&str; 4] = [
    "single",
    "cluster: publisher's node",
    "cluster: other node",
    "cluster: all",
];

/// The Redis the nodes join through, and its process for the CPU figures.
pub struct Redis {
    pub url: String,
    /// `None` when its `process_id` is not a `redis-server` this machine's `/proc` shows
    /// (Redis in another container or on another host): the run goes on without its CPU.
    pub pid: Option<u32>,
}

impl Redis {
    /// Asks Redis (`redis-cli … info server`) for its process; an error when it does not
    /// answer.
    pub fn find(url: &str) -> anyhow::Result<Self> {
        let info = redis_cli(url, &["info", "server"])?;
        let pid = info
            .lines()
            .find_map(|l| l.strip_prefix("process_id:"))
            .and_then(|v| v.trim().parse::<u32>().ok());
        let local = |pid: &u32| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.contains("redis"))
        };
        Ok(Self {
            url: url.to_owned(),
            pid: pid.filter(local),
        })
    }

    /// Deletes every key under `prefix` (the nodes were killed, so nothing of theirs
    /// expires by itself but the group streams).
    fn forget(&self, prefix: &str) -> anyhow::Result<()> {
        let pattern = format!("{prefix}:*");
        let keys = redis_cli(&self.url, &["--scan", "--pattern", &pattern])?;
        let keys: Vec<&str> = keys.lines().filter(|k| !k.is_empty()).collect();
        for chunk in keys.chunks(500) {
            let mut args = vec!["del"];
            args.extend_from_slice(chunk);
            redis_cli(&self.url, &args)?;
        }
        Ok(())
    }
}

fn redis_cli(url: &str, args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("redis-cli")
        .args(["-u", url])
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .context("run redis-cli (Redis's client, installed with redis-server)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() || stdout.starts_with("ERR") || stdout.contains("refused") {
        bail!(
            "redis-cli {}: {}{}",
            args.join(" "),
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(stdout)
}

/// Every step of S11 in one round, each step's four rows ([`LABELS`]) given to `record`; a
/// size whose run collapsed (`crate::collapsed`) is not driven at its higher rates. `notes`
/// (the first round's) hears when Redis is unreachable or its CPU cannot be read.
pub async fn cluster_rows(
    runner: &Runner,
    redis_url: &str,
    (steps, window): (&[(usize, Vec<f64>)], Window),
    round: usize,
    notes: Option<&mut Vec<String>>,
    record: &mut impl FnMut(Row),
) {
    let redis = Redis::find(redis_url);
    if let Some(notes) = notes {
        match &redis {
            Ok(Redis { pid: None, .. }) => notes.push(format!(
                "S11: {redis_url}'s process is not on this machine's /proc: no Redis CPU figures."
            )),
            Ok(_) => {}
            Err(error) => notes.push(format!("S11 skipped: Redis: {error:#}")),
        }
    }
    for (members, rates) in steps {
        let mut gone = false;
        for &rate in rates {
            let skipped = |why: String| {
                LABELS
                    .iter()
                    .map(|_| Figures::Skipped(why.clone()))
                    .collect()
            };
            let figures: Vec<Figures> = match &redis {
                Err(error) => skipped(format!("Redis: {error:#}")),
                Ok(_) if gone => skipped("collapsed at a lower rate".into()),
                Ok(redis) => runner
                    .cluster_step(redis, *members, rate, window)
                    .await
                    .into_iter()
                    .map(Figures::Load)
                    .collect(),
            };
            gone |= figures.iter().any(crate::collapsed);
            for (&subject, figures) in LABELS.iter().zip(figures) {
                record(Row {
                    scenario: "S11",
                    setting: format!("{members} members × {rate} msg/s"),
                    x: rate * *members as f64,
                    subject,
                    round,
                    figures,
                });
            }
        }
    }
}

/// One node or the single server of a run, its log, and its members.
struct Node<'a> {
    server: &'a Server,
    log: PathBuf,
    members: usize,
}

impl Runner {
    /// One step of S11: the single-node group, then the two-node one; four rows
    /// ([`LABELS`]).
    pub async fn cluster_step(
        &self,
        redis: &Redis,
        members: usize,
        rate: f64,
        window: Window,
    ) -> Vec<Measured> {
        let single = self
            .try_single(redis, members, rate, window)
            .await
            .unwrap_or_else(|error| vec![invalid(format!("{error:#}"))]);
        let cluster = self
            .try_cluster(redis, members, rate, window)
            .await
            .unwrap_or_else(|error| vec![invalid(format!("{error:#}")); 3]);
        single.into_iter().chain(cluster).collect()
    }

    fn start_logged(
        &self,
        name: &str,
        config: Option<PathBuf>,
    ) -> anyhow::Result<(Server, PathBuf)> {
        let log_name = format!("s11-{name}.log");
        let settings = RthubSettings {
            config,
            log_name: Some(log_name.clone()),
            ..RthubSettings::default()
        };
        let server = self.start(Subject::RthubJson, &settings)?;
        Ok((server, self.paths.logs.join(log_name)))
    }

    async fn try_single(
        &self,
        redis: &Redis,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Vec<Measured>> {
        let (server, log) = self.start_logged("single", None)?;
        let nodes = [Node {
            server: &server,
            log,
            members,
        }];
        self.group_over(&nodes, redis, rate, window).await
    }

    async fn try_cluster(
        &self,
        redis: &Redis,
        members: usize,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Vec<Measured>> {
        let prefix = format!("bench-s11-{:x}", crate::client::now_nanos());
        let config = self.paths.logs.join(format!("{prefix}.toml"));
        std::fs::create_dir_all(&self.paths.logs)?;
        // The streams' TTL is short: the machine's Redis is shared, and a bench run's
        // messages are of no use to anyone after it.
        std::fs::write(
            &config,
            format!(
                "[cluster]\nredis = \"{}\"\nprefix = \"{prefix}\"\nstream_ttl_secs = 600\n",
                redis.url
            ),
        )?;
        let result = async {
            let (a, log_a) = self.start_logged("node-a", Some(config.clone()))?;
            let (b, log_b) = self.start_logged("node-b", Some(config.clone()))?;
            for server in [&a, &b] {
                self.wait_until_ready(server).await?;
            }
            let half = members / 2;
            let nodes = [
                Node {
                    server: &a,
                    log: log_a,
                    members: members - half,
                },
                Node {
                    server: &b,
                    log: log_b,
                    members: half,
                },
            ];
            self.group_over(&nodes, redis, rate, window).await
        }
        .await;
        let _ = std::fs::remove_file(&config);
        // The nodes are gone by now (dropped with the block above).
        if let Err(error) = redis.forget(&prefix) {
            eprintln!("S11: could not delete the keys under {prefix}: {error:#}");
        }
        result
    }

    /// Until `/readyz` says the node is ready, which with `[cluster]` includes reaching Redis.
    async fn wait_until_ready(&self, server: &Server) -> anyhow::Result<()> {
        let url = format!("http://{}/readyz", server.addr);
        for _ in 0..200 {
            if let Ok(response) = self.http.get(&url).send().await {
                let ok = response.status().is_success();
                let body: serde_json::Value = response.json().await.unwrap_or_default();
                if ok && body["status"] == "ready" {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{} never said it was ready (/readyz)", server.addr)
    }

    /// The group `app:bench` over `nodes` (their members join on their node), the publisher
    /// on the first node. One figure set per node and, for more than one node, one for all;
    /// the CPU figures are every node's summed, per delivery of the whole run.
    async fn group_over(
        &self,
        nodes: &[Node<'_>],
        redis: &Redis,
        rate: f64,
        window: Window,
    ) -> anyhow::Result<Vec<Measured>> {
        let subject = Subject::RthubJson;
        let dialect = subject.dialect();
        let mut parts = Vec::with_capacity(nodes.len());
        let mut readers = Vec::new();
        for node in nodes {
            let sockets = connect_many(
                &self.http,
                node.server,
                subject,
                node.members,
                Some("bench"),
            )
            .await?;
            let (recorder, health) = (Recorder::new(), Arc::new(Health::default()));
            for socket in sockets {
                let reader = member(socket, dialect, recorder.clone(), health.clone());
                readers.push(tokio::spawn(reader));
            }
            parts.push((recorder, health));
        }
        let publisher_node = nodes[0].server;
        let publisher = dialect
            .connect(&self.http, &publisher_node.addr, false)
            .await?;
        let (mut sink, mut source) = publisher.split();
        tokio::spawn(async move { while let Some(Ok(_)) = source.next().await {} });
        let group = subject.group("bench");
        let schedule = Schedule::new(rate, window, 0.0);
        for ((recorder, _), node) in parts.iter().zip(nodes) {
            recorder.expect(&schedule, node.members);
        }
        // Every process's CPU from the first recorded message on, as `Watch` does the
        // publisher's node's.
        let mut watches = None;
        let mut batches = schedule.batches();
        while let Some(batch) = batches.next().await {
            if batch.starts_recording {
                let others: Vec<CpuWindow> = nodes[1..]
                    .iter()
                    .map(|n| CpuWindow::start(n.server.pid))
                    .collect();
                watches = Some((
                    Watch::start(publisher_node.pid),
                    others,
                    redis.pid.map(CpuWindow::start),
                ));
            }
            let frames = batch.payloads.iter().map(|p| dialect.publish(&group, p));
            if !send_batch(&mut sink, frames).await {
                break;
            }
        }
        let (watch, others, redis_window) =
            watches.ok_or_else(|| anyhow!("the publisher stopped before recording"))?;
        let recorders: Vec<&Recorder> = parts.iter().map(|p| p.0.as_ref()).collect();
        let offered: Vec<f64> = nodes.iter().map(|n| rate * n.members as f64).collect();
        let mut measured = watch.finish_each(&recorders, &offered).await;
        let others: Vec<_> = others.iter().map(CpuWindow::finish).collect();
        let redis_used = redis_window.as_ref().and_then(CpuWindow::finish);
        let delivered = measured.last().map_or(0, |m| m.delivered).max(1) as f64;
        let problems: Vec<Vec<String>> = parts
            .iter()
            .zip(nodes)
            .enumerate()
            .map(|(index, ((_, health), node))| {
                let mut problems = health.problems();
                problems.extend(logged(&node.log, index, nodes.len()));
                problems
            })
            .collect();
        let every_problem = problems.concat();
        for (index, figures) in measured.iter_mut().enumerate() {
            for other in &others {
                match other {
                    Some((used, share)) => {
                        figures.server_user_us_per_delivery += used.user * 1e6 / delivered;
                        figures.server_system_us_per_delivery += used.system * 1e6 / delivered;
                        figures.server_cpu_share += share;
                    }
                    None => {
                        figures.valid = false;
                        figures
                            .invalid_because
                            .push("node B exited during the run".into());
                    }
                }
            }
            if let Some((used, share)) = redis_used {
                figures.redis_user_us_per_delivery = Some(used.user * 1e6 / delivered);
                figures.redis_system_us_per_delivery = Some(used.system * 1e6 / delivered);
                figures.redis_cpu_share = Some(share);
            }
            let problems = problems.get(index).unwrap_or(&every_problem);
            if !problems.is_empty() {
                figures.valid = false;
                figures.invalid_because.extend(problems.iter().cloned());
            }
        }
        for task in readers {
            task.abort();
        }
        let _ = sink.close().await;
        Ok(measured)
    }
}

/// What a node wrote to its log (rthub runs with `RUST_LOG=warn`, so every line is a warning
/// or an error), as a problem of the run: the first lines, and how many there were.
fn logged(log: &std::path::Path, index: usize, of: usize) -> Vec<String> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.is_empty() {
        return Vec::new();
    }
    let node = match (of, index) {
        (1, _) => "the server",
        (_, 0) => "node A",
        _ => "node B",
    };
    let first: Vec<&str> = lines.iter().take(3).copied().collect();
    vec![format!(
        "{node} logged {} lines (see {}): {}",
        lines.len(),
        log.display(),
        first.join(" | ")
    )]
}
