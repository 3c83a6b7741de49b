use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use rayon::ThreadPool;

use super::{AtomOutcome, AtomWork, Executor, TimeoutHandle};
use crate::sync::{lock, wait};
use crate::{EngineError, ExecutorError};

/// Runs atoms on a rayon thread pool; outcomes return to the runtime's
/// thread through a queue it empties in one go. Independent atoms run at
/// the same time, up to the pool's size.
///
/// Tasks that block (I/O, sleeps) hold a pool thread while they wait, so
/// the pool size is the number of atoms that can wait at once: size the
/// pool for the I/O-bound concurrency you want ([`Parallel::new`] takes it),
/// not for the number of cores. A pool passed in with
/// [`Parallel::with_pool`] is shared as it is; do not pass rayon's global
/// pool if other code relies on it for CPU-bound work.
///
/// An atom that is all there is to do (nothing else in flight or ready, as
/// in a linear flow) runs on the engine's thread instead
/// ([`Executor::submit_alone`]): nothing could run beside it, and handing
/// it to a pool thread and its outcome back would cost more than a no-op
/// task. Such an atom does not run inside the pool (a `par_iter` in it
/// uses rayon's global pool).
///
/// An atom with a timeout (`Atom::timeout`) always runs on the pool, and
/// the engine's thread, waiting for outcomes, wakes at its deadline: past
/// it the atom fails with `Timeout` and the flow goes on. The task sees
/// `ctx.is_cancelled()` and should return; one that does not keeps its
/// pool thread until it does (its outcome is dropped), so the pool has a
/// thread less meanwhile.
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
    shared: Arc<Shared>,
    /// Outcomes taken from `shared` in one go, or of work run on the
    /// engine's thread ([`Executor::submit_alone`]), not yet handed out.
    outcomes: VecDeque<AtomOutcome>,
    /// Work submitted whose outcome is not yet handed out.
    outstanding: usize,
    /// Deadlines of timed work that may still be running.
    timers: Vec<(Instant, TimeoutHandle)>,
}

/// What the engine's thread and the pool's drain jobs share.
///
/// Submitting queues the work; a drain job on the pool runs queued work,
/// one atom at a time, until the queue is empty. A new drain job is
/// spawned only when queued work outnumbers the drain jobs free to take
/// it, and at most the pool's size are alive, so at most that many atoms
/// run at once, and a burst of ready atoms costs a spawn (and a thread
/// wake-up) per pool thread rather than per atom. Outcomes go to one queue
/// that the engine's thread empties in one go; it is woken only when it
/// sleeps waiting for one.
struct Shared {
    work: Mutex<Work>,
    done: Mutex<Done>,
    /// Signalled when an outcome arrives while the engine's thread waits.
    arrived: Condvar,
    /// The most drain jobs at once: the pool's size.
    max: usize,
}

#[derive(Default)]
struct Work {
    queue: VecDeque<AtomWork>,
    /// Drain jobs spawned and not yet finished.
    draining: usize,
    /// Of those, the ones not running an atom (starting, or looking for
    /// work).
    free: usize,
}

#[derive(Default)]
struct Done {
    queue: VecDeque<AtomOutcome>,
    /// The engine's thread sleeps on `arrived`.
    waiting: bool,
}

/// How many times the engine's thread looks for an outcome before it
/// sleeps: spinning in between for the first `SPINS`, then yielding its
/// core (as crossbeam's channels do). A short task's outcome usually
/// arrives in that time, which costs far less than a sleep and a wake-up.
const SPINS: u32 = 7;
const YIELDS: u32 = 4;

// The locks here take a poisoned lock as it is (crate::sync): every change
// under them is a push, a pop, a swap or a count, which a panic cannot
// leave half done.
impl Shared {
    /// Queues `work`; true if a drain job must be spawned for it.
    fn push(&self, work: AtomWork) -> bool {
        let mut w = lock(&self.work);
        w.queue.push_back(work);
        let spawn = w.queue.len() > w.free && w.draining < self.max;
        if spawn {
            w.draining += 1;
            w.free += 1;
        }
        spawn
    }

    /// A drain job: runs queued work until there is none.
    fn drain(&self) {
        loop {
            let work = {
                let mut w = lock(&self.work);
                let work = w.queue.pop_front();
                w.free -= 1;
                if work.is_none() {
                    w.draining -= 1;
                }
                work
            };
            let Some(work) = work else { return };
            if let Some(outcome) = work.run() {
                self.finish(outcome);
            }
            lock(&self.work).free += 1;
        }
    }

    fn finish(&self, outcome: AtomOutcome) {
        let wake = {
            let mut d = lock(&self.done);
            d.queue.push_back(outcome);
            d.waiting
        };
        if wake {
            self.arrived.notify_one();
        }
    }

    /// Moves every outcome there is into `into`.
    fn take(&self, into: &mut VecDeque<AtomOutcome>) {
        let mut d = lock(&self.done);
        std::mem::swap(&mut d.queue, into);
    }

    /// Moves every outcome there is into `into`, waiting for one if none
    /// has arrived, until `deadline` at most.
    fn wait(&self, into: &mut VecDeque<AtomOutcome>, deadline: Option<Instant>) {
        for step in 0..SPINS + YIELDS {
            self.take(into);
            if !into.is_empty() {
                return;
            }
            if step < SPINS {
                for _ in 0..1u32 << step {
                    std::hint::spin_loop();
                }
            } else {
                std::thread::yield_now();
            }
        }
        let mut d = lock(&self.done);
        while d.queue.is_empty() {
            d.waiting = true;
            match deadline {
                None => d = wait(&self.arrived, d),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        d.waiting = false;
                        return;
                    }
                    d = crate::sync::wait_timeout(&self.arrived, d, deadline - now);
                }
            }
            d.waiting = false;
        }
        std::mem::swap(&mut d.queue, into);
    }
}

impl Parallel {
    /// A pool of `max_workers` threads (at least one) of its own.
    pub fn new(max_workers: usize) -> Result<Self, EngineError> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(max_workers.max(1))
            .thread_name(|i| format!("taskflow-worker-{i}"))
            .build()
            .map_err(ExecutorError::PoolStart)?;
        Ok(Parallel::with_pool(Arc::new(pool)))
    }

    /// Runs atoms on a pool the caller owns.
    pub fn with_pool(pool: Arc<ThreadPool>) -> Self {
        let shared = Arc::new(Shared {
            work: Mutex::default(),
            done: Mutex::default(),
            arrived: Condvar::new(),
            max: pool.current_num_threads().max(1),
        });
        Parallel {
            pool,
            shared,
            outcomes: VecDeque::new(),
            outstanding: 0,
            timers: Vec::new(),
        }
    }

    /// Times out the timed work past its deadline (its outcome is the
    /// timeout's), and forgets the timers of work that finished.
    fn expire_due(&mut self) {
        if self.timers.is_empty() {
            return;
        }
        let now = Instant::now();
        let outcomes = &mut self.outcomes;
        self.timers.retain(|(deadline, handle)| {
            if !handle.is_running() {
                return false;
            }
            if now < *deadline {
                return true;
            }
            outcomes.extend(handle.expire());
            false
        });
    }

    /// The earliest deadline of timed work still running.
    fn next_deadline(&self) -> Option<Instant> {
        self.timers.iter().map(|(deadline, _)| *deadline).min()
    }

    /// How many threads the pool has.
    pub fn max_workers(&self) -> usize {
        self.pool.current_num_threads()
    }

    fn next(&mut self) -> Option<AtomOutcome> {
        let outcome = self.outcomes.pop_front()?;
        self.outstanding -= 1;
        Some(outcome)
    }
}

impl Executor for Parallel {
    fn submit(&mut self, work: AtomWork) {
        self.outstanding += 1;
        if let Some(handle) = work.timeout_handle() {
            self.timers.push((Instant::now() + handle.limit(), handle));
        }
        if self.shared.push(work) {
            let shared = self.shared.clone();
            self.pool.spawn(move || shared.drain());
        }
    }

    /// Runs the work on the engine's thread: nothing could run beside it,
    /// so a pool thread would only add a hand-off each way.
    /// (Work with a timeout goes to the pool, where its deadline is kept.)
    fn submit_alone(&mut self, work: AtomWork) {
        if work.timeout().is_some() {
            return self.submit(work);
        }
        self.outstanding += 1;
        self.outcomes.extend(work.run());
    }

    fn try_outcome(&mut self) -> Option<AtomOutcome> {
        if self.outcomes.is_empty() && self.outstanding > 0 {
            self.shared.take(&mut self.outcomes);
            self.expire_due();
        }
        self.next()
    }

    fn wait_outcome(&mut self) -> Option<AtomOutcome> {
        while self.outcomes.is_empty() && self.outstanding > 0 {
            let deadline = self.next_deadline();
            self.shared.wait(&mut self.outcomes, deadline);
            self.expire_due();
        }
        self.next()
    }
}

impl std::fmt::Debug for Parallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parallel")
            .field("max_workers", &self.max_workers())
            .finish()
    }
}
