//! Counters and a latency histogram for `GET /metrics`, in the Prometheus text format. Lock-free: atomics
//! only, except the rejection counts by code (a short mutex per rejected command).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use anthill_runtime::engine::{Stats, BATCH_SIZE_BUCKETS, COMMIT_US_BUCKETS};

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
}

/// One domain engine's figures, read when `/metrics` is asked for.
pub struct EngineFigures {
    pub domain: &'static str,
    pub stats: Stats,
    pub queue_depth: u64,
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

    /// The server's counters, then each engine's: batches, their sizes and commit latencies, queue depth.
    pub fn render(&self, engines: &[EngineFigures]) -> String {
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
        render_engines(&mut out, engines);
        out
    }
}

fn render_engines(out: &mut String, engines: &[EngineFigures]) {
    let _ = writeln!(out, "# HELP anthill_batches_total Batches committed, one durable transaction each.");
    let _ = writeln!(out, "# TYPE anthill_batches_total counter");
    for e in engines {
        let _ = writeln!(out, "anthill_batches_total{{domain=\"{}\"}} {}", e.domain, e.stats.batches);
    }
    let _ = writeln!(
        out,
        "# HELP anthill_writer_seconds_total Time the writers spent deciding commands, writing transactions and \
         committing them (the data and meta syncs)."
    );
    let _ = writeln!(out, "# TYPE anthill_writer_seconds_total counter");
    for e in engines {
        let phases = [("decide", e.stats.decide_us), ("write", e.stats.write_us), ("commit", e.stats.commit_us)];
        for (phase, us) in phases {
            let seconds = us as f64 / 1e6;
            let _ =
                writeln!(out, "anthill_writer_seconds_total{{domain=\"{}\",phase=\"{phase}\"}} {seconds:.6}", e.domain);
        }
    }
    let _ = writeln!(
        out,
        "# HELP anthill_checkpoint_steps_total Checkpoint steps written (records and view rows written behind the log)."
    );
    let _ = writeln!(out, "# TYPE anthill_checkpoint_steps_total counter");
    for e in engines {
        let _ = writeln!(out, "anthill_checkpoint_steps_total{{domain=\"{}\"}} {}", e.domain, e.stats.checkpoints);
    }
    let _ = writeln!(
        out,
        "# HELP anthill_failed_checkpoints_total Checkpoints that failed (tried again; the log holds everything)."
    );
    let _ = writeln!(out, "# TYPE anthill_failed_checkpoints_total counter");
    for e in engines {
        let _ =
            writeln!(out, "anthill_failed_checkpoints_total{{domain=\"{}\"}} {}", e.domain, e.stats.failed_checkpoints);
    }
    let _ = writeln!(out, "# HELP anthill_failed_batches_total Batches whose commit failed.");
    let _ = writeln!(out, "# TYPE anthill_failed_batches_total counter");
    for e in engines {
        let _ = writeln!(out, "anthill_failed_batches_total{{domain=\"{}\"}} {}", e.domain, e.stats.failed_batches);
    }
    let _ = writeln!(out, "# HELP anthill_batch_commands Commands per committed batch.");
    let _ = writeln!(out, "# TYPE anthill_batch_commands histogram");
    for e in engines {
        let bounds = BATCH_SIZE_BUCKETS.map(|b| b.to_string());
        histogram(out, "anthill_batch_commands", e.domain, &bounds, &e.stats.batch_size_histogram);
        let _ = writeln!(out, "anthill_batch_commands_sum{{domain=\"{}\"}} {}", e.domain, e.stats.commands);
        let _ = writeln!(out, "anthill_batch_commands_count{{domain=\"{}\"}} {}", e.domain, e.stats.batches);
    }
    let _ = writeln!(out, "# HELP anthill_commit_seconds Time to commit a batch durably (fsync included).");
    let _ = writeln!(out, "# TYPE anthill_commit_seconds histogram");
    for e in engines {
        let bounds = COMMIT_US_BUCKETS.map(|us| (us as f64 / 1e6).to_string());
        histogram(out, "anthill_commit_seconds", e.domain, &bounds, &e.stats.commit_us_histogram);
        let sum = e.stats.commit_us as f64 / 1e6;
        let _ = writeln!(out, "anthill_commit_seconds_sum{{domain=\"{}\"}} {sum}", e.domain);
        let _ = writeln!(out, "anthill_commit_seconds_count{{domain=\"{}\"}} {}", e.domain, e.stats.batches);
    }
    let _ = writeln!(out, "# HELP anthill_queue_depth Commands queued for the writers, not yet in a batch.");
    let _ = writeln!(out, "# TYPE anthill_queue_depth gauge");
    for e in engines {
        let _ = writeln!(out, "anthill_queue_depth{{domain=\"{}\"}} {}", e.domain, e.queue_depth);
    }
}

/// The cumulative `_bucket` lines of one histogram; `counts` has one more entry than `bounds` (+Inf).
fn histogram(out: &mut String, name: &str, domain: &str, bounds: &[String], counts: &[u64]) {
    assert_eq!(counts.len(), bounds.len() + 1);
    let mut cumulative = 0;
    for (bound, count) in bounds.iter().zip(counts) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{domain=\"{domain}\",le=\"{bound}\"}} {cumulative}");
    }
    cumulative += counts[bounds.len()];
    let _ = writeln!(out, "{name}_bucket{{domain=\"{domain}\",le=\"+Inf\"}} {cumulative}");
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
        let text = m.render(&[]);
        assert!(text.contains("anthill_command_seconds_bucket{le=\"0.0001\"} 1\n"), "{text}");
        assert!(text.contains("anthill_command_seconds_bucket{le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("anthill_command_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("anthill_rejections_total{code=\"not-open\"} 1\n"), "{text}");
        assert_eq!(m.commands_answered(), 2);
    }
}
