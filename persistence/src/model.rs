//! The records, as in TaskFlow: a [`LogBook`] holds [`FlowDetail`]s, each
//! holding the [`AtomDetail`]s of its atoms.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, History, Intention, Version};
use uuid::Uuid;

use crate::{PersistenceError, RecordKind};

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
    pub uuid: Uuid,
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
            uuid: Uuid::new_v4(),
            name: name.into(),
            created_at: now,
            updated_at: now,
            meta: Map::new(),
            flow_details: Vec::new(),
        }
    }

    /// The flow detail with id `id`.
    pub fn flow_detail(&self, id: Uuid) -> Option<&FlowDetail> {
        self.flow_details.iter().find(|f| f.uuid == id)
    }
}

/// The record of one flow run: its state, its metadata (the stored flow
/// definition or factory, the initial store) and its atoms' details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FlowDetail {
    /// Its id.
    pub uuid: Uuid,
    /// The flow's name.
    pub name: String,
    /// The flow's state.
    pub state: FlowState,
    /// Metadata: the flow definition, the initial store, ...
    #[serde(default)]
    pub meta: Map<String, Value>,
    /// The details of its atoms.
    #[serde(default)]
    pub atom_details: Vec<AtomDetail>,
    /// The epoch of its current owner (0: never claimed). Writes that
    /// present a lower epoch are refused with
    /// [`PersistenceError::Fenced`](crate::PersistenceError::Fenced); see
    /// [`Backend::fence_flow_detail`](crate::Backend::fence_flow_detail).
    #[serde(default)]
    pub owner_epoch: u64,
}

impl FlowDetail {
    /// A new flow detail in state `PENDING` with a fresh id.
    pub fn new(name: impl Into<String>) -> Self {
        FlowDetail {
            uuid: Uuid::new_v4(),
            name: name.into(),
            state: FlowState::Pending,
            meta: Map::new(),
            atom_details: Vec::new(),
            owner_epoch: 0,
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
    pub uuid: Uuid,
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
    /// [`AtomDetail::PROGRESS_KEY`]).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

impl AtomDetail {
    /// The entry of [`meta`](AtomDetail::meta) that holds a task's latest
    /// progress report, a number from 0.0 to 1.0 (TaskFlow's
    /// `meta['progress']`): see [`progress`](AtomDetail::progress).
    pub const PROGRESS_KEY: &'static str = "progress";

    /// A new detail in state `PENDING` with a fresh id.
    pub fn new(name: impl Into<Arc<str>>, kind: AtomKind) -> Self {
        AtomDetail {
            uuid: Uuid::new_v4(),
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

/// The keys of a flow detail's `meta` that describe its run. The engine
/// writes them, jobboards write them when posting a flow, and both read
/// them through [`FlowDetail`]'s methods: the format lives only here.
mod run_meta {
    pub(super) const FLOW: &str = "flow";
    pub(super) const FACTORY: &str = "factory";
    pub(super) const STORE: &str = "store";
    pub(super) const LOGBOOK: &str = "logbook";
    pub(super) const NOT_STORED: &str = "flow_not_stored";
}

impl FlowDetail {
    /// A flow detail for a run not started yet: the flow `name`, how to
    /// rebuild it (`None` when it cannot be stored, e.g. closures), its
    /// initial store, and the logbook that holds it.
    ///
    /// ```
    /// use serde_json::{json, Map};
    /// use taskflow_persistence::{FlowDefinition, FlowDetail, LogBook};
    /// let book = LogBook::new("nightly");
    /// let definition = FlowDefinition::Factory { name: "backup".into(), args: json!({"db": "main"}) };
    /// let flow = FlowDetail::for_run("backup", Some(definition.clone()), Map::new(), book.uuid);
    /// assert_eq!(flow.definition().unwrap(), Some(definition));
    /// assert_eq!(flow.logbook_id().unwrap(), Some(book.uuid));
    /// ```
    pub fn for_run(
        name: impl Into<String>,
        definition: Option<FlowDefinition>,
        store: Map<String, Value>,
        logbook: Uuid,
    ) -> Self {
        let mut flow = FlowDetail::new(name);
        match definition {
            Some(FlowDefinition::Stored(stored)) => {
                flow.meta.insert(run_meta::FLOW.into(), stored);
            }
            Some(FlowDefinition::Factory { name, args }) => {
                flow.meta.insert(
                    run_meta::FACTORY.into(),
                    serde_json::json!({ "name": name, "args": args }),
                );
            }
            None => {}
        }
        flow.meta
            .insert(run_meta::STORE.into(), Value::Object(store));
        flow.meta
            .insert(run_meta::LOGBOOK.into(), Value::from(logbook.to_string()));
        flow
    }

    /// How to rebuild the flow, if the records say. A factory record
    /// without a name is [`Corrupt`](PersistenceError::Corrupt), naming
    /// the flow detail and what is missing.
    pub fn definition(&self) -> Result<Option<FlowDefinition>, PersistenceError> {
        if let Some(factory) = self.meta.get(run_meta::FACTORY) {
            let name = factory["name"]
                .as_str()
                .ok_or_else(|| self.corrupt("its factory record has no name"))?;
            let args = factory.get("args").cloned().unwrap_or(Value::Null);
            return Ok(Some(FlowDefinition::Factory {
                name: name.to_owned(),
                args,
            }));
        }
        Ok(self
            .meta
            .get(run_meta::FLOW)
            .cloned()
            .map(FlowDefinition::Stored))
    }

    /// The store the run started with (`null` if none was recorded).
    pub fn initial_store(&self) -> Value {
        self.meta
            .get(run_meta::STORE)
            .cloned()
            .unwrap_or(Value::Null)
    }

    /// The logbook holding this flow detail, if recorded; a recorded one
    /// that is not a UUID is [`Corrupt`](PersistenceError::Corrupt).
    pub fn logbook_id(&self) -> Result<Option<Uuid>, PersistenceError> {
        let Some(recorded) = self.meta.get(run_meta::LOGBOOK) else {
            return Ok(None);
        };
        recorded
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .map(Some)
            .ok_or_else(|| self.corrupt(format!("its logbook id {recorded} is not a UUID")))
    }

    /// Records why the flow's definition could not be stored (a task that
    /// does not serialize), so that a later load says so rather than guess.
    pub fn set_not_stored(&mut self, why: impl Into<String>) {
        self.meta
            .insert(run_meta::NOT_STORED.into(), Value::from(why.into()));
    }

    /// Why the flow's definition was not stored, if recorded.
    pub fn not_stored(&self) -> Option<&str> {
        self.meta.get(run_meta::NOT_STORED).and_then(Value::as_str)
    }

    fn corrupt(&self, reason: impl Into<String>) -> PersistenceError {
        PersistenceError::Corrupt {
            kind: RecordKind::FlowDetail,
            id: self.uuid.to_string(),
            reason: reason.into(),
        }
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
