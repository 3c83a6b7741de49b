//! The records, as in TaskFlow: a [`LogBook`] holds [`FlowDetail`]s, each
//! holding the [`AtomDetail`]s of its atoms.

use std::borrow::Cow;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{AtomDetailId, Epoch, FlowDetailId, LogBookId, PersistenceError, RecordKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow_patterns::{
    AtomKind, AtomState, Failure, FlowState, History, Intention, Name, Version,
};

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The record of one piece of work: the flow details of the flows run for it.
///
/// ```
/// use taskflow_persistence::{FlowDetail, LogBook};
/// let mut book = LogBook::new("nightly-backup");
/// book.flow_details.push(FlowDetail::new("backup"));
/// assert_eq!(book.flow_details.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBook {
    /// Its id.
    pub uuid: LogBookId,
    /// Its name.
    pub name: String,
    /// When it was made (ms since the epoch).
    pub created_at: u64,
    /// When it was last saved (ms since the epoch).
    pub updated_at: u64,
    /// Free-form metadata.
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// Its flow details.
    #[serde(default)]
    pub flow_details: Vec<FlowDetail>,
}

impl LogBook {
    /// A new, empty logbook with a fresh id.
    pub fn new(name: impl Into<String>) -> Self {
        let now = now_millis();
        LogBook {
            uuid: LogBookId::new(),
            name: name.into(),
            created_at: now,
            updated_at: now,
            meta: Map::new(),
            flow_details: Vec::new(),
        }
    }

    /// The flow detail with id `id`.
    pub fn flow_detail(&self, id: FlowDetailId) -> Option<&FlowDetail> {
        self.flow_details.iter().find(|f| f.uuid == id)
    }
}

/// The record of one flow run: its state, how the run was set up (its
/// [`RunSpec`]: the stored flow definition or factory, the initial store),
/// free-form metadata and its atoms' details.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowDetail {
    /// Its id.
    pub uuid: FlowDetailId,
    /// The flow's name.
    pub name: String,
    /// The flow's state.
    pub state: FlowState,
    /// Free-form metadata (the keys [`RunSpec`] keeps its entries under are
    /// reserved).
    pub meta: Map<String, Value>,
    /// How the run was set up.
    pub run: RunSpec,
    /// The details of its atoms.
    pub atom_details: Vec<AtomDetail>,
    /// The epoch of its current owner (0: never claimed). Writes that
    /// present a lower epoch are refused with
    /// [`PersistenceError::Fenced`](crate::PersistenceError::Fenced); see
    /// [`Backend::fence_flow_detail`](crate::Backend::fence_flow_detail).
    pub owner_epoch: Epoch,
}

impl FlowDetail {
    /// A new flow detail in state `PENDING` with a fresh id.
    pub fn new(name: impl Into<String>) -> Self {
        FlowDetail {
            uuid: FlowDetailId::new(),
            name: name.into(),
            state: FlowState::Pending,
            meta: Map::new(),
            run: RunSpec::default(),
            atom_details: Vec::new(),
            owner_epoch: Epoch::ZERO,
        }
    }

    /// The atom detail of the atom named `name`.
    pub fn atom_detail(&self, name: &str) -> Option<&AtomDetail> {
        self.atom_details.iter().find(|a| &*a.name == name)
    }
}

/// The record of one atom: its state and intention, its result or failure,
/// what its revert returned or its revert failure, and for a retry
/// controller its history.
///
/// What most records leave empty (the failures, the revert's result, the
/// history, `meta`) is kept in one box that a record without any of it does
/// not allocate (a flow holds one record per atom), and is read and written
/// through methods: [`failure`](Self::failure) and
/// [`set_failure`](Self::set_failure), [`revert_result`](Self::revert_result),
/// [`history`](Self::history) and [`history_mut`](Self::history_mut),
/// [`meta`](Self::meta) and [`meta_mut`](Self::meta_mut). Its JSON form has
/// each of them as a field of its own, as before they were boxed.
///
/// ```
/// use serde_json::json;
/// use taskflow_patterns::{AtomKind, AtomState, Failure};
/// use taskflow_persistence::AtomDetail;
/// let mut detail = AtomDetail::new("copy", AtomKind::Task);
/// detail.state = AtomState::Failure;
/// detail.set_failure(Some(Failure::new("IoError", "disk full")));
/// detail.meta_mut().insert("host".into(), json!("n1"));
/// assert_eq!(detail.failure().map(|f| f.message.as_str()), Some("disk full"));
/// assert_eq!(detail.meta()["host"], "n1");
/// assert!(detail.history().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct AtomDetail {
    /// Its id.
    pub uuid: AtomDetailId,
    /// The atom's name (held inline up to 24 bytes, as an atom's spec
    /// holds it).
    pub name: Name,
    /// Task or retry.
    pub kind: AtomKind,
    /// The atom's state.
    pub state: AtomState,
    /// What the engine means to do with it next.
    pub intention: Intention,
    /// The result of its last successful execution.
    pub result: Option<Arc<Value>>,
    /// The atom's version when the record was written.
    pub version: Version,
    /// The parts most records leave empty; `None` when all are (see
    /// [`RareDetail::boxed`]).
    pub(crate) rare: Option<Box<RareDetail>>,
}

/// The parts of an [`AtomDetail`] that most records leave empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct RareDetail {
    pub(crate) failure: Option<Failure>,
    pub(crate) revert_result: Option<Arc<Value>>,
    pub(crate) revert_failure: Option<Failure>,
    pub(crate) history: History,
    pub(crate) meta: Map<String, Value>,
}

impl RareDetail {
    /// Boxed, unless all of it is empty (a record without the box reads
    /// the same).
    pub(crate) fn boxed(self) -> Option<Box<Self>> {
        (!self.is_empty()).then(|| Box::new(self))
    }

    fn is_empty(&self) -> bool {
        self.failure.is_none()
            && self.revert_result.is_none()
            && self.revert_failure.is_none()
            && self.history.is_empty()
            && self.meta.is_empty()
    }
}

/// What a record without a [`RareDetail`] reads as.
static NO_RARE_DETAIL: LazyLock<RareDetail> = LazyLock::new(RareDetail::default);

/// An [`AtomDetail`] as its JSON form has it: every part a field of its own.
/// Serialized from borrows (a checkpoint does not copy the record to write
/// it), read into owned parts.
#[derive(Serialize, Deserialize)]
struct DetailRecord<'a> {
    uuid: AtomDetailId,
    name: Cow<'a, Name>,
    kind: AtomKind,
    state: AtomState,
    #[serde(default)]
    intention: Intention,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Cow<'a, Arc<Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<Cow<'a, Failure>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revert_result: Option<Cow<'a, Arc<Value>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revert_failure: Option<Cow<'a, Failure>>,
    #[serde(default, skip_serializing_if = "History::is_empty")]
    history: Cow<'a, History>,
    #[serde(default)]
    version: Version,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    meta: Cow<'a, Map<String, Value>>,
}

impl Serialize for AtomDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        DetailRecord {
            uuid: self.uuid,
            name: Cow::Borrowed(&self.name),
            kind: self.kind,
            state: self.state,
            intention: self.intention,
            result: self.result.as_ref().map(Cow::Borrowed),
            failure: self.failure().map(Cow::Borrowed),
            revert_result: self.revert_result().map(Cow::Borrowed),
            revert_failure: self.revert_failure().map(Cow::Borrowed),
            history: Cow::Borrowed(self.history()),
            version: self.version,
            meta: Cow::Borrowed(self.meta()),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AtomDetail {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let r = DetailRecord::deserialize(deserializer)?;
        Ok(AtomDetail {
            uuid: r.uuid,
            name: r.name.into_owned(),
            kind: r.kind,
            state: r.state,
            intention: r.intention,
            result: r.result.map(Cow::into_owned),
            version: r.version,
            rare: RareDetail {
                failure: r.failure.map(Cow::into_owned),
                revert_result: r.revert_result.map(Cow::into_owned),
                revert_failure: r.revert_failure.map(Cow::into_owned),
                history: r.history.into_owned(),
                meta: r.meta.into_owned(),
            }
            .boxed(),
        })
    }
}

/// Two records are equal when every part is, whether an empty part is
/// boxed or not.
impl PartialEq for AtomDetail {
    fn eq(&self, other: &Self) -> bool {
        self.uuid == other.uuid
            && self.name == other.name
            && self.kind == other.kind
            && self.state == other.state
            && self.intention == other.intention
            && self.result == other.result
            && self.version == other.version
            && self.rare() == other.rare()
    }
}

impl AtomDetail {
    /// The entry of [`meta`](AtomDetail::meta) that holds a task's latest
    /// progress report, a number from 0.0 to 1.0 (TaskFlow's
    /// `meta['progress']`): see [`progress`](AtomDetail::progress).
    pub const PROGRESS_KEY: &'static str = "progress";

    /// The entry of [`meta`](AtomDetail::meta) that holds a task's latest
    /// check-in (`ctx.checkin("copied 12 of 40 blobs")`):
    /// `{"message": "copied 12 of 40 blobs", "at": 1718000000000}`, `at`
    /// in milliseconds since the Unix epoch, when the engine heard it.
    ///
    /// The engine writes it through
    /// [`Backend::update_atom_meta`](crate::Backend::update_atom_meta) as
    /// soon as the task checks in, from the thread that hears it, so a
    /// second process reading the records sees it while the task runs; it
    /// keeps it after the task ends (its last word) and clears it when the
    /// atom runs again.
    pub const CHECKIN_KEY: &'static str = "checkin";

    /// A new detail in state `PENDING` with a fresh id.
    pub fn new(name: impl Into<Name>, kind: AtomKind) -> Self {
        AtomDetail {
            uuid: AtomDetailId::new(),
            name: name.into(),
            kind,
            state: AtomState::Pending,
            intention: Intention::Execute,
            result: None,
            version: Version::default(),
            rare: None,
        }
    }

    fn rare(&self) -> &RareDetail {
        self.rare.as_deref().unwrap_or(&NO_RARE_DETAIL)
    }

    /// The rare parts, boxed now if they were not.
    fn rare_mut(&mut self) -> &mut RareDetail {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Drops the box once all it holds is empty.
    fn shrink(&mut self) {
        if self.rare.as_deref().is_some_and(RareDetail::is_empty) {
            self.rare = None;
        }
    }

    /// Sets a rare part: boxes them if `value` is something, and drops the
    /// box if it leaves all of them empty.
    fn set_part<T>(
        &mut self,
        value: Option<T>,
        part: impl FnOnce(&mut RareDetail) -> &mut Option<T>,
    ) {
        match value {
            Some(v) => *part(self.rare_mut()) = Some(v),
            None => {
                if let Some(rare) = self.rare.as_deref_mut() {
                    *part(rare) = None;
                    self.shrink();
                }
            }
        }
    }

    /// The failure of its last execution, if any.
    ///
    /// ```
    /// use taskflow_patterns::{AtomKind, Failure};
    /// use taskflow_persistence::AtomDetail;
    /// let mut detail = AtomDetail::new("a", AtomKind::Task);
    /// detail.set_failure(Some(Failure::new("Boom", "bang")));
    /// assert_eq!(detail.failure().map(|f| f.kind.as_str()), Some("Boom"));
    /// ```
    pub fn failure(&self) -> Option<&Failure> {
        self.rare().failure.as_ref()
    }

    /// The failure of its revert, if any.
    pub fn revert_failure(&self) -> Option<&Failure> {
        self.rare().revert_failure.as_ref()
    }

    /// What its last revert returned (TaskFlow's `revert_results`): `None`
    /// before a revert, or when the revert returned nothing. Records
    /// written before it existed read as `None`; as for `result`, a
    /// `Some(null)` reads back as `None` from the backends that encode
    /// records (all but the memory backend).
    pub fn revert_result(&self) -> Option<&Arc<Value>> {
        self.rare().revert_result.as_ref()
    }

    /// Sets (or with `None` clears) what its last revert returned.
    pub fn set_revert_result(&mut self, result: Option<Arc<Value>>) {
        self.set_part(result, |r| &mut r.revert_result);
    }

    /// For a retry controller, its attempts (empty for a task).
    pub fn history(&self) -> &History {
        &self.rare().history
    }

    /// Its history, to change (boxes the rare parts if they were not:
    /// to clear it, [`set_history`](Self::set_history) an empty one).
    pub fn history_mut(&mut self) -> &mut History {
        &mut self.rare_mut().history
    }

    /// Sets its history; an empty one on a record with nothing else rare
    /// frees the box.
    pub fn set_history(&mut self, history: History) {
        if history.is_empty() && self.rare.is_none() {
            return;
        }
        self.rare_mut().history = history;
        self.shrink();
    }

    /// Free-form metadata (e.g. the last progress reported, under
    /// [`AtomDetail::PROGRESS_KEY`], and the last check-in, under
    /// [`AtomDetail::CHECKIN_KEY`]).
    pub fn meta(&self) -> &Map<String, Value> {
        &self.rare().meta
    }

    /// Its metadata, to change (boxes the rare parts if they were not:
    /// to take entries out, [`remove_meta`](Self::remove_meta) or
    /// [`set_meta`](Self::set_meta)).
    pub fn meta_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.rare_mut().meta
    }

    /// Sets its metadata; an empty map on a record with nothing else rare
    /// frees the box.
    pub fn set_meta(&mut self, meta: Map<String, Value>) {
        if meta.is_empty() && self.rare.is_none() {
            return;
        }
        self.rare_mut().meta = meta;
        self.shrink();
    }

    /// Takes the entry `key` out of its metadata, if there is one (and the
    /// box, if nothing rare is left).
    ///
    /// ```
    /// use serde_json::json;
    /// use taskflow_patterns::AtomKind;
    /// use taskflow_persistence::AtomDetail;
    /// let mut detail = AtomDetail::new("upload", AtomKind::Task);
    /// detail.meta_mut().insert("progress".into(), json!(0.5));
    /// assert_eq!(detail.remove_meta("progress"), Some(json!(0.5)));
    /// assert_eq!(detail.remove_meta("progress"), None);
    /// assert!(detail.meta().is_empty());
    /// ```
    pub fn remove_meta(&mut self, key: &str) -> Option<Value> {
        let removed = self.rare.as_deref_mut()?.meta.remove(key);
        self.shrink();
        removed
    }

    /// Sets the entry `key` of its metadata to `value`, or with `None`
    /// takes it out ([`remove_meta`](Self::remove_meta)): what
    /// [`Backend::update_atom_meta`](crate::Backend::update_atom_meta)
    /// writes.
    pub(crate) fn set_meta_entry(&mut self, key: &str, value: Option<Value>) {
        match value {
            Some(value) => {
                self.meta_mut().insert(key.to_owned(), value);
            }
            None => {
                self.remove_meta(key);
            }
        }
    }

    /// How far the atom has got, from 0.0 to 1.0: 1.0 once it is
    /// `SUCCESS`; otherwise the number under
    /// [`PROGRESS_KEY`](AtomDetail::PROGRESS_KEY) in its `meta`, clamped to
    /// 0.0..=1.0, if there is one (an entry that is not a number counts as
    /// none); otherwise 0.0.
    ///
    /// The engine records a running task's latest report in
    /// `meta["progress"]`, through
    /// [`Backend::update_atom_meta`](crate::Backend::update_atom_meta) from
    /// the thread running the task, so a second process reading the records
    /// sees it while the task runs. It clears the entry when the task
    /// starts again (a retry, a resumed run), so each run starts from 0.0;
    /// and `SUCCESS` means 1.0, whatever the entry last said.
    ///
    /// ```
    /// use serde_json::json;
    /// use taskflow_patterns::{AtomKind, AtomState};
    /// use taskflow_persistence::AtomDetail;
    /// let mut detail = AtomDetail::new("upload", AtomKind::Task);
    /// assert_eq!(detail.progress(), 0.0);
    /// detail.state = AtomState::Running;
    /// detail.meta_mut().insert(AtomDetail::PROGRESS_KEY.into(), json!(0.25));
    /// assert_eq!(detail.progress(), 0.25);
    /// detail.meta_mut().insert(AtomDetail::PROGRESS_KEY.into(), json!(1.5));
    /// assert_eq!(detail.progress(), 1.0);
    /// detail.state = AtomState::Success;
    /// detail.meta_mut().remove(AtomDetail::PROGRESS_KEY);
    /// assert_eq!(detail.progress(), 1.0);
    /// ```
    pub fn progress(&self) -> f32 {
        if self.state == AtomState::Success {
            return 1.0;
        }
        self.meta()
            .get(Self::PROGRESS_KEY)
            .and_then(Value::as_f64)
            .map_or(0.0, |p| p.clamp(0.0, 1.0) as f32)
    }

    /// Sets (or with `None` clears) the failure of its last execution.
    pub fn set_failure(&mut self, failure: Option<Failure>) {
        self.set_part(failure, |r| &mut r.failure);
    }

    /// Sets (or with `None` clears) the failure of its revert.
    pub fn set_revert_failure(&mut self, failure: Option<Failure>) {
        self.set_part(failure, |r| &mut r.revert_failure);
    }
}

/// How a flow detail names the flow it runs, so that any process can
/// rebuild the flow from the records alone.
#[derive(Debug, Clone, PartialEq)]
pub enum FlowDefinition {
    /// The flow itself, serialized (every task a `StoredTask`, every
    /// controller a `StoredRetry`, every decider a `StoredDecider`).
    Stored(Value),
    /// A flow factory registered in code, by name, with its arguments.
    Factory {
        /// The factory's name.
        name: String,
        /// Its arguments.
        args: Value,
    },
}

/// How a flow detail's run was set up: how to rebuild its flow, the store
/// it started with, and the logbook that holds it. The engine writes it for
/// a new run and reads it to resume one; a jobboard writes it when posting
/// a flow. Empty (the default) for a flow detail no engine made.
///
/// In the records it is kept as entries of the flow detail's `meta`
/// (`flow` or `factory`, `store`, `logbook`, `flow_not_stored`), as every
/// record format so far has kept it: those keys of `meta` are reserved, and
/// a record whose entries are not what they should be is
/// [`Corrupt`](PersistenceError::Corrupt) when read.
///
/// ```
/// use serde_json::{json, Map};
/// use taskflow_persistence::{FlowDefinition, FlowDetail, LogBook};
/// let book = LogBook::new("nightly");
/// let definition = FlowDefinition::Factory { name: "backup".into(), args: json!({"db": "main"}) };
/// let flow = FlowDetail::for_run("backup", Some(definition.clone()), Map::new(), book.uuid);
/// assert_eq!(flow.run.definition, Some(definition));
/// assert_eq!(flow.run.logbook, Some(book.uuid));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunSpec {
    /// How to rebuild the flow: `None` when it could not be stored (see
    /// [`not_stored`](RunSpec::not_stored)) or was never recorded.
    pub definition: Option<FlowDefinition>,
    /// Why the definition was not stored (a task that is not a stored
    /// one), so that a load says so rather than guess.
    pub not_stored: Option<String>,
    /// The store the run started with: symbol to value.
    pub store: Map<String, Value>,
    /// The logbook holding the flow detail, when recorded.
    pub logbook: Option<LogBookId>,
}

/// The keys of a flow detail's `meta` that hold its [`RunSpec`] in the
/// records: the format lives only here.
mod run_meta {
    pub(super) const FLOW: &str = "flow";
    pub(super) const FACTORY: &str = "factory";
    pub(super) const STORE: &str = "store";
    pub(super) const LOGBOOK: &str = "logbook";
    pub(super) const NOT_STORED: &str = "flow_not_stored";
    pub(super) const ALL: [&str; 5] = [FLOW, FACTORY, STORE, LOGBOOK, NOT_STORED];
}

impl RunSpec {
    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        *self == RunSpec::default()
    }

    /// `meta` with this run's entries added, as the records keep it.
    fn stored_in(&self, meta: &Map<String, Value>) -> Map<String, Value> {
        let mut stored = meta.clone();
        match &self.definition {
            Some(FlowDefinition::Stored(flow)) => {
                stored.insert(run_meta::FLOW.into(), flow.clone());
            }
            Some(FlowDefinition::Factory { name, args }) => {
                stored.insert(
                    run_meta::FACTORY.into(),
                    serde_json::json!({ "name": name, "args": args }),
                );
            }
            None => {}
        }
        if let Some(why) = &self.not_stored {
            stored.insert(run_meta::NOT_STORED.into(), Value::from(why.as_str()));
        }
        stored.insert(run_meta::STORE.into(), Value::Object(self.store.clone()));
        if let Some(book) = self.logbook {
            stored.insert(run_meta::LOGBOOK.into(), Value::from(book.to_string()));
        }
        stored
    }

    /// Takes this run's entries out of the stored `meta` of flow detail
    /// `id`: what is left is the flow detail's own `meta`.
    fn take_from(
        id: FlowDetailId,
        meta: &mut Map<String, Value>,
    ) -> Result<RunSpec, PersistenceError> {
        if !run_meta::ALL.iter().any(|key| meta.contains_key(*key)) {
            return Ok(RunSpec::default());
        }
        let corrupt = |reason: String| PersistenceError::Corrupt {
            kind: RecordKind::FlowDetail,
            id: id.to_string(),
            reason,
        };
        let definition = match (meta.remove(run_meta::FACTORY), meta.remove(run_meta::FLOW)) {
            (Some(mut factory), _) => {
                let name = match factory.get_mut("name").map(Value::take) {
                    Some(Value::String(name)) => name,
                    _ => return Err(corrupt("its factory record has no name".into())),
                };
                let args = factory.get_mut("args").map_or(Value::Null, Value::take);
                Some(FlowDefinition::Factory { name, args })
            }
            (None, Some(flow)) => Some(FlowDefinition::Stored(flow)),
            (None, None) => None,
        };
        let not_stored = match meta.remove(run_meta::NOT_STORED) {
            None => None,
            Some(Value::String(why)) => Some(why),
            Some(other) => {
                return Err(corrupt(format!(
                    "why its flow was not stored is {other}, not a text"
                )))
            }
        };
        let store = match meta.remove(run_meta::STORE) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(store)) => store,
            Some(_) => return Err(corrupt("its initial store is not a JSON object".into())),
        };
        let logbook = match meta.remove(run_meta::LOGBOOK) {
            None => None,
            Some(recorded) => Some(
                recorded
                    .as_str()
                    .and_then(|s| s.parse::<LogBookId>().ok())
                    .ok_or_else(|| corrupt(format!("its logbook id {recorded} is not a UUID")))?,
            ),
        };
        Ok(RunSpec {
            definition,
            not_stored,
            store,
            logbook,
        })
    }
}

impl FlowDetail {
    /// A flow detail for a run not started yet: the flow `name`, how to
    /// rebuild it (`None` when it cannot be stored, e.g. closures), its
    /// initial store, and the logbook that holds it.
    pub fn for_run(
        name: impl Into<String>,
        definition: Option<FlowDefinition>,
        store: Map<String, Value>,
        logbook: LogBookId,
    ) -> Self {
        let mut flow = FlowDetail::new(name);
        flow.run = RunSpec {
            definition,
            not_stored: None,
            store,
            logbook: Some(logbook),
        };
        flow
    }

    /// Its `meta` as the records keep it: with the entries of its
    /// [`run`](FlowDetail::run) (backends write this).
    pub(crate) fn stored_meta(&self) -> std::borrow::Cow<'_, Map<String, Value>> {
        if self.run.is_empty() {
            std::borrow::Cow::Borrowed(&self.meta)
        } else {
            std::borrow::Cow::Owned(self.run.stored_in(&self.meta))
        }
    }

    /// The `meta` of flow detail `id` as the records keep it, split into
    /// the flow detail's own `meta` and its run (backends read this).
    pub(crate) fn split_stored_meta(
        id: FlowDetailId,
        mut meta: Map<String, Value>,
    ) -> Result<(Map<String, Value>, RunSpec), PersistenceError> {
        let run = RunSpec::take_from(id, &mut meta)?;
        Ok((meta, run))
    }
}

/// A flow detail as the records and serde keep it: the run inside `meta`.
#[derive(Serialize)]
struct FlowDetailOut<'a> {
    uuid: FlowDetailId,
    name: &'a str,
    state: FlowState,
    meta: std::borrow::Cow<'a, Map<String, Value>>,
    atom_details: &'a [AtomDetail],
    owner_epoch: Epoch,
}

/// A flow detail as read.
#[derive(Deserialize)]
struct FlowDetailIn {
    uuid: FlowDetailId,
    name: String,
    state: FlowState,
    #[serde(default)]
    meta: Map<String, Value>,
    #[serde(default)]
    atom_details: Vec<AtomDetail>,
    #[serde(default)]
    owner_epoch: Epoch,
}

impl Serialize for FlowDetail {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        FlowDetailOut {
            uuid: self.uuid,
            name: &self.name,
            state: self.state,
            meta: self.stored_meta(),
            atom_details: &self.atom_details,
            owner_epoch: self.owner_epoch,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for FlowDetail {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let flow = FlowDetailIn::deserialize(deserializer)?;
        let (meta, run) = FlowDetail::split_stored_meta(flow.uuid, flow.meta)
            .map_err(serde::de::Error::custom)?;
        Ok(FlowDetail {
            uuid: flow.uuid,
            name: flow.name,
            state: flow.state,
            meta,
            run,
            atom_details: flow.atom_details,
            owner_epoch: flow.owner_epoch,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn progress_is_one_on_success_else_the_clamped_entry_else_zero() {
        let mut detail = AtomDetail::new("a", AtomKind::Task);
        let cases = [
            (AtomState::Pending, None, 0.0),
            (AtomState::Running, Some(json!(0.5)), 0.5),
            (AtomState::Running, Some(json!(0)), 0.0),
            (AtomState::Running, Some(json!(1)), 1.0),
            (AtomState::Running, Some(json!(-3)), 0.0),
            (AtomState::Running, Some(json!(1e300)), 1.0),
            (AtomState::Running, Some(json!("30%")), 0.0),
            (AtomState::Running, Some(json!(null)), 0.0),
            (AtomState::Failure, Some(json!(0.75)), 0.75),
            (AtomState::Reverted, Some(json!(0.75)), 0.75),
            (AtomState::Success, None, 1.0),
            (AtomState::Success, Some(json!(0.2)), 1.0),
        ];
        for (state, entry, expected) in cases {
            detail.state = state;
            match &entry {
                Some(value) => detail
                    .meta_mut()
                    .insert(AtomDetail::PROGRESS_KEY.into(), value.clone()),
                None => detail.meta_mut().remove(AtomDetail::PROGRESS_KEY),
            };
            assert_eq!(detail.progress(), expected, "{state:?} with {entry:?}");
        }
    }

    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_detail_is_72_bytes_and_boxes_only_what_it_has() {
        assert_eq!(std::mem::size_of::<AtomDetail>(), 72);
        let mut detail = AtomDetail::new("a", AtomKind::Retry);
        assert!(detail.rare.is_none());
        detail.set_failure(None);
        detail.set_revert_result(None);
        detail.set_history(History::new());
        detail.set_meta(Map::new());
        assert_eq!(detail.remove_meta("progress"), None);
        assert!(
            detail.rare.is_none(),
            "clearing what is empty boxes nothing"
        );

        detail.set_failure(Some(Failure::new("Boom", "bang")));
        detail.meta_mut().insert("progress".into(), json!(0.5));
        assert!(detail.rare.is_some());
        detail.set_failure(None);
        assert!(detail.rare.is_some(), "the metadata is still there");
        assert_eq!(detail.remove_meta("progress"), Some(json!(0.5)));
        assert!(detail.rare.is_none(), "nothing rare is left");

        // An empty box (left by `meta_mut`) equals no box.
        let mut boxed = detail.clone();
        boxed.meta_mut();
        assert!(boxed.rare.is_some());
        assert_eq!(boxed, detail);
        boxed.history_mut().push(json!(1));
        assert_ne!(boxed, detail);
    }

    #[test]
    fn the_json_form_has_every_part_as_a_field_as_before_they_were_boxed() {
        let mut detail = AtomDetail::new("r", AtomKind::Retry);
        let bare = serde_json::to_value(&detail).unwrap();
        let keys: Vec<&str> = bare
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            ["intention", "kind", "name", "state", "uuid", "version"]
        );
        assert_eq!(serde_json::from_value::<AtomDetail>(bare).unwrap(), detail);

        detail.state = AtomState::Failure;
        detail.result = Some(Arc::new(json!(1)));
        detail.set_failure(Some(Failure::new("Boom", "bang")));
        detail.set_revert_result(Some(Arc::new(json!("undone"))));
        detail.set_revert_failure(Some(Failure::new("Oops", "again")));
        detail.history_mut().push(json!(2));
        detail.meta_mut().insert("progress".into(), json!(0.5));
        let full = serde_json::to_value(&detail).unwrap();
        assert_eq!(full["failure"]["message"], "bang");
        assert_eq!(full["revert_result"], "undone");
        assert_eq!(full["revert_failure"]["message"], "again");
        assert_eq!(full["meta"], json!({"progress": 0.5}));
        assert_eq!(full["result"], 1);
        assert!(full["history"].is_object() || full["history"].is_array());
        assert_eq!(serde_json::from_value::<AtomDetail>(full).unwrap(), detail);
    }
}
