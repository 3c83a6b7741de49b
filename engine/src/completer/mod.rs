//! Completing outcomes: checkpoint results and failures, and carry out what
//! retry controllers decide (the controllers only decide; only this module
//! reverts or resets atoms). It also recovers, when a run starts, what a
//! crash left half done.
//!
//! The [`Completer`] holds what it keeps between outcomes (retry rounds,
//! failures, how failure resolution left the flow); the methods here work
//! on the runtime, tell the [`Selector`](crate::selector::Selector) what is
//! done, reverted or taken back, and write the checkpoints.

pub(crate) mod state;

use self::state::Round;
use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use taskflow_patterns::{
    kinds, value_depth, AtomImpl, AtomIndex, AtomKind, AtomState, Context, Decision, Failure,
    History, Intention, Value, MAX_VALUE_DEPTH,
};
use taskflow_persistence::AtomDetail;

use crate::executor::{Action, AtomOutcome};
use crate::runtime::{Runtime, Write};
use crate::selector::needs_revert;
use crate::storage::{clear_progress, intend};
use crate::EngineError;

impl Runtime<'_> {
    pub(crate) fn complete(&mut self, outcome: AtomOutcome) -> Result<(), EngineError> {
        // Check-ins recorded while the work ran, kept in the details the
        // completion may write whole.
        if let Some(heard) = self.shared.listeners.take_checkins() {
            self.storage.keep_checkins(heard);
        }
        let atom = outcome.atom;
        self.selector.completed(atom);
        match (outcome.action, outcome.result) {
            (action, Err(failure)) if self.is_interruption(atom, action, &failure) => {
                self.interrupted(atom, action, &failure)
            }
            (Action::Execute, Ok(value)) => match too_deep(&value) {
                Some(depth) => {
                    self.execute_failed(atom, self.too_deep_failure(atom, "result", depth))
                }
                None => self.executed(atom, value),
            },
            (Action::Execute, Err(failure)) => self.execute_failed(atom, failure),
            (Action::Revert, Ok(value)) => match too_deep(&value) {
                Some(depth) => {
                    self.revert_failed(atom, self.too_deep_failure(atom, "revert result", depth))
                }
                None => self.reverted(atom, value),
            },
            (Action::Revert, Err(failure)) => self.revert_failed(atom, failure),
        }
    }

    /// The failure of `atom` whose `what` (result, revert result) nests
    /// `depth` levels, deeper than records hold.
    fn too_deep_failure(&self, atom: AtomIndex, what: &str, depth: usize) -> Failure {
        Failure::new(
            kinds::RESULT_TOO_DEEP,
            format!(
                "its {what} nests {depth} levels deep; records hold values nested at most \
                 {MAX_VALUE_DEPTH} levels"
            ),
        )
        .with_atom(self.comp.atom(atom).name())
    }

    fn executed(&mut self, atom: AtomIndex, value: serde_json::Value) -> Result<(), EngineError> {
        let kind = self.comp.atom(atom).kind();
        let d = self.storage.detail_mut(atom);
        if kind == AtomKind::Retry {
            d.history_mut().push(value.clone());
        }
        d.result = Some(Arc::new(value));
        d.set_failure(None);
        // `SUCCESS` says progress 1: the running task's report goes.
        clear_progress(d);
        self.transition(atom, AtomState::Success, Write::Detail)?;
        if kind == AtomKind::Task && !self.shared.listeners.is_empty() {
            self.shared
                .listeners
                .progress(self.comp.atom(atom).name(), 1.0);
        }
        if self.storage.detail(atom).intention == Intention::Revert {
            // Taken back while it ran (a failure elsewhere): revert it now.
            self.selector.queue_revert(atom);
        } else {
            self.selector.on_done(self.storage, atom);
        }
        Ok(())
    }

    /// Whether a failed outcome is an interruption rather than a failure:
    /// the task said so ([`TaskError::interrupted`]), or it failed while
    /// the run was asked to stop (its error is taken to be the stop's
    /// doing; at worst it runs again and fails again). An atom already
    /// taken back for a revert fails as usual, to be reverted.
    ///
    /// [`TaskError::interrupted`]: taskflow_patterns::TaskError::interrupted
    fn is_interruption(&self, atom: AtomIndex, action: Action, failure: &Failure) -> bool {
        let d = self.storage.detail(atom);
        let expected = match action {
            Action::Execute => Intention::Execute,
            Action::Revert => Intention::Revert,
        };
        d.intention == expected
            && (failure.is_interrupted() || self.shared.cancel.load(Ordering::Relaxed))
    }

    /// An interrupted execution goes back to `PENDING` (an interrupted
    /// revert stays `REVERTING`) and the flow suspends: the work runs again
    /// when the flow is resumed.
    fn interrupted(
        &mut self,
        atom: AtomIndex,
        action: Action,
        failure: &Failure,
    ) -> Result<(), EngineError> {
        tracing::info!(
            atom = %self.comp.atom(atom).name(),
            ?action,
            reason = %failure,
            "interrupted; it runs again when the flow resumes"
        );
        if action == Action::Execute {
            // Written whole: the record may hold a progress report of the
            // interrupted run, which the record of a pending atom must not.
            clear_progress(self.storage.detail_mut(atom));
            self.transition(atom, AtomState::Pending, Write::Detail)?;
        }
        self.shared.cancel.store(true, Ordering::Relaxed);
        self.begin_suspending()
    }

    pub(crate) fn execute_failed(
        &mut self,
        atom: AtomIndex,
        failure: Failure,
    ) -> Result<(), EngineError> {
        let d = self.storage.detail_mut(atom);
        d.set_failure(Some(failure.clone()));
        d.result = None;
        self.transition(atom, AtomState::Failure, Write::Detail)?;
        self.completer.add_failure(failure.clone());
        if self.storage.detail(atom).intention == Intention::Revert {
            self.selector.queue_revert(atom);
            return Ok(());
        }
        self.resolve(atom)
    }

    /// Asks the retry controllers around `atom`, innermost first, what to
    /// do about its failure, and does it.
    fn resolve(&mut self, atom: AtomIndex) -> Result<(), EngineError> {
        let failure = self.storage.detail(atom).failure().cloned();
        let name = self.comp.atom(atom).name();
        let mut controller = self.comp.atom(atom).retry;
        let mut innermost_revert = None;
        while let Some(r) = controller {
            if let Some(f) = &failure {
                let d = self.storage.detail_mut(r);
                d.history_mut().record_failure(name, f.clone());
                self.storage.write_detail(r)?;
            }
            match self.consult(r) {
                Decision::Retry => return self.retry_scope(r),
                Decision::RevertAll => return self.start_revert_all(),
                Decision::Revert => {
                    innermost_revert.get_or_insert(r);
                    controller = self.comp.atom(r).retry;
                }
            }
        }
        // Every controller said `REVERT` (or there is none): as TaskFlow,
        // only the innermost one's subflow reverts, unless reverts are
        // deferred to the flow as a whole.
        match innermost_revert {
            Some(r) if !self.completer.defer_reverts => self.revert_subflow(r),
            _ => self.start_revert_all(),
        }
    }

    /// The decision of the controller `r`. A controller that panics decides
    /// `REVERT_ALL`, and its panic is kept as a failure.
    fn consult(&mut self, r: AtomIndex) -> Decision {
        let AtomImpl::Retry(controller) = &self.comp.atom(r).imp else {
            return Decision::RevertAll;
        };
        let name = self.comp.atom(r).name();
        let inputs = self.inputs(r, false).unwrap_or_default();
        let history = &self.storage.detail(r).history();
        let ctx = Context::new(name, &inputs);
        match catch_unwind(AssertUnwindSafe(|| controller.on_failure(history, &ctx))) {
            Ok(decision) => decision,
            Err(panic) => {
                let mut f = Failure::from_panic(&*panic).with_atom(name);
                f.message = format!("on_failure panicked: {}", f.message);
                self.completer.add_failure(f);
                Decision::RevertAll
            }
        }
    }

    /// `RETRY`: revert the round of `r` (its scope, and what ran on the
    /// scope's results outside it), dependents first, then run it again.
    fn retry_scope(&mut self, r: AtomIndex) -> Result<(), EngineError> {
        let comp = self.comp;
        let Some(flow) = comp.atom(r).controls else {
            return self.start_revert_all();
        };
        // A round of a controller inside this scope (this controller's own
        // included: its flow holds it) is superseded by this one.
        self.completer.forget_rounds_in(comp, flow);
        intend(self.storage.detail_mut(r), Intention::Retry);
        self.storage.write_state(r)?;
        let atoms = self.round_atoms(r, |d| needs_revert(d.state));
        let remaining = self.take_back(&atoms, Some(r))?;
        self.selector
            .plan_reverts(self.storage, atoms.iter().copied());
        self.completer.rounds.push(Round {
            controller: r,
            atoms,
            remaining,
        });
        if remaining == 0 {
            self.finish_round(r)?;
        }
        Ok(())
    }

    /// Marks `atoms` to be reverted, for the retry round of `round` (or for
    /// good, with `None`), checkpointing each intention that changed;
    /// returns how many of them have something to revert.
    fn take_back(
        &mut self,
        atoms: &[AtomIndex],
        round: Option<AtomIndex>,
    ) -> Result<usize, EngineError> {
        let mut to_revert = 0;
        for &a in atoms {
            if intend(self.storage.detail_mut(a), Intention::Revert) {
                self.storage.write_state(a)?;
            }
            self.completer.round_of[a.index()] = round;
            to_revert += usize::from(needs_revert(self.storage.detail(a).state));
        }
        Ok(to_revert)
    }

    /// The atoms a retry round of `r` reverts and resets: its scope, and
    /// the atoms downstream of the scope, outside it, that `outside` picks
    /// (those that ran on the scope's results; TaskFlow resets every
    /// successor of the controller).
    fn round_atoms(&self, r: AtomIndex, outside: impl Fn(&AtomDetail) -> bool) -> Vec<AtomIndex> {
        let comp = self.comp;
        let mut atoms: Vec<AtomIndex> = comp.scope(r).collect();
        let mut seen = vec![false; comp.len()];
        seen[r.index()] = true;
        for a in &atoms {
            seen[a.index()] = true;
        }
        let mut stack = atoms.clone();
        while let Some(a) = stack.pop() {
            for &s in comp.successors(a) {
                if std::mem::replace(&mut seen[s.index()], true) {
                    continue;
                }
                stack.push(s);
                if outside(self.storage.detail(s)) {
                    atoms.push(s);
                }
            }
        }
        atoms
    }

    /// The round of `r` is reverted: `r` moves to `RETRYING` (notified
    /// before its atoms' `PENDING`, as TaskFlow does), its atoms are reset,
    /// and `r` runs again.
    fn finish_round(&mut self, r: AtomIndex) -> Result<(), EngineError> {
        let rounds = &mut self.completer.rounds;
        let atoms = match rounds.iter().position(|round| round.controller == r) {
            Some(i) => rounds.swap_remove(i).atoms,
            None => self.round_atoms(r, |d| d.intention == Intention::Revert),
        };
        intend(self.storage.detail_mut(r), Intention::Execute);
        self.transition(r, AtomState::Retrying, Write::State)?;
        self.reset_round(&atoms)?;
        self.selector.round_reset(self.storage, r, &atoms);
        Ok(())
    }

    /// Resets the atoms of a finished round to run again (those a crash
    /// left reset already are skipped), and forgets their failures: the
    /// flow's failure is its last attempt's, the earlier ones stay in the
    /// controller's history.
    fn reset_round(&mut self, atoms: &[AtomIndex]) -> Result<(), EngineError> {
        let comp = self.comp;
        let names: HashSet<&str> = atoms.iter().map(|&a| comp.atom(a).name()).collect();
        let completer = &mut self.completer;
        let before = completer.failures.len();
        completer
            .failures
            .retain(|f| !f.atom.as_deref().is_some_and(|a| names.contains(a)));
        if completer.failures.len() != before {
            completer.failures_shared = None;
        }
        for &s in atoms {
            self.completer.round_of[s.index()] = None;
            let d = self.storage.detail_mut(s);
            if d.intention == Intention::Execute && d.state == AtomState::Pending {
                continue;
            }
            d.intention = Intention::Execute;
            d.result = None;
            d.set_failure(None);
            d.set_revert_result(None);
            if comp.atom(s).kind() == AtomKind::Retry {
                d.set_history(History::new());
            }
            match d.state {
                AtomState::Reverted | AtomState::Ignore => {
                    self.transition(s, AtomState::Pending, Write::Detail)?;
                }
                _ => self.storage.write_detail(s)?,
            }
        }
        Ok(())
    }

    /// `REVERT` from every controller out to the last (reverts not
    /// deferred): `r`, its scope and what ran downstream of it revert; the
    /// rest of the flow stays as it is, and the flow ends `REVERTED`.
    fn revert_subflow(&mut self, r: AtomIndex) -> Result<(), EngineError> {
        let comp = self.comp;
        let Some(flow) = comp.atom(r).controls else {
            return self.start_revert_all();
        };
        self.completer.forget_rounds_in(comp, flow);
        let mut atoms = self.round_atoms(r, |d| needs_revert(d.state));
        atoms.push(r);
        self.take_back(&atoms, None)?;
        self.completer.reverting_part = true;
        self.selector.plan_reverts(self.storage, atoms.into_iter());
        Ok(())
    }

    /// `REVERT_ALL`, or no controller left: revert everything that ran.
    fn start_revert_all(&mut self) -> Result<(), EngineError> {
        self.completer.revert_all = true;
        self.completer.forget_rounds();
        self.mark_all_for_revert()?;
        self.selector
            .plan_reverts(self.storage, self.comp.indices());
        Ok(())
    }

    /// A revert asked for by the caller (`Engine::revert`), before the
    /// records are recovered: every atom that ran is marked to be reverted,
    /// so that recovery reverts an atom found `RUNNING` rather than running
    /// it again, and sees the whole flow reverting.
    pub(crate) fn prepare_requested_revert(&mut self) -> Result<(), EngineError> {
        self.mark_all_for_revert()
    }

    /// A revert asked for by the caller, once the roles are rebuilt: the
    /// whole flow reverts, as on `REVERT_ALL` (a flow that never ran has
    /// nothing to revert, and ends `REVERTED`).
    pub(crate) fn start_requested_revert(&mut self) -> Result<(), EngineError> {
        self.start_revert_all()
    }

    /// Whether no atom has anything to revert.
    pub(crate) fn nothing_to_revert(&self) -> bool {
        !self
            .comp
            .indices()
            .any(|a| needs_revert(self.storage.detail(a).state))
    }

    /// Marks every atom that ran (and every controller retrying) to be
    /// reverted, checkpointing each intention that changed.
    fn mark_all_for_revert(&mut self) -> Result<(), EngineError> {
        for atom in self.comp.indices() {
            let d = self.storage.detail_mut(atom);
            let wanted = if needs_revert(d.state) || d.intention == Intention::Retry {
                Intention::Revert
            } else {
                continue;
            };
            if intend(d, wanted) {
                self.storage.write_state(atom)?;
            }
        }
        Ok(())
    }

    fn reverted(&mut self, atom: AtomIndex, value: Value) -> Result<(), EngineError> {
        let d = self.storage.detail_mut(atom);
        d.set_revert_failure(None);
        // What the revert recorded (TaskFlow's revert result), if anything.
        let write = if value.is_null() && d.revert_result().is_none() {
            Write::State
        } else {
            d.set_revert_result((!value.is_null()).then(|| Arc::new(value)));
            Write::Detail
        };
        self.transition(atom, AtomState::Reverted, write)?;
        self.selector.on_reverted(self.storage, atom);
        if let Some(r) = self.completer.round_of[atom.index()] {
            let rounds = &mut self.completer.rounds;
            if let Some(round) = rounds.iter_mut().find(|round| round.controller == r) {
                round.remaining = round.remaining.saturating_sub(1);
                if round.remaining == 0 {
                    self.finish_round(r)?;
                }
            }
        }
        Ok(())
    }

    fn revert_failed(&mut self, atom: AtomIndex, failure: Failure) -> Result<(), EngineError> {
        self.storage
            .detail_mut(atom)
            .set_revert_failure(Some(failure.clone()));
        self.transition(atom, AtomState::RevertFailure, Write::Detail)?;
        self.completer.add_failure(failure);
        self.completer.halted = true;
        Ok(())
    }
}

/// Starting a run from the records: a reverted flow's reset, and the
/// recovery of what a crash left half done.
impl Runtime<'_> {
    /// A reverted flow runs again: what was reverted (all of it, or one
    /// controller's subflow) is reset to run again; atoms left `SUCCESS`
    /// keep their results.
    pub(crate) fn reset_all(&mut self) -> Result<(), EngineError> {
        for atom in self.comp.indices() {
            let d = self.storage.detail_mut(atom);
            if d.state == AtomState::Success {
                continue;
            }
            d.intention = Intention::Execute;
            d.result = None;
            d.set_failure(None);
            d.set_revert_failure(None);
            d.set_revert_result(None);
            d.set_history(History::new());
            if matches!(d.state, AtomState::Reverted | AtomState::Ignore) {
                self.transition(atom, AtomState::Pending, Write::Detail)?;
            } else {
                self.storage.write_detail(atom)?;
            }
        }
        Ok(())
    }

    /// Recovers what a crash may have left half done (atoms found
    /// `RUNNING`, resets of finished retry rounds), and builds the
    /// completer's rounds, failures and revert mode from the atom details.
    /// Runs before the selector counts;
    /// [`resume_resolution`](Self::resume_resolution) runs after.
    pub(crate) fn recover(&mut self) -> Result<(), EngineError> {
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
                .with_atom(comp.atom(atom).name());
                self.storage.detail_mut(atom).set_failure(Some(failure));
                self.transition(atom, AtomState::Failure, Write::Detail)?;
            } else {
                self.transition(atom, AtomState::Pending, Write::State)?;
            }
        }
        let completer = &mut self.completer;
        for d in self.storage.atom_details() {
            if d.intention == Intention::Revert || d.state == AtomState::RevertFailure {
                completer.failures.extend(d.failure().cloned());
            }
            completer.halted |= d.state == AtomState::RevertFailure;
        }
        for d in self.storage.atom_details() {
            completer.failures.extend(d.revert_failure().cloned());
        }
        completer
            .failures
            .extend(self.storage.removed_failures.iter().cloned());
        // Retry rounds in progress, and resets of finished rounds that a
        // crash interrupted (the controller already `RETRYING`).
        for r in comp.indices() {
            let d = self.storage.detail(r);
            if d.intention == Intention::Retry {
                let atoms = self.round_atoms(r, |d| d.intention == Intention::Revert);
                let mut remaining = 0;
                for &s in &atoms {
                    self.completer.round_of[s.index()] = Some(r);
                    remaining += usize::from(needs_revert(self.storage.detail(s).state));
                }
                self.completer.rounds.push(Round {
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
                && self.completer.round_of[a.index()].is_none()
        };
        if comp.indices().any(stray) {
            // Everything that ran is being reverted: the whole flow is;
            // otherwise one controller's subflow is, the rest left alone.
            let whole = comp.indices().all(|a| {
                let d = self.storage.detail(a);
                !needs_revert(d.state) || d.intention == Intention::Revert
            });
            if whole {
                self.completer.revert_all = true;
            } else {
                self.completer.reverting_part = true;
            }
        }
        if self.completer.revert_all {
            self.completer.forget_rounds();
            self.mark_all_for_revert()?;
        }
        Ok(())
    }

    /// After the selector has counted: finishes the retry rounds whose
    /// atoms the records show all reverted, and resolves the failures
    /// whose resolution was never written (atoms `FAILURE` with intention
    /// `EXECUTE`).
    pub(crate) fn resume_resolution(&mut self) -> Result<(), EngineError> {
        let finished: Vec<AtomIndex> = self
            .completer
            .rounds
            .iter()
            .filter(|round| round.remaining == 0)
            .map(|round| round.controller)
            .collect();
        for r in finished {
            self.finish_round(r)?;
        }
        let unresolved: Vec<AtomIndex> = self
            .comp
            .indices()
            .filter(|&a| {
                let d = self.storage.detail(a);
                d.state == AtomState::Failure && d.intention == Intention::Execute
            })
            .collect();
        for atom in unresolved {
            if let Some(f) = self.storage.detail(atom).failure().cloned() {
                self.completer.failures.push(f);
            }
            if self.storage.detail(atom).intention == Intention::Execute {
                self.resolve(atom)?;
            }
        }
        Ok(())
    }
}

/// The depth of a value nested deeper than records hold
/// ([`MAX_VALUE_DEPTH`]); scalars, most results, cost nothing to check.
pub(crate) fn too_deep(value: &Value) -> Option<usize> {
    if !matches!(value, Value::Array(_) | Value::Object(_)) {
        return None;
    }
    Some(value_depth(value)).filter(|&depth| depth > MAX_VALUE_DEPTH)
}
