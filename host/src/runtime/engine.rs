//! The engine configuration and its epoch ticker.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use wasmtime::{Config, Engine};

/// Interval of the epoch ticker; CPU deadlines are counted in these.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Builds the engine; guests get `max_wasm_stack` bytes of wasm stack.
pub(super) fn new_engine(max_wasm_stack: usize) -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    config.max_wasm_stack(max_wasm_stack);
    // Async calls run on a stack of their own, which must hold the wasm
    // stack and the host functions the guest calls (1.5 MiB, as with
    // wasmtime's defaults).
    config.async_stack_size(max_wasm_stack + (3 << 19));
    // FIXME(#7): pooling instance allocator and an on-disk compile cache.
    Engine::new(&config)
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
