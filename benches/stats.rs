//! Latency samples and their summary: median, 99th percentile, rate, and
//! the CPU time this process spent on them.

use std::time::{Duration, Instant};

/// Durations of individual operations, in nanoseconds, and the wall time
/// and process CPU time they took together.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    nanos: Vec<u64>,
    /// Wall-clock time of the whole run (operations may overlap).
    pub wall: Duration,
    /// CPU time every thread of this process used during the run (the
    /// upstream, a child process, is not counted).
    pub cpu: Duration,
}

impl Samples {
    /// Room for `n` samples.
    pub fn with_capacity(n: usize) -> Samples {
        Samples {
            nanos: Vec::with_capacity(n),
            wall: Duration::ZERO,
            cpu: Duration::ZERO,
        }
    }

    /// Adds one operation's duration.
    pub fn push(&mut self, d: Duration) {
        self.nanos.push(d.as_nanos() as u64);
    }

    /// Adds every sample of `other`, and its wall and CPU time.
    pub fn extend(&mut self, other: Samples) {
        self.nanos.extend(other.nanos);
        self.wall += other.wall;
        self.cpu += other.cpu;
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

    /// CPU time of this process per operation.
    pub fn cpu_per_op(&self) -> Duration {
        self.cpu / u32::try_from(self.count().max(1)).unwrap_or(u32::MAX)
    }
}

/// CPU time used so far by every live thread of this process, from
/// `/proc/self/task/*/schedstat` (nanoseconds on a CPU). Threads that ended
/// are not counted; the benchmark's threads live for the whole run.
pub fn process_cpu() -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    Duration::from_nanos(nanos)
}

/// Runs `op` `n` times one after another and records each duration.
pub async fn sequential<F, Fut>(n: usize, op: F) -> Samples
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let cpu = process_cpu();
    let mut samples = timed(n, op).await;
    samples.cpu = process_cpu().saturating_sub(cpu);
    samples
}

/// Runs `op` `n` times one after another and records each duration and
/// the wall time.
async fn timed<F, Fut>(n: usize, mut op: F) -> Samples
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
    let (start, cpu) = (Instant::now(), process_cpu());
    let mut tasks = Vec::with_capacity(workers);
    for w in 0..workers {
        let share = n / workers + usize::from(w < n % workers);
        let op = op.clone();
        tasks.push(tokio::spawn(async move { timed(share, op).await }));
    }
    let mut all = Samples::with_capacity(n);
    for task in tasks {
        all.extend(task.await.expect("a benchmark task panicked"));
    }
    all.wall = start.elapsed();
    all.cpu = process_cpu().saturating_sub(cpu);
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
