//! Runs the measurements in order and renders them as a Markdown table
//! with each result's target and whether it was met.

use crate::scenarios::{Bench, Sizes};
use crate::stats::{micros, millis};
use std::time::Duration;

/// One line of the results table.
pub struct Row {
    item: &'static str,
    what: String,
    airlock: String,
    native: String,
    ratio: String,
    target: &'static str,
    met: Option<bool>,
}

fn row(item: &'static str, what: impl Into<String>, airlock: String) -> Row {
    Row {
        item,
        what: what.into(),
        airlock,
        native: "—".into(),
        ratio: "—".into(),
        target: "",
        met: None,
    }
}

impl Row {
    fn native(mut self, native: String, ratio: f64) -> Row {
        self.native = native;
        self.ratio = format!("{ratio:.2}×");
        self
    }

    fn target(mut self, target: &'static str, met: bool) -> Row {
        self.target = target;
        self.met = Some(met);
        self
    }
}

/// Runs every measurement, or only item `only`, and returns the rows.
pub async fn run(quick: bool, only: Option<u8>) -> Vec<Row> {
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let bench = Bench::start();
    let mut rows = Vec::new();

    let us = |d: Duration| d.as_secs_f64() * 1e6;

    if only.is_none_or(|o| o == 1) {
        eprintln!("1/6 trivial calls");
        let (one, two) = bench.trivial(&bench.host, sizes).await;
        rows.push(
            row(
                "1",
                "trivial call, fresh instance: median",
                micros(one.p50()),
            )
            .target("≤ 25 µs", us(one.p50()) <= 25.0),
        );
        rows.push(row("1", "trivial call: p99", micros(one.p99())));
        rows.push(row(
            "1",
            "trivial calls/s: 1 caller, 2 callers",
            format!("{:.0}, {:.0}", one.rate(), two.rate()),
        ));
        let (quiet, _) = bench.trivial(&bench.unaudited, sizes).await;
        rows.push(row(
            "1",
            "trivial call, audit log disabled: median, p99",
            format!("{}, {}", micros(quiet.p50()), micros(quiet.p99())),
        ));
    }

    if only.is_none_or(|o| o == 2) {
        eprintln!("2/6 GET through fetch vs native");
        let (a1, n1) = bench.get(&bench.host, 1, sizes.get_c1, sizes.warmup).await;
        let added = us(a1.p50()) - us(n1.p50());
        rows.push(
            row("2", "GET c=1: median", micros(a1.p50()))
                .native(micros(n1.p50()), us(a1.p50()) / us(n1.p50())),
        );
        rows.push(
            row("2", "GET c=1: p99", micros(a1.p99()))
                .native(micros(n1.p99()), us(a1.p99()) / us(n1.p99())),
        );
        rows.push(
            row(
                "2",
                "GET c=1: CPU per request (this process)",
                micros(a1.cpu_per_op()),
            )
            .native(
                micros(n1.cpu_per_op()),
                us(a1.cpu_per_op()) / us(n1.cpu_per_op()),
            ),
        );
        rows.push(
            row(
                "2",
                "GET c=1: added latency (median)",
                format!("{added:.1} µs"),
            )
            .target("≤ 60 µs", added <= 60.0),
        );
        let (a32, n32) = bench
            .get(&bench.host, 32, sizes.get_c32, sizes.warmup / 10 + 1)
            .await;
        rows.push(
            row("2", "GET c=32: requests/s", format!("{:.0}", a32.rate()))
                .native(format!("{:.0}", n32.rate()), a32.rate() / n32.rate())
                .target("≥ 0.8× native", a32.rate() / n32.rate() >= 0.8),
        );
        rows.push(
            row(
                "2",
                "GET c=32: CPU per request (this process)",
                micros(a32.cpu_per_op()),
            )
            .native(
                micros(n32.cpu_per_op()),
                us(a32.cpu_per_op()) / us(n32.cpu_per_op()),
            ),
        );
        rows.push(
            row("2", "GET c=32: median latency", micros(a32.p50()))
                .native(micros(n32.p50()), us(a32.p50()) / us(n32.p50())),
        );
        rows.push(
            row("2", "GET c=32: p99 latency", micros(a32.p99()))
                .native(micros(n32.p99()), us(a32.p99()) / us(n32.p99())),
        );

        // Where the added latency goes.
        let denied = bench.denied(sizes.get_c1).await;
        rows.push(row(
            "2",
            "fetch call denied by policy (instance + gate, no HTTP): median, CPU per call",
            format!("{}, {}", micros(denied.p50()), micros(denied.cpu_per_op())),
        ));
        let redactor = bench.redactor_build(sizes.get_c1 / 10 + 1).await;
        rows.push(row(
            "2",
            "redactor build, once per new token: median",
            micros(redactor.p50()),
        ));

        // The same with the audit log disabled, to show what it costs.
        let (q1, m1) = bench.get(&bench.unaudited, 1, sizes.get_c1, 0).await;
        rows.push(
            row("2", "GET c=1, audit disabled: median", micros(q1.p50()))
                .native(micros(m1.p50()), us(q1.p50()) / us(m1.p50())),
        );
        let (q32, m32) = bench.get(&bench.unaudited, 32, sizes.get_c32, 1).await;
        rows.push(
            row(
                "2",
                "GET c=32, audit disabled: requests/s",
                format!("{:.0}", q32.rate()),
            )
            .native(format!("{:.0}", m32.rate()), q32.rate() / m32.rate()),
        );
    }

    if only.is_none_or(|o| o == 3) {
        eprintln!("3/6 compile vs cache hit");
        let (compile, hit) = bench.compile_vs_hit(sizes);
        let speedup = compile.p50().as_secs_f64() / hit.p50().as_secs_f64();
        rows.push(row(
            "3",
            "fetch component: compile (median)",
            millis(compile.p50()),
        ));
        rows.push(
            row(
                "3",
                "fetch component: cache hit (median)",
                millis(hit.p50()),
            )
            .target("≤ 5 ms", hit.p50() <= Duration::from_millis(5)),
        );
        rows.push(
            row(
                "3",
                "cache hit speed-up over compiling",
                format!("{speedup:.0}×"),
            )
            .target("≥ 20×", speedup >= 20.0),
        );
    }

    if only.is_none_or(|o| o == 4) {
        eprintln!("4/6 token lookup");
        let token = bench.token(sizes).await;
        rows.push(
            row(
                "4",
                "token lookup, valid token: median",
                micros(token.p50()),
            )
            .target("≤ 2 µs", us(token.p50()) <= 2.0),
        );
        rows.push(row("4", "token lookup: p99", micros(token.p99())));
    }

    if only.is_none_or(|o| o == 5) {
        eprintln!("5/6 64 calls on an expired token");
        let (expired, outcomes) = bench.expired().await;
        rows.push(
            row(
                "5",
                "64 calls, expired token: refreshes at the server",
                outcomes.refreshes.to_string(),
            )
            .target("exactly 1", outcomes.refreshes == 1),
        );
        rows.push(row(
            "5",
            "64 calls, expired token: outcomes",
            format!(
                "{} ok, {} authorization-required, {} other",
                outcomes.ok, outcomes.authorization_required, outcomes.other
            ),
        ));
        rows.push(row(
            "5",
            "64 calls, expired token: p50, p99",
            format!("{}, {}", millis(expired.p50()), millis(expired.p99())),
        ));
    }

    if only.is_none_or(|o| o == 6) {
        eprintln!("6/6 memory");
        let (before, per_call) = bench.memory(64).await;
        rows.push(row(
            "6",
            "host RSS at rest: after load, after the run",
            format!("{}, {}", mib(bench.rss_after_load), mib(before)),
        ));
        rows.push(row(
            "6",
            "RSS per concurrent call in flight (64 calls)",
            format!("{:.0} KiB", per_call as f64 / 1024.0),
        ));
    }
    rows
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64)
}

/// The results as a Markdown table.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::from(
        "| # | measure | airlock | native baseline | ratio | target | met |\n\
         |---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        t.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.item, r.what, r.airlock, r.native, r.ratio, r.target, met
        ));
    }
    t
}

/// The whole `BENCHMARKS.md`.
pub fn markdown(rows: &[Row], quick: bool) -> String {
    let profile = if cfg!(debug_assertions) {
        "dev (debug assertions on; numbers are not representative)"
    } else {
        "release"
    };
    let command = if quick {
        "scripts/bench.sh --quick"
    } else {
        "scripts/bench.sh"
    };
    format!(
        "# Benchmarks\n\n\
         Generated by `{command}` on {date}; do not edit by hand, rerun it.\n\n\
         ## Machine\n\n{machine}\
         - build profile: {profile}\n\
         - mode: {mode}\n\n\
         ## Results\n\n{table}\n\
         ## Targets missed\n\n{missed}\n\
         ## How each is measured\n\n{notes}",
        date = utc_date(),
        machine = machine(),
        mode = if quick {
            "quick (few iterations: a smoke check, not a measurement)"
        } else {
            "full"
        },
        table = table(rows),
        missed = missed(rows),
        notes = NOTES,
    )
}

/// The rows whose target was missed, each with what was measured, and
/// what the profile shows taking the time.
fn missed(rows: &[Row]) -> String {
    let mut text = String::new();
    for r in rows.iter().filter(|r| r.met == Some(false)) {
        let ratio = if r.ratio == "—" {
            String::new()
        } else {
            format!(" ({} of native)", r.ratio)
        };
        text.push_str(&format!(
            "- item {}, {}: {}{ratio}, target {}.\n",
            r.item, r.what, r.airlock, r.target
        ));
    }
    if text.is_empty() {
        return "None in this run.\n".into();
    }
    text.push('\n');
    text.push_str(PROFILE);
    text
}

// The targets are issue #7's. Where they are missed, PROFILE says by how
// much the host's own work exceeds the native client's and where it goes.
/// What profiles of item 2 show. Written by hand from `perf record` and
/// `perf stat` of `--only 2` on the release build, and from the
/// CPU-per-request rows above; update it with the code.
const PROFILE: &str = "\
Where the time goes in item 2 (`perf record` and `perf stat` of \
`target/release/deps/airlock-* --only 2`, with and without \
`--workers 1`, 2026-12-04). Both misses are CPU, not waiting: the \
`CPU per request` rows count every thread of this process (the upstream \
is a child process and not counted). At c=32 a mediated GET costs about \
7.5 times the native client's CPU (74-80 µs against about 10 µs across \
runs), so \
on two cores the rate cannot pass about 0.2 of native however the work is \
scheduled; 0.8 would need the whole mediated call, fresh instance \
included, in about 13 µs of CPU. Inclusive shares of the worker threads \
at c=32 (DWARF unwinding, which stops at JIT frames, so lower bounds): \
the call itself (instantiation, guest code, its `wasi:http` host calls, \
result conversion, dropping the store) about 22%, hyper driving the \
upstream connection about 13% (the native client pays that too), the \
gate's task (policy, token, injection) about 4%, the response guard \
about 3%, the three audit records about 3% (serializing, hashing, the \
chain lock), resetting the touched pages of the instance's memory slot \
(`PAGEMAP_SCAN`) about 2.5%; the remainder is the kernel's loopback TCP \
path, the runtime's scheduling and allocation, spread thin. A fetch call \
that the policy denies, with no HTTP at all, already costs about 25 µs \
median on one worker and about 50 µs on two \
(row above): a fresh instance of a component with the full WASI import \
set, its resources and the audit records, which an instance kept warm \
across calls would avoid and the fresh-instance-per-call rule forbids. \
At c=1 on an idle machine the added latency is mostly the runtime's \
second worker thread, which is woken and goes back to sleep several \
times per call (`perf stat`: 5.3 context switches per mediated \
call against 2.0 per native request), which doubles the CPU per call; \
with `--workers 1` the same call took 127 µs of CPU instead of 208 µs and \
its median latency fell from 209 µs to 168 µs (native 85 µs). Under load \
the workers stay busy and that cost goes away, which is why the c=1 row \
moves with the machine's load (the native client's own c=1 median \
moved between 12 µs and 85 µs across the day's runs, the machine idle). \
The binary's allocator matters most \
under concurrency: with glibc's `malloc` the c=32 rate was 12,200/s, \
with mimalloc (now the `airlock` binary's and this suite's allocator) \
22,400/s on the same machine minutes apart, because frees of memory \
allocated on the other worker took glibc's arena locks and put threads \
to sleep. Tried and not kept: serving `wasi:http/outgoing-handler` in \
the host instead of through the library's hook, which refuses a request \
without a task and settled the no-op I/O task the response type asks \
for before sending; against the same build without it, the c=1 median \
latency was about 12% lower but the c=32 rate about 12% lower too, so \
it was reverted.
";

const NOTES: &str = "\
All in one process (`benches/main.rs`) on a multi-threaded tokio runtime \
(one worker per core) with mimalloc as the allocator, as in the `airlock` \
binary, against an HTTP/1.1 upstream on 127.0.0.1 in a child process (one \
thread, answering a 120-byte JSON document). Latencies are per operation, \
nearest-rank percentiles; rates are operations over wall-clock time; CPU \
per request is the CPU time of every thread of this process during the \
run (`/proc/self/task/*/schedstat`) over the requests, so it leaves out \
the upstream.

1. `echo` tool (returns its argument), called through `Host::call`: argument \
   conversion, a fresh store and instance from the pool, the call, result \
   conversion and the two audit records. Sequential, then spread over two \
   callers. The same again on a host whose audit log is disabled shows what \
   the audit records cost.
2. The `fetch` tool doing `GET /small.json` with the user's token attached \
   (policy check, token lookup, injection, response guard, audit) against \
   hyper's pooled client sending the same GET with the same `Authorization` \
   header. Both keep connections alive. Runs alternate in halves, native \
   first. c=32 is 32 callers each doing its share one after another. The \
   denied fetch call (a URL outside the grant) shows the cost of the \
   instance, the guest and the gate without any HTTP.
3. `CompileCache::load` of the fetch component into an empty cache \
   directory (compile, serialize, write) vs from a warm one (read, verify \
   the checksum, deserialize).
4. `Broker::token` for a linked user with a valid token, served from the \
   broker's in-memory token cache after the first lookup.
5. 64 concurrent fetch calls for a user whose stored token expired 10 s \
   ago. The connection's token endpoint is the upstream's `POST /token`, \
   which takes 100 ms to answer a refresh grant, rotates the refresh token \
   and counts the refreshes it served (read back over `GET /refreshes`).
6. VmRSS from `/proc/self/status`: after `Host::load`, and before and \
   while 64 fetch calls are held in flight by an upstream that answers \
   after 400 ms. Pool slots keep the pages a call touched (up to 1 MiB \
   per memory, reset in place) resident between calls, so by item 6 the \
   slots earlier items used are already resident: what a call uses shows \
   in the RSS after the run more than as growth while calls are in \
   flight.
";

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!(
        "- CPU: {cpu}, {cores} cores available\n\
         - memory: {:.1} GiB\n\
         - kernel: Linux {}\n\
         - compiler: {rustc}\n\
         - load average (1, 5, 15 min) when the run ended: {}; other work on \
         the machine shares its cores and shows in every number\n",
        mem_kb as f64 / (1 << 20) as f64,
        kernel.trim(),
        load.join(", "),
    )
}

/// Today's date (UTC) as YYYY-MM-DD, from the days since 1970.
fn utc_date() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Civil-from-days (proleptic Gregorian), era-based.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}
