//! The messages engines and workers exchange, and where they go.

use std::fmt;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use taskflow_patterns::{AtomImpl, AtomIndex, Failure, Inputs, StoredAsyncTask, StoredTask, Value};
use uuid::Uuid;

use crate::executor::{Action, AtomWork, Recovery, RunShared};
use crate::listener::Listeners;

/// The kinds of the failures the worker engine reports on an atom's behalf
/// (a task's own failures keep the kind the task gave them).
pub use taskflow_patterns::kinds::worker as kinds;

/// The type name of tasks made of closures (`task_fn`, see
/// `Task::type_name`): a worker on an in-process transport that should run
/// closures advertises it.
pub const CLOSURE_TASK_TYPE: &str = "taskflow::FnTask";

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Route {
    /// The worker of this name.
    Worker(String),
    /// The engine of this address (a request's `reply_to`).
    Engine(String),
    /// Every worker (used for [`Message::Discover`]).
    Workers,
    /// Every engine (used for [`Message::Hello`] and [`Message::Bye`]).
    Engines,
}

/// What a worker tells engines about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerInfo {
    /// Its name, unique among the workers of a transport: requests for it
    /// are routed by this name.
    pub name: String,
    /// The task types (typetag names) it runs.
    pub task_types: Vec<String>,
    /// How many requests it runs at once.
    pub concurrency: usize,
    /// How often it says hello, in milliseconds; an engine that hears
    /// nothing from it for three of these (plus half a second) counts it
    /// as lost.
    pub heartbeat_ms: u64,
    /// Changes each time a worker of this name starts: an engine that
    /// hears a new instance knows the requests the old one held are lost.
    #[serde(default)]
    pub instance: Uuid,
}

/// One message between an engine and a worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Engine to worker: run an atom's execute or revert.
    Request(Request),
    /// Engine to worker: the engine gave up on a request (timeout, or the
    /// run was asked to stop); a running task sees `ctx.is_cancelled()`, a
    /// queued one is dropped.
    Cancel {
        /// The request.
        id: Uuid,
    },
    /// Engine to every worker: say hello to `reply_to` now.
    Discover {
        /// The engine's address.
        reply_to: String,
    },
    /// Worker to engine: a task reported progress.
    Progress {
        /// The request.
        id: Uuid,
        /// From 0.0 to 1.0.
        progress: f32,
    },
    /// Worker to engine: a task checked in (`ctx.checkin(message)`).
    CheckIn {
        /// The request.
        id: Uuid,
        /// What the task said.
        message: String,
    },
    /// Worker to engine: how a request ended.
    Done {
        /// The request.
        id: Uuid,
        /// The result (`null` for a revert), or the failure.
        result: Result<Value, Failure>,
    },
    /// Worker to engines: the worker is alive, what it runs (sent on start,
    /// every heartbeat, and in answer to [`Message::Discover`]).
    Hello(WorkerInfo),
    /// Worker to engines: the worker stopped; whatever it still held is lost.
    Bye {
        /// The worker's name.
        worker: String,
    },
}

impl Message {
    /// A copy of the message, for broadcasts; `None` for a request (whose
    /// work cannot be copied).
    pub fn try_clone(&self) -> Option<Message> {
        Some(match self {
            Message::Request(_) => return None,
            Message::Cancel { id } => Message::Cancel { id: *id },
            Message::Discover { reply_to } => Message::Discover {
                reply_to: reply_to.clone(),
            },
            Message::Progress { id, progress } => Message::Progress {
                id: *id,
                progress: *progress,
            },
            Message::CheckIn { id, message } => Message::CheckIn {
                id: *id,
                message: message.clone(),
            },
            Message::Done { id, result } => Message::Done {
                id: *id,
                result: result.clone(),
            },
            Message::Hello(info) => Message::Hello(info.clone()),
            Message::Bye { worker } => Message::Bye {
                worker: worker.clone(),
            },
        })
    }
}

/// An atom's execute or revert, sent to a worker.
#[derive(Debug, Serialize, Deserialize)]
pub struct Request {
    /// Names the request in replies.
    pub id: Uuid,
    /// The engine's address, where replies go.
    pub reply_to: String,
    /// The atom's name.
    pub atom: String,
    /// The task's type (its typetag name).
    pub task_type: String,
    /// Execute or revert.
    #[serde(with = "action_name")]
    pub action: Action,
    /// Whether the engine wants progress reports and check-ins.
    #[serde(default)]
    pub progress: bool,
    /// What to run.
    pub payload: Payload,
}

/// What a request runs: the work itself, for transports that stay in one
/// process, or the work as data, for transports that serialize.
pub enum Payload {
    /// The engine's own work item, moved as it is (in-process transports
    /// only; serializing it is an error).
    Work(Box<AtomWork>),
    /// The work as data, rebuilt by the worker.
    Data(Box<WorkData>),
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Payload::Work(work) => write!(f, "Work({})", work.name),
            Payload::Data(data) => f.debug_tuple("Data").field(data).finish(),
        }
    }
}

impl Serialize for Payload {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Payload::Work(work) => Err(serde::ser::Error::custom(format!(
                "the work of atom `{}` is an in-process work item and cannot be serialized",
                work.name
            ))),
            Payload::Data(data) => data.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Payload {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        WorkData::deserialize(deserializer).map(|data| Payload::Data(Box::new(data)))
    }
}

/// An atom's work as data: the task (serialized by typetag as
/// `{"TypeName": {...}}`), its resolved inputs and, for a revert, its own
/// result or failure and the flow's failures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkData {
    /// The task, as typetag serializes it (`null` for an async task).
    #[serde(default)]
    pub task: Value,
    /// An async task ([`StoredAsyncTask`](taskflow_patterns::StoredAsyncTask)),
    /// as typetag serializes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub async_task: Option<Value>,
    /// Argument name to value.
    #[serde(default)]
    pub inputs: serde_json::Map<String, Value>,
    /// When reverting: the atom's own result.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_result: Option<Value>,
    /// When reverting: the atom's own failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub own_failure: Option<Failure>,
    /// When reverting: the flow's failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flow_failures: Vec<Failure>,
}

impl WorkData {
    /// The data of a task's work; an error says why the task cannot be
    /// serialized (a closure, or a retry controller, which never leaves the
    /// engine).
    pub fn from_work(work: &AtomWork) -> Result<WorkData, String> {
        let (task, async_task) = match &work.imp {
            AtomImpl::Task(task) => match (task.stored(), task.stored_async()) {
                (Some(stored), _) => (
                    serde_json::to_value(stored).map_err(|e| e.to_string())?,
                    None,
                ),
                (None, Some(stored)) => (
                    Value::Null,
                    Some(serde_json::to_value(stored).map_err(|e| e.to_string())?),
                ),
                (None, None) if task.as_async().is_some() => {
                    return Err(format!(
                        "its async task `{}` is not a StoredAsyncTask \
                         (#[typetag::serde] impl StoredAsyncTask)",
                        task.type_name()
                    ))
                }
                (None, None) => {
                    return Err(format!(
                        "its task `{}` is not a StoredTask (#[typetag::serde] impl StoredTask)",
                        task.type_name()
                    ))
                }
            },
            AtomImpl::Retry(_) => {
                return Err("retry controllers run in the engine, not on workers".to_owned())
            }
        };
        Ok(WorkData {
            task,
            async_task,
            inputs: work
                .inputs
                .iter()
                .map(|(name, value)| (name.to_owned(), value.clone()))
                .collect(),
            own_result: work.own_result().cloned(),
            own_failure: work.own_failure().cloned(),
            flow_failures: work.flow_failures().to_vec(),
        })
    }

    /// Rebuilds the work in a worker. The listeners and cancel flag are the
    /// worker's; the atom index means nothing there.
    pub fn into_work(
        self,
        atom: &str,
        action: Action,
        listeners: Listeners,
        cancel: Arc<AtomicBool>,
    ) -> Result<AtomWork, serde_json::Error> {
        let task = match self.async_task {
            Some(task) => serde_json::from_value::<Box<dyn StoredAsyncTask>>(task)?.into_task(),
            None => serde_json::from_value::<Box<dyn StoredTask>>(self.task)?.into_task(),
        };
        Ok(AtomWork {
            atom: AtomIndex::new(0),
            name: atom.into(),
            action,
            imp: AtomImpl::Task(task),
            inputs: self.inputs.into_iter().collect::<Inputs>(),
            recovery: Recovery::boxed(
                None,
                self.own_result.map(Arc::new),
                self.own_failure,
                self.flow_failures.into(),
            ),
            // The engine's span is in another process.
            shared: RunShared::without_span(listeners, cancel),
            // The engine records the progress and check-ins it hears from
            // the worker.
            detail: None,
            // The engine keeps the atom's timeout.
            timer: None,
        })
    }
}

/// `Action` as `"execute"` / `"revert"` on the wire.
mod action_name {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::executor::Action;

    pub(super) fn serialize<S: Serializer>(action: &Action, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match action {
            Action::Execute => "execute",
            Action::Revert => "revert",
        })
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
        let name = String::deserialize(d)?;
        match name.as_str() {
            "execute" => Ok(Action::Execute),
            "revert" => Ok(Action::Revert),
            other => Err(serde::de::Error::unknown_variant(
                other,
                &["execute", "revert"],
            )),
        }
    }
}
