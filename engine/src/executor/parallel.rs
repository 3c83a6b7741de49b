use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use rayon::ThreadPool;

use super::{AtomOutcome, AtomWork, Executor};
use crate::EngineError;

/// Runs atoms on a rayon thread pool; outcomes return to the runtime over a
/// crossbeam channel. Independent atoms run at the same time, up to the
/// pool's size.
///
/// Tasks that block (I/O, sleeps) hold a pool thread while they wait, so
/// the pool size is the number of atoms that can wait at once: size the
/// pool for the I/O-bound concurrency you want ([`Parallel::new`] takes it),
/// not for the number of cores. A pool passed in with
/// [`Parallel::with_pool`] is shared as it is; do not pass rayon's global
/// pool if other code relies on it for CPU-bound work.
///
/// ```
/// use serde_json::json;
/// use taskflow_engine::{Engine, Parallel};
/// use taskflow_patterns::{atom, task_fn, Unordered};
///
/// let flow = Unordered::new("fetch")
///     .add(atom("a", task_fn(|_| Ok(json!(1)))))
///     .add(atom("b", task_fn(|_| Ok(json!(2)))));
/// let mut engine = Engine::builder(flow).executor(Parallel::new(4)?).build()?;
/// engine.run()?;
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
pub struct Parallel {
    pool: Arc<ThreadPool>,
    done_tx: Sender<AtomOutcome>,
    done_rx: Receiver<AtomOutcome>,
}

impl Parallel {
    /// A pool of `max_workers` threads (at least one) of its own.
    pub fn new(max_workers: usize) -> Result<Self, EngineError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(max_workers.max(1))
            .thread_name(|i| format!("taskflow-worker-{i}"))
            .build()
            .map_err(|e| EngineError::Executor(format!("cannot start the thread pool: {e}")))?;
        Ok(Parallel::with_pool(Arc::new(pool)))
    }

    /// Runs atoms on a pool the caller owns.
    pub fn with_pool(pool: Arc<ThreadPool>) -> Self {
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        Parallel {
            pool,
            done_tx,
            done_rx,
        }
    }

    /// How many threads the pool has.
    pub fn max_workers(&self) -> usize {
        self.pool.current_num_threads()
    }
}

impl Executor for Parallel {
    fn submit(&mut self, work: AtomWork) {
        let done = self.done_tx.clone();
        self.pool.spawn(move || {
            // The runtime owns the receiver for as long as work is in flight.
            let _ = done.send(work.run());
        });
    }

    fn try_outcome(&mut self) -> Option<AtomOutcome> {
        self.done_rx.try_recv().ok()
    }

    fn wait_outcome(&mut self) -> Option<AtomOutcome> {
        self.done_rx.recv().ok()
    }
}

impl std::fmt::Debug for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parallel")
            .field("max_workers", &self.max_workers())
            .finish()
    }
}
