//! The engine's view of its records: the flow detail and atom details of the
//! run, kept in memory by atom index and written through to the backend.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::{Map, Value};
use taskflow_patterns::{AtomIndex, AtomState, Compilation, FlowState, History, Intention};
use taskflow_persistence::{AtomDetail, AtomWrite, Backend, FlowDetail, LogBook};

use crate::listener::ProgressSink;
use crate::EngineError;
use taskflow_persistence::AtomDetailId;
use taskflow_persistence::Epoch;
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::LogBookId;

/// The records of one flow run, and the results in them.
///
/// ```
/// # use taskflow_engine::Engine;
/// # use taskflow_patterns::{atom, task_fn, Linear, Value};
/// let mut engine = Engine::builder(Linear::new("f")
///     .add(atom("a", task_fn(|_| Ok(Value::from(7)))).provides("x")))
///     .build()
///     .unwrap();
/// engine.run().unwrap();
/// assert_eq!(engine.storage().fetch("x"), Some(&Value::from(7)));
/// ```
pub struct Storage {
    backend: Arc<dyn Backend>,
    compilation: Arc<Compilation>,
    logbook: LogBook,
    flow: FlowDetail,
    details: Vec<AtomDetail>,
    store: HashMap<Arc<str>, Arc<Value>>,
    saved: bool,
    /// The owner epoch every write presents: the flow detail's when the
    /// engine was built (see [`Storage::owner_epoch`]).
    epoch: Epoch,
    /// Failures recorded for atoms the flow no longer has (a changed flow
    /// resumed with `accept_changed_flow`): still the flow's failures.
    pub(crate) removed_failures: Vec<taskflow_patterns::Failure>,
    /// Whether atom checkpoints wait in [`pending`](Self::pending) for the
    /// next [`flush`](Self::flush) (see [`Storage::defer_writes`]).
    defer: bool,
    /// Atom checkpoints taken but not yet written, in the order taken:
    /// the atom, and whether its whole detail is to be written (else its
    /// state and intention). Each is written from the atom's detail as it
    /// is at the flush.
    pending: Vec<(AtomIndex, bool)>,
}

impl Storage {
    pub(crate) fn new(
        backend: Arc<dyn Backend>,
        compilation: Arc<Compilation>,
        logbook: LogBook,
        flow: FlowDetail,
        details: Vec<AtomDetail>,
        store: &Map<String, Value>,
        saved: bool,
    ) -> Self {
        Storage {
            epoch: flow.owner_epoch,
            backend,
            compilation,
            logbook,
            flow,
            details,
            store: store
                .iter()
                .map(|(k, v)| (Arc::from(k.as_str()), Arc::new(v.clone())))
                .collect(),
            saved,
            removed_failures: Vec::new(),
            defer: false,
            pending: Vec::new(),
        }
    }

    /// The value of `symbol`, as TaskFlow's `fetch` finds it: from the
    /// store if it holds the symbol, else from the first atom (in flow
    /// order) that provides it and has a result. (An atom's argument is fed
    /// by the *nearest* provider before it instead: see
    /// [`Compilation::resolve`](taskflow_patterns::Compilation::resolve).)
    ///
    /// ```
    /// # use taskflow_engine::Engine;
    /// # use taskflow_patterns::{atom, task_fn, Linear, Value};
    /// # use serde_json::json;
    /// let mut engine = Engine::builder(Linear::new("f")
    ///     .add(atom("a", task_fn(|_| Ok(Value::from(1)))).provides("x")))
    ///     .store(json!({ "x": 0 }))
    ///     .build()
    ///     .unwrap();
    /// engine.run().unwrap();
    /// assert_eq!(engine.storage().fetch("x"), Some(&json!(0)));
    /// assert_eq!(engine.storage().fetch_many("x"), [&json!(0), &json!(1)]);
    /// ```
    pub fn fetch(&self, symbol: &str) -> Option<&Value> {
        if let Some(v) = self.store.get(symbol) {
            return Some(v);
        }
        self.compilation
            .providers(symbol)
            .iter()
            .find_map(|&p| self.provided(p, symbol))
    }

    /// Every value of `symbol`: the store's first, then each providing
    /// atom's that has a result, in flow order (TaskFlow's `fetch` with a
    /// `many_handler` that keeps them all). Empty if none has a value.
    pub fn fetch_many(&self, symbol: &str) -> Vec<&Value> {
        let store = self.store.get(symbol).map(|v| &**v);
        let atoms = self.compilation.providers(symbol);
        let mut values = Vec::with_capacity(usize::from(store.is_some()) + atoms.len());
        values.extend(store);
        values.extend(atoms.iter().filter_map(|&p| self.provided(p, symbol)));
        values
    }

    /// The value of `symbol` in the result of its provider `atom`, if the
    /// atom has a result holding it.
    fn provided(&self, atom: AtomIndex, symbol: &str) -> Option<&Value> {
        let detail = &self.details[atom.index()];
        if !has_result(detail.state) {
            return None;
        }
        let pick = self.compilation.atom(atom).spec.provides.pick(symbol)?;
        pick.apply(detail.result.as_deref()?)
    }

    /// Every symbol that has a value, with the value [`fetch`](Self::fetch)
    /// gives (TaskFlow's `fetch_all` lists every value of a symbol several
    /// provide: [`fetch_many`](Self::fetch_many) gives those).
    pub fn fetch_all(&self) -> BTreeMap<String, Value> {
        let mut all: BTreeMap<String, Value> = self
            .store
            .iter()
            .map(|(k, v)| (k.to_string(), (**v).clone()))
            .collect();
        for atom in self.compilation.atoms() {
            for name in atom.spec.provides.names() {
                if all.contains_key(name) {
                    continue;
                }
                if let Some(v) = self.fetch(name) {
                    all.insert(name.to_owned(), v.clone());
                }
            }
        }
        all
    }

    /// The store value of `symbol`.
    pub(crate) fn store_value(&self, symbol: &str) -> Option<&Arc<Value>> {
        self.store.get(symbol)
    }

    /// The result of the atom named `atom`, if it succeeded.
    pub fn result(&self, atom: &str) -> Option<&Value> {
        let detail = self.atom_detail(atom)?;
        (detail.state == AtomState::Success)
            .then_some(detail.result.as_deref())
            .flatten()
    }

    /// The detail of the atom named `atom`.
    pub fn atom_detail(&self, atom: &str) -> Option<&AtomDetail> {
        self.compilation
            .atom_index(atom)
            .map(|i| &self.details[i.index()])
    }

    /// Every atom detail, by atom index.
    pub fn atom_details(&self) -> &[AtomDetail] {
        &self.details
    }

    /// The state of the flow.
    pub fn flow_state(&self) -> FlowState {
        self.flow.state
    }

    /// The id of the logbook.
    pub fn logbook_id(&self) -> LogBookId {
        self.logbook.uuid
    }

    /// The id of the flow detail.
    pub fn flow_detail_id(&self) -> FlowDetailId {
        self.flow.uuid
    }

    /// The backend written to.
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The owner epoch this engine writes at: every checkpoint presents it,
    /// and the backend refuses it with
    /// [`PersistenceError::Fenced`](taskflow_persistence::PersistenceError::Fenced)
    /// once another owner fenced the flow detail at a higher epoch. See
    /// [`EngineBuilder::owner_epoch`](crate::EngineBuilder::owner_epoch).
    pub fn owner_epoch(&self) -> Epoch {
        self.epoch
    }

    /// Writes the logbook, flow detail and atom details if not yet written
    /// (the flow detail carries the owner epoch, so the first write claims
    /// it).
    pub(crate) fn ensure_saved(&mut self) -> Result<(), EngineError> {
        if self.saved {
            return Ok(());
        }
        // Lend the details to the logbook for the write: no copy here.
        let mut flow = self.flow.clone();
        flow.atom_details = std::mem::take(&mut self.details);
        let mut book = self.logbook.clone();
        book.flow_details = vec![flow];
        let saved = self.backend.save_logbook(&book);
        if let Some(flow) = book.flow_details.pop() {
            self.details = flow.atom_details;
        }
        saved?;
        self.saved = true;
        Ok(())
    }

    pub(crate) fn detail(&self, atom: AtomIndex) -> &AtomDetail {
        &self.details[atom.index()]
    }

    pub(crate) fn detail_mut(&mut self, atom: AtomIndex) -> &mut AtomDetail {
        &mut self.details[atom.index()]
    }

    /// Keeps check-ins the tasks recorded (see
    /// [`Listeners::take_checkins`](crate::Listeners)) in the engine's copy
    /// of their details, so that writing a detail whole keeps its last one.
    pub(crate) fn keep_checkins(&mut self, heard: Vec<(AtomDetailId, Value)>) {
        for (id, value) in heard {
            if let Some(d) = self.details.iter_mut().find(|d| d.uuid == id) {
                d.meta_mut()
                    .insert(AtomDetail::CHECKIN_KEY.to_owned(), value);
            }
        }
    }

    /// Where the tasks of this run record their progress and check-ins.
    pub(crate) fn progress_sink(&self) -> ProgressSink {
        ProgressSink::new(self.backend.clone(), self.flow.uuid, self.epoch)
    }

    /// Has atom checkpoints wait for the next [`flush`](Self::flush) (with
    /// `true`) rather than be written at once, so that the transitions the
    /// runtime takes between two hand-offs of work (an atom's `SUCCESS` and
    /// its successor's `RUNNING`; several completions on a parallel engine)
    /// are written with one [`Backend::save_atom_writes`]: one commit, and
    /// one fsync, for them all. The runtime flushes before it submits work
    /// and before it waits for the executor, so what the records say is
    /// still durable before anything that depends on it starts (see the
    /// runtime's module docs). With `false`, each is written as it is taken
    /// (what waits still goes at the next flush).
    pub(crate) fn defer_writes(&mut self, defer: bool) {
        self.defer = defer;
    }

    /// Writes the atom checkpoints taken since the last flush, in one
    /// [`Backend::save_atom_writes`]. They leave the queue whether or not
    /// the write succeeds (a failed write fails the run).
    pub(crate) fn flush(&mut self) -> Result<(), EngineError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let details = &self.details;
        let write = |&(atom, whole): &(AtomIndex, bool)| {
            let d = &details[atom.index()];
            if whole {
                AtomWrite::Detail(d)
            } else {
                AtomWrite::State {
                    atom: d.uuid,
                    state: d.state,
                    intention: d.intention,
                }
            }
        };
        let written = match self.pending.as_slice() {
            // The common flushes (on the serial engine, an atom's end and
            // its successor's start): no vector to allocate.
            [one] => self
                .backend
                .save_atom_writes(self.flow.uuid, &[write(one)], self.epoch),
            [a, b] => {
                self.backend
                    .save_atom_writes(self.flow.uuid, &[write(a), write(b)], self.epoch)
            }
            many => {
                let writes: Vec<AtomWrite<'_>> = many.iter().map(write).collect();
                self.backend
                    .save_atom_writes(self.flow.uuid, &writes, self.epoch)
            }
        };
        self.pending.clear();
        written?;
        Ok(())
    }

    /// Queues a checkpoint of `atom` (see [`defer_writes`](Self::defer_writes)):
    /// one taken right after another of the same atom merges into it.
    fn queue(&mut self, atom: AtomIndex, whole: bool) {
        match self.pending.last_mut() {
            Some((last, w)) if *last == atom => *w |= whole,
            _ => self.pending.push((atom, whole)),
        }
    }

    /// Checkpoints a state and intention change (no data).
    pub(crate) fn write_state(&mut self, atom: AtomIndex) -> Result<(), EngineError> {
        if self.defer {
            self.queue(atom, false);
            return Ok(());
        }
        let d = &self.details[atom.index()];
        self.backend
            .update_atom_state(self.flow.uuid, d.uuid, d.state, d.intention, self.epoch)?;
        Ok(())
    }

    /// Checkpoints the whole atom detail (a result, failure or history changed).
    pub(crate) fn write_detail(&mut self, atom: AtomIndex) -> Result<(), EngineError> {
        if self.defer {
            self.queue(atom, true);
            return Ok(());
        }
        self.backend
            .save_atom_detail(self.flow.uuid, &self.details[atom.index()], self.epoch)?;
        Ok(())
    }

    /// Checkpoints a flow state change, after the atom checkpoints still
    /// waiting.
    pub(crate) fn set_flow_state(&mut self, state: FlowState) -> Result<(), EngineError> {
        self.flush()?;
        self.flow.state = state;
        self.backend
            .update_flow_state(self.flow.uuid, state, self.epoch)?;
        Ok(())
    }

    /// Every atom back to `PENDING` with nothing recorded, and the flow to
    /// `PENDING`: what [`Engine::reset`](crate::Engine::reset) does. The
    /// state tables are not consulted: this starts the records over.
    pub(crate) fn reset(&mut self) -> Result<(), EngineError> {
        self.flush()?;
        for i in 0..self.details.len() {
            let d = &mut self.details[i];
            d.state = AtomState::Pending;
            d.intention = Intention::Execute;
            d.result = None;
            d.set_failure(None);
            d.set_revert_failure(None);
            d.set_history(History::new());
            d.set_revert_result(None);
            d.set_meta(Map::new());
            self.backend
                .save_atom_detail(self.flow.uuid, &self.details[i], self.epoch)?;
        }
        self.set_flow_state(FlowState::Pending)
    }

    pub(crate) fn flow_name(&self) -> &str {
        &self.flow.name
    }
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("logbook", &self.logbook.uuid)
            .field("flow_detail", &self.flow.uuid)
            .field("state", &self.flow.state)
            .field("owner_epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Whether an atom in `state` has a result others may read: after it
/// succeeded, and while it reverts (as TaskFlow's storage lets results be
/// read in `SUCCESS` and `REVERTING`).
pub(crate) fn has_result(state: AtomState) -> bool {
    matches!(state, AtomState::Success | AtomState::Reverting)
}

/// Drops a running task's progress report from its detail (a started,
/// finished or re-pended atom's record must not keep one); whether there
/// was one (the detail is then to be written whole).
pub(crate) fn clear_progress(detail: &mut AtomDetail) -> bool {
    detail.remove_meta(AtomDetail::PROGRESS_KEY).is_some()
}

/// Drops what a task reported while it ran, its progress and its last
/// check-in, from its detail, as the atom starts running again (each run
/// starts from nothing); whether there was any (the detail is then to be
/// written whole).
pub(crate) fn clear_reports(detail: &mut AtomDetail) -> bool {
    let progress = detail.remove_meta(AtomDetail::PROGRESS_KEY).is_some();
    detail.remove_meta(AtomDetail::CHECKIN_KEY).is_some() | progress
}

/// Marks a detail's intention without touching its state.
pub(crate) fn intend(detail: &mut AtomDetail, intention: Intention) -> bool {
    let changed = detail.intention != intention;
    detail.intention = intention;
    changed
}
