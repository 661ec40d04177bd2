//! Loading components and calling their exports as tools.
//!
//! One [`Host`] holds one wasmtime `Engine`, a `Linker` and, per tool, the
//! compiled component and its `InstancePre`. Every call gets a fresh `Store`
//! and instance, so nothing a tool keeps in memory survives into another
//! call or reaches another user. CPU time is bounded by epoch interruption
//! (one ticker thread per engine), wall-clock time by a timeout, and memory
//! by a store limiter.

mod check;
mod declared;
mod engine;
mod state;

use crate::audit::{AuditLog, Decision, Event, EventKind};
use crate::broker::{AuthorizationRequired, Broker};
use crate::egress::{CallContext, Egress, Gate, Resolver, ToolEgress};
use crate::manifest::{Config, ToolConfig};
use crate::policy::{Grant, Policy};
use crate::tools::{ArgError, ToolDef, ToolOutput};
use crate::vault::{LocalVault, VaultError};
use sha2::Digest as _;
use state::CallState;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};
use wasmtime::{Engine, Store};

pub use check::{CheckReport, Problem, Severity, check};
pub use declared::{DeclarationError, find_declaration};
pub use engine::EPOCH_TICK;

/// A loaded set of tools, ready to be called.
pub struct Host {
    engine: Engine,
    tools: BTreeMap<String, Arc<LoadedTool>>,
    by_name: BTreeMap<String, (Arc<LoadedTool>, usize)>,
    egress: Arc<Egress>,
    audit: AuditLog,
    _ticker: engine::EpochTicker,
}

struct LoadedTool {
    pre: InstancePre<CallState>,
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
    },
    /// The vault could not be opened.
    #[error(transparent)]
    Vault(#[from] VaultError),
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
        /// Which limit: `cpu_ms`, `timeout_ms`, `memory_mib`, `wasm_stack`.
        limit: &'static str,
        /// The configured value.
        value: u64,
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
        let engine = engine::new_engine().map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        state::link(&mut linker).map_err(|e| LoadError::Engine(format!("{e:#}")))?;
        let egress = Arc::new(Egress::new(
            Broker::new(vault),
            Resolver::new(config.host.resolve.clone()),
            audit.clone(),
            config.connections.clone(),
        ));

        let mut tools = BTreeMap::new();
        let mut by_name = BTreeMap::new();
        for (name, tool_config) in &config.tools {
            let tool = Arc::new(load_tool(&engine, &linker, name, tool_config, config)?);
            declared::log_findings(name, config, &tool.findings);
            for (i, def) in tool.defs.iter().enumerate() {
                by_name.insert(def.name.clone(), (tool.clone(), i));
            }
            tools.insert(name.clone(), tool);
        }
        let ticker = engine::EpochTicker::start(&engine);
        Ok(Host {
            engine,
            tools,
            by_name,
            egress,
            audit,
            _ticker: ticker,
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

    /// Number of components loaded.
    pub fn component_count(&self) -> usize {
        self.tools.len()
    }

    /// The shared egress state (vault, broker, audit).
    pub fn egress(&self) -> &Arc<Egress> {
        &self.egress
    }

    /// Runs one tool for one user in a fresh instance.
    pub async fn call(&self, request: CallRequest) -> Result<CallOutput, CallError> {
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

        let call = Arc::new(CallContext::new(
            self.egress.clone(),
            tool.egress.clone(),
            request.user.clone(),
            request.caller.clone(),
            call_id.clone(),
        ));
        let result = self.run(&tool, index, &params, call.clone()).await;

        let mut end = Event::new(
            EventKind::CallEnd,
            &call_id,
            &request.user,
            &request.caller,
            &def.name,
            &tool.egress.component,
        );
        end.duration_ms = Some(started.elapsed().as_millis() as u64);
        let outcome = match result {
            Ok(results) => match call.take_authorization_required() {
                Some(required) => Err(CallError::AuthorizationRequired(required)),
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
            Gate::new(call.clone()),
            (limits.memory_mib as usize) << 20,
            tool.config.clone(),
            def.name.as_str().into(),
            call.call_id.as_str().into(),
        );
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(limits.cpu_ms.div_ceil(EPOCH_TICK.as_millis() as u64).max(1));
        store.epoch_deadline_trap();

        let trap = |e: wasmtime::Error| classify_trap(&def.name, limits, e);
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
        match tokio::time::timeout(Duration::from_millis(limits.timeout_ms), work).await {
            Ok(result) => result,
            Err(_) => Err(CallError::Limit {
                tool: def.name.clone(),
                limit: "timeout_ms",
                value: limits.timeout_ms,
            }),
        }
    }

    fn record(&self, event: Event) {
        if let Err(err) = self.audit.record(event) {
            tracing::error!(%err, "audit write failed");
        }
    }
}

fn load_tool(
    engine: &Engine,
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

    let defs = crate::tools::describe(&bytes, name).map_err(|source| LoadError::Describe {
        tool: name.into(),
        source,
    })?;
    // FIXME(#7): cache compiled artifacts on disk keyed by digest and engine.
    let component = Component::from_binary(engine, &bytes).map_err(|e| LoadError::Compile {
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
        .map_err(|findings| LoadError::Strict {
            tool: name.into(),
            findings,
        })?;
    declared::check_operator_grants(name, config)?;
    let grants: Vec<Grant> = effective
        .endpoints
        .iter()
        .map(|e| Grant {
            methods: e.methods.clone(),
            url: e.url.clone(),
            connection: e.connection.clone(),
            allow_private: e.allow_private,
        })
        .collect();
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
    });

    Ok(LoadedTool {
        pre,
        defs,
        exports,
        egress,
        config: Arc::new(effective.config),
        findings: effective.findings,
    })
}

fn classify_trap(tool: &str, limits: &crate::manifest::Limits, err: wasmtime::Error) -> CallError {
    let limit = |limit, value| CallError::Limit {
        tool: tool.into(),
        limit,
        value,
    };
    match err.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => return limit("cpu_ms", limits.cpu_ms),
        Some(wasmtime::Trap::StackOverflow) => {
            return limit("wasm_stack", engine::MAX_WASM_STACK as u64);
        }
        _ => {}
    }
    let reason = format!("{err:#}");
    if reason.contains("forcing a memory growth failure") || reason.contains("growth failure") {
        return limit("memory_mib", limits.memory_mib);
    }
    CallError::Trap {
        tool: tool.into(),
        reason,
    }
}

fn new_call_id() -> String {
    let mut bytes = [0u8; 12];
    rand::fill(&mut bytes);
    hex::encode(bytes)
}
