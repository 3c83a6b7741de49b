//! What the completer keeps between outcomes (its state, apart from the
//! runtime it works on, so that the runtime holds it without depending on
//! the completer's work).

use std::sync::Arc;

use taskflow_patterns::{AtomIndex, Compilation, Failure, FlowIndex};

/// What the completer keeps between outcomes: the retry rounds in progress
/// and the round each atom is reverted for, the flow's failures, and how
/// failure resolution left the flow (reverting as a whole, one
/// controller's subflow reverting, or halted by a failed revert). Built
/// from the records by [`Runtime::recover`] when a run starts.
pub(crate) struct Completer {
    /// Per atom: the retry round it is being reverted for.
    pub(super) round_of: Vec<Option<AtomIndex>>,
    /// Retry rounds in progress.
    pub(super) rounds: Vec<Round>,
    /// The whole flow is reverting: nothing more executes.
    pub(super) revert_all: bool,
    /// A controller's subflow is reverting (or reverted) on its own: the
    /// flow ends `REVERTED`, the rest of it as it was.
    pub(super) reverting_part: bool,
    /// `REVERT` with no controller further out reverts the whole flow, as
    /// TaskFlow's `defer_reverts` (see `EngineBuilder::defer_reverts`).
    pub(super) defer_reverts: bool,
    /// A revert failed: nothing more is scheduled.
    pub(super) halted: bool,
    /// The flow's failures, the last attempt's of each atom.
    pub(super) failures: Vec<Failure>,
    /// `failures` as shared with revert work, until they change.
    pub(super) failures_shared: Option<Arc<[Failure]>>,
    /// An empty failure list, shared by every retry controller's execution.
    pub(super) no_failures: Arc<[Failure]>,
}

/// A retry round in progress: its controller, the atoms it reverts and
/// resets, and how many are still to revert.
pub(super) struct Round {
    pub(super) controller: AtomIndex,
    pub(super) atoms: Vec<AtomIndex>,
    pub(super) remaining: usize,
}

impl Completer {
    /// No rounds, no failures, for a flow of `n` atoms.
    pub(crate) fn new(n: usize) -> Self {
        Completer {
            round_of: vec![None; n],
            rounds: Vec::new(),
            revert_all: false,
            reverting_part: false,
            defer_reverts: false,
            halted: false,
            failures: Vec::new(),
            failures_shared: None,
            no_failures: Arc::from(Vec::new()),
        }
    }

    /// Whether `REVERT` with no controller further out reverts the whole
    /// flow (see `EngineBuilder::defer_reverts`).
    pub(crate) fn set_defer_reverts(&mut self, defer: bool) {
        self.defer_reverts = defer;
    }

    /// Whether a revert failed, so nothing more is scheduled.
    #[inline]
    pub(crate) fn halted(&self) -> bool {
        self.halted
    }

    /// Whether the whole flow is reverting (nothing more executes).
    #[inline]
    pub(crate) fn reverting_all(&self) -> bool {
        self.revert_all
    }

    /// Whether one controller's subflow is reverting (or reverted) on its
    /// own.
    pub(crate) fn reverting_part(&self) -> bool {
        self.reverting_part
    }

    /// The flow's failures.
    pub(crate) fn failures(&self) -> &[Failure] {
        &self.failures
    }

    /// Adds a failure of the flow.
    pub(crate) fn add_failure(&mut self, failure: Failure) {
        self.failures.push(failure);
        self.failures_shared = None;
    }

    /// The flow's failures, shared with revert work.
    pub(crate) fn shared_failures(&mut self) -> Arc<[Failure]> {
        self.failures_shared
            .get_or_insert_with(|| self.failures.clone().into())
            .clone()
    }

    /// No failures, shared with every retry controller's execution.
    #[inline]
    pub(crate) fn no_failures(&self) -> Arc<[Failure]> {
        self.no_failures.clone()
    }

    /// Drops the rounds of the controllers inside `flow` (its own
    /// controller's included), superseded by a round or a revert of the
    /// whole of `flow`.
    pub(super) fn forget_rounds_in(&mut self, comp: &Compilation, flow: FlowIndex) {
        self.rounds
            .retain(|round| !comp.flow_contains(flow, round.controller));
    }

    /// Drops every retry round: the whole flow reverts.
    pub(super) fn forget_rounds(&mut self) {
        self.rounds.clear();
        self.round_of.iter_mut().for_each(|r| *r = None);
    }
}
