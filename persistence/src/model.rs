//! The records, as in TaskFlow: a [`LogBook`] holds [`FlowDetail`]s, each
//! holding the [`AtomDetail`]s of its atoms.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::{AtomDetailId, Epoch, FlowDetailId, LogBookId, PersistenceError, RecordKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, History, Intention, Version};

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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtomDetail {
    /// Its id.
    pub uuid: AtomDetailId,
    /// The atom's name (shared: the engine's record, the backend's copy
    /// and the compiled atom can hold one allocation).
    pub name: Arc<str>,
    /// Task or retry.
    pub kind: AtomKind,
    /// The atom's state.
    pub state: AtomState,
    /// What the engine means to do with it next.
    #[serde(default)]
    pub intention: Intention,
    /// The result of its last successful execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Arc<Value>>,
    /// The failure of its last execution (boxed: most records have none,
    /// and a flow holds one record per atom; see [`AtomDetail::failure`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Box<Failure>>,
    /// What its last revert returned (TaskFlow's `revert_results`): `None`
    /// before a revert, or when the revert returned nothing. Records
    /// written before it existed read as `None`; as for `result`, a
    /// `Some(null)` reads back as `None` from the backends that encode
    /// records (all but the memory backend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_result: Option<Arc<Value>>,
    /// The failure of its revert (boxed, as `failure`; see
    /// [`AtomDetail::revert_failure`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_failure: Option<Box<Failure>>,
    /// For a retry controller, its attempts.
    #[serde(default, skip_serializing_if = "History::is_empty")]
    pub history: History,
    /// The atom's version when the record was written.
    #[serde(default)]
    pub version: Version,
    /// Free-form metadata (e.g. the last progress reported, under
    /// [`AtomDetail::PROGRESS_KEY`], and the last check-in, under
    /// [`AtomDetail::CHECKIN_KEY`]).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
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
    pub fn new(name: impl Into<Arc<str>>, kind: AtomKind) -> Self {
        AtomDetail {
            uuid: AtomDetailId::new(),
            name: name.into(),
            kind,
            state: AtomState::Pending,
            intention: Intention::Execute,
            result: None,
            failure: None,
            revert_result: None,
            revert_failure: None,
            history: History::new(),
            version: Version::default(),
            meta: Map::new(),
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
        self.failure.as_deref()
    }

    /// The failure of its revert, if any.
    pub fn revert_failure(&self) -> Option<&Failure> {
        self.revert_failure.as_deref()
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
    /// detail.meta.insert(AtomDetail::PROGRESS_KEY.into(), json!(0.25));
    /// assert_eq!(detail.progress(), 0.25);
    /// detail.meta.insert(AtomDetail::PROGRESS_KEY.into(), json!(1.5));
    /// assert_eq!(detail.progress(), 1.0);
    /// detail.state = AtomState::Success;
    /// detail.meta.remove(AtomDetail::PROGRESS_KEY);
    /// assert_eq!(detail.progress(), 1.0);
    /// ```
    pub fn progress(&self) -> f32 {
        if self.state == AtomState::Success {
            return 1.0;
        }
        self.meta
            .get(Self::PROGRESS_KEY)
            .and_then(Value::as_f64)
            .map_or(0.0, |p| p.clamp(0.0, 1.0) as f32)
    }

    /// Sets (or with `None` clears) the failure of its last execution.
    pub fn set_failure(&mut self, failure: Option<Failure>) {
        self.failure = failure.map(Box::new);
    }

    /// Sets (or with `None` clears) the failure of its revert.
    pub fn set_revert_failure(&mut self, failure: Option<Failure>) {
        self.revert_failure = failure.map(Box::new);
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
                    .meta
                    .insert(AtomDetail::PROGRESS_KEY.into(), value.clone()),
                None => detail.meta.remove(AtomDetail::PROGRESS_KEY),
            };
            assert_eq!(detail.progress(), expected, "{state:?} with {entry:?}");
        }
    }
}
