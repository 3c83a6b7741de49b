//! Selecting what is ready: executions whose dependencies are done,
//! reverts whose dependents are reverted, and what a false decider ignores.

use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use taskflow_patterns::{
    AtomIndex, AtomKind, AtomState, CompiledDecider, Depth, Failure, Intention,
};

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
                self.push_ready(s);
            }
        }
    }

    /// Counts, for each atom of `atoms` to revert, its dependents still to
    /// revert, and queues those with none.
    pub(crate) fn plan_reverts(&mut self, atoms: impl Iterator<Item = AtomIndex>) {
        for atom in atoms {
            if !self.revertible(atom) {
                continue;
            }
            let waiting = if self.next_to_ignored(atom, Direction::Dependents) {
                self.revert_neighbours(atom, Direction::Dependents).len()
            } else {
                let revertible = |s: &&AtomIndex| self.revertible(**s);
                self.comp.successors(atom).iter().filter(revertible).count()
            };
            self.waiting_succs[atom.index()] = u32::try_from(waiting).unwrap_or(u32::MAX);
            if waiting == 0 && !self.busy[atom.index()] {
                self.push_revert_ready(atom);
            }
        }
    }

    /// Whether `atom` is meant to be reverted and has something to revert.
    pub(crate) fn revertible(&self, atom: AtomIndex) -> bool {
        let d = self.storage.detail(atom);
        d.intention == Intention::Revert && needs_revert(d.state)
    }

    /// Whether an atom next to `atom`, one way, was ignored by a decider:
    /// only then must the walk look through it (most reverts never do,
    /// and count their neighbours without allocating).
    fn next_to_ignored(&self, atom: AtomIndex, way: Direction) -> bool {
        let next = match way {
            Direction::Dependents => self.comp.successors(atom),
            Direction::Dependencies => self.comp.predecessors(atom),
        };
        next.iter()
            .any(|&n| self.storage.detail(n).state == AtomState::Ignore)
    }

    /// The atoms to revert next to `atom`, one way: its dependents (which
    /// revert before it) or its dependencies (which revert after it),
    /// looking through atoms a decider ignored. As in TaskFlow, a
    /// dependency through an ignored atom counts: in `a -> b -> c` with `b`
    /// ignored, `c` reverts before `a`.
    fn revert_neighbours(&self, atom: AtomIndex, way: Direction) -> Vec<AtomIndex> {
        let next = |a: AtomIndex| match way {
            Direction::Dependents => self.comp.successors(a),
            Direction::Dependencies => self.comp.predecessors(a),
        };
        let mut found = Vec::new();
        let mut through: Vec<AtomIndex> = Vec::new();
        for &n in next(atom) {
            if self.revertible(n) {
                found.push(n);
            } else if self.storage.detail(n).state == AtomState::Ignore {
                through.push(n);
            }
        }
        if through.is_empty() {
            return found;
        }
        // Rare: walk the ignored atoms, each atom once.
        let mut seen: HashSet<AtomIndex> = found.iter().copied().collect();
        seen.extend(through.iter().copied());
        while let Some(i) = through.pop() {
            for &n in next(i) {
                if !seen.insert(n) {
                    continue;
                }
                if self.revertible(n) {
                    found.push(n);
                } else if self.storage.detail(n).state == AtomState::Ignore {
                    through.push(n);
                }
            }
        }
        found
    }

    /// `atom` was reverted: its dependencies may be ready to revert.
    pub(crate) fn on_reverted(&mut self, atom: AtomIndex) {
        if self.next_to_ignored(atom, Direction::Dependencies) {
            for p in self.revert_neighbours(atom, Direction::Dependencies) {
                self.dependent_reverted(p);
            }
        } else {
            let comp = self.comp;
            for &p in comp.predecessors(atom) {
                if self.revertible(p) {
                    self.dependent_reverted(p);
                }
            }
        }
    }

    /// One dependent of `p` is reverted: `p` may be ready to revert.
    fn dependent_reverted(&mut self, p: AtomIndex) {
        let waiting = &mut self.waiting_succs[p.index()];
        *waiting = waiting.saturating_sub(1);
        if *waiting == 0 && !self.busy[p.index()] {
            self.push_revert_ready(p);
        }
    }

    /// Asks the deciders on the links into `atom`, as TaskFlow does: every
    /// decider sees the results of all the links' sources (those not
    /// ignored), a decider whose sources were all ignored has no say, and
    /// every other one is asked. `Ok(None)` lets `atom` run; `Ok(Some(d))`
    /// names the decider that said no with the widest depth (the one whose
    /// ignoring reaches furthest). A panicking decider is a failure of
    /// `atom`.
    pub(crate) fn decide(&self, atom: AtomIndex) -> Result<Option<u32>, Failure> {
        let incoming = self.comp.incoming_deciders(atom);
        if incoming.is_empty() {
            return Ok(None);
        }
        let deciders = self.comp.deciders();
        let mut history: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for &id in incoming {
            for &s in &deciders[id as usize].sources {
                let d = self.storage.detail(s);
                if let Some(result) = d
                    .result
                    .as_deref()
                    .filter(|_| d.state == AtomState::Success)
                {
                    history.insert(d.name.to_string(), result.clone());
                }
            }
        }
        let mut nay: Option<u32> = None;
        for &id in incoming {
            let decider = &deciders[id as usize];
            let ignored = decider
                .sources
                .iter()
                .all(|&s| self.storage.detail(s).state == AtomState::Ignore);
            if ignored && !decider.sources.is_empty() {
                continue;
            }
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
                let wider = match nay {
                    None => true,
                    Some(n) => reach(decider.depth) > reach(deciders[n as usize].depth),
                };
                if wider {
                    nay = Some(id);
                }
            }
        }
        Ok(nay)
    }

    /// A decider said no to `atom`: it, and per the decider's depth more of
    /// what follows it, become `IGNORE`.
    pub(crate) fn ignore(&mut self, atom: AtomIndex, decider: u32) -> Result<(), EngineError> {
        let d: &CompiledDecider = &self.comp.deciders()[decider as usize];
        let comp = self.comp;
        let flow = comp.atom(atom).flow;
        let mut affected = vec![atom];
        match d.depth {
            Depth::Atom => {}
            // Its direct successors that are tasks of its own flow (TaskFlow
            // reaches no atom across a flow boundary at this depth).
            Depth::Neighbors => {
                affected.extend(comp.successors(atom).iter().copied().filter(|&x| {
                    comp.atom(x).flow == flow && comp.atom(x).kind() == AtomKind::Task
                }))
            }
            // What follows it without leaving its flow: the walk stops at a
            // nested flow, as TaskFlow's does at a flow's node.
            Depth::Flow => {
                let mut stack = vec![atom];
                let mut seen: HashSet<AtomIndex> = HashSet::from([atom]);
                while let Some(a) = stack.pop() {
                    for &x in comp.successors(a) {
                        if comp.atom(x).flow == flow && seen.insert(x) {
                            affected.push(x);
                            stack.push(x);
                        }
                    }
                }
            }
            Depth::All => affected.extend(comp.descendants(atom)),
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

/// Which way [`Runtime::revert_neighbours`] looks.
#[derive(Clone, Copy)]
enum Direction {
    Dependents,
    Dependencies,
}

/// How far a decider's "no" reaches, to pick the widest of several.
fn reach(depth: Depth) -> u8 {
    match depth {
        Depth::Atom => 0,
        Depth::Neighbors => 1,
        Depth::Flow => 2,
        Depth::All => 3,
    }
}
