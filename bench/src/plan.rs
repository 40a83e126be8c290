//! The steps of each scenario: the full run's and the smoke run's.

use crate::load::Window;
use std::time::Duration;

/// The steps of each scenario, by mode.
pub struct Plan {
    pub window: Window,
    pub idle: Vec<usize>,
    pub echo: (usize, f64),
    pub fanout: Vec<(usize, Vec<f64>)>,
    pub rest: Vec<(usize, Vec<f64>)>,
    pub changes: Vec<(usize, Vec<f64>)>,
    /// S8: members on SSE and long polling, the same steps for WebSockets beside them.
    pub http_fanout: Vec<(usize, Vec<f64>)>,
    pub write_path_secs: u64,
    /// S9: SSE subscribers and the create rates they get events of.
    pub sse_creates: (usize, Vec<f64>),
    /// S9: idle SSE subscribers for the memory figure.
    pub sse_idle: Vec<usize>,
    /// S10: members per protocol of the mixed group (the single-protocol groups beside it
    /// have its total size), and the publish rates.
    pub mixed: (usize, Vec<f64>),
    /// S10's window: longer than the others', so that the figures rest on more messages per
    /// member at its low rates.
    pub mixed_window: Window,
    /// S11: group sizes (split evenly over two nodes) and publish rates.
    pub cluster: Vec<(usize, Vec<f64>)>,
    /// S11's window.
    pub cluster_window: Window,
}

impl Plan {
    pub fn new(smoke: bool) -> Self {
        if smoke {
            Plan {
                window: Window {
                    warmup: Duration::from_millis(300),
                    recorded: Duration::from_secs(1),
                },
                idle: vec![50],
                echo: (10, 10.0),
                fanout: vec![(10, vec![50.0])],
                rest: vec![(5, vec![50.0])],
                changes: vec![(5, vec![20.0])],
                http_fanout: vec![(5, vec![20.0])],
                write_path_secs: 1,
                sse_creates: (5, vec![20.0]),
                sse_idle: vec![20],
                mixed: (5, vec![20.0]),
                mixed_window: Window {
                    warmup: Duration::from_millis(300),
                    recorded: Duration::from_secs(1),
                },
                cluster: vec![(10, vec![20.0])],
                cluster_window: Window {
                    warmup: Duration::from_millis(300),
                    recorded: Duration::from_secs(1),
                },
            }
        } else {
            Plan {
                window: Window {
                    warmup: Duration::from_secs(1),
                    recorded: Duration::from_secs(5),
                },
                idle: vec![1_000, 10_000],
                echo: (1_000, 10.0),
                // One loader core receives at most ~90 k deliveries/s within its 70 % gate
                // here (each delivery is a loopback receive it pays for), so the steps above
                // that are shown but marked invalid.
                fanout: vec![
                    (100, vec![100.0, 500.0, 1_000.0, 2_000.0, 3_000.0]),
                    (1_000, vec![10.0, 50.0, 100.0, 200.0]),
                ],
                rest: vec![(10, vec![1_000.0, 5_000.0]), (1_000, vec![100.0])],
                changes: vec![(100, vec![100.0, 1_000.0])],
                http_fanout: vec![(100, vec![100.0, 500.0, 1_000.0])],
                write_path_secs: 5,
                sse_creates: (100, vec![100.0, 300.0, 1_000.0]),
                sse_idle: vec![1_000],
                // 900 members: 18 k and 45 k deliveries/s, within one loader core's reach.
                mixed: (300, vec![20.0, 50.0]),
                mixed_window: Window {
                    warmup: Duration::from_secs(1),
                    recorded: Duration::from_secs(20),
                },
                // Every delivery lands on the one loader core (members of both nodes): 50 k
                // deliveries/s took it 20–30 %, so 100 k fits its 70 % gate; 1,000 members ×
                // 500 msg/s (500 k/s) would measure the loader, not the cluster.
                cluster: vec![
                    (100, vec![500.0]),
                    (200, vec![100.0, 250.0, 500.0]),
                    (1_000, vec![20.0, 50.0, 100.0]),
                ],
                cluster_window: Window {
                    warmup: Duration::from_secs(1),
                    recorded: Duration::from_secs(10),
                },
            }
        }
    }
}
