//! The engine configuration, the call slots that bound concurrency, and the
//! epoch ticker.
//!
//! The engine is set up for many short calls: instances come from a pooling
//! allocator whose slots are reused (no `mmap` per call, copy-on-write
//! memory images), and only the wasmtime features Airlock uses are compiled
//! in (see `host/Cargo.toml`; `component-model-async` and `threads` stay
//! off: the async concurrency support makes each call several times slower). The pool is sized for a small host (2 cores,
//! 24 GiB): [`MAX_CONCURRENT_CALLS`] instances at once, each with at most its
//! tool's memory limit, so the pool's worst case stays within the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// Interval of the epoch ticker; CPU deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Wasm stack available to a guest.
pub const MAX_WASM_STACK: usize = 512 * 1024;

/// Tool calls that hold an instance at the same time; further calls wait
/// for a slot instead of failing.
pub const MAX_CONCURRENT_CALLS: u32 = 256;

/// Core instances, memories and tables one component may use. These match
/// the per-store limits in `state.rs`.
const MAX_CORE_INSTANCES_PER_COMPONENT: u32 = 64;
const MAX_MEMORIES_PER_COMPONENT: u32 = 16;
const MAX_TABLES_PER_COMPONENT: u32 = 64;

/// Largest linear memory any pool slot can hold (a 32-bit memory's limit).
const MAX_POOL_MEMORY: u64 = 4 << 30;

/// Builds the host's engine. `max_memory_mib` is the largest memory limit of
/// any loaded tool; pool slots are sized for it.
pub(super) fn new_engine(max_memory_mib: u64) -> wasmtime::Result<Engine> {
    let mut pool = PoolingAllocationConfig::new();
    let calls = MAX_CONCURRENT_CALLS;
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
        .max_memory_size(pool_memory_bytes(max_memory_mib));

    let mut config = Config::new();
    config
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .parallel_compilation(true);
    Engine::new(&config)
}

/// Bytes of one pool memory slot for a largest tool limit of `mib`.
fn pool_memory_bytes(mib: u64) -> usize {
    let bytes = mib.max(1).saturating_mul(1 << 20).min(MAX_POOL_MEMORY);
    usize::try_from(bytes).unwrap_or(usize::MAX)
}

/// The instance slots of the pool; a call holds one while it runs.
pub(super) struct CallSlots(Semaphore);

impl CallSlots {
    pub(super) fn new() -> CallSlots {
        CallSlots(Semaphore::new(MAX_CONCURRENT_CALLS as usize))
    }

    /// Waits for a free slot.
    pub(super) async fn acquire(&self) -> SemaphorePermit<'_> {
        self.0
            .acquire()
            .await
            .expect("the call slots semaphore is never closed")
    }
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
        let engine = new_engine(64).unwrap();
        let component =
            wasmtime::component::Component::from_binary(&engine, EMPTY_COMPONENT).unwrap();
        let linker = wasmtime::component::Linker::<()>::new(&engine);
        let pre = linker.instantiate_pre(&component).unwrap();
        let instantiate = || async {
            let mut store = wasmtime::Store::new(&engine, ());
            pre.instantiate_async(&mut store).await.map(|_| store)
        };

        let mut live = Vec::new();
        for _ in 0..MAX_CONCURRENT_CALLS {
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

    #[tokio::test]
    async fn call_slots_make_the_extra_call_wait() {
        let slots = CallSlots::new();
        let mut held = Vec::new();
        for _ in 0..MAX_CONCURRENT_CALLS {
            held.push(slots.acquire().await);
        }
        let extra = tokio::time::timeout(Duration::from_millis(20), slots.acquire()).await;
        assert!(extra.is_err(), "a call got a slot beyond the pool's size");
        held.pop();
        let freed = tokio::time::timeout(Duration::from_secs(5), slots.acquire()).await;
        assert!(freed.is_ok(), "a freed slot was not handed out");
    }
}
