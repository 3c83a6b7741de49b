//! Executors: the one thing that differs between engines.
//!
//! The runtime hands an executor [`AtomWork`] (everything needed to run one
//! atom's execute or revert, owned, so it can move to another thread or
//! process) and later collects the [`AtomOutcome`]. The serial executor runs
//! work inline on the caller's thread; parallel and worker executors run it
//! elsewhere and report back.

mod parallel;
mod serial;
pub mod worker;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use taskflow_patterns::{AtomImpl, AtomIndex, Context, Failure, History, Inputs, Value};

use crate::listener::Listeners;
use taskflow_persistence::AtomDetailId;

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
    pub(crate) name: Arc<str>,
    /// Execute or revert.
    pub(crate) action: Action,
    /// What runs.
    pub(crate) imp: AtomImpl,
    /// Its resolved arguments.
    pub(crate) inputs: Inputs,
    /// For a retry controller, its history.
    pub(crate) history: Option<History>,
    /// When reverting: its own result.
    pub(crate) own_result: Option<Arc<Value>>,
    /// When reverting: its own failure.
    pub(crate) own_failure: Option<Failure>,
    /// When reverting: the flow's failures.
    pub(crate) flow_failures: Arc<[Failure]>,
    /// Listeners, for progress reports and check-ins.
    pub(crate) listeners: Listeners,
    /// The atom detail of a task, where its check-ins (and, while it
    /// executes, its progress) are recorded (`None` for a retry
    /// controller, or work run away from the records).
    pub(crate) detail: Option<AtomDetailId>,
    /// Set when the run is asked to stop.
    pub(crate) cancel: Arc<AtomicBool>,
    /// The span that was current when the run started: the work runs
    /// inside it, whichever thread runs it, so that a task's `tracing`
    /// events carry the caller's span. None when the run started outside
    /// any span, and for work rebuilt from a message, in another process
    /// (one pointer: the work is moved on every atom's path).
    pub(crate) span: Option<Arc<tracing::Span>>,
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

    /// Runs the work on the current thread, inside the span that was
    /// current when the engine's run started (and with the `tracing`
    /// subscriber that span belongs to as the thread's default, so a
    /// subscriber set only for the caller's thread hears the task too). A
    /// panic in the task is caught and becomes a failure with the panic's
    /// message.
    pub fn run(mut self) -> AtomOutcome {
        // A run started outside any span (the usual case when nothing
        // traces) costs one check here.
        let Some(span) = self.span.take() else {
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

    fn run_here(self) -> AtomOutcome {
        let listeners = &self.listeners;
        let name = &*self.name;
        let detail = self.detail;
        // Progress is an execution's: a revert's reaches listeners only.
        let progress_detail = detail.filter(|_| self.action == Action::Execute);
        let report = |fraction: f32| listeners.report(progress_detail, name, fraction);
        let checkin = |message: &str| listeners.check_in(detail, name, message);
        let mut ctx = Context::new(name, &self.inputs)
            .with_own_result(self.own_result.as_deref())
            .with_own_failure(self.own_failure.as_ref())
            .with_flow_failures(&self.flow_failures)
            .with_cancel(&self.cancel);
        if listeners.hears_progress() {
            ctx = ctx.with_progress(&report).with_checkin(&checkin);
        }
        let history = self.history.unwrap_or_default();
        let outcome = catch_unwind(AssertUnwindSafe(|| match (&self.imp, self.action) {
            (AtomImpl::Task(t), Action::Execute) => t.execute(&mut ctx),
            (AtomImpl::Task(t), Action::Revert) => t
                .revert(&mut ctx)
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
        AtomOutcome {
            atom: self.atom,
            action: self.action,
            result,
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
}
