//! Selecting what is ready: executions whose dependencies are done,
//! reverts whose dependents are reverted, and what a false decider ignores.
//!
//! The [`Selector`] owns the readiness bookkeeping of a run and nothing
//! else: it reads atom states from the storage it is handed and writes no
//! record. The scheduler takes ready atoms from it and says what it
//! submitted; the completer says what came back, what is done, reverted or
//! taken back.

use std::collections::{BTreeMap, HashSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

use taskflow_patterns::{
    AtomIndex, AtomKind, AtomState, Compilation, CompiledDecider, Depth, Failure, Intention,
};

use crate::ready::ReadyQueue;
use crate::storage::Storage;

/// The readiness bookkeeping of a run: per atom, how many dependencies are
/// not yet done, how many dependents are still to revert and whether its
/// work is with the executor; the atoms ready to execute and to revert, in
/// the order they start; how much work is in flight. Per-atom state is a
/// vector indexed by atom index, so each question costs the same whatever
/// the size of the flow.
pub(crate) struct Selector<'e> {
    comp: &'e Compilation,
    /// Per atom: dependencies not yet done.
    waiting_preds: Vec<u32>,
    /// Per atom being reverted: dependents still to revert.
    waiting_succs: Vec<u32>,
    /// Per atom: its work is with the executor.
    busy: Vec<bool>,
    /// Atoms whose dependencies are done, to execute.
    ready: ReadyQueue,
    /// Atoms whose dependents are reverted, to revert.
    revert_ready: ReadyQueue,
    /// Work submitted whose outcome has not come back.
    in_flight: usize,
}

impl<'e> Selector<'e> {
    /// Nothing counted, nothing ready (see [`rebuild`](Self::rebuild)).
    pub(crate) fn new(comp: &'e Compilation) -> Self {
        let n = comp.len();
        Selector {
            comp,
            waiting_preds: vec![0; n],
            waiting_succs: vec![0; n],
            busy: vec![false; n],
            ready: ReadyQueue::new(comp.has_priorities()),
            revert_ready: ReadyQueue::new(comp.has_priorities()),
            in_flight: 0,
        }
    }

    /// Counts every atom's unfinished dependencies from the atom details,
    /// queues the atoms ready to execute, and plans the reverts the
    /// records ask for.
    pub(crate) fn rebuild(&mut self, storage: &Storage) {
        let comp = self.comp;
        for atom in comp.indices() {
            let waiting = self.count_waiting_preds(storage, atom);
            self.waiting_preds[atom.index()] = waiting;
            if waiting == 0 && self.executable(storage, atom) {
                self.push_ready(atom);
            }
        }
        self.plan_reverts(storage, comp.indices());
    }

    /// Whether anything is queued: a revert, or (with `executions`) an
    /// execution.
    #[inline]
    pub(crate) fn has_work(&self, executions: bool) -> bool {
        !self.revert_ready.is_empty() || (executions && !self.ready.is_empty())
    }

    /// Whether a revert is queued.
    #[inline]
    pub(crate) fn has_revert_ready(&self) -> bool {
        !self.revert_ready.is_empty()
    }

    /// The next atom queued to revert.
    #[inline]
    pub(crate) fn pop_revert(&mut self) -> Option<AtomIndex> {
        self.revert_ready.pop()
    }

    /// The next atom queued to execute.
    #[inline]
    pub(crate) fn pop_ready(&mut self) -> Option<AtomIndex> {
        self.ready.pop()
    }

    /// How much work is with the executor.
    #[inline]
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// The work of `atom` went to the executor. Returns whether it is all
    /// there is to do (nothing else in flight, nothing else queued).
    #[inline]
    pub(crate) fn submitted(&mut self, atom: AtomIndex) -> bool {
        self.busy[atom.index()] = true;
        let alone = self.in_flight == 0 && self.ready.is_empty() && self.revert_ready.is_empty();
        self.in_flight += 1;
        alone
    }

    /// The outcome of `atom`'s work came back.
    #[inline]
    pub(crate) fn completed(&mut self, atom: AtomIndex) {
        self.in_flight = self.in_flight.saturating_sub(1);
        self.busy[atom.index()] = false;
    }

    /// Whether `atom`, taken from the queue, is still ready to execute
    /// (queues may hold atoms a failure resolution has since taken back).
    #[inline]
    pub(crate) fn may_execute(&self, storage: &Storage, atom: AtomIndex) -> bool {
        self.executable(storage, atom) && self.waiting_preds[atom.index()] == 0
    }

    /// Whether `atom`, taken from the queue, is still ready to revert.
    #[inline]
    pub(crate) fn may_revert(&self, storage: &Storage, atom: AtomIndex) -> bool {
        self.revertible(storage, atom)
            && !self.busy[atom.index()]
            && self.waiting_succs[atom.index()] == 0
            && storage.detail(atom).state != AtomState::Running
    }

    /// Whether an atom may be scheduled for execution, state-wise.
    #[inline]
    fn executable(&self, storage: &Storage, atom: AtomIndex) -> bool {
        let d = storage.detail(atom);
        d.intention == Intention::Execute
            && !self.busy[atom.index()]
            && (d.state == AtomState::Pending
                || (d.state == AtomState::Retrying
                    && self.comp.atom(atom).kind() == AtomKind::Retry))
    }

    /// Queues `atom` to execute (see [`ReadyQueue`]).
    #[inline]
    fn push_ready(&mut self, atom: AtomIndex) {
        self.ready.push(self.comp, atom);
    }

    /// Queues `atom` to revert (see [`ReadyQueue`]).
    #[inline]
    fn push_revert_ready(&mut self, atom: AtomIndex) {
        self.revert_ready.push(self.comp, atom);
    }

    /// How many dependencies of `atom` are not done.
    fn count_waiting_preds(&self, storage: &Storage, atom: AtomIndex) -> u32 {
        let n = self
            .comp
            .predecessors(atom)
            .iter()
            .filter(|p| !storage.detail(**p).state.is_done())
            .count();
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// `atom` is done (`SUCCESS` or `IGNORE`): its dependents may be ready.
    pub(crate) fn on_done(&mut self, storage: &Storage, atom: AtomIndex) {
        for &s in self.comp.successors(atom) {
            let waiting = &mut self.waiting_preds[s.index()];
            *waiting = waiting.saturating_sub(1);
            if *waiting == 0 && self.executable(storage, s) {
                self.push_ready(s);
            }
        }
    }

    /// The atoms of a retry round of `r` were reset to run again: they
    /// count their dependencies again, and `r` (about to run again) is
    /// queued once its own are done.
    pub(crate) fn round_reset(&mut self, storage: &Storage, r: AtomIndex, atoms: &[AtomIndex]) {
        for &s in atoms {
            self.waiting_preds[s.index()] = self.count_waiting_preds(storage, s);
        }
        self.waiting_preds[r.index()] = self.count_waiting_preds(storage, r);
        if self.waiting_preds[r.index()] == 0 {
            self.push_ready(r);
        }
    }

    /// `atom`, taken back for a revert while it ran, has finished: its
    /// revert is queued if no dependent is still to revert.
    #[inline]
    pub(crate) fn queue_revert(&mut self, atom: AtomIndex) {
        if self.waiting_succs[atom.index()] == 0 {
            self.push_revert_ready(atom);
        }
    }

    /// Counts, for each atom of `atoms` to revert, its dependents still to
    /// revert, and queues those with none.
    pub(crate) fn plan_reverts(
        &mut self,
        storage: &Storage,
        atoms: impl Iterator<Item = AtomIndex>,
    ) {
        for atom in atoms {
            if !self.revertible(storage, atom) {
                continue;
            }
            let waiting = if self.next_to_ignored(storage, atom, Direction::Dependents) {
                self.revert_neighbours(storage, atom, Direction::Dependents)
                    .len()
            } else {
                let revertible = |s: &&AtomIndex| self.revertible(storage, **s);
                self.comp.successors(atom).iter().filter(revertible).count()
            };
            self.waiting_succs[atom.index()] = u32::try_from(waiting).unwrap_or(u32::MAX);
            if waiting == 0 && !self.busy[atom.index()] {
                self.push_revert_ready(atom);
            }
        }
    }

    /// Whether `atom` is meant to be reverted and has something to revert.
    #[inline]
    fn revertible(&self, storage: &Storage, atom: AtomIndex) -> bool {
        let d = storage.detail(atom);
        d.intention == Intention::Revert && needs_revert(d.state)
    }

    /// Whether an atom next to `atom`, one way, was ignored by a decider:
    /// only then must the walk look through it (most reverts never do,
    /// and count their neighbours without allocating).
    fn next_to_ignored(&self, storage: &Storage, atom: AtomIndex, way: Direction) -> bool {
        let next = match way {
            Direction::Dependents => self.comp.successors(atom),
            Direction::Dependencies => self.comp.predecessors(atom),
        };
        next.iter()
            .any(|&n| storage.detail(n).state == AtomState::Ignore)
    }

    /// The atoms to revert next to `atom`, one way: its dependents (which
    /// revert before it) or its dependencies (which revert after it),
    /// looking through atoms a decider ignored. As in TaskFlow, a
    /// dependency through an ignored atom counts: in `a -> b -> c` with `b`
    /// ignored, `c` reverts before `a`.
    fn revert_neighbours(
        &self,
        storage: &Storage,
        atom: AtomIndex,
        way: Direction,
    ) -> Vec<AtomIndex> {
        let comp = self.comp;
        let next = |a: AtomIndex| match way {
            Direction::Dependents => comp.successors(a),
            Direction::Dependencies => comp.predecessors(a),
        };
        let mut found = Vec::new();
        let mut through: Vec<AtomIndex> = Vec::new();
        for &n in next(atom) {
            if self.revertible(storage, n) {
                found.push(n);
            } else if storage.detail(n).state == AtomState::Ignore {
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
                if self.revertible(storage, n) {
                    found.push(n);
                } else if storage.detail(n).state == AtomState::Ignore {
                    through.push(n);
                }
            }
        }
        found
    }

    /// `atom` was reverted: its dependencies may be ready to revert.
    pub(crate) fn on_reverted(&mut self, storage: &Storage, atom: AtomIndex) {
        if self.next_to_ignored(storage, atom, Direction::Dependencies) {
            for p in self.revert_neighbours(storage, atom, Direction::Dependencies) {
                self.dependent_reverted(p);
            }
        } else {
            let comp = self.comp;
            for &p in comp.predecessors(atom) {
                if self.revertible(storage, p) {
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
    #[inline]
    pub(crate) fn decide(
        &self,
        storage: &Storage,
        atom: AtomIndex,
    ) -> Result<Option<u32>, Failure> {
        // Most atoms have no decider: that answer stays inline.
        let incoming = self.comp.incoming_deciders(atom);
        if incoming.is_empty() {
            return Ok(None);
        }
        self.ask_deciders(storage, atom, incoming)
    }

    /// [`decide`](Self::decide) for an atom with deciders on `incoming`.
    fn ask_deciders(
        &self,
        storage: &Storage,
        atom: AtomIndex,
        incoming: &[u32],
    ) -> Result<Option<u32>, Failure> {
        let deciders = self.comp.deciders();
        let mut history: BTreeMap<String, serde_json::Value> = BTreeMap::new();
        for &id in incoming {
            for &s in &deciders[id as usize].sources {
                let d = storage.detail(s);
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
                .all(|&s| storage.detail(s).state == AtomState::Ignore);
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
                    f.with_atom(self.comp.atom(atom).name())
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

    /// What a decider's no to `atom` reaches, per the decider's depth:
    /// `atom` first, then more of what follows it. (Those still pending
    /// become `IGNORE`; see the scheduler.)
    pub(crate) fn ignored_by(&self, atom: AtomIndex, decider: u32) -> Vec<AtomIndex> {
        let comp = self.comp;
        let d: &CompiledDecider = &comp.deciders()[decider as usize];
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
        affected
    }
}

/// Which way [`Selector::revert_neighbours`] looks.
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

/// Whether an atom in this state has done something that must be reverted.
pub(crate) fn needs_revert(state: AtomState) -> bool {
    matches!(
        state,
        AtomState::Success | AtomState::Failure | AtomState::Running | AtomState::Reverting
    )
}
