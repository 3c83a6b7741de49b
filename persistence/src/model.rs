//! The records, as in TaskFlow: a [`LogBook`] holds [`FlowDetail`]s, each
//! holding the [`AtomDetail`]s of its atoms.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use taskflow_patterns::{AtomKind, AtomState, Failure, FlowState, History, Intention, Version};
use uuid::Uuid;

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
        self.atom_details.iter().find(|a| a.name == name)
    }
}

/// The record of one atom: its state and intention, its result or failure,
/// its revert failure, and for a retry controller its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtomDetail {
    /// Its id.
    pub uuid: Uuid,
    /// The atom's name.
    pub name: String,
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
    /// The failure of its last execution.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// The failure of its revert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert_failure: Option<Failure>,
    /// For a retry controller, its attempts.
    #[serde(default, skip_serializing_if = "History::is_empty")]
    pub history: History,
    /// The atom's version when the record was written.
    #[serde(default)]
    pub version: Version,
    /// Free-form metadata (e.g. the last progress reported).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
}

impl AtomDetail {
    /// A new detail in state `PENDING` with a fresh id.
    pub fn new(name: impl Into<String>, kind: AtomKind) -> Self {
        AtomDetail {
            uuid: Uuid::new_v4(),
            name: name.into(),
            kind,
            state: AtomState::Pending,
            intention: Intention::Execute,
            result: None,
            failure: None,
            revert_failure: None,
            history: History::new(),
            version: Version::default(),
            meta: Map::new(),
        }
    }
}
