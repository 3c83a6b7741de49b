//! The [`Engine`]: runs a compiled flow with checkpoints.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};
use taskflow_patterns::{Compilation, FlowState, Resolution};

use crate::executor::Executor;
use crate::listener::{Event, Listeners};
use crate::runtime::{Runtime, Step};
use crate::storage::Storage;
use crate::EngineError;

/// Runs a flow: schedules ready atoms on its executor, checkpoints every
/// transition, consults retry controllers on failure and reverts.
///
/// ```
/// use serde_json::json;
/// use taskflow_engine::Engine;
/// use taskflow_patterns::{atom, task_fn, FlowState, Graph};
///
/// let flow = Graph::new("adder")
///     .add(atom("a", task_fn(|_| Ok(json!(1)))).provides("a"))
///     .add(atom("b", task_fn(|_| Ok(json!(2)))).provides("b"))
///     .add(atom("sum", task_fn(|ctx| Ok(json!(ctx.input::<i64>("a")? + ctx.input::<i64>("b")?))))
///         .requires(["a", "b"]).provides("total"));
/// let mut engine = Engine::builder(flow).build()?;
/// assert_eq!(engine.run()?, FlowState::Success);
/// assert_eq!(engine.storage().fetch("total"), Some(&json!(3)));
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
pub struct Engine {
    compilation: Arc<Compilation>,
    resolution: Arc<Resolution>,
    storage: Storage,
    executor: Box<dyn Executor>,
    listeners: Listeners,
    options: RunOptions,
}

/// What the builder set for the runs: the store, the suspend handle, how
/// reverts go.
pub(crate) struct RunOptions {
    pub(crate) store: Map<String, Value>,
    pub(crate) suspend: SuspendHandle,
    /// See [`EngineBuilder::defer_reverts`](crate::EngineBuilder::defer_reverts).
    pub(crate) defer_reverts: bool,
}

impl Engine {
    pub(crate) fn assemble(
        compilation: Arc<Compilation>,
        resolution: Arc<Resolution>,
        storage: Storage,
        executor: Box<dyn Executor>,
        listeners: Listeners,
        options: RunOptions,
    ) -> Self {
        Engine {
            compilation,
            resolution,
            storage,
            executor,
            listeners,
            options,
        }
    }

    /// The compiled flow.
    pub fn compilation(&self) -> &Compilation {
        &self.compilation
    }

    /// Checks again that every requirement is met by the flow or the store.
    /// (`build` already did; this lists every error found.)
    pub fn validate(&self) -> Result<(), EngineError> {
        self.compilation.resolve(&self.options.store)?;
        Ok(())
    }

    /// Writes the logbook, flow detail and atom details to the backend, if
    /// not yet written. `run` does it too.
    pub fn prepare(&mut self) -> Result<(), EngineError> {
        self.storage.ensure_saved()
    }

    /// Runs the flow to its end or to a suspension.
    ///
    /// Returns `SUCCESS`, or `SUSPENDED` after [`suspend`](Self::suspend);
    /// a flow that failed is [`EngineError::Failed`], with every failure.
    /// A checkpoint the backend refuses ends the run with that error, with
    /// nothing more scheduled: notably
    /// [`PersistenceError::Fenced`](taskflow_persistence::PersistenceError::Fenced)
    /// when another owner claimed the flow at a higher epoch (see
    /// [`EngineBuilder::owner_epoch`](crate::EngineBuilder::owner_epoch)).
    /// Running again resumes a suspended or failed flow, and runs again
    /// what a reverted one reverted (all of it, or one controller's
    /// subflow); [`reset`](Self::reset) starts any flow over.
    pub fn run(&mut self) -> Result<FlowState, EngineError> {
        let mut runtime = self.runtime(false)?;
        loop {
            if let Step::Finished(state) = runtime.step()? {
                return finish(&runtime, state);
            }
        }
    }

    /// Runs the flow from async code, as [`run`](Self::run) does (the same
    /// loop, the same checkpoints, the same result), without blocking the
    /// async runtime's threads while atoms run: with the [`Tokio`](crate::Tokio)
    /// executor the engine awaits each outcome. Checkpoint writes to a
    /// backend that blocks (SQLite, a directory, the synchronous
    /// PostgreSQL client: every one but the memory backend, see
    /// `Backend::blocks`) run under `tokio::task::block_in_place`, so the
    /// worker thread hands its other tasks on while it writes; on a
    /// current-thread runtime, which has no other thread to hand them to,
    /// they run inline (prefer a multi-thread runtime with such a backend).
    ///
    /// With another executor (serial, parallel) it runs as well, but
    /// waiting for an atom blocks the thread that polls.
    ///
    /// ```
    /// use taskflow_engine::{Engine, Tokio};
    /// use taskflow_patterns::{async_atom, async_trait, AsyncTask, Context, FlowState, Linear, TaskError, Value};
    ///
    /// struct Hello;
    /// #[async_trait]
    /// impl AsyncTask for Hello {
    ///     async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
    ///         tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    ///         Ok("hello".into())
    ///     }
    /// }
    ///
    /// # let rt = tokio::runtime::Runtime::new().unwrap();
    /// # rt.block_on(async {
    /// // In async code (an axum handler, a tokio::main):
    /// let flow = Linear::new("greet").add(async_atom("hello", Hello).provides("greeting"));
    /// let mut engine = Engine::builder(flow).executor(Tokio::current()?).build()?;
    /// assert_eq!(engine.run_async().await?, FlowState::Success);
    /// assert_eq!(engine.storage().fetch("greeting"), Some(&"hello".into()));
    /// # Ok::<(), taskflow_engine::EngineError>(())
    /// # }).unwrap();
    /// ```
    #[cfg(feature = "tokio")]
    pub async fn run_async(&mut self) -> Result<FlowState, EngineError> {
        let offload = Offload::for_backend(&**self.storage.backend());
        let mut runtime = offload.run(|| self.runtime(false))?;
        // Steps between two looks at tokio's cooperative budget: a long
        // burst of scheduling yields to other tasks now and then.
        loop {
            match offload.run(|| runtime.step_nowait())? {
                Step::Finished(state) => return finish(&runtime, state),
                Step::Continue => tokio::task::consume_budget().await,
                Step::Waiting => {
                    let in_flight = runtime.in_flight();
                    let outcome = std::future::poll_fn(|cx| runtime.executor.poll_outcome(cx))
                        .await
                        .ok_or(crate::ExecutorError::LostOutcomes { in_flight })?;
                    offload.run(|| runtime.complete_outcome(outcome))?;
                }
            }
        }
    }

    /// [`run_iter`](Self::run_iter) for async code: a stream of every
    /// state change as it happens, the last item an error if the flow
    /// failed; it waits for atoms as [`run_async`](Self::run_async) does,
    /// without blocking the runtime's threads.
    ///
    /// ```
    /// use futures_util::StreamExt as _;
    /// use taskflow_engine::{Engine, Event, Tokio};
    /// use taskflow_patterns::{async_atom, async_trait, AsyncTask, AtomState, Context, Linear, TaskError, Value};
    ///
    /// struct Tick;
    /// #[async_trait]
    /// impl AsyncTask for Tick {
    ///     async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
    ///         tokio::task::yield_now().await;
    ///         Ok(Value::Null)
    ///     }
    /// }
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let flow = Linear::new("f").add(async_atom("tick", Tick));
    /// let mut engine = Engine::builder(flow).executor(Tokio::current()?).build()?;
    /// let mut states = Vec::new();
    /// let mut events = engine.run_stream();
    /// while let Some(event) = events.next().await {
    ///     if let Event::Atom(a) = event? {
    ///         states.push(a.to);
    ///     }
    /// }
    /// assert_eq!(states, [AtomState::Running, AtomState::Success]);
    /// # Ok::<(), taskflow_engine::EngineError>(())
    /// # }).unwrap();
    /// ```
    #[cfg(feature = "tokio")]
    pub fn run_stream(&mut self) -> RunStream<'_> {
        let offload = Offload::for_backend(&**self.storage.backend());
        match offload.run(|| self.runtime(true)) {
            Ok(runtime) => RunStream {
                runtime: Some(runtime),
                offload,
                pending: VecDeque::new(),
                error: None,
            },
            Err(e) => RunStream {
                runtime: None,
                offload,
                pending: VecDeque::new(),
                error: Some(e),
            },
        }
    }

    /// Runs the flow, yielding every state change as it happens. The last
    /// item is an error if the flow failed.
    ///
    /// ```
    /// # use taskflow_engine::{Engine, Event};
    /// # use taskflow_patterns::{atom, task_fn, AtomState, Linear, Value};
    /// let mut engine = Engine::builder(Linear::new("f")
    ///     .add(atom("a", task_fn(|_| Ok(Value::Null))))).build().unwrap();
    /// let states: Vec<AtomState> = engine.run_iter()
    ///     .filter_map(|e| match e { Ok(Event::Atom(a)) => Some(a.to), _ => None })
    ///     .collect();
    /// assert_eq!(states, [AtomState::Running, AtomState::Success]);
    /// ```
    pub fn run_iter(&mut self) -> RunIter<'_> {
        match self.runtime(true) {
            Ok(runtime) => RunIter {
                runtime: Some(runtime),
                pending: VecDeque::new(),
                error: None,
            },
            Err(e) => RunIter {
                runtime: None,
                pending: VecDeque::new(),
                error: Some(e),
            },
        }
    }

    /// Reverts the flow: undoes every atom that ran, as a failure with no
    /// retry controller would (cancel with compensation). For a flow that
    /// was suspended (a job stopped, then cancelled), failed, or even
    /// finished `SUCCESS`.
    ///
    /// Every atom that ran (`SUCCESS`, `FAILURE`, or left `RUNNING` by a
    /// crash) is reverted, dependents before what they depend on, as the
    /// flow's own `REVERT_ALL`; atoms that never ran are left `PENDING`.
    /// It goes through the same loop as [`run`](Self::run): every
    /// transition is checkpointed at the engine's owner epoch (a fenced
    /// write ends it with that error) and listeners hear every event.
    ///
    /// Returns `REVERTED` (also for a flow that never ran, or was reverted
    /// already), or `SUSPENDED` after [`suspend`](Self::suspend); a revert
    /// that fails ends the flow `FAILURE`, returned as
    /// [`EngineError::Failed`] with every failure. A revert interrupted by
    /// a suspension or a crash continues on the next `revert` (or `run`)
    /// on the records, and atoms already `REVERTED` are not reverted again.
    /// Running the flow after it was reverted runs it again from the start
    /// (see [`run`](Self::run)).
    ///
    /// ```
    /// use serde_json::json;
    /// use taskflow_engine::Engine;
    /// use taskflow_patterns::{atom, task_fn, FlowState, Linear};
    ///
    /// let flow = Linear::new("order")
    ///     .add(atom("reserve", task_fn(|_| Ok(json!("r-1")))
    ///         .with_revert(|ctx| { ctx.set_revert_result("released"); Ok(()) })))
    ///     .add(atom("charge", task_fn(|_| Ok(json!("c-1")))));
    /// let mut engine = Engine::builder(flow).build()?;
    /// assert_eq!(engine.run()?, FlowState::Success);
    /// // The order is cancelled after all: undo it.
    /// assert_eq!(engine.revert()?, FlowState::Reverted);
    /// let reserve = engine.storage().atom_detail("reserve").unwrap();
    /// assert_eq!(reserve.revert_result().map(|v| &**v), Some(&json!("released")));
    /// # Ok::<(), taskflow_engine::EngineError>(())
    /// ```
    pub fn revert(&mut self) -> Result<FlowState, EngineError> {
        let mut runtime = self.runtime(false)?;
        runtime.request_revert();
        loop {
            if let Step::Finished(state) = runtime.step()? {
                // `REVERTED` is what was asked for here, not a failure.
                return match state {
                    FlowState::Reverted => Ok(state),
                    other => finish(&runtime, other),
                };
            }
        }
    }

    fn runtime(&mut self, keep_events: bool) -> Result<Runtime<'_>, EngineError> {
        self.storage.ensure_saved()?;
        let mut runtime = Runtime::new(
            &self.compilation,
            &self.resolution,
            &mut self.storage,
            &mut *self.executor,
            &self.listeners,
            &self.options.suspend.0,
            keep_events,
        );
        runtime
            .completer
            .set_defer_reverts(self.options.defer_reverts);
        Ok(runtime)
    }

    /// Asks the running flow to stop after the atoms in flight; `run`
    /// then returns `SUSPENDED`. Asked before a run, it suspends that run
    /// as soon as it starts; the suspension uses the request up. Call it from a listener, a task, or another
    /// thread through [`suspend_handle`](Self::suspend_handle).
    pub fn suspend(&self) {
        self.options.suspend.suspend();
    }

    /// Starts the flow over, as TaskFlow's `engine.reset()`: every atom
    /// goes back to `PENDING` with its result, failures and retry history
    /// cleared, and the flow to `PENDING`, in the records too; the next
    /// [`run`](Self::run) runs everything again. For a finished, failed or
    /// suspended flow (running again without a reset resumes it instead).
    ///
    /// ```
    /// # use taskflow_engine::Engine;
    /// # use taskflow_patterns::{atom, task_fn, FlowState, Linear, Value};
    /// let mut engine = Engine::builder(Linear::new("f")
    ///     .add(atom("a", task_fn(|_| Ok(Value::Null))))).build()?;
    /// assert_eq!(engine.run()?, FlowState::Success);
    /// engine.reset()?;
    /// assert_eq!(engine.storage().flow_state(), FlowState::Pending);
    /// assert_eq!(engine.run()?, FlowState::Success); // `a` ran twice
    /// # Ok::<(), taskflow_engine::EngineError>(())
    /// ```
    pub fn reset(&mut self) -> Result<(), EngineError> {
        self.storage.ensure_saved()?;
        // Check-ins of an earlier run are gone with the records' meta.
        drop(self.listeners.take_checkins());
        self.storage.reset()
    }

    /// A handle that suspends this engine from anywhere.
    pub fn suspend_handle(&self) -> SuspendHandle {
        self.options.suspend.clone()
    }

    /// The records of the run and the results in them.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }
}

/// Where `run_async` makes the checkpoint writes of its backend.
#[cfg(feature = "tokio")]
#[derive(Clone, Copy)]
enum Offload {
    /// On the awaiting thread (writes that do not block, or no other
    /// thread to hand the runtime's tasks to).
    Inline,
    /// Under `block_in_place`.
    InPlace,
}

#[cfg(feature = "tokio")]
impl Offload {
    fn for_backend(backend: &dyn taskflow_persistence::Backend) -> Offload {
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if backend.blocks() && multi_thread {
            Offload::InPlace
        } else {
            Offload::Inline
        }
    }

    fn run<T>(self, f: impl FnOnce() -> T) -> T {
        match self {
            Offload::Inline => f(),
            Offload::InPlace => tokio::task::block_in_place(f),
        }
    }
}

fn finish(runtime: &Runtime<'_>, state: FlowState) -> Result<FlowState, EngineError> {
    if state == FlowState::Suspended {
        // The request is used up by the suspension it caused; one made
        // before a run (even before it started) takes effect in that run.
        runtime.shared.cancel.store(false, Ordering::Relaxed);
    }
    match state {
        FlowState::Reverted | FlowState::Failure => Err(EngineError::Failed {
            flow: runtime.storage.flow_name().to_owned(),
            state,
            failures: runtime.completer.failures().to_vec(),
        }),
        other => Ok(other),
    }
}

/// The iterator of [`Engine::run_iter`].
pub struct RunIter<'e> {
    runtime: Option<Runtime<'e>>,
    pending: VecDeque<Event>,
    error: Option<EngineError>,
}

impl Iterator for RunIter<'_> {
    type Item = Result<Event, EngineError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(Ok(event));
            }
            let Some(runtime) = self.runtime.as_mut() else {
                return self.error.take().map(Err);
            };
            if let Some(event) = runtime.events.as_mut().and_then(VecDeque::pop_front) {
                return Some(Ok(event));
            }
            let step = runtime.step();
            let end = match step {
                Ok(Step::Continue | Step::Waiting) => continue,
                Ok(Step::Finished(state)) => finish(runtime, state).err(),
                Err(e) => Some(e),
            };
            self.pending = runtime.events.take().unwrap_or_default();
            self.runtime = None;
            self.error = end;
        }
    }
}

/// The stream of [`Engine::run_stream`].
#[cfg(feature = "tokio")]
pub struct RunStream<'e> {
    runtime: Option<Runtime<'e>>,
    offload: Offload,
    pending: VecDeque<Event>,
    error: Option<EngineError>,
}

#[cfg(feature = "tokio")]
impl futures_util::Stream for RunStream<'_> {
    type Item = Result<Event, EngineError>;

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(runtime) = this.runtime.as_mut() else {
                return Poll::Ready(this.error.take().map(Err));
            };
            if let Some(event) = runtime.events.as_mut().and_then(VecDeque::pop_front) {
                return Poll::Ready(Some(Ok(event)));
            }
            let end = match this.offload.run(|| runtime.step_nowait()) {
                Ok(Step::Continue) => continue,
                // Hand out what the step said first (entering `WAITING`).
                Ok(Step::Waiting) if runtime.events.as_ref().is_some_and(|e| !e.is_empty()) => {
                    continue
                }
                Ok(Step::Waiting) => {
                    let in_flight = runtime.in_flight();
                    match runtime.executor.poll_outcome(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Some(outcome)) => {
                            match this.offload.run(|| runtime.complete_outcome(outcome)) {
                                Ok(()) => continue,
                                Err(e) => Some(e),
                            }
                        }
                        Poll::Ready(None) => {
                            Some(crate::ExecutorError::LostOutcomes { in_flight }.into())
                        }
                    }
                }
                Ok(Step::Finished(state)) => finish(runtime, state).err(),
                Err(e) => Some(e),
            };
            this.pending = runtime.events.take().unwrap_or_default();
            this.runtime = None;
            this.error = end;
        }
    }
}

/// Suspends an engine from a listener, a task or another thread.
#[derive(Debug, Clone, Default)]
pub struct SuspendHandle(Arc<AtomicBool>);

impl SuspendHandle {
    /// A handle not yet attached to an engine (pass it to
    /// [`EngineBuilder::suspend_handle`](crate::EngineBuilder::suspend_handle)).
    pub fn new() -> Self {
        SuspendHandle::default()
    }

    /// Asks the engine to suspend.
    pub fn suspend(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// Whether a suspend was asked for and the engine has not run since.
    pub fn is_suspended(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}
