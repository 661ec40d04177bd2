//! Loading components and calling their exports as tools.
//!
//! One [`Host`] holds a wasmtime `Engine` and `Linker` per wasm stack size
//! in use (usually one), and, per tool, the compiled component and its
//! `InstancePre`. Every call gets a fresh `Store`
//! and instance, so nothing a tool keeps in memory survives into another
//! call or reaches another user.
//!
//! Every limit that trips ends the call with [`CallError::Limit`], naming the
//! limit and its configured value, and leaves the host ready for the next
//! call:
//!
//! - `cpu_ms`: guest CPU, counted in epoch ticks ([`EPOCH_TICK`]) during
//!   which guest code ran. One ticker thread serves the engine; at each tick
//!   a running guest yields to the executor, so a busy loop cannot starve
//!   other calls. A host call that waits (for the network, say) counts as at
//!   most one tick however long it takes.
//! - `timeout_ms`: wall-clock time of the whole call.
//! - `memory_mib` (and `table_elements`): growth past it traps.
//! - `wasm_stack_kib`: per tool, defaulting to `[host] wasm_stack_kib`.
//!   wasmtime sets the stack per engine, so each distinct size gets an
//!   engine of its own (with its own epoch ticker); tools of the same size
//!   share one.
//! - `max_requests`, `max_request_bytes`, `max_response_bytes`: broken by an
//!   outbound request; the guest gets the `wasi:http` error, and the call
//!   ends at its next tick of guest code or when it returns.
//! - `max_output_bytes`: the size of the result once lifted.
//! - `max_concurrent_calls` and `max_concurrent_calls_per_user`
//!   (`[host]`): a call over either is refused before any guest code runs.
//!
//! Instances come from a pooling allocator, and compiled components are kept
//! in an on-disk cache ([`cache`]) under the data directory.

pub mod cache;
mod check;
mod declared;
mod engine;
mod output;
mod state;

use crate::audit::{AuditLog, Decision, Event, EventKind};
use crate::broker::{AuthorizationRequired, Broker};
use crate::egress::{CallContext, Egress, Resolver, ToolEgress};
use crate::manifest::config::HostConfig;
use crate::manifest::{Config, ToolConfig};
use crate::policy::{Grant, Policy};
use crate::tools::{ArgError, ToolDef, ToolOutput};
use crate::vault::{LocalVault, VaultError};
use sha2::Digest as _;
use state::CallState;
use state::Exceeded;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{Engine, Store, UpdateDeadline};

pub use check::{CheckReport, Problem, Severity, check};
pub use declared::{DeclarationError, find_declaration};
pub use engine::EPOCH_TICK;

/// A loaded set of tools, ready to be called.
pub struct Host {
    /// One engine per wasm stack size in use, by size in KiB.
    engines: BTreeMap<u32, Engines>,
    tools: BTreeMap<String, Arc<LoadedTool>>,
    by_name: BTreeMap<String, (Arc<LoadedTool>, usize)>,
    egress: Arc<Egress>,
    audit: AuditLog,
    slots: Arc<Slots>,
}

/// An engine, its linker, its compile cache and its epoch ticker.
struct Engines {
    engine: Engine,
    linker: Linker<CallState>,
    cache: Option<cache::CompileCache>,
    _ticker: engine::EpochTicker,
}

impl Engines {
    fn new(size: engine::EngineSize, cache_dir: &std::path::Path) -> Result<Engines, LoadError> {
        let engine = engine::new_engine(size).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        state::link(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        // Entries are keyed by engine settings, so engines of different
        // stack sizes can share the directory.
        let cache = open_cache(cache_dir, &engine);
        let ticker = engine::EpochTicker::start(&engine);
        Ok(Engines {
            engine,
            linker,
            cache,
            _ticker: ticker,
        })
    }
}

/// Calls running now, in the host and per user.
struct Slots {
    max_calls: u32,
    max_per_user: u32,
    running: Mutex<(u32, HashMap<String, u32>)>,
}

/// A running call's place in [`Slots`], given back on drop.
struct Slot {
    slots: Arc<Slots>,
    user: String,
}

impl Slots {
    fn take(self: &Arc<Slots>, user: &str) -> Result<Slot, (&'static str, u64)> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_user) = &mut *running;
        let mine = per_user.get(user).copied().unwrap_or(0);
        if mine >= self.max_per_user {
            return Err(("max_concurrent_calls_per_user", self.max_per_user.into()));
        }
        if *total >= self.max_calls {
            return Err(("max_concurrent_calls", self.max_calls.into()));
        }
        let mine = per_user.entry(user.to_string()).or_default();
        *mine += 1;
        *total += 1;
        Ok(Slot {
            slots: self.clone(),
            user: user.to_string(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut running = self.slots.running.lock().unwrap_or_else(|e| e.into_inner());
        let (total, per_user) = &mut *running;
        *total -= 1;
        if let Some(mine) = per_user.get_mut(&self.user) {
            *mine -= 1;
            if *mine == 0 {
                per_user.remove(&self.user);
            }
        }
    }
}

struct LoadedTool {
    pre: InstancePre<CallState>,
    /// Wasm stack of its guests, in KiB (names the limit when it trips).
    wasm_stack_kib: u32,
    defs: Vec<ToolDef>,
    exports: Vec<ComponentExportIndex>,
    egress: Arc<ToolEgress>,
    config: Arc<BTreeMap<String, String>>,
    /// What did not line up between declaration and grant (logged at load).
    findings: Vec<crate::manifest::Finding>,
}

/// One tool as the agent runtime sees it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ToolInfo {
    /// Name used to call it.
    pub name: String,
    /// What it does, from the WIT doc comment.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub input_schema: serde_json::Value,
    /// JSON Schema of the result, when it is an object.
    pub output_schema: Option<serde_json::Value>,
    /// sha256 of the component.
    pub component: String,
}

/// A request to run one tool.
#[derive(Debug, Clone)]
pub struct CallRequest {
    /// Tool name as listed.
    pub tool: String,
    /// The user the call acts for.
    pub user: String,
    /// Who asks: "cli", "mcp-stdio", an API key id.
    pub caller: String,
    /// Arguments object.
    pub args: serde_json::Value,
}

/// A finished call.
#[derive(Debug, Clone)]
pub struct CallOutput {
    /// The tool's result or its own error value.
    pub output: ToolOutput,
    /// Id under which the call is audited.
    pub call_id: String,
    /// Outbound requests the call attempted.
    pub requests: u32,
}

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The component file could not be read.
    #[error("tool {tool:?}: cannot read {path}: {source}")]
    Read {
        /// Tool name.
        tool: String,
        /// Component path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The component is not the one the operator pinned.
    #[error("tool {tool:?}: {path} has sha256 {actual}, but the config pins {expected}")]
    Digest {
        /// Tool name.
        tool: String,
        /// Component path.
        path: PathBuf,
        /// Pinned digest.
        expected: String,
        /// Digest of the file.
        actual: String,
    },
    /// The bytes are not a loadable component.
    #[error("tool {tool:?}: {path} is not a valid component: {reason}")]
    Compile {
        /// Tool name.
        tool: String,
        /// Component path.
        path: PathBuf,
        /// Compiler message.
        reason: String,
    },
    /// The component starts with more linear memory than its limit allows.
    #[error(
        "tool {tool:?}: its component starts with a linear memory of {bytes} bytes, \
         more than limits.memory_mib = {memory_mib} allows; set memory_mib to at least {needed_mib}"
    )]
    Memory {
        /// Tool name.
        tool: String,
        /// Initial size of the component's largest memory.
        bytes: u64,
        /// The tool's configured limit.
        memory_mib: u64,
        /// The smallest limit that holds it.
        needed_mib: u64,
    },
    /// The exports cannot be offered as tools.
    #[error("tool {tool:?}: {source}")]
    Describe {
        /// Tool name.
        tool: String,
        /// The cause.
        source: crate::tools::ToolsError,
    },
    /// The component imports something the host does not provide.
    #[error("tool {tool:?}: cannot be linked: {reason}")]
    Link {
        /// Tool name.
        tool: String,
        /// Linker message (names the missing import).
        reason: String,
    },
    /// The grants are inconsistent.
    #[error("tool {tool:?}: {source}")]
    Policy {
        /// Tool name.
        tool: String,
        /// The cause.
        source: crate::policy::PolicyError,
    },
    /// The component's declaration cannot be used.
    #[error("tool {tool:?}: {source}")]
    Declaration {
        /// Tool name.
        tool: String,
        /// The cause.
        source: DeclarationError,
    },
    /// A strict tool asks for something the config does not grant, or has
    /// no declaration.
    #[error(
        "tool {tool:?} is strict and was not loaded: {}",
        findings.iter().map(|f| f.describe()).collect::<Vec<_>>().join("; ")
    )]
    Strict {
        /// Tool name.
        tool: String,
        /// Each need that is not granted, with the config lines that would
        /// grant it.
        findings: Vec<crate::manifest::Finding>,
        /// What else did not line up (grants not used, and the like); not
        /// a reason to refuse, reported beside the findings.
        warnings: Vec<crate::manifest::Finding>,
    },
    /// The vault could not be opened.
    #[error(transparent)]
    Vault(#[from] VaultError),
    /// The broker could not be set up (for example, a client secret is
    /// missing).
    #[error(transparent)]
    Broker(#[from] crate::broker::BrokerError),
    /// The engine could not be created.
    #[error("engine: {0}")]
    Engine(String),
}

/// Why a call produced no tool output.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No tool of that name is loaded.
    #[error("no tool named {0:?}")]
    UnknownTool(String),
    /// The user name is not acceptable.
    #[error(transparent)]
    InvalidUser(VaultError),
    /// The arguments do not fit the tool's schema; no guest code ran.
    #[error("tool {tool:?}: {source}")]
    InvalidArguments {
        /// Tool name.
        tool: String,
        /// What does not fit.
        source: ArgError,
    },
    /// The user must link or re-link an account first.
    #[error("authorization required: user must link connection {:?} ({})", .0.connection, .0.reason)]
    AuthorizationRequired(AuthorizationRequired),
    /// A limit ended the call.
    #[error("tool {tool:?} exceeded its {limit} limit of {value}")]
    Limit {
        /// Tool name.
        tool: String,
        /// Which limit, by its config key: `cpu_ms`, `timeout_ms`,
        /// `memory_mib`, `table_elements`, `wasm_stack_kib`, `max_requests`,
        /// `max_request_bytes`, `max_response_bytes`, `max_output_bytes`,
        /// `max_concurrent_calls`, `max_concurrent_calls_per_user`.
        limit: &'static str,
        /// The configured value.
        value: u64,
    },
    /// The call was cancelled before it finished; the guest was stopped.
    #[error("tool {tool:?}: call cancelled")]
    Cancelled {
        /// Tool name.
        tool: String,
    },
    /// The guest trapped.
    #[error("tool {tool:?} failed: {reason}")]
    Trap {
        /// Tool name.
        tool: String,
        /// The trap.
        reason: String,
    },
}

impl Host {
    /// Loads every tool in `config`, opening the vault it names.
    pub fn load(config: &Config, audit: AuditLog) -> Result<Host, LoadError> {
        let vault = Arc::new(LocalVault::open(&config.vault.dir, &config.vault.key)?);
        Host::with_vault(config, vault, audit)
    }

    /// Loads every tool in `config` with an already opened vault.
    pub fn with_vault(
        config: &Config,
        vault: Arc<LocalVault>,
        audit: AuditLog,
    ) -> Result<Host, LoadError> {
        let broker = Broker::from_config(config, vault)?;
        Host::with_broker(config, broker, audit)
    }

    /// Loads every tool in `config` with a broker made by the caller (to
    /// share it with the consent routes, or to set its options).
    pub fn with_broker(
        config: &Config,
        broker: Broker,
        audit: AuditLog,
    ) -> Result<Host, LoadError> {
        let HostConfig {
            max_concurrent_calls,
            max_concurrent_calls_per_user,
            wasm_stack_kib,
            ..
        } = config.host;
        let size = |wasm_stack_kib: u32| {
            engine::EngineSize::for_config(config, wasm_stack_kib, max_concurrent_calls)
        };
        let cache_dir = config.vault.dir.join("cache");
        let egress = Arc::new(Egress::new(
            broker,
            Resolver::new(config.host.resolve.clone()),
            audit.clone(),
            config.connections.clone(),
        ));

        let mut engines = BTreeMap::new();
        let mut tools = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        for (name, tool_config) in &config.tools {
            let stack = tool_config.limits.wasm_stack_kib.unwrap_or(wasm_stack_kib);
            let set = match engines.entry(stack) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(Engines::new(size(stack), &cache_dir)?)
                }
            };
            let mut tool = load_tool(
                &set.engine,
                set.cache.as_ref(),
                &set.linker,
                name,
                tool_config,
                config,
            )?;
            tool.wasm_stack_kib = stack;
            let tool = Arc::new(tool);
            declared::log_findings(name, config, &tool.findings);
            for (i, def) in tool.defs.iter().enumerate() {
                by_name.insert(def.name.clone(), (tool.clone(), i));
            }
            tools.insert(name.clone(), tool);
        }
        Ok(Host {
            engines,
            tools,
            by_name,
            egress,
            audit,
            slots: Arc::new(Slots {
                max_calls: max_concurrent_calls,
                max_per_user: max_concurrent_calls_per_user,
                running: Mutex::new((0, HashMap::new())),
            }),
        })
    }

    /// Every tool, sorted by name.
    pub fn tools(&self) -> Vec<ToolInfo> {
        self.by_name
            .values()
            .map(|(tool, i)| {
                let def = &tool.defs[*i];
                ToolInfo {
                    name: def.name.clone(),
                    description: def.description.clone(),
                    input_schema: def.input_schema.clone(),
                    output_schema: def.output_schema.clone(),
                    component: tool.egress.component.clone(),
                }
            })
            .collect()
    }

    /// Engines the host runs, one per wasm stack size its tools use.
    pub fn engine_count(&self) -> usize {
        self.engines.len()
    }

    /// Number of components loaded.
    pub fn component_count(&self) -> usize {
        self.tools.len()
    }

    /// The engine tool `name` (as named in the config) is compiled for
    /// and instantiated in.
    pub fn engine(&self, name: &str) -> Option<&Engine> {
        self.tools.get(name).map(|t| t.pre.engine())
    }

    /// The shared egress state (vault, broker, audit).
    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// Runs one tool for one user in a fresh instance.
    pub async fn call(&self, request: CallRequest) -> Result<CallOutput, CallError> {
        self.call_cancellable(request, &CancellationToken::new())
            .await
    }

    /// Like [`Host::call`], but when `cancel` fires first the guest is
    /// stopped and the call ends with [`CallError::Cancelled`], audited as a
    /// `call_end` with reason `cancelled`. Dropping the future of a running
    /// call stops the guest too, and is audited the same way.
    pub async fn call_cancellable(
        &self,
        request: CallRequest,
        cancel: &CancellationToken,
    ) -> Result<CallOutput, CallError> {
        let (tool, index) = self
            .by_name
            .get(&request.tool)
            .cloned()
            .ok_or_else(|| CallError::UnknownTool(request.tool.clone()))?;
        crate::vault::check_name("user", &request.user).map_err(CallError::InvalidUser)?;
        let def = &tool.defs[index];
        let params =
            def.args_to_vals(&request.args)
                .map_err(|source| CallError::InvalidArguments {
                    tool: def.name.clone(),
                    source,
                })?;

        let call_id = new_call_id();
        let started = Instant::now();
        let mut start = Event::new(
            EventKind::CallStart,
            &call_id,
            &request.user,
            &request.caller,
            &def.name,
            &tool.egress.component,
        );
        start.decision = Some(Decision::Allow);
        self.record(start);
        // From here on the call has a `call_end`, even if this future is
        // dropped before it finishes.
        let mut unfinished = Unfinished {
            audit: self.audit.clone(),
            end: Some(Event::new(
                EventKind::CallEnd,
                &call_id,
                &request.user,
                &request.caller,
                &def.name,
                &tool.egress.component,
            )),
            started,
        };

        let call = Arc::new(CallContext::new(
            self.egress.clone(),
            tool.egress.clone(),
            def.name.clone(),
            request.user.clone(),
            request.caller.clone(),
            call_id.clone(),
        ));
        let span = crate::audit::span_for_call(&def.name, &request.user, &request.caller, &call_id);
        let result = match self.slots.take(&request.user) {
            Ok(_slot) => tokio::select! {
                result = self.run(&tool, index, &params, call.clone()).instrument(span) => result,
                // Dropping the run drops the store, which stops the guest.
                () = cancel.cancelled() => Err(CallError::Cancelled {
                    tool: def.name.clone(),
                }),
            },
            Err((limit, value)) => Err(CallError::Limit {
                tool: def.name.clone(),
                limit,
                value,
            }),
        };

        let mut end = unfinished.finish();
        let outcome = match result {
            Ok(results) => match call.take_authorization_required() {
                Some(required) => Err(CallError::AuthorizationRequired(required)),
                None if output::size(&results) > tool.egress.limits.max_output_bytes => {
                    Err(CallError::Limit {
                        tool: def.name.clone(),
                        limit: "max_output_bytes",
                        value: tool.egress.limits.max_output_bytes,
                    })
                }
                None => Ok(CallOutput {
                    output: def.output(&results),
                    call_id: call_id.clone(),
                    requests: call.requests(),
                }),
            },
            Err(err) => Err(err),
        };
        (end.decision, end.reason) = match &outcome {
            Ok(out) if matches!(out.output, ToolOutput::Ok(_)) => (Some(Decision::Allow), None),
            Ok(_) => (Some(Decision::Error), Some("tool_error".into())),
            Err(CallError::AuthorizationRequired(a)) => {
                end.connection = Some(a.connection.clone());
                (Some(Decision::AuthorizationRequired), Some(a.reason.into()))
            }
            Err(CallError::Limit { limit, .. }) => {
                (Some(Decision::Error), Some(format!("limit_{limit}")))
            }
            Err(CallError::Cancelled { .. }) => (Some(Decision::Error), Some("cancelled".into())),
            Err(_) => (Some(Decision::Error), Some("trap".into())),
        };
        self.record(end);
        outcome
    }

    async fn run(
        &self,
        tool: &LoadedTool,
        index: usize,
        params: &[Val],
        call: Arc<CallContext>,
    ) -> Result<Vec<Val>, CallError> {
        let def = &tool.defs[index];
        let limits = &tool.egress.limits;
        let state = CallState::new(
            call.clone(),
            limits.memory_mib,
            tool.config.clone(),
            def.name.as_str().into(),
            call.call_id.as_str().into(),
        );
        let mut store = Store::new(tool.pre.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(1);
        let cpu = Exceeded {
            limit: "cpu_ms",
            value: limits.cpu_ms,
        };
        let allowed_ticks = limits.cpu_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1);
        let mut ticks = 0;
        store.epoch_deadline_callback(move |store| {
            // A limit a request broke ends the call as soon as guest code
            // runs again.
            if let Some(t) = store.data().call.tripped() {
                return Err(wasmtime::Error::new(Exceeded {
                    limit: t.limit,
                    value: t.value,
                }));
            }
            ticks += 1;
            if ticks > allowed_ticks {
                return Err(wasmtime::Error::new(cpu));
            }
            Ok(UpdateDeadline::Yield(1))
        });

        let stack = u64::from(tool.wasm_stack_kib);
        let trap = |e: wasmtime::Error| classify_trap(&def.name, limits, stack, e);
        let work = async {
            let instance = tool.pre.instantiate_async(&mut store).await.map_err(trap)?;
            let func = instance
                .get_func(&mut store, tool.exports[index])
                .ok_or_else(|| CallError::Trap {
                    tool: def.name.clone(),
                    reason: "export disappeared after instantiation".into(),
                })?;
            let mut results = vec![Val::Bool(false); def.result_count()];
            func.call_async(&mut store, params, &mut results)
                .await
                .map_err(trap)?;
            Ok(results)
        };
        let outcome =
            match tokio::time::timeout(Duration::from_millis(limits.timeout_ms), work).await {
                Ok(result) => result,
                Err(_) => Err(CallError::Limit {
                    tool: def.name.clone(),
                    limit: "timeout_ms",
                    value: limits.timeout_ms,
                }),
            };

        let dropped = store
            .data()
            .log_messages
            .saturating_sub(state::MAX_LOG_MESSAGES);
        if dropped > 0 {
            tracing::warn!(tool = %def.name, call_id = %call.call_id, dropped, "airlock.runtime.log_flood");
        }
        // A limit broken by a request wins over what the guest made of it.
        match call.tripped() {
            Some(t) if !matches!(outcome, Err(CallError::Limit { .. })) => Err(CallError::Limit {
                tool: def.name.clone(),
                limit: t.limit,
                value: t.value,
            }),
            _ => outcome,
        }
    }

    fn record(&self, event: Event) {
        record(&self.audit, event);
    }
}

fn record(audit: &AuditLog, event: Event) {
    if let Err(err) = audit.record(event) {
        tracing::error!(%err, "audit write failed");
    }
}

/// The `call_end` of a call that has started: recorded as cancelled if the
/// call's future is dropped before [`Unfinished::finish`] takes it.
struct Unfinished {
    audit: AuditLog,
    end: Option<Event>,
    started: Instant,
}

impl Unfinished {
    /// The `call_end` event, with the call's duration, for the caller to
    /// complete and record.
    fn finish(&mut self) -> Event {
        let mut end = self.end.take().expect("a call finishes once");
        end.duration_ms = Some(self.started.elapsed().as_millis() as u64);
        end
    }
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if self.end.is_some() {
            let mut end = self.finish();
            end.decision = Some(Decision::Error);
            end.reason = Some("cancelled".into());
            record(&self.audit, end);
        }
    }
}

fn open_cache(dir: &std::path::Path, engine: &Engine) -> Option<cache::CompileCache> {
    match cache::CompileCache::open(dir, engine) {
        Ok(cache) => Some(cache),
        Err(err) => {
            tracing::warn!(%err, "airlock.runtime.cache: compiling without a cache");
            None
        }
    }
}

fn load_tool(
    engine: &Engine,
    cache: Option<&cache::CompileCache>,
    linker: &Linker<CallState>,
    name: &str,
    config: &ToolConfig,
    operator: &Config,
) -> Result<LoadedTool, LoadError> {
    let bytes = std::fs::read(&config.source).map_err(|source| LoadError::Read {
        tool: name.into(),
        path: config.source.clone(),
        source,
    })?;
    let actual = hex::encode(sha2::Sha256::digest(&bytes));
    if actual != config.sha256 {
        return Err(LoadError::Digest {
            tool: name.into(),
            path: config.source.clone(),
            expected: config.sha256.clone(),
            actual,
        });
    }

    // Checked before compiling: the pool would refuse the slot with a
    // message that does not name the limit.
    let initial = initial_memory_bytes(&bytes);
    if initial > config.limits.memory_mib.saturating_mul(1 << 20) {
        return Err(LoadError::Memory {
            tool: name.into(),
            bytes: initial,
            memory_mib: config.limits.memory_mib,
            needed_mib: initial.div_ceil(1 << 20),
        });
    }

    let defs = crate::tools::describe(&bytes, name).map_err(|source| LoadError::Describe {
        tool: name.into(),
        source,
    })?;
    let component = match cache {
        Some(cache) => cache.load(engine, &actual, &bytes).map(|(c, _)| c),
        None => Component::from_binary(engine, &bytes),
    };
    let component = component.map_err(|e| LoadError::Compile {
        tool: name.into(),
        path: config.source.clone(),
        reason: format!("{e:#}"),
    })?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Link {
            tool: name.into(),
            reason: format!("{e:#}"),
        })?;

    let mut exports = Vec::with_capacity(defs.len());
    for def in &defs {
        let parent =
            match &def.interface {
                Some(iface) => Some(component.get_export_index(None, iface).ok_or_else(|| {
                    LoadError::Link {
                        tool: name.into(),
                        reason: format!("export {iface:?} not found"),
                    }
                })?),
                None => None,
            };
        let index = component
            .get_export_index(parent.as_ref(), &def.function)
            .ok_or_else(|| LoadError::Link {
                tool: name.into(),
                reason: format!("function {:?} not found", def.function),
            })?;
        exports.push(index);
    }

    // The tool gets what it declared and the operator granted, no more.
    let declaration = declared::find_declaration(&bytes, &config.source).map_err(|source| {
        LoadError::Declaration {
            tool: name.into(),
            source,
        }
    })?;
    let effective = declared::effective_grant(name, config, operator, declaration.as_ref())
        .map_err(|(findings, warnings)| LoadError::Strict {
            tool: name.into(),
            findings,
            warnings,
        })?;
    let operator_grants = declared::operator_policy(name, config)?;
    let grants: Vec<Grant> = effective.endpoints.iter().map(declared::grant_of).collect();
    let scopes = effective
        .endpoints
        .iter()
        .map(|e| e.scopes.clone())
        .collect();
    let policy = Policy::new(grants).map_err(|source| LoadError::Policy {
        tool: name.into(),
        source,
    })?;

    let egress = Arc::new(ToolEgress {
        tool: name.into(),
        component: actual,
        policy,
        scopes,
        limits: config.limits.clone(),
        // Without a declaration the effective grant is the operator's.
        operator: declaration.is_some().then_some(operator_grants),
    });

    Ok(LoadedTool {
        pre,
        wasm_stack_kib: operator.host.wasm_stack_kib,
        defs,
        exports,
        egress,
        config: Arc::new(effective.config),
        findings: effective.findings,
    })
}

fn classify_trap(
    tool: &str,
    limits: &crate::manifest::Limits,
    wasm_stack_kib: u64,
    err: wasmtime::Error,
) -> CallError {
    let limit = |limit, value| CallError::Limit {
        tool: tool.into(),
        limit,
        value,
    };
    if let Some(e) = err.downcast_ref::<Exceeded>() {
        return limit(e.limit, e.value);
    }
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => return limit("cpu_ms", limits.cpu_ms),
        Some(wasmtime::Trap::StackOverflow) => return limit("wasm_stack_kib", wasm_stack_kib),
        _ => {}
    }
    // The message can carry a long backtrace named by the guest.
    let mut reason = format!("{err:#}");
    if reason.len() > MAX_TRAP_REASON {
        let mut end = MAX_TRAP_REASON;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push_str(" [truncated]");
    }
    CallError::Trap {
        tool: tool.into(),
        reason,
    }
}

/// Longest trap message passed on, in bytes.
const MAX_TRAP_REASON: usize = 2048;

/// The initial size, in bytes, of the largest linear memory any core module
/// of `component` defines (imported memories are defined elsewhere). What
/// cannot be parsed counts as nothing here; compiling reports it.
fn initial_memory_bytes(component: &[u8]) -> u64 {
    let mut largest = 0u64;
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        let Ok(wasmparser::Payload::MemorySection(memories)) = payload else {
            continue;
        };
        for memory in memories.into_iter().flatten() {
            let page = 1u64 << memory.page_size_log2.unwrap_or(16);
            largest = largest.max(memory.initial.saturating_mul(page));
        }
    }
    largest
}

fn new_call_id() -> String {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::initial_memory_bytes;

    #[test]
    fn initial_memory_is_the_largest_memory_a_module_defines() {
        let one = wat::parse_str("(module (memory 3))").unwrap();
        assert_eq!(initial_memory_bytes(&one), 3 << 16);
        let two = wat::parse_str("(module (memory 2) (memory 17 20))").unwrap();
        assert_eq!(initial_memory_bytes(&two), 17 << 16);
        // An imported memory is allocated by whoever defines it.
        let imported = wat::parse_str(r#"(module (import "m" "mem" (memory 40)))"#).unwrap();
        assert_eq!(initial_memory_bytes(&imported), 0);
        // Memories of modules nested in a component count too.
        let component =
            wat::parse_str("(component (core module (memory 5)) (core module (memory 9)))")
                .unwrap();
        assert_eq!(initial_memory_bytes(&component), 9 << 16);
        assert_eq!(initial_memory_bytes(b"not wasm"), 0);
    }
}
