//! Scheduling: turning a ready atom into work for the executor.
//!
//! The scheduler keeps no state of its own: it takes the atom the
//! [`Selector`](crate::selector::Selector) hands out, checkpoints its
//! start, gathers its arguments and submits it, telling the selector what
//! it submitted.

use std::sync::Arc;

use taskflow_patterns::{
    ArgSource, Argument, AtomImpl, AtomIndex, AtomState, Failure, Inputs, Intention, Provides,
    TaskError,
};

use crate::executor::{Action, AtomWork, Recovery, Timer};
use crate::runtime::{Runtime, Write};
use crate::storage::{clear_reports, has_result};
use crate::EngineError;

impl Runtime<'_> {
    /// Starts executing `atom`, unless it is no longer ready (queues may
    /// hold atoms a failure resolution has since taken back).
    pub(crate) fn start_execute(&mut self, atom: AtomIndex) -> Result<(), EngineError> {
        if !self.selector.may_execute(self.storage, atom) {
            return Ok(());
        }
        match self.selector.decide(self.storage, atom) {
            Ok(None) => {}
            Ok(Some(decider)) => return self.ignore(atom, decider),
            Err(failure) => return self.fail_before_running(atom, failure),
        }
        let inputs = match self.inputs(atom, true) {
            Ok(inputs) => inputs,
            Err(failure) => return self.fail_before_running(atom, failure),
        };
        // A task starts at progress 0 with nothing said: a report or a
        // check-in left in the record by an earlier run goes (the record is
        // then written whole).
        let write = if clear_reports(self.storage.detail_mut(atom)) {
            Write::Detail
        } else {
            Write::State
        };
        self.transition(atom, AtomState::Running, write)?;
        let compiled = self.comp.atom(atom);
        let (history, record) = match compiled.imp {
            AtomImpl::Retry(_) => (Some(self.storage.detail(atom).history().clone()), None),
            AtomImpl::Task(_) => {
                if !self.shared.listeners.is_empty() {
                    self.shared.listeners.progress(compiled.name(), 0.0);
                }
                (None, Some(self.storage.detail(atom).uuid))
            }
        };
        let work = AtomWork {
            atom,
            name: compiled.spec.name.clone(),
            action: Action::Execute,
            imp: compiled.imp.clone(),
            inputs,
            // Only a retry controller's execute has a recovery (its
            // history): a task's clones nothing here.
            recovery: history.and_then(|history| {
                Recovery::boxed(Some(history), None, None, self.completer.no_failures())
            }),
            shared: self.shared.clone(),
            detail: record,
            timer: compiled.spec.timeout().map(Timer::new),
        };
        self.submit(work)
    }

    /// Starts reverting `atom`, unless it is no longer ready to.
    pub(crate) fn start_revert(&mut self, atom: AtomIndex) -> Result<(), EngineError> {
        if !self.selector.may_revert(self.storage, atom) {
            return Ok(());
        }
        if self.storage.detail(atom).state != AtomState::Reverting {
            self.transition(atom, AtomState::Reverting, Write::State)?;
        }
        let inputs = self.revert_inputs(atom);
        let flow_failures = self.completer.shared_failures();
        let compiled = self.comp.atom(atom);
        let d = self.storage.detail(atom);
        // A task's revert checks in to its record as its execute does.
        let record = matches!(compiled.imp, AtomImpl::Task(_)).then_some(d.uuid);
        let work = AtomWork {
            atom,
            name: compiled.spec.name.clone(),
            action: Action::Revert,
            imp: compiled.imp.clone(),
            inputs,
            recovery: Recovery::boxed(
                matches!(compiled.imp, AtomImpl::Retry(_)).then(|| d.history().clone()),
                d.result.clone(),
                d.failure().cloned(),
                flow_failures,
            ),
            shared: self.shared.clone(),
            detail: record,
            timer: compiled.spec.timeout().map(Timer::new),
        };
        self.submit(work)
    }

    /// Hands `work` to the executor, after the checkpoints waiting (its
    /// `RUNNING` among them) are written.
    fn submit(&mut self, work: AtomWork) -> Result<(), EngineError> {
        self.storage.flush()?;
        let alone = self.selector.submitted(work.atom);
        if alone {
            self.executor.submit_alone(work);
        } else {
            self.executor.submit(work);
        }
        Ok(())
    }

    /// A decider said no to `atom`: it, and per the decider's depth more of
    /// what follows it, become `IGNORE` (those still pending), and count as
    /// done for their dependents.
    fn ignore(&mut self, atom: AtomIndex, decider: u32) -> Result<(), EngineError> {
        let affected = self.selector.ignored_by(atom, decider);
        let mut ignored = Vec::with_capacity(affected.len());
        for x in affected {
            let detail = self.storage.detail_mut(x);
            if detail.state == AtomState::Pending && detail.intention == Intention::Execute {
                detail.intention = Intention::Ignore;
                self.transition(x, AtomState::Ignore, Write::State)?;
                ignored.push(x);
            }
        }
        for x in ignored {
            self.selector.on_done(self.storage, x);
        }
        Ok(())
    }

    /// `atom` cannot run (a missing input, a panicking decider): it goes
    /// through `RUNNING` to `FAILURE` without its task being called.
    fn fail_before_running(
        &mut self,
        atom: AtomIndex,
        failure: Failure,
    ) -> Result<(), EngineError> {
        self.transition(atom, AtomState::Running, Write::State)?;
        self.execute_failed(atom, failure)
    }

    /// The arguments of `atom`'s `execute` (for a retry controller, of
    /// `execute` and `on_failure`). With `strict`, a missing one is a
    /// failure naming the atom, the argument and where its value should
    /// have come from.
    pub(crate) fn inputs(&self, atom: AtomIndex, strict: bool) -> Result<Inputs, Failure> {
        self.gather(atom, self.res.arguments(atom), strict)
    }

    /// The arguments of `atom`'s `revert`: its own revert arguments
    /// (`revert_requires`, `revert_rebind`) if it declares any, else those
    /// of `execute`. A revert gets whatever of them is still there.
    pub(crate) fn revert_inputs(&self, atom: AtomIndex) -> Inputs {
        self.gather(atom, self.res.revert_arguments(atom), false)
            .unwrap_or_default()
    }

    fn gather(&self, atom: AtomIndex, args: &[Argument], strict: bool) -> Result<Inputs, Failure> {
        let mut inputs = Inputs::with_capacity(args.len());
        for arg in args {
            let value = match &arg.source {
                ArgSource::Atom { provider, part } => {
                    let d = self.storage.detail(*provider);
                    match &d.result {
                        Some(result) if has_result(d.state) => {
                            match &self.comp.atom(*provider).spec.provides {
                                // The whole result: shared, not copied.
                                Provides::Single(_) => Some(result.clone()),
                                provides => {
                                    provides.part(*part, result).map(|v| Arc::new(v.clone()))
                                }
                            }
                        }
                        _ => None,
                    }
                }
                ArgSource::Store(symbol) => self.storage.store_value(symbol).cloned(),
                ArgSource::Value(v) => Some(v.clone()),
            };
            match value.or_else(|| arg.default.clone()) {
                Some(v) => inputs.insert(arg.name.clone(), v),
                None if strict => return Err(self.missing(atom, arg)),
                None => {}
            }
        }
        Ok(inputs)
    }

    fn missing(&self, atom: AtomIndex, arg: &Argument) -> Failure {
        let compiled = self.comp.atom(atom);
        let name = compiled.name();
        let symbol = compiled.spec.symbol_of(&arg.name);
        let why = match &arg.source {
            ArgSource::Atom { provider, .. } => {
                let d = self.storage.detail(*provider);
                if has_result(d.state) {
                    format!(
                        "atom `{}` provides it, but its result has no such part",
                        d.name
                    )
                } else {
                    format!("atom `{}` provides it, but is {}", d.name, d.state)
                }
            }
            ArgSource::Store(_) => "the store does not hold it".to_owned(),
            ArgSource::Value(_) => "it has no value".to_owned(),
        };
        let message = format!(
            "atom `{name}` requires `{}` (argument `{}`), which has no value: {why}",
            symbol, arg.name
        );
        TaskError::new(TaskError::MISSING_INPUT, message).into_failure(name)
    }
}
