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
//! are written when a failure is resolved, before any revert starts. So the
//! records always describe a state the runtime can restart from:
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
//! # Failures
//!
//! The innermost retry controller of a failed atom decides: `RETRY` reverts
//! its scope (dependents first) and runs it again; `REVERT` asks the next
//! controller out; `REVERT_ALL`, or no controller left, reverts every atom
//! that ran, dependents first. A failed revert (`REVERT_FAILURE`) halts the
//! flow, which ends in `FAILURE`.
//!
//! Per-atom state lives in vectors indexed by atom index (counters of
//! unfinished dependencies and of dependents still to revert), so a step
//! costs the same whatever the size of the flow.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use taskflow_patterns::{
    kinds, AtomIndex, AtomKind, AtomState, Compilation, Failure, FlowState, Intention, Resolution,
};

use crate::executor::Executor;
use crate::listener::{AtomEvent, EngineState, Event, FlowEvent, Listeners};
use crate::selector::Selector;
use crate::storage::Storage;
use crate::{EngineError, ExecutorError};

/// A retry round in progress: its controller, the atoms it reverts and
/// resets, and how many are still to revert.
pub(crate) struct Round {
    pub(crate) controller: AtomIndex,
    pub(crate) atoms: Vec<AtomIndex>,
    pub(crate) remaining: usize,
}

/// What a step did.
pub(crate) enum Step {
    /// There is more to do.
    Continue,
    /// The run ended in this state.
    Finished(FlowState),
}

/// How much of an atom detail a transition writes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Write {
    /// State and intention only.
    State,
    /// The whole detail (result, failure or history changed).
    Detail,
}

pub(crate) struct Runtime<'e> {
    pub(crate) comp: &'e Compilation,
    pub(crate) res: &'e Resolution,
    pub(crate) storage: &'e mut Storage,
    pub(crate) executor: &'e mut dyn Executor,
    pub(crate) listeners: &'e Listeners,
    pub(crate) cancel: &'e Arc<AtomicBool>,
    /// Events kept for `run_iter`.
    pub(crate) events: Option<VecDeque<Event>>,
    /// What is ready to execute or revert, and what is in flight.
    pub(crate) selector: Selector<'e>,
    /// The loop's phase last yielded to `run_iter`.
    phase: Option<EngineState>,
    /// Per atom: the retry round it is being reverted for.
    pub(crate) round_of: Vec<Option<AtomIndex>>,
    /// Retry rounds in progress.
    pub(crate) rounds: Vec<Round>,
    pub(crate) revert_all: bool,
    /// A controller's subflow is reverting (or reverted) on its own: the
    /// flow ends `REVERTED`, the rest of it as it was.
    pub(crate) reverting_part: bool,
    /// `REVERT` with no controller further out reverts the whole flow, as
    /// TaskFlow's `defer_reverts` (see `EngineBuilder::defer_reverts`).
    pub(crate) defer_reverts: bool,
    /// A revert failed: nothing more is scheduled.
    pub(crate) halted: bool,
    pub(crate) suspending: bool,
    pub(crate) failures: Vec<Failure>,
    pub(crate) failures_shared: Option<Arc<[Failure]>>,
    /// An empty failure list, shared by every execution.
    pub(crate) no_failures: Arc<[Failure]>,
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
        let n = comp.len();
        Runtime {
            comp,
            res,
            storage,
            executor,
            listeners,
            cancel,
            events: keep_events.then(VecDeque::new),
            selector: Selector::new(comp),
            phase: None,
            round_of: vec![None; n],
            rounds: Vec::new(),
            revert_all: false,
            reverting_part: false,
            defer_reverts: false,
            halted: false,
            suspending: false,
            failures: Vec::new(),
            failures_shared: None,
            no_failures: Arc::from(Vec::new()),
            started: false,
        }
    }

    /// Runs one step of the loop (see the module docs).
    pub(crate) fn step(&mut self) -> Result<Step, EngineError> {
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
        if !self.halted {
            let has_work = self.selector.has_work(!self.revert_all);
            if has_work {
                if self.cancel.load(Ordering::Relaxed) {
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
            self.enter(EngineState::Waiting);
            let outcome = self
                .executor
                .wait_outcome()
                .ok_or(ExecutorError::LostOutcomes { in_flight })?;
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
            FlowState::Success => return Ok(Step::Finished(FlowState::Success)),
            FlowState::Running | FlowState::Resuming => {
                // The records hold it running already (a crash): it goes
                // on, with no RESUMING/RUNNING pair, as in TaskFlow.
                self.init()?;
                return Ok(Step::Continue);
            }
            FlowState::Pending => {}
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
        if self.halted {
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
        if self.revert_all {
            return FlowState::Reverted;
        }
        if self
            .storage
            .atom_details()
            .iter()
            .all(|d| d.state.is_done())
        {
            FlowState::Success
        } else if self.reverting_part {
            FlowState::Reverted
        } else {
            FlowState::Failure
        }
    }

    /// A flow that ends `FAILURE` with no failure recorded (atoms left
    /// neither done nor reverted, which is a bug) gets one naming them:
    /// a failed flow always says why.
    fn explain_stall(&mut self) {
        if !self.failures.is_empty() {
            return;
        }
        let stuck: Vec<String> = self
            .storage
            .atom_details()
            .iter()
            .filter(|d| !d.state.is_done() && d.state != AtomState::Reverted)
            .map(|d| format!("`{}` ({})", d.name, d.state))
            .collect();
        self.add_failure(Failure::new(
            kinds::STALLED,
            format!(
                "the engine found nothing more to run, yet these atoms neither finished nor \
                 were reverted: {}",
                stuck.join(", ")
            ),
        ));
    }

    /// A reverted flow runs again: what was reverted (all of it, or one
    /// controller's subflow) is reset to run again; atoms left `SUCCESS`
    /// keep their results.
    fn reset_all(&mut self) -> Result<(), EngineError> {
        for atom in self.comp.indices() {
            let d = self.storage.detail_mut(atom);
            if d.state == AtomState::Success {
                continue;
            }
            d.intention = Intention::Execute;
            d.result = None;
            d.failure = None;
            d.revert_failure = None;
            d.revert_result = None;
            d.history = Default::default();
            if matches!(d.state, AtomState::Reverted | AtomState::Ignore) {
                self.transition(atom, AtomState::Pending, Write::Detail)?;
            } else {
                self.storage.write_detail(atom)?;
            }
        }
        Ok(())
    }

    /// Builds counters, queues, rounds and failures from the atom details,
    /// after recovering what a crash may have left half done.
    fn init(&mut self) -> Result<(), EngineError> {
        let comp = self.comp;
        for atom in comp.indices() {
            let d = self.storage.detail(atom);
            if d.state != AtomState::Running {
                continue;
            }
            if d.intention == Intention::Revert {
                let failure = Failure::new(
                    kinds::STOPPED_WHILE_REVERTING,
                    "the engine stopped while the atom ran; it is reverted",
                )
                .with_atom(&*comp.atom(atom).name);
                self.storage.detail_mut(atom).set_failure(Some(failure));
                self.transition(atom, AtomState::Failure, Write::Detail)?;
            } else {
                self.transition(atom, AtomState::Pending, Write::State)?;
            }
        }
        for d in self.storage.atom_details() {
            if d.intention == Intention::Revert || d.state == AtomState::RevertFailure {
                self.failures.extend(d.failure().cloned());
            }
            self.halted |= d.state == AtomState::RevertFailure;
        }
        for d in self.storage.atom_details() {
            self.failures.extend(d.revert_failure().cloned());
        }
        self.failures
            .extend(self.storage.removed_failures.iter().cloned());
        // Retry rounds in progress, and resets of finished rounds that a
        // crash interrupted (the controller already `RETRYING`).
        for r in comp.indices() {
            let d = self.storage.detail(r);
            if d.intention == Intention::Retry {
                let atoms = self.round_atoms(r, |d| d.intention == Intention::Revert);
                let mut remaining = 0;
                for &s in &atoms {
                    self.round_of[s.index()] = Some(r);
                    remaining += usize::from(needs_revert(self.storage.detail(s).state));
                }
                self.rounds.push(Round {
                    controller: r,
                    atoms,
                    remaining,
                });
            } else if d.state == AtomState::Retrying && comp.atom(r).kind() == AtomKind::Retry {
                let atoms = self.round_atoms(r, |d| d.intention == Intention::Revert);
                self.reset_round(&atoms)?;
            }
        }
        let stray = |a: AtomIndex| {
            self.storage.detail(a).intention == Intention::Revert
                && self.round_of[a.index()].is_none()
        };
        if comp.indices().any(stray) {
            // Everything that ran is being reverted: the whole flow is;
            // otherwise one controller's subflow is, the rest left alone.
            let whole = comp.indices().all(|a| {
                let d = self.storage.detail(a);
                !needs_revert(d.state) || d.intention == Intention::Revert
            });
            if whole {
                self.revert_all = true;
            } else {
                self.reverting_part = true;
            }
        }
        if self.revert_all {
            self.rounds.clear();
            self.round_of.iter_mut().for_each(|r| *r = None);
            self.mark_all_for_revert()?;
        }
        self.selector.rebuild(self.storage);
        let finished: Vec<AtomIndex> = self
            .rounds
            .iter()
            .filter(|round| round.remaining == 0)
            .map(|round| round.controller)
            .collect();
        for r in finished {
            self.finish_round(r)?;
        }
        let unresolved: Vec<AtomIndex> = comp
            .indices()
            .filter(|&a| {
                let d = self.storage.detail(a);
                d.state == AtomState::Failure && d.intention == Intention::Execute
            })
            .collect();
        for atom in unresolved {
            if let Some(f) = self.storage.detail(atom).failure().cloned() {
                self.failures.push(f);
            }
            if self.storage.detail(atom).intention == Intention::Execute {
                self.resolve(atom)?;
            }
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
        from.check_transition(compiled.kind(), to, &compiled.name)?;
        d.state = to;
        match write {
            Write::State => self.storage.write_state(atom)?,
            Write::Detail => self.storage.write_detail(atom)?,
        }
        if self.events.is_some() || !self.listeners.is_empty() {
            let d = self.storage.detail(atom);
            let event = AtomEvent {
                atom: compiled.name.clone(),
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
            self.listeners.atom(&event);
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
        if self.events.is_some() || !self.listeners.is_empty() {
            let event = FlowEvent {
                flow: Arc::from(self.storage.flow_name()),
                flow_detail: self.storage.flow_detail_id(),
                from,
                to,
            };
            self.listeners.flow(&event);
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

    /// The flow's failures, shared with revert work.
    pub(crate) fn shared_failures(&mut self) -> Arc<[Failure]> {
        self.failures_shared
            .get_or_insert_with(|| self.failures.clone().into())
            .clone()
    }

    pub(crate) fn add_failure(&mut self, failure: Failure) {
        self.failures.push(failure);
        self.failures_shared = None;
    }
}

/// Whether an atom in this state has done something that must be reverted.
pub(crate) fn needs_revert(state: AtomState) -> bool {
    matches!(
        state,
        AtomState::Success | AtomState::Failure | AtomState::Running | AtomState::Reverting
    )
}
