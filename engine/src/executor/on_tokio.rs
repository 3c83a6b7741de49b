//! The tokio executor: atoms as tokio tasks (feature `tokio`).

use std::cell::OnceCell;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::Poll;

use futures_util::FutureExt as _;
use taskflow_patterns::{AtomImpl, Context, Failure, Value};
use tokio::runtime::{Handle, Runtime, RuntimeFlavor};
use tokio::sync::mpsc;
use tracing::instrument::WithSubscriber as _;
use tracing::Instrument as _;

use super::{timeout_outcome, Action, AtomOutcome, AtomWork, Executor};
use crate::{EngineError, ExecutorError};

/// Runs atoms as tokio tasks, on a tokio runtime passed in
/// ([`Tokio::with_handle`], [`Tokio::current`]) or one of its own
/// ([`Tokio::new`], [`Tokio::with_threads`]).
///
/// An async task ([`AsyncTask`](taskflow_patterns::AsyncTask)) runs as a
/// tokio task: while it awaits it holds no thread, so thousands of atoms
/// that wait on the network or a timer run at once on a few worker
/// threads. A blocking task (a [`Task`](taskflow_patterns::Task)) in the
/// same flow goes to the runtime's blocking pool (`spawn_blocking`), never
/// onto the async workers. The runtime of the engine (the loop, the
/// checkpoints, retries and reverts) is the one every engine runs; only
/// where atoms run differs.
///
/// The engine runs from async code with
/// [`Engine::run_async`](crate::Engine::run_async), and from a plain
/// thread with [`Engine::run`](crate::Engine::run) (not from a runtime's
/// worker thread: `run` blocks while it waits).
///
/// An async task that is all there is to do (nothing else in flight or
/// ready, as along a linear flow) is first polled on the engine's thread,
/// inside the runtime's context: one that finishes without waiting (a
/// cache hit, a no-op) costs no hand-off to a worker and back; one that
/// waits goes on as a tokio task like any other.
///
/// An atom's timeout (`Atom::timeout`) drops an async task at its next
/// `.await`; a blocking task sees `ctx.is_cancelled()`, and its blocking
/// thread stays taken until it returns (its outcome is dropped).
///
/// ```
/// use taskflow_engine::{Engine, Tokio};
/// use taskflow_patterns::{async_atom, async_trait, AsyncTask, Context, FlowState, TaskError, Unordered, Value};
///
/// struct Nap;
/// #[async_trait]
/// impl AsyncTask for Nap {
///     async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
///         tokio::time::sleep(std::time::Duration::from_millis(10)).await;
///         Ok(Value::Null)
///     }
/// }
///
/// let mut flow = Unordered::new("naps");
/// for i in 0..100 {
///     flow = flow.add(async_atom(format!("nap-{i}"), Nap));
/// }
/// // A runtime of its own, with 2 worker threads: the 100 naps overlap.
/// let mut engine = Engine::builder(flow).executor(Tokio::with_threads(2)?).build()?;
/// assert_eq!(engine.run()?, FlowState::Success);
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
pub struct Tokio {
    handle: Handle,
    /// The runtime the executor made, if it made one.
    runtime: Option<Runtime>,
    tx: mpsc::UnboundedSender<AtomOutcome>,
    rx: mpsc::UnboundedReceiver<AtomOutcome>,
    /// Work submitted whose outcome is not yet handed out.
    outstanding: usize,
    /// Outcomes of work that finished when first polled here.
    ready: std::collections::VecDeque<AtomOutcome>,
    /// Set when a wait was refused on a current-thread runtime's thread.
    refused: bool,
}

impl Tokio {
    /// A multi-thread runtime of its own, with tokio's default number of
    /// worker threads (one per core).
    pub fn new() -> Result<Self, EngineError> {
        Self::build(tokio::runtime::Builder::new_multi_thread())
    }

    /// A multi-thread runtime of its own with `threads` worker threads (at
    /// least one).
    pub fn with_threads(threads: usize) -> Result<Self, EngineError> {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(threads.max(1));
        Self::build(builder)
    }

    fn build(mut builder: tokio::runtime::Builder) -> Result<Self, EngineError> {
        let runtime = builder
            .enable_all()
            .thread_name("taskflow-tokio")
            .build()
            .map_err(ExecutorError::RuntimeStart)?;
        let mut executor = Tokio::with_handle(runtime.handle().clone());
        executor.runtime = Some(runtime);
        Ok(executor)
    }

    /// Runs atoms on the runtime `handle` belongs to (the caller's).
    pub fn with_handle(handle: Handle) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        Tokio {
            handle,
            runtime: None,
            tx,
            rx,
            outstanding: 0,
            ready: std::collections::VecDeque::new(),
            refused: false,
        }
    }

    /// Runs atoms on the runtime the caller runs in (from async code, or a
    /// thread inside a runtime); an error outside any runtime.
    pub fn current() -> Result<Self, EngineError> {
        let handle = Handle::try_current().map_err(|_| ExecutorError::NoRuntime)?;
        Ok(Tokio::with_handle(handle))
    }

    /// The runtime the atoms run on.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    fn take(&mut self, outcome: Option<AtomOutcome>) -> Option<AtomOutcome> {
        if outcome.is_some() {
            self.outstanding -= 1;
        }
        outcome
    }
}

impl Executor for Tokio {
    fn submit(&mut self, work: AtomWork) {
        self.outstanding += 1;
        let tx = self.tx.clone();
        if work.is_async() {
            self.handle.spawn(async move {
                let _ = tx.send(run_async(work).await);
            });
            return;
        }
        let Some(timer) = work.timeout_handle() else {
            self.handle.spawn_blocking(move || {
                if let Some(outcome) = work.run() {
                    let _ = tx.send(outcome);
                }
            });
            return;
        };
        let (atom, action, name) = (work.atom, work.action, work.name.clone());
        let mut blocking = self.handle.spawn_blocking(move || work.run());
        self.handle.spawn(async move {
            let ran = match tokio::time::timeout(timer.limit(), &mut blocking).await {
                Ok(ran) => ran,
                Err(_) => match timer.expire() {
                    Some(outcome) => {
                        let _ = tx.send(outcome);
                        return;
                    }
                    // It finished just now.
                    None => blocking.await,
                },
            };
            let outcome = match ran {
                Ok(Some(outcome)) => outcome,
                Ok(None) => return,
                // The runtime shut down under it.
                Err(e) => AtomOutcome {
                    atom,
                    action,
                    result: Err(Failure::new(
                        taskflow_patterns::kinds::INTERRUPTED,
                        format!("the tokio runtime stopped the atom's blocking thread: {e}"),
                    )
                    .with_atom(&*name)),
                },
            };
            let _ = tx.send(outcome);
        });
    }

    /// An async task is polled once here first (see the type's docs).
    fn submit_alone(&mut self, work: AtomWork) {
        if !work.is_async() {
            return self.submit(work);
        }
        self.outstanding += 1;
        let mut future = Box::pin(run_async(work));
        let polled = {
            let _runtime = self.handle.enter();
            let mut cx = std::task::Context::from_waker(futures_util::task::noop_waker_ref());
            future.as_mut().poll(&mut cx)
        };
        match polled {
            Poll::Ready(outcome) => self.ready.push_back(outcome),
            Poll::Pending => {
                let tx = self.tx.clone();
                self.handle.spawn(async move {
                    let _ = tx.send(future.await);
                });
            }
        }
    }

    fn try_outcome(&mut self) -> Option<AtomOutcome> {
        if self.outstanding == 0 {
            return None;
        }
        if let Some(outcome) = self.ready.pop_front() {
            return self.take(Some(outcome));
        }
        let outcome = self.rx.try_recv().ok();
        self.take(outcome)
    }

    fn wait_outcome(&mut self) -> Option<AtomOutcome> {
        if self.outstanding == 0 {
            return None;
        }
        if let Some(outcome) = self.ready.pop_front() {
            return self.take(Some(outcome));
        }
        let outcome = match Handle::try_current().map(|h| h.runtime_flavor()) {
            // Not inside a runtime: a plain thread may block.
            Err(_) => self.rx.blocking_recv(),
            // A multi-thread runtime's worker hands its other tasks on
            // while it blocks.
            Ok(RuntimeFlavor::MultiThread) => {
                tokio::task::block_in_place(|| self.rx.blocking_recv())
            }
            // A current-thread runtime: on a thread of its blocking pool
            // the wait is allowed; on the runtime's own thread, which alone
            // would run the tasks waited for, tokio refuses it (a panic,
            // caught here).
            Ok(_) => {
                let rx = &mut self.rx;
                match std::panic::catch_unwind(AssertUnwindSafe(|| rx.blocking_recv())) {
                    Ok(outcome) => outcome,
                    Err(_) => {
                        self.refused = true;
                        None
                    }
                }
            }
        };
        self.take(outcome)
    }

    fn why_no_outcome(&mut self) -> Option<ExecutorError> {
        std::mem::take(&mut self.refused).then_some(ExecutorError::WaitOnCurrentThread)
    }

    fn poll_outcome(&mut self, cx: &mut std::task::Context<'_>) -> Poll<Option<AtomOutcome>> {
        if self.outstanding == 0 {
            return Poll::Ready(None);
        }
        if let Some(outcome) = self.ready.pop_front() {
            return Poll::Ready(self.take(Some(outcome)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(outcome) => Poll::Ready(self.take(outcome)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for Tokio {
    /// A runtime of its own stops without waiting for blocking tasks still
    /// running (dropping it may happen inside async code, where waiting is
    /// not allowed).
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl std::fmt::Debug for Tokio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokio")
            .field("own_runtime", &self.runtime.is_some())
            .field("outstanding", &self.outstanding)
            .finish_non_exhaustive()
    }
}

/// Runs an async task's work as a future, inside the run's span, within
/// its timeout (past it the future is dropped), a panic caught.
async fn run_async(mut work: AtomWork) -> AtomOutcome {
    let (atom, action, name) = (work.atom, work.action, work.name.clone());
    let limit = work.timeout();
    // The future drops at the timeout; no race with a timer to settle.
    work.timer = None;
    let span = work.shared.span.clone();
    let future = AssertUnwindSafe(run_here(work)).catch_unwind();
    let future = async move {
        match limit {
            None => Some(future.await),
            Some(limit) => tokio::time::timeout(limit, future).await.ok(),
        }
    };
    let ran = match span {
        None => future.await,
        Some(span) => match tracing::Span::with_subscriber(&span, |(_, d)| d.clone()) {
            None => future.instrument(span).await,
            Some(dispatch) => future.instrument(span).with_subscriber(dispatch).await,
        },
    };
    match ran {
        Some(Ok(outcome)) => outcome,
        Some(Err(panic)) => AtomOutcome {
            atom,
            action,
            result: Err(Failure::from_panic(&*panic).with_atom(&*name)),
        },
        None => timeout_outcome(atom, action, &name, limit.unwrap_or_default()),
    }
}

/// [`AtomWork::run_here`](super::AtomWork) for an async task: the same
/// context, awaited.
async fn run_here(work: AtomWork) -> AtomOutcome {
    let listeners = &work.shared.listeners;
    let name = &*work.name;
    let detail = work.detail;
    let progress_detail = detail.filter(|_| work.action == Action::Execute);
    let report = |fraction: f32| listeners.report(progress_detail, name, fraction);
    let checkin = |message: &str| listeners.check_in(detail, name, message);
    let mut ctx = Context::new(name, &work.inputs)
        .with_own_result(work.own_result())
        .with_own_failure(work.own_failure())
        .with_flow_failures(work.flow_failures())
        .with_cancel(&work.shared.cancel);
    if listeners.hears_progress() {
        ctx = ctx.with_progress(&report).with_checkin(&checkin);
    }
    let result = match &work.imp {
        AtomImpl::Task(task) => match (task.as_async(), work.action) {
            (Some(task), Action::Execute) => task.execute(&mut ctx).await,
            (Some(task), Action::Revert) => task
                .revert(&mut ctx)
                .await
                .map(|()| ctx.take_revert_result().unwrap_or(Value::Null)),
            (None, Action::Execute) => task.execute(&mut ctx),
            (None, Action::Revert) => task
                .revert(&mut ctx)
                .map(|()| ctx.take_revert_result().unwrap_or(Value::Null)),
        },
        AtomImpl::Retry(r) => {
            let history = work.history().cloned().unwrap_or_default();
            match work.action {
                Action::Execute => r.execute(&history, &mut ctx),
                Action::Revert => r
                    .revert(&history, &mut ctx)
                    .map(|()| ctx.take_revert_result().unwrap_or(Value::Null)),
            }
        }
    };
    AtomOutcome {
        atom: work.atom,
        action: work.action,
        result: result.map_err(|e| e.into_failure(name)),
    }
}

thread_local! {
    /// The current-thread runtime that drives async tasks on this thread
    /// when an engine other than the tokio one runs them (see [`block_on`]).
    static LOCAL: OnceCell<Option<Arc<Runtime>>> = const { OnceCell::new() };
}

/// Drives an async task's future to its end on this thread, for the
/// blocking engines (serial, parallel, a worker): inside the runtime the
/// thread belongs to if any (a blocking thread of the tokio executor),
/// else on a current-thread runtime kept for the thread, so that tokio's
/// timers and sockets work in the task.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    if let Ok(handle) = Handle::try_current() {
        // On a worker of a multi-thread runtime (an engine run inside async
        // code), the worker hands its other tasks on while this blocks.
        if handle.runtime_flavor() == RuntimeFlavor::MultiThread {
            return tokio::task::block_in_place(|| handle.block_on(future));
        }
        return handle.block_on(future);
    }
    let local = LOCAL.with(|local| {
        local
            .get_or_init(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(Arc::new)
                    .map_err(|e| {
                        tracing::error!("cannot start a tokio runtime for async tasks: {e}")
                    })
                    .ok()
            })
            .clone()
    });
    match local {
        Some(runtime) => runtime.block_on(future),
        // No runtime could start: a plain executor drives the future
        // (a task using tokio's timers or sockets then fails, naming why).
        None => futures_executor_block_on(future),
    }
}

/// A plain `block_on` (futures-lite's, through the patterns crate's
/// blocking form of async tasks).
fn futures_executor_block_on<F: Future>(future: F) -> F::Output {
    futures_lite::future::block_on(future)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use taskflow_patterns::{
        async_atom, async_trait, atom, task_fn, AsyncTask, Context, FlowState, Linear,
        StoredAsyncTask, TaskError, Unordered, Value,
    };
    use taskflow_persistence::{Backend, SqliteBackend};

    use super::Tokio;
    use crate::{Engine, EngineError};

    /// Sleeps `ms` on tokio's timer, then returns its name.
    struct Nap(u64);

    #[async_trait]
    impl AsyncTask for Nap {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            tokio::time::sleep(Duration::from_millis(self.0)).await;
            Ok(ctx.atom_name().into())
        }
    }

    #[test]
    fn blocking_tasks_stay_off_the_async_workers() {
        // 2 async workers. 8 blocking tasks of 200 ms take 800 ms if they
        // run on the workers; on the blocking pool they overlap, and 100
        // async naps of 50 ms run beside them.
        let executor = Tokio::with_threads(2).unwrap();
        let mut flow = Unordered::new("mixed");
        for i in 0..8 {
            flow = flow.add(atom(
                format!("block-{i}"),
                task_fn(|_| {
                    std::thread::sleep(Duration::from_millis(200));
                    Ok(Value::Null)
                }),
            ));
        }
        for i in 0..100 {
            flow = flow.add(async_atom(format!("nap-{i}"), Nap(50)));
        }
        let mut engine = Engine::builder(flow).executor(executor).build().unwrap();
        let started = Instant::now();
        assert_eq!(engine.run().unwrap(), FlowState::Success);
        let took = started.elapsed();
        assert!(took < Duration::from_millis(600), "took {took:?}");
    }

    #[test]
    fn async_tasks_wait_without_a_thread_each() {
        // 2,000 naps of 20 ms on 2 worker threads: far below the 40 s they
        // would take one after another (and below what 2 threads blocking
        // in turn could do).
        let mut flow = Unordered::new("naps");
        for i in 0..2000 {
            flow = flow.add(async_atom(format!("nap-{i}"), Nap(20)));
        }
        let mut engine = Engine::builder(flow)
            .executor(Tokio::with_threads(2).unwrap())
            .build()
            .unwrap();
        let started = Instant::now();
        assert_eq!(engine.run().unwrap(), FlowState::Success);
        let took = started.elapsed();
        assert!(took < Duration::from_secs(2), "took {took:?}");
    }

    /// Calls `undo` when reverted; fails when told to.
    struct Step {
        fail: bool,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    #[async_trait]
    impl AsyncTask for Step {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            self.log.lock().unwrap().push(ctx.atom_name().to_owned());
            ctx.progress(1.0);
            if self.fail {
                return Err(TaskError::new("Boom", "it broke"));
            }
            Ok(json!(ctx.atom_name()))
        }

        async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
            tokio::task::yield_now().await;
            self.log
                .lock()
                .unwrap()
                .push(format!("~{}", ctx.atom_name()));
            ctx.set_revert_result("undone");
            Ok(())
        }
    }

    fn mixed_flow(log: &std::sync::Arc<std::sync::Mutex<Vec<String>>>) -> Linear {
        let blocking_log = log.clone();
        Linear::new("mixed")
            .add(async_atom(
                "a",
                Step {
                    fail: false,
                    log: log.clone(),
                },
            ))
            .add(atom(
                "b",
                task_fn(move |_| {
                    blocking_log.lock().unwrap().push("b".into());
                    Ok(Value::Null)
                }),
            ))
            .add(async_atom(
                "c",
                Step {
                    fail: true,
                    log: log.clone(),
                },
            ))
    }

    async fn run_mixed_flow_async(backend: std::sync::Arc<dyn Backend>) {
        let log = std::sync::Arc::default();
        let mut engine = Engine::builder(mixed_flow(&log))
            .persistence(backend)
            .executor(Tokio::current().unwrap())
            .build()
            .unwrap();
        match engine.run_async().await {
            Err(EngineError::Failed { state, .. }) => assert_eq!(state, FlowState::Reverted),
            other => panic!("expected a reverted flow, got {other:?}"),
        }
        assert_eq!(*log.lock().unwrap(), ["a", "b", "c", "~c", "~a"]);
        let a = engine.storage().atom_detail("a").unwrap();
        assert_eq!(a.revert_result().map(|v| &**v), Some(&json!("undone")));
    }

    #[test]
    fn run_async_mixes_async_and_blocking_tasks_and_reverts() {
        // A multi-thread runtime with SQLite records (written under
        // block_in_place), and a current-thread one with memory records.
        let dir = tempfile::tempdir().unwrap();
        let sqlite: std::sync::Arc<dyn Backend> =
            std::sync::Arc::new(SqliteBackend::open(dir.path().join("flows.db")).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_mixed_flow_async(sqlite));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(run_mixed_flow_async(std::sync::Arc::new(
            taskflow_persistence::MemoryBackend::new(),
        )));
    }

    #[test]
    fn run_stream_yields_every_change_then_the_failure() {
        use futures_util::StreamExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let log = std::sync::Arc::default();
            let mut engine = Engine::builder(mixed_flow(&log))
                .executor(Tokio::current().unwrap())
                .build()
                .unwrap();
            let items: Vec<_> = engine.run_stream().collect().await;
            let (last, events) = items.split_last().unwrap();
            assert!(
                matches!(
                    last,
                    Err(EngineError::Failed {
                        state: FlowState::Reverted,
                        ..
                    })
                ),
                "{last:?}"
            );
            let reverted: Vec<String> = events
                .iter()
                .filter_map(|e| match e {
                    Ok(crate::Event::Atom(a)) if a.to == taskflow_patterns::AtomState::Reverted => {
                        Some(a.atom.to_string())
                    }
                    _ => None,
                })
                .collect();
            assert_eq!(reverted, ["c", "b", "a"]);
            assert!(events
                .iter()
                .any(|e| matches!(e, Ok(crate::Event::Engine(crate::EngineState::Waiting)))));
        });
    }

    #[test]
    fn run_async_does_not_block_its_runtime() {
        // On a current-thread runtime, a ticker beside the engine keeps
        // ticking while the flow's naps run.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let ticks = std::sync::Arc::new(AtomicUsize::new(0));
            let ticker = {
                let ticks = ticks.clone();
                tokio::spawn(async move {
                    loop {
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        ticks.fetch_add(1, Ordering::SeqCst);
                    }
                })
            };
            let flow = Linear::new("naps")
                .add(async_atom("one", Nap(100)))
                .add(async_atom("two", Nap(100)));
            let mut engine = Engine::builder(flow)
                .executor(Tokio::current().unwrap())
                .build()
                .unwrap();
            assert_eq!(engine.run_async().await.unwrap(), FlowState::Success);
            ticker.abort();
            assert!(
                ticks.load(Ordering::SeqCst) >= 10,
                "the runtime was blocked"
            );
        });
    }

    #[derive(Serialize, Deserialize)]
    struct Greet {
        greeting: String,
    }

    #[async_trait]
    #[typetag::serde]
    impl StoredAsyncTask for Greet {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            tokio::time::sleep(Duration::from_millis(1)).await;
            let name: String = ctx.input("name")?;
            Ok(format!("{}, {name}", self.greeting).into())
        }
    }

    #[test]
    fn a_stored_async_task_is_rebuilt_from_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let backend: std::sync::Arc<dyn Backend> =
            std::sync::Arc::new(SqliteBackend::open(dir.path().join("flows.db")).unwrap());
        let flow = Linear::new("greet").add(
            async_atom(
                "greet",
                Greet {
                    greeting: "hello".into(),
                },
            )
            .requires(["name"])
            .provides("said"),
        );
        let mut first = Engine::builder(flow)
            .store(json!({ "name": "ada" }))
            .persistence(backend.clone())
            .build()
            .unwrap();
        first.prepare().unwrap();
        let id = first.storage().flow_detail_id();
        drop(first);
        let mut rebuilt = Engine::load(backend, id)
            .unwrap()
            .executor(Tokio::with_threads(1).unwrap())
            .build()
            .unwrap();
        assert_eq!(rebuilt.run().unwrap(), FlowState::Success);
        assert_eq!(rebuilt.storage().fetch("said"), Some(&json!("hello, ada")));
    }

    #[test]
    fn run_waits_inside_a_runtime_where_waiting_is_allowed() {
        let flow = || {
            Linear::new("naps")
                .add(async_atom("one", Nap(5)))
                .add(async_atom("two", Nap(5)))
        };
        // On a worker of a multi-thread runtime (under block_in_place).
        let multi = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let state = multi.block_on(async {
            tokio::spawn(async move {
                let mut engine = Engine::builder(flow())
                    .executor(Tokio::current().unwrap())
                    .build()
                    .unwrap();
                engine.run().unwrap()
            })
            .await
            .unwrap()
        });
        assert_eq!(state, FlowState::Success);
        // On a blocking thread of a current-thread runtime.
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let state = current.block_on(async {
            let handle = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                let mut engine = Engine::builder(flow())
                    .executor(Tokio::with_handle(handle))
                    .build()
                    .unwrap();
                engine.run().unwrap()
            })
            .await
            .unwrap()
        });
        assert_eq!(state, FlowState::Success);
    }

    #[test]
    fn run_on_a_current_thread_runtimes_own_thread_says_why_it_cannot_wait() {
        // Unordered naps: the engine hands both out and must wait, on the
        // one thread that would run them.
        let flow = Unordered::new("naps")
            .add(async_atom("one", Nap(5)))
            .add(async_atom("two", Nap(5)));
        let current = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = current.block_on(async {
            let mut engine = Engine::builder(flow)
                .executor(Tokio::current().unwrap())
                .build()
                .unwrap();
            engine.run().unwrap_err()
        });
        let message = err.to_string();
        assert!(
            message.contains("current-thread") && message.contains("run_async"),
            "{message}"
        );
    }

    #[test]
    fn current_outside_a_runtime_is_an_error() {
        let err = Tokio::current().unwrap_err();
        assert!(err.to_string().contains("no tokio runtime"), "{err}");
    }
}
