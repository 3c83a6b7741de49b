//! Posting a flow as a job in one call: its logbook and flow detail are
//! written, then the job is posted pointing at them.

use serde_json::{Map, Value};
use taskflow_patterns::Flow;
use taskflow_persistence::{Backend, FlowDefinition, FlowDetail, LogBook};

use crate::{Job, JobBoard, JobBoardError, NewJob};

/// The flow a job runs: stored whole (every task serializable), or by the
/// name and arguments of a flow factory every conductor registers.
#[derive(Debug, Clone, Copy)]
pub enum FlowSource<'a> {
    /// A flow of `#[typetag::serde]` tasks, stored in its flow detail.
    Flow(&'a Flow),
    /// A flow built by the registered factory `name` from `args`.
    Factory {
        /// The factory's name.
        name: &'a str,
        /// Its arguments.
        args: &'a Value,
    },
}

/// What to post: the flow, its initial store, and the job's name, priority
/// and details.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use taskflow_jobboard::{post_flow, BoardOptions, FlowSource, JobBoard, MemoryBoard, PostFlow};
/// use taskflow_persistence::MemoryBackend;
///
/// let board = MemoryBoard::new(BoardOptions::default());
/// let records = MemoryBackend::new();
/// let args = json!({ "volume": "vol-1" });
/// let job = post_flow(&board, &records, PostFlow::new("backup", FlowSource::Factory {
///     name: "backup", args: &args,
/// }))?;
/// assert_eq!(board.get(job.id)?.name, "backup");
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
#[derive(Debug, Clone)]
pub struct PostFlow<'a> {
    /// The job's name.
    pub name: String,
    /// The flow to run.
    pub flow: FlowSource<'a>,
    /// The flow's initial store (a JSON object, or null).
    pub store: Value,
    /// Higher runs first.
    pub priority: i32,
    /// Free-form job details.
    pub details: Value,
}

impl<'a> PostFlow<'a> {
    /// A job named `name` running `flow` with an empty store, priority 0.
    pub fn new(name: impl Into<String>, flow: FlowSource<'a>) -> Self {
        PostFlow {
            name: name.into(),
            flow,
            store: Value::Null,
            priority: 0,
            details: Value::Null,
        }
    }

    /// Sets the initial store.
    pub fn store(mut self, store: Value) -> Self {
        self.store = store;
        self
    }

    /// Sets the priority.
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    /// Sets the details.
    pub fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// Writes a logbook and flow detail for the flow, then posts a job that
/// points at them; returns the job (its id tracks it). A conductor rebuilds
/// the flow from these records alone. A flow built by a factory is named
/// in the job's details as `factory` (when the details are an object or
/// null), so conductors that lack that factory do not claim the job.
pub fn post_flow(
    board: &dyn JobBoard,
    records: &dyn Backend,
    post: PostFlow<'_>,
) -> Result<Job, JobBoardError> {
    let store = match post.store {
        Value::Null => Map::new(),
        Value::Object(map) => map,
        other => {
            return Err(JobBoardError::InvalidJob {
                name: post.name,
                reason: format!("the store must be a JSON object, got {other}"),
            })
        }
    };
    let (flow_name, definition) = match post.flow {
        FlowSource::Flow(flow) => {
            let stored = serde_json::to_value(flow).map_err(|e| JobBoardError::InvalidJob {
                name: post.name.clone(),
                reason: format!(
                    "flow `{}` cannot be stored ({e}); post it through a flow factory instead",
                    flow.name()
                ),
            })?;
            (flow.name().to_owned(), FlowDefinition::Stored(stored))
        }
        FlowSource::Factory { name, args } => (
            name.to_owned(),
            FlowDefinition::Factory {
                name: name.to_owned(),
                args: args.clone(),
            },
        ),
    };
    let mut book = LogBook::new(post.name.clone());
    let flow = FlowDetail::for_run(flow_name, Some(definition), store, book.uuid);
    let flow_id = flow.uuid;
    book.flow_details.push(flow);
    records.save_logbook(&book)?;
    let mut job = NewJob::new(post.name);
    job.logbook = Some(book.uuid);
    job.flow_detail = Some(flow_id);
    job.priority = post.priority;
    job.details = post.details;
    if let FlowSource::Factory { name, .. } = post.flow {
        // Conductors that lack the factory leave the job to those that have it.
        match &mut job.details {
            Value::Null => job.details = serde_json::json!({ Job::FACTORY_KEY: name }),
            Value::Object(details) => {
                details
                    .entry(Job::FACTORY_KEY)
                    .or_insert_with(|| Value::from(name));
            }
            _ => {}
        }
    }
    board.post(job)
}
