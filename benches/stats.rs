//! Latency samples and their summary: median, 99th percentile, rate.

use std::time::{Duration, Instant};

/// Durations of individual operations, in nanoseconds, and the wall time
/// they took together.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    nanos: Vec<u64>,
    /// Wall-clock time of the whole run (operations may overlap).
    pub wall: Duration,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Samples {
        Samples {
            nanos: Vec::with_capacity(n),
            wall: Duration::ZERO,
        }
    }

    /// Adds one operation's duration.
    pub fn push(&mut self, d: Duration) {
        self.nanos.push(d.as_nanos() as u64);
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
    }

    /// Number of operations.
    pub fn count(&self) -> usize {
        self.nanos.len()
    }

    /// The `p`-th quantile (0 < p ≤ 1) by the nearest-rank method.
    pub fn quantile(&self, p: f64) -> Duration {
        let mut sorted = self.nanos.clone();
        sorted.sort_unstable();
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        Duration::from_nanos(sorted[rank - 1])
    }

    /// Median.
    pub fn p50(&self) -> Duration {
        self.quantile(0.5)
    }

    /// 99th percentile.
    pub fn p99(&self) -> Duration {
        self.quantile(0.99)
    }

    /// Operations per second over the wall-clock time of the run.
    pub fn rate(&self) -> f64 {
        self.count() as f64 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs `op` `n` times one after another and records each duration.
pub async fn sequential<F, Fut>(n: usize, mut op: F) -> Samples
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Samples::with_capacity(n);
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        op().await;
        samples.push(t.elapsed());
    }
    samples.wall = start.elapsed();
    samples
}

/// Runs `n` operations spread over `workers` tasks, each doing its share one
/// after another, and records every duration.
pub async fn concurrent<F, Fut>(workers: usize, n: usize, op: F) -> Samples
where
    F: Fn() -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let share = n / workers + usize::from(w < n % workers);
        let op = op.clone();
        tasks.push(tokio::spawn(async move { sequential(share, op).await }));
    }
    let mut all = Samples::with_capacity(n);
    for task in tasks {
        all.extend(task.await.expect("a benchmark task panicked"));
    }
    all.wall = start.elapsed();
    all
}

/// `d` in microseconds with one decimal.
pub fn micros(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

/// `d` in milliseconds with two decimals.
pub fn millis(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}
