//! Executors: the one thing that differs between engines.
//!
//! The runtime hands an executor [`AtomWork`] (everything needed to run one
//! atom's execute or revert, owned, so it can move to another thread or
//! process) and later collects the [`AtomOutcome`]. The serial executor runs
//! work inline on the caller's thread; parallel and worker executors run it
//! elsewhere and report back.

#[cfg(feature = "tokio")]
mod on_tokio;
mod parallel;
mod serial;
pub mod worker;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use taskflow_patterns::{
    kinds, AtomImpl, AtomIndex, Context, Failure, History, Inputs, Name, Task, TaskError, Value,
};

use crate::listener::Listeners;
use taskflow_persistence::AtomDetailId;

#[cfg(feature = "tokio")]
pub use on_tokio::Tokio;
pub use parallel::Parallel;
pub use serial::Serial;

/// Whether work executes or reverts its atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// Run `execute`.
    Execute,
    /// Run `revert`.
    Revert,
}

/// One atom's execute or revert, ready to run anywhere: an executor hands
/// it to a thread (or a worker) and calls [`run`](AtomWork::run) there.
/// What it holds is the engine's business; an executor reads only which
/// atom and action it is.
pub struct AtomWork {
    /// The atom's index in the compilation.
    pub(crate) atom: AtomIndex,
    /// The atom's name.
    pub(crate) name: Name,
    /// Execute or revert.
    pub(crate) action: Action,
    /// What runs.
    pub(crate) imp: AtomImpl,
    /// Its resolved arguments.
    pub(crate) inputs: Inputs,
    /// What a revert or a retry controller reads besides; `None` for a
    /// task's execute.
    pub(crate) recovery: Option<Box<Recovery>>,
    /// The run's listeners, cancel flag and span.
    pub(crate) shared: Arc<RunShared>,
    /// The atom detail of a task, where its check-ins (and, while it
    /// executes, its progress) are recorded (`None` for a retry
    /// controller, or work run away from the records).
    pub(crate) detail: Option<AtomDetailId>,
    /// For an atom with a timeout (`Atom::timeout`): who ends the work
    /// first, the work or its timeout.
    pub(crate) timer: Option<Arc<Timer>>,
}

/// What all the work of one run shares, behind one pointer: each atom's
/// work clones one `Arc` for the three, where it cloned one for each of the
/// listeners and the cancel flag (the work of every atom pays for the
/// clones and drops, atomic operations all).
pub(crate) struct RunShared {
    /// Listeners, for progress reports and check-ins.
    pub(crate) listeners: Listeners,
    /// Set when the run is asked to stop.
    pub(crate) cancel: Arc<AtomicBool>,
    /// The span that was current when the run started: the work runs
    /// inside it, whichever thread runs it, so that a task's `tracing`
    /// events carry the caller's span. None when the run started outside
    /// any span, and for work rebuilt from a message, in another process.
    pub(crate) span: Option<tracing::Span>,
}

impl RunShared {
    /// What work run away from any engine's span shares (a worker's).
    pub(crate) fn without_span(listeners: Listeners, cancel: Arc<AtomicBool>) -> Arc<RunShared> {
        Arc::new(RunShared {
            listeners,
            cancel,
            span: None,
        })
    }
}

/// What the work of a revert, or of a retry controller, reads besides its
/// inputs. It is kept out of line: a task's execute, the work on every
/// atom's path, has none of it, and the work is moved from the scheduler to
/// the executor and into its run (at 272 bytes with these fields inline,
/// each move was a `memcpy`).
#[derive(Debug)]
pub(crate) struct Recovery {
    /// For a retry controller, its history.
    pub(crate) history: Option<History>,
    /// When reverting: its own result.
    pub(crate) own_result: Option<Arc<Value>>,
    /// When reverting: its own failure.
    pub(crate) own_failure: Option<Failure>,
    /// When reverting: the flow's failures.
    pub(crate) flow_failures: Arc<[Failure]>,
}

impl Recovery {
    /// The recovery of work with these parts, `None` when all are empty
    /// (a task's execute).
    pub(crate) fn boxed(
        history: Option<History>,
        own_result: Option<Arc<Value>>,
        own_failure: Option<Failure>,
        flow_failures: Arc<[Failure]>,
    ) -> Option<Box<Recovery>> {
        let empty = history.is_none()
            && own_result.is_none()
            && own_failure.is_none()
            && flow_failures.is_empty();
        (!empty).then(|| {
            Box::new(Recovery {
                history,
                own_result,
                own_failure,
                flow_failures,
            })
        })
    }
}

/// The clock of one timed atom's work: the work and its timeout race to
/// end it, and exactly one wins, so an atom gets exactly one outcome.
#[derive(Debug)]
pub(crate) struct Timer {
    limit: Duration,
    /// `RUNNING`, then `FINISHED` (the work ended first) or `TIMED_OUT`.
    state: AtomicU8,
    /// What the task's `Context::is_cancelled` sees.
    timed_out: AtomicBool,
}

const RUNNING: u8 = 0;
const FINISHED: u8 = 1;
const TIMED_OUT: u8 = 2;

impl Timer {
    pub(crate) fn new(limit: Duration) -> Arc<Timer> {
        Arc::new(Timer {
            limit,
            state: AtomicU8::new(RUNNING),
            timed_out: AtomicBool::new(false),
        })
    }

    /// The work ended: true if before its timeout (its outcome counts).
    fn finish(&self) -> bool {
        self.state
            .compare_exchange(RUNNING, FINISHED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The timeout of one atom's work, held by the executor that runs it
/// (see [`AtomWork::timeout_handle`]).
#[derive(Debug, Clone)]
pub struct TimeoutHandle {
    timer: Arc<Timer>,
    atom: AtomIndex,
    action: Action,
    name: Name,
}

impl TimeoutHandle {
    /// How long the work may take.
    pub fn limit(&self) -> Duration {
        self.timer.limit
    }

    /// Whether the work is still running (neither finished nor timed out).
    pub fn is_running(&self) -> bool {
        self.timer.state.load(Ordering::Acquire) == RUNNING
    }

    /// Ends the work by its timeout, if it has not ended yet: the task's
    /// `ctx.is_cancelled()` turns true, the outcome the work would give
    /// later is dropped ([`AtomWork::run`] returns `None`), and this
    /// returns the atom's outcome, a [`kinds::TIMEOUT`] failure. `None`
    /// when the work finished first: its outcome is on its way.
    pub fn expire(&self) -> Option<AtomOutcome> {
        self.timer
            .state
            .compare_exchange(RUNNING, TIMED_OUT, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        self.timer.timed_out.store(true, Ordering::Release);
        Some(timeout_outcome(
            self.atom,
            self.action,
            &self.name,
            self.timer.limit,
        ))
    }
}

/// The outcome of work that ran past its timeout.
pub(crate) fn timeout_outcome(
    atom: AtomIndex,
    action: Action,
    name: &str,
    limit: Duration,
) -> AtomOutcome {
    let what = match action {
        Action::Execute => "execute",
        Action::Revert => "revert",
    };
    AtomOutcome {
        atom,
        action,
        result: Err(Failure::new(
            kinds::TIMEOUT,
            format!("{what} did not finish within its timeout of {limit:?}; it was cancelled"),
        )
        .with_atom(name)),
    }
}

/// How an atom's work ended.
#[derive(Debug)]
pub struct AtomOutcome {
    /// The atom.
    pub atom: AtomIndex,
    /// Execute or revert.
    pub action: Action,
    /// The result (for a revert: what it recorded with
    /// `Context::set_revert_result`, else `Null`), or the failure, naming
    /// the atom.
    pub result: Result<Value, Failure>,
}

impl AtomWork {
    /// The atom's index in the compilation.
    pub fn atom(&self) -> AtomIndex {
        self.atom
    }

    /// The atom's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Execute or revert.
    pub fn action(&self) -> Action {
        self.action
    }

    /// How long the work may take (the atom's `Atom::timeout`), if limited.
    pub fn timeout(&self) -> Option<Duration> {
        self.timer.as_ref().map(|t| t.limit)
    }

    /// For work with a timeout, the handle with which the executor that
    /// runs it ends it when the time is up ([`TimeoutHandle::expire`]).
    pub fn timeout_handle(&self) -> Option<TimeoutHandle> {
        self.timer.as_ref().map(|timer| TimeoutHandle {
            timer: timer.clone(),
            atom: self.atom,
            action: self.action,
            name: self.name.clone(),
        })
    }

    /// For a retry controller, its history.
    pub(crate) fn history(&self) -> Option<&History> {
        self.recovery.as_ref().and_then(|r| r.history.as_ref())
    }

    /// When reverting: the atom's own result.
    pub(crate) fn own_result(&self) -> Option<&Value> {
        self.recovery.as_ref().and_then(|r| r.own_result.as_deref())
    }

    /// When reverting: the atom's own failure.
    pub(crate) fn own_failure(&self) -> Option<&Failure> {
        self.recovery.as_ref().and_then(|r| r.own_failure.as_ref())
    }

    /// When reverting: the flow's failures.
    pub(crate) fn flow_failures(&self) -> &[Failure] {
        self.recovery.as_ref().map_or(&[], |r| &r.flow_failures)
    }

    /// Whether the atom runs an async task ([`Task::as_async`]).
    pub fn is_async(&self) -> bool {
        matches!(&self.imp, AtomImpl::Task(t) if t.as_async().is_some())
    }

    /// Runs the work on the current thread, inside the span that was
    /// current when the engine's run started (and with the `tracing`
    /// subscriber that span belongs to as the thread's default, so a
    /// subscriber set only for the caller's thread hears the task too). A
    /// panic in the task is caught and becomes a failure with the panic's
    /// message. An async task is driven to its end here.
    ///
    /// `None` when the work has a timeout that [expired](TimeoutHandle::expire)
    /// before it finished: the atom's outcome was the timeout's.
    pub fn run(self) -> Option<AtomOutcome> {
        // A run started outside any span (the usual case when nothing
        // traces) costs one check here.
        let Some(span) = self.shared.span.clone() else {
            return self.run_here();
        };
        match span.with_subscriber(|(_, dispatch)| dispatch.clone()) {
            None => self.run_here(),
            Some(dispatch) => tracing::dispatcher::with_default(&dispatch, || {
                let _entered = span.enter();
                self.run_here()
            }),
        }
    }

    fn run_here(self) -> Option<AtomOutcome> {
        // Timed out while it waited for a thread: its outcome was given.
        if self
            .timer
            .as_ref()
            .is_some_and(|t| t.state.load(Ordering::Acquire) == TIMED_OUT)
        {
            return None;
        }
        let listeners = &self.shared.listeners;
        let name = &*self.name;
        let detail = self.detail;
        // Progress is an execution's: a revert's reaches listeners only.
        let progress_detail = detail.filter(|_| self.action == Action::Execute);
        let report = |fraction: f32| listeners.report(progress_detail, name, fraction);
        let checkin = |message: &str| listeners.check_in(detail, name, message);
        let mut ctx = Context::new(name, &self.inputs)
            .with_own_result(self.own_result())
            .with_own_failure(self.own_failure())
            .with_flow_failures(self.flow_failures())
            .with_cancel(&self.shared.cancel);
        if let Some(timer) = &self.timer {
            ctx = ctx.with_timeout_flag(&timer.timed_out);
        }
        if listeners.hears_progress() {
            ctx = ctx.with_progress(&report).with_checkin(&checkin);
        }
        let history = self.history().cloned().unwrap_or_default();
        let outcome = catch_unwind(AssertUnwindSafe(|| match (&self.imp, self.action) {
            (AtomImpl::Task(t), Action::Execute) => execute_task(&**t, &mut ctx),
            (AtomImpl::Task(t), Action::Revert) => revert_task(&**t, &mut ctx)
                .map(|()| ctx.take_revert_result().unwrap_or(Value::Null)),
            (AtomImpl::Retry(r), Action::Execute) => r.execute(&history, &mut ctx),
            (AtomImpl::Retry(r), Action::Revert) => r
                .revert(&history, &mut ctx)
                .map(|()| ctx.take_revert_result().unwrap_or(Value::Null)),
        }));
        let result = match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(err.into_failure(name)),
            Err(panic) => Err(Failure::from_panic(&*panic).with_atom(name)),
        };
        if let Some(timer) = &self.timer {
            if !timer.finish() {
                return None;
            }
        }
        Some(AtomOutcome {
            atom: self.atom,
            action: self.action,
            result,
        })
    }
}

/// Runs a task's execute on this thread: an async task through the tokio
/// executor's `block_on` when the engine has tokio (so tokio's timers and
/// sockets work in it), else through the task's own `execute`.
fn execute_task(task: &dyn Task, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
    #[cfg(feature = "tokio")]
    if let Some(task) = task.as_async() {
        return on_tokio::block_on(task.execute(ctx));
    }
    task.execute(ctx)
}

/// As [`execute_task`], for revert.
fn revert_task(task: &dyn Task, ctx: &mut Context<'_>) -> Result<(), TaskError> {
    #[cfg(feature = "tokio")]
    if let Some(task) = task.as_async() {
        return on_tokio::block_on(task.revert(ctx));
    }
    task.revert(ctx)
}

/// Runs timed work on a helper thread and waits for it at most its
/// timeout, on the calling thread: how the serial engine (which runs
/// atoms on the caller's thread, where a blocking task cannot be stopped)
/// keeps a task that never returns from holding the flow. Past the
/// timeout the outcome is the timeout's; the helper thread goes on until
/// the task returns (it sees `ctx.is_cancelled()`), and its outcome is
/// dropped.
pub(crate) fn run_with_timeout(work: AtomWork, handle: &TimeoutHandle) -> AtomOutcome {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    let (atom, action) = (work.atom, work.action);
    let spawned = std::thread::Builder::new()
        .name("taskflow-timed".to_owned())
        .spawn(move || {
            if let Some(outcome) = work.run() {
                let _ = tx.send(outcome);
            }
        });
    let lost = |what: String| AtomOutcome {
        atom,
        action,
        result: Err(Failure::new(kinds::PANIC, what).with_atom(&*handle.name)),
    };
    if let Err(e) = spawned {
        return lost(format!(
            "cannot start the thread that runs an atom with a timeout: {e}"
        ));
    }
    match rx.recv_timeout(handle.limit()) {
        Ok(outcome) => outcome,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => match handle.expire() {
            Some(outcome) => outcome,
            // It finished just now: its outcome is being sent.
            None => rx
                .recv()
                .unwrap_or_else(|_| lost("the atom's thread ended without an outcome".into())),
        },
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
            lost("the atom's thread ended without an outcome".into())
        }
    }
}

/// Runs atoms' work. Small on purpose: submit work without waiting for it,
/// then collect outcomes.
pub trait Executor: Send {
    /// Starts the work. Only the serial executor runs it before returning.
    fn submit(&mut self, work: AtomWork);

    /// Starts the work when it is all there is to do: nothing else is in
    /// flight or ready, so nothing could run beside it and nothing can
    /// complete before it. An executor may run it on the calling thread
    /// (the engine's), sparing a hand-off to another thread and back; its
    /// outcome is then ready at once. By default it is
    /// [`submit`](Executor::submit)ted like any other work.
    fn submit_alone(&mut self, work: AtomWork) {
        self.submit(work);
    }

    /// An outcome that is ready now, if any.
    fn try_outcome(&mut self) -> Option<AtomOutcome>;

    /// Waits for the next outcome; `None` when no work is in flight.
    fn wait_outcome(&mut self) -> Option<AtomOutcome>;

    /// Why the last [`wait_outcome`](Executor::wait_outcome) gave `None`
    /// while work was in flight, when the executor knows (the tokio
    /// executor asked to wait on the only thread of a current-thread
    /// runtime); `None` (the default): the engine reports the outcomes as
    /// lost.
    fn why_no_outcome(&mut self) -> Option<crate::ExecutorError> {
        None
    }

    /// The next outcome, for an engine run from async code
    /// (`Engine::run_async`): ready with it, or pending until it arrives
    /// (waking `cx`); ready with `None` when no work is in flight. The
    /// tokio executor waits without blocking; by default this is
    /// [`wait_outcome`](Executor::wait_outcome), which blocks the thread
    /// that polls until the outcome arrives.
    fn poll_outcome(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<AtomOutcome>> {
        let _ = cx;
        std::task::Poll::Ready(self.wait_outcome())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_on_every_atoms_path_stays_small() {
        // A task's execute is moved from the scheduler to the executor and
        // into its run; with its revert and retry parts inline it was 272
        // bytes and each move a `memcpy` (still at 136, with the listeners
        // and the cancel flag two pointers of their own). At 128 (its one
        // input held inline) it is moved with a few vector stores.
        assert_eq!(std::mem::size_of::<AtomWork>(), 128);
    }

    #[test]
    fn a_recovery_with_nothing_in_it_is_not_boxed() {
        assert!(Recovery::boxed(None, None, None, Arc::new([])).is_none());
        let with_result = Recovery::boxed(None, Some(Arc::new(Value::from(1))), None, Arc::new([]));
        assert_eq!(
            with_result.and_then(|r| r.own_result).as_deref(),
            Some(&Value::from(1))
        );
        let failures: Arc<[Failure]> = Arc::new([Failure::new("Boom", "x")]);
        assert!(Recovery::boxed(None, None, None, failures).is_some());
    }
}
