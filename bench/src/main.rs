//! `rthub-bench`: rthub's benchmark suite in one command.
//!
//! `rthub-bench run` starts every server under test as a fresh process pinned to CPU 0 —
//! the protocol-free ceiling, Node `ws`, Socket.IO, aiosignalr, PocketBase and rthub — interleaved step by
//! step, drives each from this process (pinned to CPU 1) with open-loop load, and writes
//! `bench/results/<date>.{json,md,svg}`. `rthub-bench ceiling` is the ceiling server itself.
//! `scripts/bench` builds, installs the peers and runs it; see docs/BENCHMARKS.md.

mod ceiling;
mod client;
mod http_transports;
mod load;
mod member;
mod plan;
mod procfs;
mod report;
mod scenarios;
mod servers;
mod sse;
mod webpubsub;

use clap::{Parser, Subcommand};
use plan::Plan;
use report::{Figures, Machine, Report, Row};
use scenarios::{GroupRun, Runner, SseServer};
use servers::{Paths, Subject};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(version, about = "rthub's benchmark suite")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the protocol-free fan-out ceiling server.
    Ceiling {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
    },
    /// Runs the suite and writes the report.
    Run(RunArgs),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Tiny sizes and short windows: checks that every scenario runs and its validity gates
    /// hold; its figures say nothing about speed.
    #[arg(long)]
    smoke: bool,
    /// Rounds of every step (the report gives the median of valid rounds).
    #[arg(long, default_value_t = 1)]
    rounds: usize,
    /// Scenarios to run (comma-separated): s1, s3, s4, s6, s7, s8, s9, s10, s11.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "s1,s3,s4,s6,s7,s8,s9,s10,s11"
    )]
    only: Vec<String>,
    /// The rthub binary under test.
    #[arg(long, default_value = "target/release/rthub")]
    rthub: PathBuf,
    /// PostgreSQL admin URL for S7 and S9 (a fresh database is created per run).
    #[arg(
        long,
        env = "RTHUB_BENCH_POSTGRES",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    postgres: String,
    /// The Redis S11's two nodes join through (a fresh key prefix per run, deleted after).
    #[arg(
        long,
        env = "RTHUB_BENCH_REDIS",
        default_value = "redis://127.0.0.1:6379"
    )]
    redis: String,
    /// Where the report goes.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
}

/// Interleaved order: ceiling → peer → rthub → peer → rthub → peer.
const ORDER: [Subject; 6] = [
    Subject::Ceiling,
    Subject::NodeWs,
    Subject::RthubJson,
    Subject::SocketIo,
    Subject::RthubMsgpack,
    Subject::Aiosignalr,
];

/// A step too slow to matter: higher rates for that server are skipped.
fn collapsed(figures: &Figures) -> bool {
    match figures {
        Figures::Load(m) => m.p99_ms > 2_000.0 || (m.expected > 0 && m.delivered * 2 < m.expected),
        _ => false,
    }
}

fn installed(subject: Subject, paths: &Paths) -> Result<(), String> {
    let peers = paths.root.join("bench/peers");
    let missing = match subject {
        Subject::NodeWs | Subject::SocketIo => !peers.join("node_modules").exists(),
        Subject::Aiosignalr => !peers.join(".venv/bin/python").exists(),
        Subject::PocketBase => !peers.join(".venv/bin/pocketbase").exists(),
        Subject::RthubJson
        | Subject::RthubMsgpack
        | Subject::RthubSse
        | Subject::RthubLongPolling
        | Subject::RthubWebPubSub
        | Subject::RthubWebPubSubReliable => !paths.rthub.exists(),
        Subject::Ceiling => false,
    };
    if missing {
        Err(format!(
            "{} is not installed (run scripts/bench, or bench/peers/install)",
            subject.label()
        ))
    } else {
        Ok(())
    }
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let root = std::env::current_dir()?;
    let date = today();
    let paths = Paths {
        root: root.clone(),
        rthub: args.rthub.clone(),
        logs: root.join("bench/results/tmp"),
    };
    let fd_limit = procfs::raise_fd_limit();
    let pinned = procfs::cpus() >= 2 && procfs::pin_self_to(1);
    let runner = Runner {
        paths: paths.clone(),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(10))
            .build()?,
    };
    let plan = Plan::new(args.smoke);
    let wants = |s: &str| args.only.iter().any(|o| o.eq_ignore_ascii_case(s));
    let mut notes = vec![format!(
        "Open files limit {fd_limit}; payload 64 B; each run {} s warm-up + {} s recorded; latency from the intended send time.",
        plan.window.warmup.as_secs_f64(),
        plan.window.recorded.as_secs_f64()
    )];
    if wants("s10") {
        notes.push(format!(
            "S10's runs: {} s warm-up + {} s recorded.",
            plan.mixed_window.warmup.as_secs_f64(),
            plan.mixed_window.recorded.as_secs_f64()
        ));
    }
    if wants("s11") {
        notes.push(format!(
            "S11's runs: {} s warm-up + {} s recorded; both nodes (or the single server) on CPU 0, the loader on CPU 1, the machine's Redis unpinned: Redis and both nodes share the two cores with the loader.",
            plan.cluster_window.warmup.as_secs_f64(),
            plan.cluster_window.recorded.as_secs_f64()
        ));
    }
    let subjects: Vec<Subject> = ORDER
        .into_iter()
        .filter(|s| match installed(*s, &paths) {
            Ok(()) => true,
            Err(why) => {
                eprintln!("skipping: {why}");
                notes.push(why);
                false
            }
        })
        .collect();
    let mut rows: Vec<Row> = Vec::new();
    let mut record = |row: Row| {
        eprintln!(
            "{} {:<28} {:<14} {}",
            row.scenario,
            row.setting,
            row.subject,
            summary_line(&row.figures)
        );
        rows.push(row);
    };

    for round in 1..=args.rounds {
        if wants("s1") {
            for &count in &plan.idle {
                for &subject in &subjects {
                    let memory = runner.idle_memory(subject, count).await;
                    record(Row {
                        scenario: "S1",
                        setting: format!("{count}"),
                        x: count as f64,
                        subject: subject.label(),
                        round,
                        figures: Figures::Memory(memory),
                    });
                }
            }
        }
        if wants("s3") {
            let (clients, rate) = plan.echo;
            for &subject in &subjects {
                let measured = runner.echo(subject, clients, rate, plan.window).await;
                record(Row {
                    scenario: "S3",
                    setting: format!("{clients} clients × {rate} msg/s"),
                    x: clients as f64 * rate,
                    subject: subject.label(),
                    round,
                    figures: Figures::Load(measured),
                });
            }
        }
        if wants("s4") {
            for (members, rates) in &plan.fanout {
                let mut gone: Vec<Subject> = Vec::new();
                for &rate in rates {
                    for &subject in &subjects {
                        let setting = format!("{members} members × {rate} msg/s");
                        let figures = if gone.contains(&subject) {
                            Figures::Skipped("collapsed at a lower rate".into())
                        } else {
                            Figures::Load(runner.fanout(subject, *members, rate, plan.window).await)
                        };
                        if collapsed(&figures) {
                            gone.push(subject);
                        }
                        record(Row {
                            scenario: "S4",
                            setting,
                            x: rate * *members as f64,
                            subject: subject.label(),
                            round,
                            figures,
                        });
                    }
                }
            }
        }
        if wants("s6") {
            let rest_subjects = [Subject::SocketIo, Subject::RthubJson, Subject::Aiosignalr];
            for (members, rates) in &plan.rest {
                for &rate in rates {
                    for subject in rest_subjects.into_iter().filter(|s| subjects.contains(s)) {
                        let measured = runner.rest_send(subject, *members, rate, plan.window).await;
                        record(Row {
                            scenario: "S6",
                            setting: format!("{members} members × {rate} POST/s"),
                            x: rate * *members as f64,
                            subject: if subject.is_rthub() {
                                "rthub"
                            } else {
                                subject.label()
                            },
                            round,
                            figures: Figures::Load(measured),
                        });
                    }
                }
            }
        }
        if wants("s8") && subjects.contains(&Subject::RthubJson) {
            for (members, rates) in &plan.http_fanout {
                for &rate in rates {
                    for subject in [
                        Subject::RthubJson,
                        Subject::RthubSse,
                        Subject::RthubLongPolling,
                    ] {
                        let measured = runner
                            .fanout_http(subject, *members, rate, plan.window)
                            .await;
                        record(Row {
                            scenario: "S8",
                            setting: format!("{members} members × {rate} msg/s"),
                            x: rate * *members as f64,
                            subject: subject.label(),
                            round,
                            figures: Figures::Load(measured),
                        });
                    }
                }
            }
        }
        if wants("s9") && subjects.contains(&Subject::RthubJson) {
            let servers: Vec<SseServer> = match installed(Subject::PocketBase, &paths) {
                Ok(()) => SseServer::ALL.to_vec(),
                Err(why) => {
                    if round == 1 {
                        eprintln!("skipping: {why}");
                        notes.push(why);
                    }
                    vec![SseServer::RthubSqlite, SseServer::RthubPostgres]
                }
            };
            let (subscribers, rates) = &plan.sse_creates;
            let mut gone: Vec<SseServer> = Vec::new();
            for &rate in rates {
                for &server in &servers {
                    let figures = if gone.contains(&server) {
                        Figures::Skipped("collapsed at a lower rate".into())
                    } else {
                        Figures::Load(
                            runner
                                .sse_creates(
                                    server,
                                    &args.postgres,
                                    *subscribers,
                                    rate,
                                    plan.window,
                                )
                                .await,
                        )
                    };
                    if collapsed(&figures) {
                        gone.push(server);
                    }
                    record(Row {
                        scenario: "S9",
                        setting: format!("{subscribers} subscribers × {rate} creates/s"),
                        x: rate * *subscribers as f64,
                        subject: server.label(),
                        round,
                        figures,
                    });
                }
            }
            for &count in &plan.sse_idle {
                for &server in &servers {
                    let memory = runner.sse_idle_memory(server, &args.postgres, count).await;
                    record(Row {
                        scenario: "S9",
                        setting: format!("{count} idle subscribers"),
                        x: count as f64,
                        subject: server.label(),
                        round,
                        figures: Figures::Memory(memory),
                    });
                }
            }
        }
        if wants("s10") && subjects.contains(&Subject::RthubJson) {
            let (per_protocol, rates) = &plan.mixed;
            let total = per_protocol * scenarios::MIXED.len();
            let runs = scenarios::GroupSpec::all(*per_protocol);
            let mut gone: Vec<&'static str> = Vec::new();
            for &rate in rates {
                for scenarios::GroupSpec { labels, parts } in &runs {
                    let skipped = |why: &str| {
                        let why = why.to_owned();
                        labels.iter().map(move |_| Figures::Skipped(why.clone()))
                    };
                    let figures: Vec<Figures> = if gone.contains(&labels[0]) {
                        skipped("collapsed at a lower rate").collect()
                    } else {
                        match runner.group_fanout(parts, rate, plan.mixed_window).await {
                            GroupRun::Ran(measured) => {
                                measured.into_iter().map(Figures::Load).collect()
                            }
                            GroupRun::Skipped(why) => skipped(&why).collect(),
                        }
                    };
                    if figures.iter().any(collapsed) {
                        gone.push(labels[0]);
                    }
                    for (&subject, figures) in labels.iter().zip(figures) {
                        record(Row {
                            scenario: "S10",
                            setting: format!("{total} members × {rate} msg/s"),
                            x: rate * total as f64,
                            subject,
                            round,
                            figures,
                        });
                    }
                }
            }
        }
        if wants("s11") && subjects.contains(&Subject::RthubJson) {
            let steps = (plan.cluster.as_slice(), plan.cluster_window);
            let notes = (round == 1).then_some(&mut notes);
            scenarios::cluster_rows(&runner, &args.redis, steps, round, notes, &mut record).await;
        }
        if wants("s7") && subjects.contains(&Subject::RthubJson) {
            for (members, rates) in &plan.changes {
                for &rate in rates {
                    let measured = runner
                        .changes(&args.postgres, *members, rate, plan.window)
                        .await;
                    record(Row {
                        scenario: "S7",
                        setting: format!("{members} listeners × {rate} writes/s"),
                        x: rate * *members as f64,
                        subject: "rthub",
                        round,
                        figures: Figures::Load(measured),
                    });
                }
            }
            let figures = match runner
                .write_path(&args.postgres, plan.write_path_secs)
                .await
            {
                Ok(write_path) => Figures::WritePath(write_path),
                Err(error) => Figures::Skipped(format!("{error:#}")),
            };
            record(Row {
                scenario: "S7",
                setting: "write path".into(),
                x: 0.0,
                subject: "rthub",
                round,
                figures,
            });
        }
    }

    let report = Report {
        date: date.clone(),
        mode: if args.smoke { "smoke" } else { "full" },
        rounds: args.rounds,
        machine: Machine::read(pinned),
        notes,
        rows,
    };
    std::fs::create_dir_all(&args.out)?;
    let stem = if args.smoke {
        format!("{date}-smoke")
    } else {
        date
    };
    let json = args.out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)?;
    std::fs::write(args.out.join(format!("{stem}.md")), report.markdown())?;
    std::fs::write(args.out.join(format!("{stem}.svg")), report.svg())?;
    println!("{}", report.markdown());
    println!("wrote {} (.md, .svg)", json.display());
    // Smoke mode checks the harness, not speed: it fails only when a scenario could not run.
    let broken: Vec<&Row> = report
        .rows
        .iter()
        .filter(|r| match &r.figures {
            Figures::Load(m) => m.expected == 0,
            Figures::Memory(m) => !m.valid,
            // S11 needs the Redis every cluster test uses: its absence breaks the smoke.
            Figures::Skipped(why) => {
                r.setting == "write path" || (r.scenario == "S11" && why.starts_with("Redis"))
            }
            Figures::WritePath(_) => false,
        })
        .collect();
    if args.smoke && !broken.is_empty() {
        for row in &broken {
            eprintln!(
                "could not run: {} {} {}: {:?}",
                row.scenario, row.setting, row.subject, row.figures
            );
        }
        anyhow::bail!("{} smoke steps could not run", broken.len());
    }
    Ok(())
}

fn summary_line(figures: &Figures) -> String {
    match figures {
        Figures::Load(m) => format!(
            "{:>9.0}/s p50 {:>8.2} ms p99 {:>8.2} ms user {:.2} µs sys {:.2} µs loader {:.0}% {}",
            m.delivered_per_s,
            m.p50_ms,
            m.p99_ms,
            m.server_user_us_per_delivery,
            m.server_system_us_per_delivery,
            m.loader_cpu_share * 100.0,
            if m.valid {
                String::new()
            } else {
                format!("INVALID: {}", m.invalid_because.join("; "))
            }
        ),
        Figures::Memory(m) => format!(
            "{:.0} B/conn (kernel {:.0} B/conn) {}",
            m.bytes_per_connection,
            m.kernel_bytes_per_connection,
            m.invalid_because.join("; ")
        ),
        Figures::WritePath(w) => format!(
            "REST {:.0} writes/s vs plain INSERT {:.0} TPS = {:.2}",
            w.rest_writes_per_s, w.plain_insert_tps, w.ratio
        ),
        Figures::Skipped(why) => format!("skipped: {why}"),
    }
}

/// Today's date (UTC) as YYYY-MM-DD, from the system clock.
fn today() -> String {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
        / 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Ceiling { listen } => ceiling::run(&listen),
        Command::Run(args) => {
            // One thread: the loader's CPU share is then exactly this process's.
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(run(args))
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn today_is_a_date() {
        let date = super::today();
        assert_eq!(date.len(), 10);
        assert!(date.starts_with("20"));
    }
}
