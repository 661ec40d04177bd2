//! The canary sweep: every byte a test produced is searched for every
//! canary it used, in raw, hex, percent-encoded, base64 and base64url form.
//!
//! A [`Sweep`] collects haystacks as a test runs (guest-visible results and
//! error messages, CLI output), then adds the fixture's vault and audit
//! files and this process's log, and counts what it finds. The count must
//! be 0. The log is captured by a `tracing` subscriber installed once for
//! the whole test binary, at debug level (trace for Airlock itself).

use crate::support::{Fixture, encodings, files_under};
use std::sync::{Arc, Mutex, OnceLock};

/// Canaries and the bytes to search for them.
pub struct Sweep {
    name: String,
    canaries: Vec<String>,
    haystacks: Vec<(String, Vec<u8>)>,
}

impl Sweep {
    /// A sweep for `canaries`; installs the log capture if needed.
    pub fn new(name: &str, canaries: &[&str]) -> Sweep {
        logs();
        Sweep {
            name: name.into(),
            canaries: canaries.iter().map(|c| c.to_string()).collect(),
            haystacks: Vec::new(),
        }
    }

    /// Adds one haystack.
    pub fn add(&mut self, name: impl Into<String>, bytes: impl Into<Vec<u8>>) {
        self.haystacks.push((name.into(), bytes.into()));
    }

    /// Adds what a call returned, result or error, as the runtime and the
    /// agent would print it.
    pub fn result<T: std::fmt::Debug, E: std::fmt::Display + std::fmt::Debug>(
        &mut self,
        name: &str,
        result: &Result<T, E>,
    ) {
        let text = match result {
            Ok(v) => format!("{v:?}"),
            Err(e) => format!("{e}\n{e:?}"),
        };
        self.add(name, text);
    }

    /// Adds every file under the fixture's vault and audit directories and
    /// the log captured so far, then checks that no canary is anywhere.
    /// Returns the number of haystacks searched.
    pub fn finish(mut self, fx: &Fixture) -> usize {
        let mut files = files_under(&fx.data_dir());
        files.extend(files_under(&fx.audit_dir()));
        assert!(
            files.iter().any(|f| f.ends_with("vault.json")),
            "{}: the vault file is missing, so the sweep would prove nothing",
            self.name
        );
        for f in files {
            let bytes = std::fs::read(&f).unwrap();
            self.add(f.display().to_string(), bytes);
        }
        let log = logs().lock().unwrap().clone();
        self.add("log", log);

        let mut found = Vec::new();
        let mut forms = 0;
        let bytes: usize = self.haystacks.iter().map(|(_, b)| b.len()).sum();
        for canary in &self.canaries {
            let encoded = encodings(canary);
            forms += encoded.len();
            found.extend(find(&encoded, &self.haystacks));
            // The sweep must see a canary where there is one.
            let planted = [(
                "planted".to_string(),
                format!("<{}>", encoded[1]).into_bytes(),
            )];
            assert_eq!(find(&encoded, &planted).len(), 1, "self-check");
        }
        eprintln!(
            "canary sweep {}: {} canaries, {forms} forms, {} haystacks, {bytes} bytes: {} found",
            self.name,
            self.canaries.len(),
            self.haystacks.len(),
            found.len()
        );
        assert!(found.is_empty(), "{}: canary found: {found:#?}", self.name);
        self.haystacks.len()
    }
}

/// Bytes of log captured so far in this process.
pub fn log_len() -> usize {
    logs().lock().unwrap().len()
}

fn find(forms: &[String], haystacks: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut found = Vec::new();
    for form in forms {
        for (name, bytes) in haystacks {
            if bytes.windows(form.len()).any(|w| w == form.as_bytes()) {
                found.push(format!("{form:?} in {name}"));
            }
        }
    }
    found
}

/// The log of this test process, captured from the first sweep on.
fn logs() -> &'static Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = buffer.clone();
        let filter = tracing_subscriber::EnvFilter::new(
            "debug,airlock=trace,cranelift_codegen=info,wasmtime_cranelift=info,wasmtime=info",
        );
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .with_writer(move || LogWriter(writer.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber)
            .expect("no other global subscriber in the e2e tests");
        buffer
    })
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
