//! Results: the JSON record, the markdown tables with ratios, and the latency-vs-load plot.

use crate::load::Measured;
use crate::scenarios::{Memory, WritePath};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

mod cluster;
mod mixed;
mod sse;

/// One run of one subject at one setting.
#[derive(Clone, Debug, Serialize)]
pub struct Row {
    pub scenario: &'static str,
    /// Human-readable setting, e.g. "1000 members × 100 msg/s".
    pub setting: String,
    /// Offered deliveries per second (load scenarios) or connections (memory).
    pub x: f64,
    pub subject: &'static str,
    pub round: usize,
    pub figures: Figures,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Figures {
    Load(Measured),
    Memory(Memory),
    WritePath(WritePath),
    Skipped(String),
}

impl Row {
    fn valid(&self) -> bool {
        match &self.figures {
            Figures::Load(m) => m.valid,
            Figures::Memory(m) => m.valid,
            Figures::WritePath(_) => true,
            Figures::Skipped(_) => false,
        }
    }

    fn why_not(&self) -> String {
        match &self.figures {
            Figures::Load(m) => m.invalid_because.join("; "),
            Figures::Memory(m) => m.invalid_because.join("; "),
            Figures::Skipped(why) => why.clone(),
            Figures::WritePath(_) => String::new(),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub cpu_model: String,
    pub kernel: String,
    pub pinned: bool,
}

impl Machine {
    pub fn read(pinned: bool) -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Self {
            cpus: crate::procfs::cpus(),
            cpu_model: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
                .unwrap_or_default(),
            kernel: std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
                .to_owned(),
            pinned,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub date: String,
    pub mode: &'static str,
    pub rounds: usize,
    pub machine: Machine,
    pub notes: Vec<String>,
    pub rows: Vec<Row>,
}

/// The median of a figure over the valid rounds of one (scenario, setting, subject).
fn median(mut values: Vec<f64>) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

type Key = (&'static str, String, &'static str);

struct Summary<'a> {
    order: Vec<Key>,
    groups: BTreeMap<Key, Vec<&'a Row>>,
}

impl<'a> Summary<'a> {
    fn new(rows: &'a [Row]) -> Self {
        let mut order = Vec::new();
        let mut groups: BTreeMap<Key, Vec<&Row>> = BTreeMap::new();
        for row in rows {
            let key = (row.scenario, row.setting.clone(), row.subject);
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(row);
        }
        Self { order, groups }
    }

    fn load(&self, key: &Key, figure: impl Fn(&Measured) -> f64) -> Option<f64> {
        median(
            self.groups
                .get(key)?
                .iter()
                .filter(|r| r.valid())
                .filter_map(|r| match &r.figures {
                    Figures::Load(m) => Some(figure(m)),
                    _ => None,
                })
                .collect(),
        )
    }

    fn memory(&self, key: &Key, figure: impl Fn(&Memory) -> f64) -> Option<f64> {
        median(
            self.groups
                .get(key)?
                .iter()
                .filter(|r| r.valid())
                .filter_map(|r| match &r.figures {
                    Figures::Memory(m) => Some(figure(m)),
                    _ => None,
                })
                .collect(),
        )
    }

    fn invalid_reason(&self, key: &Key) -> String {
        self.groups
            .get(key)
            .and_then(|rows| rows.iter().find(|r| !r.valid()))
            .map(|r| r.why_not())
            .unwrap_or_default()
    }
}

fn ratio(ours: Option<f64>, theirs: Option<f64>) -> String {
    match (ours, theirs) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
        _ => "–".into(),
    }
}

fn figure(value: Option<f64>, digits: usize) -> String {
    value.map_or_else(|| "–".into(), |v| format!("{v:.digits$}"))
}

const SCENARIO_TITLES: &[(&str, &str)] = &[
    (
        "S1",
        "S1 — idle memory per connection (each joined to one group)",
    ),
    (
        "S3",
        "S3 — echo round trip (own one-member group for SignalR)",
    ),
    ("S4", "S4 — group fan-out, one publisher, 64-byte payloads"),
    ("S6", "S6 — REST send to a group"),
    ("S7", "S7 — collection write → `change` on PostgreSQL"),
    ("S8", "S8 — rthub's transports: members on WebSockets, Server-Sent Events, long polling (JSON; the publisher on WebSockets)"),
    ("S9", "S9 — SSE: create → event, rthub's `/realtime` (SQLite, PostgreSQL) and PocketBase's `/api/realtime`"),
    ("S10", "S10 — fan-out to one group of mixed protocols (SignalR JSON, MessagePack, Web PubSub) beside groups of one protocol, same size"),
    ("S11", "S11 — fan-out across nodes: one group split over two rthub processes joined through Redis, beside the same group on one rthub"),
];

impl Report {
    pub fn markdown(&self) -> String {
        let summary = Summary::new(&self.rows);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# rthub benchmark results — {} ({} mode, {} round{})\n",
            self.date,
            self.mode,
            self.rounds,
            if self.rounds == 1 { "" } else { "s" }
        );
        let _ = writeln!(
            out,
            "Machine: {} CPUs ({}), kernel {}; server pinned to CPU 0 and loader to CPU 1: {}.\n",
            self.machine.cpus, self.machine.cpu_model, self.machine.kernel, self.machine.pinned
        );
        for note in &self.notes {
            let _ = writeln!(out, "- {note}");
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        for (scenario, title) in SCENARIO_TITLES {
            let keys: Vec<&Key> = summary
                .order
                .iter()
                .filter(|k| k.0 == *scenario && k.1 != "write path")
                .collect();
            if keys.is_empty() {
                continue;
            }
            let _ = writeln!(out, "## {title}\n");
            match *scenario {
                "S1" => self.memory_table(&summary, &keys, &mut out),
                "S9" => sse::tables(&summary, &keys, &mut out),
                "S10" => mixed::table(&summary, &keys, &mut out),
                "S11" => cluster::table(&summary, &keys, &mut out),
                _ => self.load_table(&summary, &keys, &mut out),
            }
            if *scenario == "S4" {
                knees(&summary, &keys, &mut out);
            }
        }
        for row in &self.rows {
            if let Figures::WritePath(w) = &row.figures {
                let _ = writeln!(
                    out,
                    "## S7 — write path\n\nREST writes (4 clients, closed loop): **{:.0}/s**; pgbench plain INSERT of the same document into the same table: **{:.0} TPS**; ratio **{:.2}** (synchronous_commit = {}).\n",
                    w.rest_writes_per_s, w.plain_insert_tps, w.ratio, w.synchronous_commit
                );
            }
        }
        out
    }

    fn memory_table(&self, summary: &Summary, keys: &[&Key], out: &mut String) {
        out.push_str("| connections | server | bytes/connection (user space) | kernel slab/connection | × ceiling | × node-ws | note |\n|---|---|---|---|---|---|---|\n");
        for key in keys {
            let per = |k: &Key| summary.memory(k, |m| m.bytes_per_connection);
            let ours = per(key);
            let ceiling = per(&(key.0, key.1.clone(), "ceiling"));
            let ws = per(&(key.0, key.1.clone(), "node-ws"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                key.1,
                key.2,
                figure(ours, 0),
                figure(summary.memory(key, |m| m.kernel_bytes_per_connection), 0),
                ratio(ours, ceiling),
                ratio(ours, ws),
                summary.invalid_reason(key)
            );
        }
        out.push('\n');
    }

    fn load_table(&self, summary: &Summary, keys: &[&Key], out: &mut String) {
        out.push_str("| setting | server | delivered/s | p50 ms | p99 ms | server user µs/delivery | server sys µs/delivery | loader CPU | p99 × ceiling | p99 × node-ws | user µs × ceiling | note |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
        for key in keys {
            let at = |subject: &'static str| (key.0, key.1.clone(), subject);
            let p99 = |k: &Key| summary.load(k, |m| m.p99_ms);
            let user = |k: &Key| summary.load(k, |m| m.server_user_us_per_delivery);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                key.1,
                key.2,
                figure(summary.load(key, |m| m.delivered_per_s), 0),
                figure(summary.load(key, |m| m.p50_ms), 2),
                figure(p99(key), 2),
                figure(user(key), 2),
                figure(summary.load(key, |m| m.server_system_us_per_delivery), 2),
                figure(summary.load(key, |m| m.loader_cpu_share * 100.0), 0) + " %",
                ratio(p99(key), p99(&at("ceiling"))),
                ratio(p99(key), p99(&at("node-ws"))),
                ratio(user(key), user(&at("ceiling"))),
                summary.invalid_reason(key)
            );
        }
        out.push('\n');
    }

    /// Latency against offered load for the fan-out scenario, one panel per group size.
    pub fn svg(&self) -> String {
        let mut panels: Panels = BTreeMap::new();
        let summary = Summary::new(&self.rows);
        for key in summary.order.iter().filter(|k| k.0 == "S4") {
            let members = key.1.split(" members").next().unwrap_or("").to_owned();
            if let (Some(p99), Some(x)) = (
                summary.load(key, |m| m.p99_ms),
                summary.groups[key].first().map(|r| r.x),
            ) {
                panels
                    .entry(members)
                    .or_default()
                    .entry(key.2)
                    .or_default()
                    .push((x, p99));
            }
        }
        plot(&panels)
    }
}

/// The knee: the highest offered rate a server carried validly with p99 ≤ 100 ms.
fn knees(summary: &Summary, keys: &[&Key], out: &mut String) {
    let mut best: BTreeMap<(String, &str), f64> = BTreeMap::new();
    for key in keys {
        let members = key.1.split(" members").next().unwrap_or("").to_owned();
        if let (Some(p99), Some(rate)) = (
            summary.load(key, |m| m.p99_ms),
            summary.load(key, |m| m.delivered_per_s),
        ) {
            if p99 <= 100.0 {
                let entry = best.entry((members, key.2)).or_insert(0.0);
                *entry = entry.max(rate);
            }
        }
    }
    if best.is_empty() {
        return;
    }
    out.push_str("Knee (highest delivered/s with every message delivered and p99 ≤ 100 ms, within the ladder):\n\n| members | server | knee deliveries/s | × ceiling | × node-ws |\n|---|---|---|---|---|\n");
    for ((members, subject), knee) in &best {
        let of = |s: &str| best.get(&(members.clone(), s)).copied();
        let _ = writeln!(
            out,
            "| {members} | {subject} | {knee:.0} | {} | {} |",
            ratio(Some(*knee), of("ceiling")),
            ratio(Some(*knee), of("node-ws"))
        );
    }
    out.push('\n');
}

const COLOURS: &[(&str, &str)] = &[
    ("ceiling", "#222222"),
    ("node-ws", "#1f77b4"),
    ("socket.io", "#2ca02c"),
    ("aiosignalr", "#9467bd"),
    ("rthub-json", "#d62728"),
    ("rthub-msgpack", "#ff7f0e"),
    ("rthub-sse", "#8c564b"),
    ("rthub-longpolling", "#e377c2"),
    ("pocketbase", "#17becf"),
    ("rthub-wps", "#bcbd22"),
    ("rthub-wps-reliable", "#7f7f7f"),
];

/// A small hand-written SVG: p99 latency (log scale) against offered deliveries/s.
/// Per group size, per server: (offered deliveries/s, p99 ms) points.
type Panels<'a> = BTreeMap<String, BTreeMap<&'a str, Vec<(f64, f64)>>>;

fn plot(panels: &Panels) -> String {
    let (width, height, margin) = (560.0, 340.0, 60.0);
    let total_width = width * panels.len().max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{total_width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
        height + 40.0
    );
    for (index, (members, series)) in panels.iter().enumerate() {
        let left = index as f64 * width;
        let x_max = series.values().flatten().map(|p| p.0).fold(1.0, f64::max) * 1.05;
        let (y_lo, y_hi) = (0.1f64, 10_000.0f64);
        let sx = |x: f64| left + margin + x / x_max * (width - margin - 20.0);
        let sy = |y: f64| {
            let t = (y.clamp(y_lo, y_hi).log10() - y_lo.log10()) / (y_hi.log10() - y_lo.log10());
            height - margin + 20.0 - t * (height - margin - 20.0)
        };
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"16\" font-size=\"14\">Fan-out to {members} members: p99 vs offered load</text>",
            left + margin
        );
        let (x0, y0) = (left + margin, height - margin + 20.0);
        let _ = writeln!(
            svg,
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{}\" y2=\"{y0}\" stroke=\"black\"/><line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"20\" stroke=\"black\"/>",
            left + width - 20.0
        );
        for decade in [0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0] {
            let y = sy(decade);
            let _ = writeln!(
                svg,
                "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{decade} ms</text>",
                left + width - 20.0,
                x0 - 4.0,
                y + 4.0
            );
        }
        for step in 0..=4 {
            let x = x_max * step as f64 / 4.0;
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{:.0}k</text>",
                sx(x),
                y0 + 16.0,
                x / 1000.0
            );
        }
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">offered deliveries/s</text>",
            left + width / 2.0,
            y0 + 34.0
        );
        for (row, (subject, colour)) in COLOURS.iter().enumerate() {
            let Some(points) = series.get(subject) else {
                continue;
            };
            let mut points = points.clone();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{:.1},{:.1}", sx(*x), sy(*y)))
                .collect();
            let _ = writeln!(
                svg,
                "<polyline fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" points=\"{}\"/>",
                path.join(" ")
            );
            for point in &path {
                let (x, y) = point.split_once(',').unwrap_or(("0", "0"));
                let _ = writeln!(
                    svg,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"3\" fill=\"{colour}\"/>"
                );
            }
            let _ = writeln!(
                svg,
                "<text x=\"{}\" y=\"{}\" fill=\"{colour}\">{subject}</text>",
                x0 + 10.0,
                34.0 + row as f64 * 14.0
            );
        }
    }
    svg.push_str("</svg>\n");
    svg
}
