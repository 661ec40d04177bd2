//! What each call's store holds, its resource limiter, and the host
//! functions of `airlock:tool`.

use crate::egress::{CallContext, Gate};
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::ResourceLimiter;
use wasmtime::component::{Linker, ResourceTable, Val};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest log message kept from a tool, in bytes.
const MAX_LOG_MESSAGE: usize = 4096;

/// Log messages kept from one call; later ones are counted and dropped, so a
/// tool cannot flood the operator's log.
pub(super) const MAX_LOG_MESSAGES: u32 = 256;

/// Most elements in one table of a guest.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Most instances, tables and memories in one call's store.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;

/// A limit a guest broke, raised as the trap that ends its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {limit} limit of {value} was exceeded")]
pub struct Exceeded {
    /// The limit's config key.
    pub limit: &'static str,
    /// Its configured value.
    pub value: u64,
}

/// Refuses memory and table growth past the call's limits, with a trap that
/// names the limit.
pub(super) struct Limiter {
    memory_bytes: usize,
    memory_mib: u64,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(Exceeded {
                limit: "memory_mib",
                value: self.memory_mib,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Err(wasmtime::Error::new(Exceeded {
                limit: "table_elements",
                value: MAX_TABLE_ELEMENTS as u64,
            }));
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        MAX_INSTANCES
    }

    fn tables(&self) -> usize {
        MAX_TABLES
    }

    fn memories(&self) -> usize {
        MAX_MEMORIES
    }
}

/// The data of one call's store. Nothing in it outlives the call.
pub struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    gate: Gate,
    pub(super) call: Arc<CallContext>,
    pub(super) limits: Limiter,
    config: Arc<BTreeMap<String, String>>,
    tool: Arc<str>,
    call_id: Arc<str>,
    pub(super) log_messages: u32,
}

impl CallState {
    pub(super) fn new(
        call: Arc<CallContext>,
        memory_mib: u64,
        config: Arc<BTreeMap<String, String>>,
        tool: Arc<str>,
        call_id: Arc<str>,
    ) -> CallState {
        // Defaults of the builder: no environment, no arguments, no
        // preopened directories, closed stdin, output discarded, and every
        // socket address and name lookup denied.
        let wasi = WasiCtx::builder()
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        CallState {
            wasi,
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            gate: Gate::new(call.clone()),
            call,
            limits: Limiter {
                memory_bytes: usize::try_from(memory_mib << 20).unwrap_or(usize::MAX),
                memory_mib,
            },
            config,
            tool,
            call_id,
            log_messages: 0,
        }
    }
}

impl WasiView for CallState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for CallState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.gate,
        }
    }
}

/// Adds WASI, `wasi:http` and the `airlock:tool` interfaces to `linker`.
pub(super) fn link(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;

    let mut config = linker.instance("airlock:tool/config@0.1.0")?;
    config.func_wrap("get", |store, (key,): (String,)| {
        Ok((store.data().config.get(&key).cloned(),))
    })?;
    config.func_wrap("get-all", |store, ()| {
        let all: Vec<(String, String)> = store
            .data()
            .config
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Ok((all,))
    })?;

    let mut log = linker.instance("airlock:tool/log@0.1.0")?;
    log.func_new("write", |mut store, _ty, params, _results| {
        let state: &mut CallState = store.data_mut();
        state.log_messages += 1;
        if state.log_messages > MAX_LOG_MESSAGES {
            return Ok(());
        }
        let (Some(Val::Enum(level)), Some(Val::String(message))) = (params.first(), params.get(1))
        else {
            wasmtime::bail!("log.write called with unexpected arguments");
        };
        let message = truncate(message, MAX_LOG_MESSAGE);
        let (tool, call_id) = (&*state.tool, &*state.call_id);
        match level.as_str() {
            "error" => tracing::error!(target: "airlock::tool", tool, call_id, "{message:?}"),
            "warn" => tracing::warn!(target: "airlock::tool", tool, call_id, "{message:?}"),
            "info" => tracing::info!(target: "airlock::tool", tool, call_id, "{message:?}"),
            "debug" => tracing::debug!(target: "airlock::tool", tool, call_id, "{message:?}"),
            _ => tracing::trace!(target: "airlock::tool", tool, call_id, "{message:?}"),
        }
        Ok(())
    })?;
    Ok(())
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
