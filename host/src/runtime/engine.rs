//! The engine configuration and the epoch ticker.
//!
//! The engine is set up for many short calls: instances come from a pooling
//! allocator whose slots are reused (no `mmap` per call, copy-on-write
//! memory images), and only the wasmtime features Airlock uses are compiled
//! in (see `host/Cargo.toml`; `component-model-async` and `threads` stay
//! off: the async concurrency support makes each call several times
//! slower). The pool holds `[host] max_concurrent_calls` instances at once,
//! each with at most the largest memory limit of the loaded tools; the host
//! refuses calls beyond that count before they reach the pool.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Interval of the epoch ticker; CPU deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Core instances, memories and tables one component may use. These match
/// the per-store limits in `state.rs`.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MAX_MEMORIES_PER_COMPONENT: u32 = 16;
const MAX_TABLES_PER_COMPONENT: u32 = 64;

/// Bytes of each memory slot reset in place, rather than unmapped, when
/// a call ends: more than a small tool touches in one call.
const KEEP_RESIDENT: usize = 1 << 20;

/// Largest linear memory any pool slot can hold (a 32-bit memory's limit).
const MAX_POOL_MEMORY: u64 = 4 << 30;

/// What the engine is sized for: taken from `[host]` and the tools' limits.
#[derive(Clone, Copy, Debug)]
pub(super) struct EngineSize {
    /// Bytes of wasm stack every guest of this engine gets (its tools'
    /// `wasm_stack_kib`, or `[host] wasm_stack_kib`).
    pub max_wasm_stack: usize,
    /// The largest memory limit of any loaded tool; pool slots hold it.
    pub max_memory_mib: u64,
    /// Instances alive at once (`[host] max_concurrent_calls`); the pool
    /// holds this many, and the host refuses calls beyond it.
    pub max_instances: u32,
}

impl EngineSize {
    /// The size for `config`'s tools: a stack of `wasm_stack_kib`, slots
    /// for the largest memory limit, `max_instances` of them.
    pub(super) fn for_config(
        config: &crate::manifest::Config,
        wasm_stack_kib: u32,
        max_instances: u32,
    ) -> EngineSize {
        EngineSize {
            max_wasm_stack: (wasm_stack_kib as usize) << 10,
            max_memory_mib: config
                .tools
                .values()
                .map(|t| t.limits.memory_mib)
                .max()
                .unwrap_or(64),
            max_instances,
        }
    }
}

/// Builds the host's engine with a pooling allocator sized by `size`.
pub(super) fn new_engine(size: EngineSize) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    let calls = size.max_instances.max(1);
    pool.total_component_instances(calls)
        .total_stacks(calls)
        // Most components hold a handful of core instances and one memory;
        // the totals leave room for a mix of larger ones.
        .total_core_instances(calls * 8)
        .total_memories(calls * 2)
        .total_tables(calls * 4)
        .max_core_instances_per_component(MAX_CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MAX_MEMORIES_PER_COMPONENT)
        .max_tables_per_component(MAX_TABLES_PER_COMPONENT)
        .max_memory_size(pool_memory_bytes(size.max_memory_mib))
        // A slot handed back is reset to the component's initial image
        // either way; resetting the pages a call touched in place (found by
        // `PAGEMAP_SCAN` where the kernel has it) instead of unmapping them
        // spares the next call a page fault per page.
        .linear_memory_keep_resident(KEEP_RESIDENT)
        .table_keep_resident(KEEP_RESIDENT / 16)
        .pagemap_scan(Enabled::Auto);

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(size.max_wasm_stack)
        // Async calls run on a stack of their own, which must hold the wasm
        // stack and the host functions the guest calls (1.5 MiB, as with
        // wasmtime's defaults).
        .async_stack_size(size.max_wasm_stack + (3 << 19))
        .parallel_compilation(true);
    Engine::new(&config)
}

/// Bytes of one pool memory slot for a largest tool limit of `mib`.
fn pool_memory_bytes(mib: u64) -> usize {
    let bytes = mib.max(1).saturating_mul(1 << 20).min(MAX_POOL_MEMORY);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
pub(super) struct EpochTicker {
    stop: Arc<AtomicBool>,
}

impl EpochTicker {
    pub(super) fn start(engine: &Engine) -> EpochTicker {
        let stop = Arc::new(AtomicBool::new(false));
        let (engine, flag) = (engine.weak(), stop.clone());
        std::thread::Builder::new()
            .name("airlock-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    match engine.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => break,
                    }
                }
            })
            .expect("spawning the epoch thread");
        EpochTicker { stop }
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_slots_hold_the_largest_tool_limit() {
        assert_eq!(pool_memory_bytes(64), 64 << 20);
        assert_eq!(pool_memory_bytes(0), 1 << 20);
        assert_eq!(pool_memory_bytes(1 << 40), 4 << 30);
    }

    /// The smallest component: the preamble of component-model layer 1.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    #[tokio::test]
    async fn instances_come_from_a_pool_of_the_configured_size() {
        let engine = new_engine(EngineSize {
            max_wasm_stack: 512 << 10,
            max_memory_mib: 64,
            max_instances: 8,
        })
        .unwrap();
        let component =
            wasmtime::component::Component::from_binary(&engine, EMPTY_COMPONENT).unwrap();
        let linker = wasmtime::component::Linker::<()>::new(&engine);
        let pre = linker.instantiate_pre(&component).unwrap();
        let instantiate = || async {
            let mut store = wasmtime::Store::new(&engine, ());
            pre.instantiate_async(&mut store).await.map(|_| store)
        };

        let mut live = Vec::new();
        for _ in 0..8 {
            live.push(instantiate().await.unwrap());
        }
        assert!(
            instantiate().await.is_err(),
            "the engine allowed more live instances than the pool holds"
        );
        // A dropped store gives its slot back.
        live.pop();
        instantiate().await.unwrap();
    }
}
