//! Listeners: hooks called on flow and atom transitions and on progress
//! reports. Every method has a no-op default, so a listener implements only
//! what it needs. Built-ins: [`LoggingListener`] (through `tracing`),
//! [`TimingListener`] (per-atom durations), [`CapturingListener`] (every
//! event, for tests) and [`ProgressListener`] (latest progress per atom).

mod capturing;
mod logging;
mod progress;
mod timing;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, Value};
use taskflow_persistence::AtomDetailId;
use taskflow_persistence::Epoch;
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::{AtomDetail, Backend};

pub use capturing::CapturingListener;
pub use logging::LoggingListener;
pub use progress::ProgressListener;
pub use timing::TimingListener;

/// A flow changed state.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowEvent {
    /// The flow's name.
    pub flow: Arc<str>,
    /// Its flow detail's id.
    pub flow_detail: FlowDetailId,
    /// The state it left.
    pub from: FlowState,
    /// The state it entered.
    pub to: FlowState,
}

/// An atom changed state.
#[derive(Debug, Clone, PartialEq)]
pub struct AtomEvent {
    /// The atom's name.
    pub atom: Arc<str>,
    /// Task or retry.
    pub kind: AtomKind,
    /// The state it left.
    pub from: AtomState,
    /// The state it entered.
    pub to: AtomState,
    /// On `SUCCESS`, its result.
    pub result: Option<Arc<Value>>,
    /// On `FAILURE` or `REVERT_FAILURE`, the failure.
    pub failure: Option<Failure>,
}

/// A state change, as yielded by `Engine::run_iter`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A flow transition.
    Flow(FlowEvent),
    /// An atom transition.
    Atom(AtomEvent),
    /// The engine's own loop moved to another phase (yielded by
    /// `run_iter` only; listeners are not told).
    Engine(EngineState),
}

/// The phases of the engine's loop, as TaskFlow's `run_iter` yields them:
/// `RESUMING` when a run starts (from records or afresh), then rounds of
/// `SCHEDULING` (work handed to the executor), `WAITING` (for its
/// outcomes) and `ANALYZING` (outcomes recorded, what is ready next
/// found), and `GAME_OVER` before the flow's last state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineState {
    /// Starting a run: reading what the records say.
    Resuming,
    /// Handing ready work to the executor.
    Scheduling,
    /// Waiting for the executor's next outcome.
    Waiting,
    /// Recording an outcome and finding what is ready next.
    Analyzing,
    /// Nothing more to do: the flow takes its last state.
    GameOver,
}

impl std::fmt::Display for EngineState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineState::Resuming => "RESUMING",
            EngineState::Scheduling => "SCHEDULING",
            EngineState::Waiting => "WAITING",
            EngineState::Analyzing => "ANALYZING",
            EngineState::GameOver => "GAME_OVER",
        })
    }
}

/// Hooks on a running engine. Called on the engine's thread for
/// transitions; `on_progress` is called on the thread running the task.
pub trait Listener: Send + Sync {
    /// A flow changed state.
    fn on_flow(&self, event: &FlowEvent) {
        let _ = event;
    }

    /// An atom changed state.
    fn on_atom(&self, event: &AtomEvent) {
        let _ = event;
    }

    /// A task reported progress (0.0 to 1.0).
    fn on_progress(&self, atom: &str, progress: f32) {
        let _ = (atom, progress);
    }
}

impl<L: Listener + ?Sized> Listener for Arc<L> {
    fn on_flow(&self, event: &FlowEvent) {
        (**self).on_flow(event);
    }
    fn on_atom(&self, event: &AtomEvent) {
        (**self).on_atom(event);
    }
    fn on_progress(&self, atom: &str, progress: f32) {
        (**self).on_progress(atom, progress);
    }
}

/// The listeners of an engine, cheap to clone into work items, and where
/// the run records its tasks' progress.
///
/// A listener that panics is contained as a task's panic is: the panic is
/// logged (through `tracing`, at error level, with the event it was
/// hearing) and that listener hears nothing more from this engine, while
/// the run goes on. A listener observes a run; it never stalls or ends one.
#[derive(Clone, Default)]
pub struct Listeners(Arc<Inner>);

#[derive(Default)]
struct Inner {
    slots: Box<[Slot]>,
    /// Where running tasks' progress is recorded (an engine's run).
    sink: Option<ProgressSink>,
}

struct Slot {
    listener: Arc<dyn Listener>,
    /// It panicked once: it is not called again.
    dropped: AtomicBool,
}

/// Where a running task's progress goes in the records: its atom detail's
/// `meta["progress"]` ([`AtomDetail::PROGRESS_KEY`]), written from the
/// thread that hears the report (the task's, or the worker engine's as
/// reports arrive), so that another process reading the records sees it.
/// Only that one entry is written ([`Backend::update_atom_meta`]), never
/// the atom's state. It rides in the listeners' shared allocation, which
/// every work item holds already, so recording costs a task nothing until
/// it reports.
pub(crate) struct ProgressSink {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) flow: FlowDetailId,
    pub(crate) epoch: Epoch,
}

impl Listeners {
    /// A set of listeners.
    pub fn new(listeners: Vec<Arc<dyn Listener>>) -> Self {
        Self::with_sink(listeners, None)
    }

    /// The listeners of a run that records its tasks' progress in `sink`.
    pub(crate) fn recording(listeners: Vec<Arc<dyn Listener>>, sink: ProgressSink) -> Self {
        Self::with_sink(listeners, Some(sink))
    }

    fn with_sink(listeners: Vec<Arc<dyn Listener>>, sink: Option<ProgressSink>) -> Self {
        Listeners(Arc::new(Inner {
            slots: listeners
                .into_iter()
                .map(|listener| Slot {
                    listener,
                    dropped: AtomicBool::new(false),
                })
                .collect(),
            sink,
        }))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.slots.is_empty()
    }

    /// Whether progress reports go anywhere: to a listener, or into the
    /// records.
    pub(crate) fn hears_progress(&self) -> bool {
        !self.is_empty() || self.0.sink.is_some()
    }

    /// Tells every listener of a flow transition.
    pub fn flow(&self, event: &FlowEvent) {
        self.each(|l| l.on_flow(event), || format!("{event:?}"));
    }

    /// Tells every listener of an atom transition.
    pub fn atom(&self, event: &AtomEvent) {
        self.each(|l| l.on_atom(event), || format!("{event:?}"));
    }

    /// Tells every listener of a progress report.
    pub fn progress(&self, atom: &str, progress: f32) {
        self.each(
            |l| l.on_progress(atom, progress),
            || format!("progress {progress} of `{atom}`"),
        );
    }

    /// A running task's progress report: tells the listeners, and records
    /// it in the atom detail `detail` (when given and the run records).
    /// A write the backend refuses is logged, not raised: the report is
    /// advisory, and the engine's next checkpoint meets the same refusal.
    /// Each report is one small write, as in TaskFlow: a task that reports
    /// very often on a durable backend pays for each.
    pub(crate) fn report(&self, detail: Option<AtomDetailId>, atom: &str, fraction: f32) {
        self.progress(atom, fraction);
        let (Some(sink), Some(detail)) = (&self.0.sink, detail) else {
            return;
        };
        let value = serde_json::Number::from_f64(f64::from(fraction)).map(Value::Number);
        if let Err(e) = sink.backend.update_atom_meta(
            sink.flow,
            detail,
            AtomDetail::PROGRESS_KEY,
            value,
            sink.epoch,
        ) {
            tracing::warn!(atom, error = %e, "cannot record the progress of the task");
        }
    }

    fn each(&self, call: impl Fn(&dyn Listener), describe: impl Fn() -> String) {
        for (i, slot) in self.0.slots.iter().enumerate() {
            if slot.dropped.load(Ordering::Relaxed) {
                continue;
            }
            if let Err(panic) = catch_unwind(AssertUnwindSafe(|| call(&*slot.listener))) {
                slot.dropped.store(true, Ordering::Relaxed);
                tracing::error!(
                    listener = i,
                    event = %describe(),
                    panic = %Failure::from_panic(&*panic).message,
                    "a listener panicked; it hears nothing more from this engine"
                );
            }
        }
    }
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Listeners({})", self.0.slots.len())
    }
}
