//! Selecting what is ready: executions whose dependencies are done,
//! reverts whose dependents are reverted, and what a false decider ignores.

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use taskflow_patterns::{AtomIndex, AtomState, CompiledDecider, Depth, Failure, Intention};

use crate::runtime::{needs_revert, Runtime, Write};
use crate::EngineError;

impl Runtime<'_> {
    /// How many dependencies of `atom` are not done.
    pub(crate) fn count_waiting_preds(&self, atom: AtomIndex) -> u32 {
        let n = self
            .comp
            .predecessors(atom)
            .iter()
            .filter(|p| !self.storage.detail(**p).state.is_done())
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// `atom` is done (`SUCCESS` or `IGNORE`): its dependents may be ready.
    pub(crate) fn on_done(&mut self, atom: AtomIndex) {
        for &s in self.comp.successors(atom) {
            let waiting = &mut self.waiting_preds[s.index()];
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 && self.executable(s) {
                self.ready.push_back(s);
            }
        }
    }

    /// Counts, for each atom of `atoms` to revert, its dependents still to
    /// revert, and queues those with none.
    pub(crate) fn plan_reverts(
        &mut self,
        atoms: impl Iterator<Item = AtomIndex>,
    ) -> Result<(), EngineError> {
        for atom in atoms {
            if !self.revertible(atom) {
                continue;
            }
            let waiting = self
                .comp
                .successors(atom)
                .iter()
                .filter(|s| self.revertible(**s))
                .count();
            self.waiting_succs[atom.index()] = u32::try_from(waiting).unwrap_or(u32::MAX);
            if waiting == 0 && !self.busy[atom.index()] {
                self.revert_ready.push_back(atom);
            }
        }
        Ok(())
    }

    /// Whether `atom` is meant to be reverted and has something to revert.
    pub(crate) fn revertible(&self, atom: AtomIndex) -> bool {
        let d = self.storage.detail(atom);
        d.intention == Intention::Revert && needs_revert(d.state)
    }

    /// `atom` was reverted: its dependencies may be ready to revert.
    pub(crate) fn on_reverted(&mut self, atom: AtomIndex) {
        for &p in self.comp.predecessors(atom) {
            if !self.revertible(p) {
                continue;
            }
            let waiting = &mut self.waiting_succs[p.index()];
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 && !self.busy[p.index()] {
                self.revert_ready.push_back(p);
            }
        }
    }

    /// Asks the deciders on the links into `atom`; `Ok(None)` lets it run,
    /// `Ok(Some(d))` names the decider that said no. A panicking decider is
    /// a failure of `atom`.
    pub(crate) fn decide(&self, atom: AtomIndex) -> Result<Option<u32>, Failure> {
        for &id in self.comp.incoming_deciders(atom) {
            let decider = &self.comp.deciders()[id as usize];
            let history: BTreeMap<String, serde_json::Value> = decider
                .sources
                .iter()
                .filter_map(|&s| {
                    let d = self.storage.detail(s);
                    let result = d
                        .result
                        .as_deref()
                        .filter(|_| d.state == AtomState::Success)?;
                    Some((d.name.to_string(), result.clone()))
                })
                .collect();
            let allowed = catch_unwind(AssertUnwindSafe(|| decider.decider.decide(&history)))
                .map_err(|panic| {
                    let mut f = Failure::from_panic(&*panic);
                    f.message = format!(
                        "the decider of the link `{}` -> `{}` panicked: {}",
                        decider.from, decider.to, f.message
                    );
                    f.with_atom(&*self.comp.atom(atom).name)
                })?;
            if !allowed {
                return Ok(Some(id));
            }
        }
        Ok(None)
    }

    /// A decider said no to `atom`: it, and per the decider's depth more of
    /// what follows it, become `IGNORE`.
    pub(crate) fn ignore(&mut self, atom: AtomIndex, decider: u32) -> Result<(), EngineError> {
        let d: &CompiledDecider = &self.comp.deciders()[decider as usize];
        let mut affected = vec![atom];
        match d.depth {
            Depth::Atom => {}
            Depth::Neighbors => affected.extend_from_slice(self.comp.successors(atom)),
            Depth::Flow => {
                let flow = self.comp.atom(atom).flow;
                affected.extend(
                    self.comp
                        .descendants(atom)
                        .into_iter()
                        .filter(|&x| self.comp.atom(x).flow == flow),
                );
            }
            Depth::All => affected.extend(self.comp.descendants(atom)),
        }
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
            self.on_done(x);
        }
        Ok(())
    }
}
