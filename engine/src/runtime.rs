//! The one runtime every engine runs.
//!
//! # The loop
//!
//! Each step does one of, in this order of preference:
//!
//! 1. **complete** an outcome the executor has ready (completer.rs): record
//!    the result or failure, checkpoint it, and make dependents ready, or
//!    resolve the failure through the retry controllers;
//! 2. **schedule** one ready atom (scheduler.rs): a revert whose dependents
//!    are all reverted, else an execution whose dependencies are all done
//!    (`SUCCESS` or `IGNORE`, after its deciders allowed it);
//! 3. **wait** for the executor's next outcome when work is in flight;
//! 4. **finish** when nothing is in flight and nothing is ready.
//!
//! Work that is all there is to do (nothing in flight, nothing else ready,
//! as along a linear flow) goes to the executor with `submit_alone` rather
//! than `submit`: nothing could run beside it or complete before it, so an
//! executor may run it on the engine's thread (the parallel one does)
//! and spare a hand-off to a pool thread and back. The atom's transitions
//! and checkpoints are the same either way.
//!
//! # What is checkpointed, and when
//!
//! Every atom transition is written to the backend before anything that
//! depends on it can start: `RUNNING` is written before the work is
//! submitted; `SUCCESS` with the result (or `FAILURE` with the failure) is
//! written before dependents are made ready; intentions (`REVERT`, `RETRY`)
//! are written when a failure is resolved, before any revert starts.
//!
//! The checkpoints taken between two hand-offs of work to the executor are
//! written together, as one batch ([`Backend::save_atom_writes`]: one
//! transaction, one commit and one fsync on SQLite and PostgreSQL), just
//! before the next work is submitted or the loop waits for the executor:
//! along a linear flow, an atom's `SUCCESS` with its result and its
//! successor's `RUNNING` are one commit; on a parallel engine, the
//! completions taken in one go share it (group commit). That is still
//! before anything that depends on them starts. With listeners (or
//! `run_iter`'s events), which hear of a transition once it is written,
//! each checkpoint is written as it is taken. So the records always
//! describe a state the runtime can restart from:
//!
//! [`Backend::save_atom_writes`]: taskflow_persistence::Backend::save_atom_writes
//!
//! * an atom found `RUNNING` is run again (at least once, as TaskFlow);
//!   if it was meant to be reverted, it is marked failed and reverted;
//! * an atom found `REVERTING` is reverted again;
//! * atoms with intention `REVERT` under a controller with intention `RETRY`
//!   are a retry round in progress; any other `REVERT` means the whole flow
//!   is reverting;
//! * an atom found `FAILURE` with intention `EXECUTE` failed before its
//!   resolution was written, and is resolved again.
//!
//! # Reverting on request
//!
//! `Engine::revert` runs the same loop with one difference when it starts:
//! every atom that ran (`SUCCESS`, `FAILURE`, found `RUNNING` or
//! `REVERTING`) gets intention `REVERT`, checkpointed, before the records
//! are recovered, and then the whole flow reverts as on `REVERT_ALL`:
//! dependents first, nothing more executes, the flow ends `REVERTED` (or
//! `FAILURE` if a revert fails). The flow gets there from wherever it was:
//! `SUSPENDED`, `FAILURE` and `SUCCESS` through `RESUMING` and `RUNNING`,
//! `PENDING` through `RUNNING` (nothing to revert), a crashed run's
//! `RUNNING` as it is; a `REVERTED` flow is left as it is unless only a
//! controller's subflow was reverted. Since the intentions are in the
//! records, a revert that a crash or a suspension interrupted continues
//! on the next `run` or `revert`, and atoms already `REVERTED` are not
//! reverted again. An atom whose execution was interrupted by a
//! suspension went back to `PENDING` and is not reverted.
//!
//! # Failures
//!
//! The innermost retry controller of a failed atom decides: `RETRY` reverts
//! its scope (dependents first) and runs it again; `REVERT` asks the next
//! controller out; `REVERT_ALL`, or no controller left, reverts every atom
//! that ran, dependents first. A failed revert (`REVERT_FAILURE`) halts the
//! flow, which ends in `FAILURE`.
//!
//! # Who owns what
//!
//! Each role owns the state it changes, private to its module:
//!
//! * the selector (selector.rs, [`Selector`]): the readiness bookkeeping,
//!   per atom the dependencies not yet done, the dependents still to
//!   revert and whether its work is in flight, and the ready queues;
//! * the completer (completer/, [`Completer`] in completer/state.rs): retry rounds, the flow's
//!   failures, how failure resolution left the flow (reverting all of it or
//!   a part, halted), and the recovery of what a crash left half done;
//! * the scheduler (scheduler.rs) keeps nothing: it submits work;
//! * the runtime: the loop, the run's context, and the transitions that
//!   checkpoint and tell listeners.
//!
//! Per-atom state lives in vectors indexed by atom index, so a step costs
//! the same whatever the size of the flow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use taskflow_patterns::{kinds, AtomIndex, AtomState, Compilation, Failure, FlowState, Resolution};

use crate::completer::state::Completer;
use crate::executor::{Executor, RunShared};
use crate::listener::{AtomEvent, EngineState, Event, FlowEvent, Listeners};
use crate::selector::Selector;
use crate::storage::Storage;
use crate::{EngineError, ExecutorError};

/// What a step did.
pub(crate) enum Step {
    /// There is more to do.
    Continue,
    /// The run ended in this state.
    Finished(FlowState),
    /// Nothing can go on until the executor has an outcome (only from
    /// [`Runtime::step_nowait`]).
    Waiting,
}

/// How much of an atom detail a transition writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// State and intention only.
    State,
    /// The whole detail (result, failure or history changed).
    Detail,
}

/// One run of a flow: the loop of the module docs over the run's context
/// (compilation, records, executor, listeners), composing the roles: the
/// [`Selector`] (what is ready), the scheduler (its methods submit work)
/// and the completer (its methods take outcomes; the [`Completer`] keeps
/// rounds and failures).
pub(crate) struct Runtime<'e> {
    pub(crate) comp: &'e Compilation,
    pub(crate) res: &'e Resolution,
    pub(crate) storage: &'e mut Storage,
    pub(crate) executor: &'e mut dyn Executor,
    /// Events kept for `run_iter`.
    pub(crate) events: Option<VecDeque<Event>>,
    /// What is ready to execute or revert, and what is in flight.
    pub(crate) selector: Selector<'e>,
    /// Retry rounds, failures, and how failures left the flow.
    pub(crate) completer: Completer,
    /// What each atom's work shares: the listeners, the cancel flag, and
    /// the span current when the run started, entered around each atom's
    /// work wherever it runs (see `RunShared::span`).
    pub(crate) shared: Arc<RunShared>,
    /// The caller asked for the flow to be reverted (`Engine::revert`).
    revert: bool,
    /// The loop's phase last yielded to `run_iter`.
    phase: Option<EngineState>,
    /// A suspend was asked for: nothing more is scheduled.
    suspending: bool,
    started: bool,
}

impl<'e> Runtime<'e> {
    pub(crate) fn new(
        comp: &'e Compilation,
        res: &'e Resolution,
        storage: &'e mut Storage,
        executor: &'e mut dyn Executor,
        listeners: &'e Listeners,
        cancel: &'e Arc<AtomicBool>,
        keep_events: bool,
    ) -> Self {
        // Listeners (and `run_iter`'s events) hear of a transition once it
        // is written, so with any the checkpoints are not batched.
        storage.defer_writes(!keep_events && listeners.is_empty());
        Runtime {
            comp,
            res,
            storage,
            executor,
            events: keep_events.then(VecDeque::new),
            selector: Selector::new(comp),
            completer: Completer::new(comp.len()),
            shared: Arc::new(RunShared {
                listeners: listeners.clone(),
                cancel: cancel.clone(),
                span: Some(tracing::Span::current()).filter(|span| !span.is_none()),
            }),
            revert: false,
            phase: None,
            suspending: false,
            started: false,
        }
    }

    /// Makes this run revert the flow rather than run it (see the module
    /// docs, "Reverting on request").
    pub(crate) fn request_revert(&mut self) {
        self.revert = true;
    }

    /// Runs one step of the loop (see the module docs).
    pub(crate) fn step(&mut self) -> Result<Step, EngineError> {
        self.step_with(true)
    }

    /// Runs one step of the loop, but rather than wait for the executor's
    /// next outcome, says [`Step::Waiting`]; the caller awaits the outcome
    /// and hands it to [`complete_outcome`](Self::complete_outcome).
    #[cfg(feature = "tokio")]
    pub(crate) fn step_nowait(&mut self) -> Result<Step, EngineError> {
        self.step_with(false)
    }

    /// Completes an outcome the caller waited for (after
    /// [`Step::Waiting`]).
    #[cfg(feature = "tokio")]
    pub(crate) fn complete_outcome(
        &mut self,
        outcome: crate::AtomOutcome,
    ) -> Result<(), EngineError> {
        self.enter(EngineState::Analyzing);
        self.complete(outcome)
    }

    /// How many atoms are in flight.
    #[cfg(feature = "tokio")]
    pub(crate) fn in_flight(&self) -> usize {
        self.selector.in_flight()
    }

    fn step_with(&mut self, block: bool) -> Result<Step, EngineError> {
        if !self.started {
            self.started = true;
            self.enter(EngineState::Resuming);
            return self.start();
        }
        if let Some(outcome) = self.executor.try_outcome() {
            self.enter(EngineState::Analyzing);
            self.complete(outcome)?;
            return Ok(Step::Continue);
        }
        if !self.completer.halted() {
            let has_work = self.selector.has_work(!self.completer.reverting_all());
            if has_work {
                if self.shared.cancel.load(Ordering::Relaxed) {
                    self.begin_suspending()?;
                } else {
                    self.enter(EngineState::Scheduling);
                    if let Some(atom) = self.selector.pop_revert() {
                        self.start_revert(atom)?;
                    } else if let Some(atom) = self.selector.pop_ready() {
                        self.start_execute(atom)?;
                    }
                    return Ok(Step::Continue);
                }
            }
        }
        let in_flight = self.selector.in_flight();
        if in_flight > 0 {
            // What completed is written before the wait, however long.
            self.storage.flush()?;
            self.enter(EngineState::Waiting);
            if !block {
                return Ok(Step::Waiting);
            }
            let outcome = self.executor.wait_outcome().ok_or_else(|| {
                self.executor
                    .why_no_outcome()
                    .unwrap_or(ExecutorError::LostOutcomes { in_flight })
            })?;
            self.enter(EngineState::Analyzing);
            self.complete(outcome)?;
            return Ok(Step::Continue);
        }
        self.enter(EngineState::GameOver);
        let end = self.final_state();
        if end == FlowState::Failure {
            self.explain_stall();
        }
        self.flow_to(end)?;
        Ok(Step::Finished(end))
    }

    /// Moves the flow into `RUNNING` from wherever its records left it, and
    /// builds the scheduling state from the atom details.
    fn start(&mut self) -> Result<Step, EngineError> {
        match self.storage.flow_state() {
            FlowState::Success if !self.revert => return Ok(Step::Finished(FlowState::Success)),
            FlowState::Success => self.flow_to(FlowState::Resuming)?,
            FlowState::Running | FlowState::Resuming => {
                // The records hold it running already (a crash): it goes
                // on, with no RESUMING/RUNNING pair, as in TaskFlow.
                self.init()?;
                return Ok(Step::Continue);
            }
            FlowState::Pending => {}
            FlowState::Reverted if self.revert => {
                // Reverted already, unless only one controller's subflow was.
                if self.nothing_to_revert() {
                    return Ok(Step::Finished(FlowState::Reverted));
                }
                self.flow_to(FlowState::Pending)?;
            }
            FlowState::Reverted => {
                self.reset_all()?;
                self.flow_to(FlowState::Pending)?;
            }
            FlowState::Suspending => {
                self.flow_to(FlowState::Suspended)?;
                self.flow_to(FlowState::Resuming)?;
            }
            FlowState::Suspended | FlowState::Failure => {
                self.flow_to(FlowState::Resuming)?;
            }
        }
        self.flow_to(FlowState::Running)?;
        self.init()?;
        Ok(Step::Continue)
    }

    fn final_state(&self) -> FlowState {
        if self.completer.halted() {
            return FlowState::Failure;
        }
        if self.suspending {
            let unfinished = self
                .storage
                .atom_details()
                .iter()
                .any(|d| !d.state.is_done() && d.state != AtomState::Reverted);
            if unfinished || self.selector.has_revert_ready() {
                return FlowState::Suspended;
            }
        }
        if self.completer.reverting_all() {
            return FlowState::Reverted;
        }
        if self
            .storage
            .atom_details()
            .iter()
            .all(|d| d.state.is_done())
        {
            FlowState::Success
        } else if self.completer.reverting_part() {
            FlowState::Reverted
        } else {
            FlowState::Failure
        }
    }

    /// A flow that ends `FAILURE` with no failure recorded (atoms left
    /// neither done nor reverted, which is a bug) gets one naming them:
    /// a failed flow always says why.
    fn explain_stall(&mut self) {
        if !self.completer.failures().is_empty() {
            return;
        }
        let stuck: Vec<String> = self
            .storage
            .atom_details()
            .iter()
            .filter(|d| !d.state.is_done() && d.state != AtomState::Reverted)
            .map(|d| format!("`{}` ({})", d.name, d.state))
            .collect();
        self.completer.add_failure(Failure::new(
            kinds::STALLED,
            format!(
                "the engine found nothing more to run, yet these atoms neither finished nor \
                 were reverted: {}",
                stuck.join(", ")
            ),
        ));
    }

    /// Builds the roles' state from the atom details: the completer first
    /// recovers what a crash left half done and rebuilds rounds and
    /// failures, then the selector counts and queues, then the completer
    /// finishes what the records show done but not yet followed up.
    ///
    /// A run that reverts on request marks every atom that ran to be
    /// reverted before recovery (so an atom a crash left `RUNNING` is
    /// reverted, not run again), and reverts the whole flow once the roles
    /// are rebuilt.
    fn init(&mut self) -> Result<(), EngineError> {
        if self.revert {
            self.prepare_requested_revert()?;
        }
        self.recover()?;
        self.selector.rebuild(self.storage);
        self.resume_resolution()?;
        if self.revert {
            self.start_requested_revert()?;
        }
        Ok(())
    }

    /// Yields the loop's phase to `run_iter`, when it changed.
    fn enter(&mut self, phase: EngineState) {
        if let Some(events) = &mut self.events {
            if self.phase != Some(phase) {
                self.phase = Some(phase);
                events.push_back(Event::Engine(phase));
            }
        }
    }

    /// Moves an atom to `to`, checkpoints it, and tells listeners.
    pub(crate) fn transition(
        &mut self,
        atom: AtomIndex,
        to: AtomState,
        write: Write,
    ) -> Result<(), EngineError> {
        let compiled = self.comp.atom(atom);
        let d = self.storage.detail_mut(atom);
        let from = d.state;
        from.check_transition(compiled.kind(), to, compiled.name())?;
        d.state = to;
        match write {
            Write::State => self.storage.write_state(atom)?,
            Write::Detail => self.storage.write_detail(atom)?,
        }
        if self.events.is_some() || !self.shared.listeners.is_empty() {
            let d = self.storage.detail(atom);
            let event = AtomEvent {
                atom: compiled.spec.name.clone(),
                kind: compiled.kind(),
                from,
                to,
                result: if to == AtomState::Success {
                    d.result.clone()
                } else {
                    None
                },
                failure: match to {
                    AtomState::Failure => d.failure().cloned(),
                    AtomState::RevertFailure => d.revert_failure().cloned(),
                    _ => None,
                },
            };
            self.shared.listeners.atom(&event);
            if let Some(events) = &mut self.events {
                events.push_back(Event::Atom(event));
            }
        }
        Ok(())
    }

    /// Moves the flow to `to`, checkpoints it, and tells listeners.
    pub(crate) fn flow_to(&mut self, to: FlowState) -> Result<(), EngineError> {
        let from = self.storage.flow_state();
        from.check_transition(to, self.storage.flow_name())?;
        self.storage.set_flow_state(to)?;
        if self.events.is_some() || !self.shared.listeners.is_empty() {
            let event = FlowEvent {
                flow: Arc::from(self.storage.flow_name()),
                flow_detail: self.storage.flow_detail_id(),
                from,
                to,
            };
            self.shared.listeners.flow(&event);
            if let Some(events) = &mut self.events {
                events.push_back(Event::Flow(event));
            }
        }
        Ok(())
    }

    /// Stops scheduling: the flow is `SUSPENDING` until the work in flight
    /// is done.
    pub(crate) fn begin_suspending(&mut self) -> Result<(), EngineError> {
        if !self.suspending {
            self.suspending = true;
            self.flow_to(FlowState::Suspending)?;
        }
        Ok(())
    }
}

impl Drop for Runtime<'_> {
    /// A run that stopped on an error still writes the checkpoints it took
    /// (best effort: the run's own error is what the caller gets).
    fn drop(&mut self) {
        if let Err(e) = self.storage.flush() {
            tracing::warn!(error = %e, "writing the last checkpoints of a stopped run");
        }
    }
}
