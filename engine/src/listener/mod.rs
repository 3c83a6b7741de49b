//! Listeners: hooks called on flow and atom transitions, on progress
//! reports and on check-ins. Every method has a no-op default, so a listener implements only
//! what it needs. Built-ins: [`LoggingListener`] (through `tracing`),
//! [`TimingListener`] (per-atom durations), [`CapturingListener`] (every
//! event, for tests) and [`ProgressListener`] (latest progress per atom).

mod capturing;
mod logging;
mod progress;
mod timing;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, Name, Value};
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
    pub atom: Name,
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
/// transitions; `on_progress` and `on_checkin` are called on the thread
/// that hears the task (the one running it, or on the worker engine the
/// engine's, as the worker's reports arrive).
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

    /// A task checked in (`ctx.checkin(message)`): a message for people
    /// about where it has got. The engine has recorded it already (see
    /// [`AtomDetail::CHECKIN_KEY`]).
    fn on_checkin(&self, atom: &str, message: &str) {
        let _ = (atom, message);
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
    fn on_checkin(&self, atom: &str, message: &str) {
        (**self).on_checkin(atom, message);
    }
}

/// The listeners of an engine, cheap to clone into work items, and where
/// the run records its tasks' progress and check-ins.
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
    /// Where running tasks' progress and check-ins are recorded (an
    /// engine's run).
    sink: Option<ProgressSink>,
}

struct Slot {
    listener: Arc<dyn Listener>,
    /// It panicked once: it is not called again.
    dropped: AtomicBool,
}

/// Where a running task's progress and check-ins go in the records: its
/// atom detail's `meta["progress"]` ([`AtomDetail::PROGRESS_KEY`]) and
/// `meta["checkin"]` ([`AtomDetail::CHECKIN_KEY`]), written from the
/// thread that hears the report (the task's, or the worker engine's as
/// reports arrive), so that another process reading the records sees it.
/// Only that one entry is written ([`Backend::update_atom_meta`]), never
/// the atom's state. It rides in the listeners' shared allocation, which
/// every work item holds already, so recording costs a task nothing until
/// it reports.
///
/// A check-in outlives its task's run in the records, so the engine's own
/// copy of the detail (which it writes whole when the atom finishes) must
/// hold it too: check-ins heard are also kept in `heard` until the runtime
/// takes them ([`Listeners::take_checkins`]), before it completes the next
/// outcome. Progress needs no such care: the atom's end clears it.
pub(crate) struct ProgressSink {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) flow: FlowDetailId,
    pub(crate) epoch: Epoch,
    /// Check-ins recorded and not yet taken by the runtime.
    pub(crate) heard: Mutex<Vec<(AtomDetailId, Value)>>,
    /// `heard` is not empty: one relaxed load per outcome when no task
    /// checks in.
    pub(crate) unheard: AtomicBool,
}

impl ProgressSink {
    /// A sink writing to the flow detail `flow` of `backend` at `epoch`.
    pub(crate) fn new(backend: Arc<dyn Backend>, flow: FlowDetailId, epoch: Epoch) -> Self {
        ProgressSink {
            backend,
            flow,
            epoch,
            heard: Mutex::new(Vec::new()),
            unheard: AtomicBool::new(false),
        }
    }
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

    /// Tells every listener of a check-in.
    pub fn checkin(&self, atom: &str, message: &str) {
        self.each(
            |l| l.on_checkin(atom, message),
            || format!("check-in {message:?} of `{atom}`"),
        );
    }

    /// A task's check-in: records it in the atom detail `detail` (when
    /// given and the run records) under [`AtomDetail::CHECKIN_KEY`], then
    /// tells the listeners. As with [`report`](Self::report), a write the
    /// backend refuses is logged, not raised.
    pub(crate) fn check_in(&self, detail: Option<AtomDetailId>, atom: &str, message: &str) {
        if let (Some(sink), Some(detail)) = (&self.0.sink, detail) {
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
            let value = serde_json::json!({ "message": message, "at": at });
            match sink.backend.update_atom_meta(
                sink.flow,
                detail,
                AtomDetail::CHECKIN_KEY,
                Some(value.clone()),
                sink.epoch,
            ) {
                Ok(()) => {
                    let mut heard = crate::sync::lock(&sink.heard);
                    heard.push((detail, value));
                    sink.unheard.store(true, Ordering::Release);
                }
                Err(e) => {
                    tracing::warn!(atom, error = %e, "cannot record the check-in of the task");
                }
            }
        }
        self.checkin(atom, message);
    }

    /// The check-ins recorded since the last call, oldest first, for the
    /// runtime's own copy of the records; `None` (one atomic load) when
    /// there are none.
    #[inline]
    pub(crate) fn take_checkins(&self) -> Option<Vec<(AtomDetailId, Value)>> {
        let sink = self.0.sink.as_ref()?;
        if !sink.unheard.load(Ordering::Acquire) {
            return None;
        }
        let mut heard = crate::sync::lock(&sink.heard);
        sink.unheard.store(false, Ordering::Release);
        Some(std::mem::take(&mut *heard))
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
