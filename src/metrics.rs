//! Counters and a latency histogram for `GET /metrics`, in the Prometheus text format. Lock-free: atomics
//! only, except the rejection counts by code (a short mutex per rejected command).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::http::CommandReply;

/// Upper bounds of the latency buckets, in microseconds (the last bucket is +Inf).
const LATENCY_BUCKETS_US: [u64; 14] =
    [100, 250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 5_000_000];

/// The server's counters.
pub struct Metrics {
    started: Instant,
    pub commands_accepted: AtomicU64,
    pub commands_rejected: AtomicU64,
    pub commands_failed: AtomicU64,
    /// Commands refused at once because the engine was over its latency budget.
    pub shed: AtomicU64,
    rejections: Mutex<BTreeMap<String, u64>>,
    latency_buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    latency_sum_us: AtomicU64,
    /// Engine gauges, refreshed by whoever owns the engine (batch sizes, queue depth).
    pub engine: Mutex<Vec<(String, String, f64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            started: Instant::now(),
            commands_accepted: AtomicU64::new(0),
            commands_rejected: AtomicU64::new(0),
            commands_failed: AtomicU64::new(0),
            shed: AtomicU64::new(0),
            rejections: Mutex::new(BTreeMap::new()),
            latency_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            latency_sum_us: AtomicU64::new(0),
            engine: Mutex::new(Vec::new()),
        }
    }
}

impl Metrics {
    /// Records one command request: its outcome and how long it took until the answer was durable.
    pub fn record_command(&self, elapsed: Duration, reply: &Result<CommandReply, crate::http::BackendError>) {
        match reply {
            Ok(CommandReply::Accepted { .. }) => {
                self.commands_accepted.fetch_add(1, Ordering::Relaxed);
            }
            Ok(CommandReply::Rejected { code, .. }) => {
                self.commands_rejected.fetch_add(1, Ordering::Relaxed);
                *self.rejections.lock().entry(code.clone()).or_insert(0) += 1;
            }
            Err(_) => {
                self.commands_failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BUCKETS_US.iter().position(|&bound| us <= bound).unwrap_or(LATENCY_BUCKETS_US.len());
        self.latency_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.latency_sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Commands answered (accepted or rejected) since the start.
    pub fn commands_answered(&self) -> u64 {
        self.commands_accepted.load(Ordering::Relaxed) + self.commands_rejected.load(Ordering::Relaxed)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let _ = writeln!(out, "# HELP anthill_uptime_seconds Seconds since the server started.");
        let _ = writeln!(out, "# TYPE anthill_uptime_seconds gauge");
        let _ = writeln!(out, "anthill_uptime_seconds {:.3}", self.started.elapsed().as_secs_f64());
        let _ = writeln!(out, "# HELP anthill_commands_total Commands answered over HTTP, by outcome.");
        let _ = writeln!(out, "# TYPE anthill_commands_total counter");
        let _ = writeln!(out, "anthill_commands_total{{outcome=\"accepted\"}} {}", load(&self.commands_accepted));
        let _ = writeln!(out, "anthill_commands_total{{outcome=\"rejected\"}} {}", load(&self.commands_rejected));
        let _ = writeln!(out, "anthill_commands_total{{outcome=\"failed\"}} {}", load(&self.commands_failed));
        let _ = writeln!(out, "# HELP anthill_rejections_total Rejected commands by rejection code.");
        let _ = writeln!(out, "# TYPE anthill_rejections_total counter");
        for (code, count) in self.rejections.lock().iter() {
            let _ = writeln!(out, "anthill_rejections_total{{code=\"{code}\"}} {count}");
        }
        let _ = writeln!(out, "# HELP anthill_shed_total Commands refused at once because the engine was over budget.");
        let _ = writeln!(out, "# TYPE anthill_shed_total counter");
        let _ = writeln!(out, "anthill_shed_total {}", load(&self.shed));
        let _ = writeln!(out, "# HELP anthill_command_seconds Time from request to durable answer.");
        let _ = writeln!(out, "# TYPE anthill_command_seconds histogram");
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS_US.iter().enumerate() {
            cumulative += load(&self.latency_buckets[i]);
            let _ = writeln!(out, "anthill_command_seconds_bucket{{le=\"{}\"}} {cumulative}", *bound as f64 / 1e6);
        }
        cumulative += load(&self.latency_buckets[LATENCY_BUCKETS_US.len()]);
        let _ = writeln!(out, "anthill_command_seconds_bucket{{le=\"+Inf\"}} {cumulative}");
        let _ = writeln!(out, "anthill_command_seconds_sum {}", load(&self.latency_sum_us) as f64 / 1e6);
        let _ = writeln!(out, "anthill_command_seconds_count {cumulative}");
        for (name, help, value) in self.engine.lock().iter() {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative_and_rejections_are_counted_by_code() {
        let m = Metrics::default();
        m.record_command(Duration::from_micros(80), &Ok(CommandReply::Accepted { version: 1, events: vec![] }));
        m.record_command(
            Duration::from_millis(3),
            &Ok(CommandReply::Rejected { code: "not-open".into(), message: String::new() }),
        );
        let text = m.render();
        assert!(text.contains("anthill_command_seconds_bucket{le=\"0.0001\"} 1\n"), "{text}");
        assert!(text.contains("anthill_command_seconds_bucket{le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("anthill_command_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("anthill_rejections_total{code=\"not-open\"} 1\n"), "{text}");
        assert_eq!(m.commands_answered(), 2);
    }
}
