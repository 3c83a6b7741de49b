//! The conformance suite every engine passes. Each case takes a factory
//! that turns a flow into an [`EngineBuilder`] configured with the engine
//! under test; [`engine_conformance!`](crate::engine_conformance) makes one
//! `#[test]` per case.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use taskflow_patterns::TaskAtom;
use taskflow_patterns::{
    decider_fn, retry, task_fn, AlwaysRevert, AlwaysRevertAll, AtomState, CompileError, Depth,
    Flow, FlowRegistry, FlowState, ForEach, Graph, Linear, ParameterizedForEach, TaskError, Times,
    Unordered,
};
use taskflow_persistence::{Backend, FlowDetailId, MemoryBackend, PersistenceError};

use crate::{CapturingListener, Engine, EngineBuilder, EngineError, Event, Listener};

mod arguments;
mod faults;
mod patterns;
mod resume;
mod retries;
mod reverts;
mod running;
mod taskflow;
mod timeouts;
pub use arguments::*;
pub use faults::*;
pub use patterns::*;
pub use resume::*;
pub use retries::*;
pub use reverts::*;
pub use running::*;
pub use taskflow::*;
pub use timeouts::*;

#[cfg(feature = "tokio")]
thread_local! {
    /// Whether the cases running on this thread make their tasks async
    /// (see [`with_async_tasks`]).
    static ASYNC_TASKS: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `case` with every task atom the suite builds made an async task
/// (`AsyncTask`) that yields once to its executor and then does what the
/// blocking one does: the suite of [`engine_conformance!`](crate::engine_conformance)`(async ...)`.
/// The tasks are made on the calling thread (by the case, or by a flow
/// factory it calls), so the setting is the calling thread's.
#[cfg(feature = "tokio")]
pub fn with_async_tasks<R>(case: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            ASYNC_TASKS.with(|a| a.set(self.0));
        }
    }
    let _reset = Reset(ASYNC_TASKS.with(|a| a.replace(true)));
    case()
}

/// Whether the suite makes its tasks async on this thread.
#[cfg(feature = "tokio")]
pub(crate) fn async_tasks() -> bool {
    ASYNC_TASKS.with(std::cell::Cell::get)
}

/// The suite's `atom`: `taskflow_patterns::atom`, or in
/// [`with_async_tasks`] an atom whose task is the async form of `task`.
pub(crate) fn atom(
    name: impl Into<taskflow_patterns::Name>,
    task: impl taskflow_patterns::Task,
) -> TaskAtom {
    #[cfg(feature = "tokio")]
    if async_tasks() {
        return taskflow_patterns::atom(name, YieldThen(Arc::new(task)));
    }
    taskflow_patterns::atom(name, task)
}

/// An async task that yields to its executor once, then runs a blocking
/// task's execute or revert. As a `Task` it is that task (stored as it is,
/// so a flow rebuilt from records runs it blocking).
#[cfg(feature = "tokio")]
struct YieldThen(Arc<dyn taskflow_patterns::Task>);

#[cfg(feature = "tokio")]
impl taskflow_patterns::Task for YieldThen {
    fn execute(&self, ctx: &mut taskflow_patterns::Context<'_>) -> Result<Value, TaskError> {
        self.0.execute(ctx)
    }

    fn revert(&self, ctx: &mut taskflow_patterns::Context<'_>) -> Result<(), TaskError> {
        self.0.revert(ctx)
    }

    fn as_async(&self) -> Option<&dyn taskflow_patterns::AsyncTask> {
        Some(self)
    }

    fn stored(&self) -> Option<&dyn taskflow_patterns::StoredTask> {
        self.0.stored()
    }

    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }
}

#[cfg(feature = "tokio")]
#[taskflow_patterns::async_trait]
impl taskflow_patterns::AsyncTask for YieldThen {
    async fn execute(&self, ctx: &mut taskflow_patterns::Context<'_>) -> Result<Value, TaskError> {
        tokio::task::yield_now().await;
        self.0.execute(ctx)
    }

    async fn revert(&self, ctx: &mut taskflow_patterns::Context<'_>) -> Result<(), TaskError> {
        tokio::task::yield_now().await;
        self.0.revert(ctx)
    }
}

/// Configures a builder (fresh, or loaded from records) as the engine
/// under test, e.g. `|b| b` for the serial engine.
pub type Factory<'a> = &'a dyn Fn(EngineBuilder) -> EngineBuilder;

/// A shared log that test tasks write to: `name` on execute, `~name` on revert.
#[derive(Clone, Default)]
pub struct Log(Arc<Mutex<Vec<String>>>);

impl Log {
    /// An empty log.
    pub fn new() -> Self {
        Log::default()
    }

    /// Appends an entry.
    pub fn push(&self, entry: impl Into<String>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(entry.into());
    }

    /// Every entry so far.
    pub fn entries(&self) -> Vec<String> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The position of `entry` (panics if absent: for tests).
    pub fn position(&self, entry: &str) -> usize {
        let entries = self.entries();
        entries
            .iter()
            .position(|e| e == entry)
            .unwrap_or_else(|| panic!("`{entry}` not in log {entries:?}"))
    }

    /// A task that logs its name, returns it, and logs `~name` on revert.
    pub fn task(&self, name: &str) -> taskflow_patterns::FnTask {
        let (log, rlog, n, rn) = (
            self.clone(),
            self.clone(),
            name.to_owned(),
            format!("~{name}"),
        );
        task_fn(move |_| {
            log.push(n.clone());
            Ok(json!(n))
        })
        .with_revert(move |_| {
            rlog.push(rn.clone());
            Ok(())
        })
    }

    /// A task that logs its name and fails; logs `~name` on revert.
    pub fn failing(&self, name: &str) -> taskflow_patterns::FnTask {
        let (log, rlog, n, rn) = (
            self.clone(),
            self.clone(),
            name.to_owned(),
            format!("~{name}"),
        );
        task_fn(move |_| {
            log.push(n.clone());
            Err(TaskError::new("Boom", format!("{n} exploded")))
        })
        .with_revert(move |_| {
            rlog.push(rn.clone());
            Ok(())
        })
    }

    /// A task that fails its first `failures` runs, then succeeds.
    pub fn flaky(&self, name: &str, failures: usize) -> taskflow_patterns::FnTask {
        let (log, rlog, n, rn) = (
            self.clone(),
            self.clone(),
            name.to_owned(),
            format!("~{name}"),
        );
        let runs = Arc::new(AtomicUsize::new(0));
        task_fn(move |_| {
            log.push(n.clone());
            if runs.fetch_add(1, Ordering::SeqCst) < failures {
                Err(TaskError::new("Flaky", format!("{n} not yet")))
            } else {
                Ok(json!(n))
            }
        })
        .with_revert(move |_| {
            rlog.push(rn.clone());
            Ok(())
        })
    }
}

/// Suspends its engine when `atom` enters `state`.
pub(crate) struct SuspendOn(
    pub(crate) &'static str,
    pub(crate) AtomState,
    pub(crate) crate::SuspendHandle,
);

impl Listener for SuspendOn {
    fn on_atom(&self, e: &crate::AtomEvent) {
        if *e.atom == *self.0 && e.to == self.1 {
            self.2.suspend();
        }
    }
}

pub(crate) fn run(
    factory: Factory<'_>,
    flow: impl Into<Flow>,
) -> (Result<FlowState, EngineError>, Arc<CapturingListener>) {
    let capture = Arc::new(CapturingListener::new());
    let mut engine = factory(Engine::builder(flow))
        .listener(capture.clone())
        .build()
        .expect("builds");
    (engine.run(), capture)
}

pub(crate) fn failed_state(result: &Result<FlowState, EngineError>) -> FlowState {
    match result {
        Err(EngineError::Failed { state, .. }) => *state,
        other => panic!("expected a failed flow, got {other:?}"),
    }
}

/// A registry whose factory `flow` builds the linear flow `a` then `b`,
/// tasks that log to `log`.
pub(crate) fn linear_ab(log: &Log) -> FlowRegistry {
    let l = log.clone();
    registry_of(move || {
        Linear::new("f")
            .add(atom("a", l.task("a")))
            .add(atom("b", l.task("b")))
            .into()
    })
}

/// A registry whose factory `flow` builds `build()`.
/// The records of a run of the factory `flow` of `registry`, written but
/// not run, as a process that died right after writing them leaves them:
/// the backend and the flow detail's id.
pub(crate) fn prepared_records(
    factory: Factory<'_>,
    registry: &FlowRegistry,
) -> (Arc<dyn Backend>, FlowDetailId) {
    let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    let mut engine = factory(Engine::from_factory(registry, "flow", Value::Null).unwrap())
        .persistence(backend.clone())
        .build()
        .unwrap();
    engine.prepare().unwrap();
    (backend, engine.storage().flow_detail_id())
}

/// Writes `records` (edited by a test) back over the flow detail.
pub(crate) fn save_records(backend: &dyn Backend, records: &taskflow_persistence::FlowDetail) {
    let book = records.run.logbook.expect("the run names its logbook");
    backend.save_flow_detail(book, records).unwrap();
}

pub(crate) fn registry_of(build: impl Fn() -> Flow + Send + Sync + 'static) -> FlowRegistry {
    let mut registry = FlowRegistry::new();
    registry.register("flow", move |_| Ok(build()));
    registry
}

/// Makes one `#[test]` per conformance case for an engine factory
/// expression of type `Fn(EngineBuilder) -> EngineBuilder`.
///
/// ```ignore
/// taskflow_engine::engine_conformance!(|builder: EngineBuilder| builder);
/// // The same cases with every task an async task (feature `tokio`).
/// taskflow_engine::engine_conformance!(async |builder: EngineBuilder| builder);
/// ```
#[macro_export]
macro_rules! engine_conformance {
    (async $factory:expr) => {
        $crate::engine_conformance!(@list @async_cases $factory);
    };
    ($factory:expr) => {
        $crate::engine_conformance!(@list @cases $factory);
    };
    (@list @$cases:ident $factory:expr) => {
        $crate::engine_conformance!(@$cases $factory;
            linear_passes_data_in_order unordered_runs_all_children graph_and_nesting
            argument_binding revert_in_reverse_order revert_order_on_a_graph
            revert_sees_results_and_failures revert_failure_keeps_both_failures
            times_retries_until_success times_exhausted_reverts_the_flow
            for_each_tries_each_value parameterized_for_each_uses_its_argument
            nested_retry_revert_passes_outward nested_retry_inner_retries_first
            revert_all_overrides_outer_controllers deciders_ignore_by_depth
            suspend_and_resume run_iter_yields_state_changes bad_input_becomes_failures
            build_reports_every_error records_hold_every_transition
            reverted_flow_runs_again progress_reaches_listeners
            resume_skips_finished_atoms resume_continues_a_revert resume_keeps_retry_history
            resume_refuses_a_changed_flow stale_owner_is_fenced_out
            load_below_the_stored_epoch_is_refused load_of_a_posted_flow_detail_runs_it
            panicking_listeners_are_dropped an_interrupted_task_runs_again_on_resume
            an_error_while_stopping_is_an_interruption an_interrupted_revert_continues_on_resume
            atom_details_that_do_not_match_are_refused
            two_loads_of_one_flow_detail_never_both_run_it
            values_deeper_than_records_hold_are_refused
            revert_with_no_controller_further_out_reverts_the_subflow
            a_retried_flow_fails_with_its_last_attempt a_retry_reverts_what_consumed_its_scope
            a_retry_notifies_retrying_before_resetting_its_scope
            resume_finishes_an_interrupted_retry_reset resuming_a_running_flow_notifies_no_resuming
            an_interrupted_subflow_revert_resumes_as_one reverts_go_through_ignored_atoms
            decider_depths_stop_at_flow_boundaries every_decider_into_a_target_is_asked
            failures_of_removed_atoms_are_still_reported
            the_store_is_found_before_atom_results inject_is_keyed_by_the_symbol_after_rebind
            revert_gets_its_own_arguments unordered_siblings_are_fed_from_outside_the_flow
            names_as_taskflow_gives_them
            a_too_deep_stored_definition_is_refused_before_decoding reset_runs_a_flow_again
            revert_results_are_recorded higher_priority_runs_first
            an_unstored_definition_says_which_atom_kept_it_out
            contradictory_configuration_is_refused
            a_task_holding_a_client_runs_through_a_factory
            revert_on_request_undoes_a_suspended_flow
            revert_on_request_from_success_pending_and_failure
            revert_on_request_continues_after_reload revert_on_request_is_fenced
            checkins_are_recorded_and_heard
            a_task_past_its_timeout_is_cancelled_and_the_flow_reverts
            a_task_that_never_returns_does_not_hold_the_flow
            a_timeout_is_handled_by_the_retry_controller);
    };
    (@cases $factory:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::$case(&$factory);
            }
        )*
    };
    (@async_cases $factory:expr; $($case:ident)*) => {
        $(
            #[test]
            fn $case() {
                $crate::testkit::with_async_tasks(|| $crate::testkit::$case(&$factory));
            }
        )*
    };
}

#[cfg(test)]
mod serial {
    use crate::EngineBuilder;
    crate::engine_conformance!(|builder: EngineBuilder| builder);
}

#[cfg(test)]
mod parallel {
    use crate::{EngineBuilder, Parallel};
    crate::engine_conformance!(
        |builder: EngineBuilder| builder.executor(Parallel::new(4).expect("pool starts"))
    );
}

/// Async tasks on the blocking engines: driven to their end on the thread
/// that runs the atom.
#[cfg(all(test, feature = "tokio"))]
mod serial_async_tasks {
    use crate::EngineBuilder;
    crate::engine_conformance!(async |builder: EngineBuilder| builder);
}

#[cfg(all(test, feature = "tokio"))]
mod parallel_async_tasks {
    use crate::{EngineBuilder, Parallel};
    crate::engine_conformance!(
        async |builder: EngineBuilder| builder.executor(Parallel::new(4).expect("pool starts"))
    );
}

/// The tokio executor with blocking tasks (on its blocking pool).
#[cfg(all(test, feature = "tokio"))]
mod tokio_blocking_tasks {
    use crate::{EngineBuilder, Tokio};
    crate::engine_conformance!(
        |builder: EngineBuilder| builder.executor(Tokio::with_threads(2).expect("runtime starts"))
    );
}

/// The tokio executor with async tasks (as tokio tasks).
#[cfg(all(test, feature = "tokio"))]
mod tokio_async_tasks {
    use crate::{EngineBuilder, Tokio};
    crate::engine_conformance!(async |builder: EngineBuilder| builder
        .executor(Tokio::with_threads(2).expect("runtime starts")));
}
