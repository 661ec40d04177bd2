//! What each call's store holds, and the host functions of `airlock:tool`.

use crate::egress::Gate;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable, Val};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

/// Longest log message kept from a tool, in bytes.
const MAX_LOG_MESSAGE: usize = 4096;

/// The data of one call's store. Nothing in it outlives the call.
pub struct CallState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    gate: Gate,
    pub(super) limits: StoreLimits,
    config: Arc<BTreeMap<String, String>>,
    tool: Arc<str>,
    call_id: Arc<str>,
}

impl CallState {
    pub(super) fn new(
        gate: Gate,
        memory_bytes: usize,
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
            gate,
            limits: StoreLimitsBuilder::new()
                .memory_size(memory_bytes)
                .instances(64)
                .tables(64)
                .memories(16)
                .trap_on_grow_failure(true)
                .build(),
            config,
            tool,
            call_id,
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
    log.func_new("write", |store, _ty, params, _results| {
        let state: &CallState = store.data();
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
