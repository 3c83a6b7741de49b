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
    /// A flow of stored tasks (`StoredTask`, `StoredRetry`,
    /// `StoredDecider`), stored whole in its flow detail.
    Flow(&'a Flow),
    /// A flow built by the registered factory `name` from `args`.
    Factory {
        /// The factory's name.
        name: &'a str,
        /// Its arguments.
        args: &'a Value,
    },
}

/// What to post: the flow, its two stores, and the job's name, priority
/// and details.
///
/// # Two stores
///
/// A flow's atoms find the values they require in its store. A job can
/// give them two ways, which differ in where they live and when they apply:
///
/// - [`store`](PostFlow::store): the **flow detail's store**, recorded with
///   the run in the flow detail when the job is posted. It is the store of
///   that run for good: every engine that runs or resumes the flow detail
///   starts from it, whether or not through a board.
/// - [`job_store`](PostFlow::job_store): the **job's store**, written in the
///   job's details as `details.store` (a JSON object). Each conductor
///   merges it over the flow detail's store every time it claims the job,
///   as TaskFlow's conductors combine `flow_detail.meta['store']` with
///   `job.details['store']`; a value in both is the job's. It is not
///   written into the flow's records. A `details.store` that is not an
///   object (nor null) is corrupt: a conductor trashes the job, naming it.
///
/// ```
/// use serde_json::json;
/// use taskflow_jobboard::{post_flow, BoardOptions, FlowSource, JobBoard, MemoryBoard, PostFlow};
/// use taskflow_persistence::MemoryBackend;
///
/// let board = MemoryBoard::new(BoardOptions::default());
/// let records = MemoryBackend::new();
/// let args = json!({});
/// let job_store = json!({ "region": "eu-1" }).as_object().cloned().unwrap_or_default();
/// let job = post_flow(&board, &records, PostFlow::new("backup", FlowSource::Factory {
///     name: "backup", args: &args,
/// })
/// .store(json!({ "region": "us-1", "volume": "vol-1" }))
/// .job_store(job_store))?;
/// // Run by a conductor, the flow sees region "eu-1" and volume "vol-1".
/// assert_eq!(board.get(job.id)?.details["store"], json!({ "region": "eu-1" }));
/// # Ok::<(), taskflow_jobboard::JobBoardError>(())
/// ```
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
    /// The flow detail's store (a JSON object, or null): recorded with the
    /// run (see [Two stores](PostFlow#two-stores)).
    pub store: Value,
    /// The job's store: written as `details.store`, merged by each
    /// conductor over the flow detail's store at each claim (see
    /// [Two stores](PostFlow#two-stores)). Empty: no `details.store` is
    /// written (unless the details already hold one).
    pub job_store: Map<String, Value>,
    /// Higher runs first.
    pub priority: i32,
    /// Free-form job details.
    pub details: Value,
    /// Not claimable before this time (ms since the Unix epoch, on the
    /// board's clock); `None`: at once.
    pub not_before: Option<u64>,
    /// The job's uniqueness key (see [`NewJob::unique_key`](NewJob#structfield.unique_key)).
    pub unique_key: Option<String>,
    /// The job's execution key (see [`NewJob::key`](NewJob#structfield.key)).
    pub key: Option<String>,
}

impl<'a> PostFlow<'a> {
    /// A job named `name` running `flow` with an empty store, priority 0.
    pub fn new(name: impl Into<String>, flow: FlowSource<'a>) -> Self {
        PostFlow {
            name: name.into(),
            flow,
            store: Value::Null,
            job_store: Map::new(),
            priority: 0,
            details: Value::Null,
            not_before: None,
            unique_key: None,
            key: None,
        }
    }

    /// Sets the flow detail's store, recorded with the run.
    pub fn store(mut self, store: Value) -> Self {
        self.store = store;
        self
    }

    /// Adds `values` to the job's store (`details.store`), over any value
    /// of the same symbol given before, in it or in the details: merged by
    /// each conductor over the flow detail's store when it claims the job.
    pub fn job_store(mut self, values: Map<String, Value>) -> Self {
        self.job_store.extend(values);
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

    /// Makes the job not claimable before `ms` (ms since the Unix epoch, on
    /// the board's clock).
    pub fn not_before(mut self, ms: u64) -> Self {
        self.not_before = Some(ms);
        self
    }

    /// Gives the job a uniqueness key: while a job holding it is not
    /// complete, the post fails with [`Duplicate`](JobBoardError::Duplicate).
    pub fn unique_key(mut self, key: impl Into<String>) -> Self {
        self.unique_key = Some(key.into());
        self
    }

    /// Gives the job an execution key: if a job with it is on the board,
    /// the post fails with [`AlreadyPosted`](JobBoardError::AlreadyPosted).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }
}

/// Writes a logbook and flow detail for the flow, then posts a job that
/// points at them; returns the job (its id tracks it). A conductor rebuilds
/// the flow from these records alone. A flow built by a factory is named
/// in the job's details as `factory` (when the details are an object or
/// null), so conductors that lack that factory do not claim the job. A job
/// store is written in the details as `store` (over the values of a
/// `store` the details already hold); details that cannot hold it (not an
/// object nor null, or a `store` that is not an object) are
/// [`InvalidJob`](JobBoardError::InvalidJob), and nothing is written.
///
/// # Records and job together
///
/// Posting goes through [`JobBoard::post_with_records`]. Where the board
/// and the records are in one database (a [`SqliteBoard`](crate::SqliteBoard)
/// and a [`SqliteBackend`](taskflow_persistence::SqliteBackend) opened on
/// the same file), the records and the job are one transaction: a crash
/// leaves both or neither, and a post the board refuses for its keys
/// ([`Duplicate`](JobBoardError::Duplicate),
/// [`AlreadyPosted`](JobBoardError::AlreadyPosted)) rolls the records back.
/// Elsewhere the records are written first, then the job: a refused post
/// destroys the logbook again (if destroying it fails too, the board's
/// refusal is still the error returned), and records left by a poster that
/// died in between are marked ([`POSTED_KEY`]) for the conductor's purge to
/// remove after its orphan grace. No job is ever visible without its
/// records.
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
    let mut details = post.details;
    if !post.job_store.is_empty() {
        with_job_store(&mut details, post.job_store).map_err(|reason| {
            JobBoardError::InvalidJob {
                name: post.name.clone(),
                reason,
            }
        })?;
    }
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
    // Marked as a job's, so that if this process dies before the job is
    // posted, a conductor's purge finds the records no job points at.
    book.meta.insert(POSTED_KEY.into(), Value::Bool(true));
    let flow = FlowDetail::for_run(flow_name, Some(definition), store, book.uuid);
    let flow_id = flow.uuid;
    book.flow_details.push(flow);
    let mut job = NewJob::new(post.name);
    job.logbook = Some(book.uuid);
    job.flow_detail = Some(flow_id);
    job.priority = post.priority;
    job.details = details;
    job.not_before = post.not_before;
    job.unique_key = post.unique_key;
    job.key = post.key;
    if let FlowSource::Factory { name, .. } = post.flow {
        // Conductors that lack the factory leave the job to those that have it.
        if let Some(details) = details_object(&mut job.details) {
            details
                .entry(Job::FACTORY_KEY)
                .or_insert_with(|| Value::from(name));
        }
    }
    board.post_with_records(job, &book, records)
}

/// What [`JobBoard::post_with_records`] does by default: saves the records,
/// then posts the job; a post the board refuses for its keys destroys the
/// records again.
pub(crate) fn records_then_post<B: JobBoard + ?Sized>(
    board: &B,
    job: NewJob,
    book: &LogBook,
    records: &dyn Backend,
) -> Result<Job, JobBoardError> {
    records.save_logbook(book)?;
    match board.post(job) {
        Err(refused @ (JobBoardError::Duplicate { .. } | JobBoardError::AlreadyPosted { .. })) => {
            // No job points at the logbook: remove it rather than orphan it.
            if let Err(e) = records.destroy_logbook(book.uuid) {
                tracing::warn!(
                    logbook = %book.uuid,
                    error = %e,
                    "could not remove the logbook of a refused post"
                );
            }
            Err(refused)
        }
        posted => posted,
    }
}

/// Writes `job_store` into `details` as `details.store`, over the values of
/// one already there; why not, when the details cannot hold it.
fn with_job_store(details: &mut Value, job_store: Map<String, Value>) -> Result<(), String> {
    let found = json_type(details);
    let Some(details) = details_object(details) else {
        return Err(format!(
            "a job store needs details that are a JSON object (or null), got {found}"
        ));
    };
    let store = details
        .entry(Job::STORE_KEY)
        .or_insert_with(|| Value::Object(Map::new()));
    if store.is_null() {
        *store = Value::Object(Map::new());
    }
    match store {
        Value::Object(store) => {
            store.extend(job_store);
            Ok(())
        }
        other => Err(format!(
            "details.{} must be a JSON object of symbol to value, got {}",
            Job::STORE_KEY,
            json_type(other)
        )),
    }
}

/// The job's details as an object to add keys to: null details become an
/// empty object; details of another type (a string, ...) hold no keys.
fn details_object(details: &mut Value) -> Option<&mut Map<String, Value>> {
    if details.is_null() {
        *details = Value::Object(Map::new());
    }
    details.as_object_mut()
}

/// The key of a logbook's meta that [`post_flow`] sets: its records are a
/// job's. A logbook so marked that no job on the board points at (its
/// poster died between writing the records and posting the job) is removed
/// by [`Conductor::purge`](crate::Conductor::purge) once it is older than
/// the conductor's orphan grace.
pub const POSTED_KEY: &str = "taskflow.posted";

/// The JSON type of `value`, for messages ("an array", "a string", ...).
///
/// ```
/// assert_eq!(taskflow_jobboard::json_type(&serde_json::json!([1])), "an array");
/// ```
pub fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use taskflow_persistence::MemoryBackend;

    use super::*;
    use crate::{BoardOptions, MemoryBoard};

    fn post(details: Value, job_store: Value) -> Result<Job, JobBoardError> {
        let board = MemoryBoard::new(BoardOptions::default());
        let records = MemoryBackend::new();
        let args = json!({});
        let mut post = PostFlow::new(
            "j",
            FlowSource::Factory {
                name: "f",
                args: &args,
            },
        )
        .store(json!({ "a": 1, "c": 3 }))
        .details(details);
        if let Value::Object(job_store) = job_store {
            post = post.job_store(job_store);
        }
        let job = post_flow(&board, &records, post)?;
        // The flow detail keeps its own store, without the job's.
        let book = records.get_logbook(job.logbook.unwrap()).unwrap();
        assert_eq!(
            Value::Object(book.flow_details[0].run.store.clone()),
            json!({ "a": 1, "c": 3 })
        );
        Ok(job)
    }

    #[test]
    fn the_job_store_goes_in_the_details() {
        let job = post(Value::Null, json!({ "a": 2, "b": 1 })).unwrap();
        assert_eq!(
            job.details,
            json!({ "store": { "a": 2, "b": 1 }, "factory": "f" })
        );
        let job = post(
            json!({ "owner": "ops", "store": { "a": 0, "d": 4 } }),
            json!({ "a": 2 }),
        )
        .unwrap();
        assert_eq!(
            job.details,
            json!({ "owner": "ops", "store": { "a": 2, "d": 4 }, "factory": "f" })
        );
        let job = post(json!({ "store": null }), json!({ "a": 2 })).unwrap();
        assert_eq!(job.details["store"], json!({ "a": 2 }));
    }

    #[test]
    fn no_job_store_leaves_the_details_alone() {
        let job = post(Value::Null, Value::Null).unwrap();
        assert_eq!(job.details, json!({ "factory": "f" }));
        let job = post(json!({ "store": { "a": 5 } }), Value::Null).unwrap();
        assert_eq!(job.details["store"], json!({ "a": 5 }));
    }

    #[test]
    fn details_that_cannot_hold_a_job_store_are_refused() {
        for (details, says) in [
            (
                json!("nightly"),
                "details that are a JSON object (or null), got a string",
            ),
            (
                json!({ "store": [1] }),
                "details.store must be a JSON object of symbol to value, got an array",
            ),
        ] {
            let err = post(details, json!({ "a": 2 })).unwrap_err();
            assert!(
                matches!(&err, JobBoardError::InvalidJob { name, reason } if name == "j" && reason.contains(says)),
                "{err}"
            );
        }
    }

    fn keyed(
        board: &MemoryBoard,
        records: &MemoryBackend,
        post: PostFlow<'_>,
    ) -> Result<Job, JobBoardError> {
        post_flow(board, records, post)
    }

    #[test]
    fn keys_and_times_reach_the_job() {
        let board = MemoryBoard::new(BoardOptions::default());
        let records = MemoryBackend::new();
        let args = json!({});
        let source = FlowSource::Factory {
            name: "f",
            args: &args,
        };
        let job = keyed(
            &board,
            &records,
            PostFlow::new("j", source)
                .not_before(u64::MAX)
                .unique_key("u")
                .key("policy@1"),
        )
        .unwrap();
        assert_eq!(job.not_before, Some(u64::MAX));
        assert_eq!(job.unique_key.as_deref(), Some("u"));
        assert_eq!(job.key.as_deref(), Some("policy@1"));
        assert_eq!(board.get(job.id).unwrap(), job);
    }

    #[test]
    fn a_post_refused_for_its_keys_leaves_no_logbook() {
        let board = MemoryBoard::new(BoardOptions::default());
        let records = MemoryBackend::new();
        let args = json!({});
        let source = FlowSource::Factory {
            name: "f",
            args: &args,
        };
        let first = keyed(&board, &records, PostFlow::new("a", source).key("p@1")).unwrap();
        let held = keyed(&board, &records, PostFlow::new("b", source).unique_key("u")).unwrap();
        let err = keyed(&board, &records, PostFlow::new("c", source).key("p@1")).unwrap_err();
        assert!(
            matches!(&err, JobBoardError::AlreadyPosted { key, existing } if key == "p@1" && *existing == first.id),
            "{err}"
        );
        let err = keyed(&board, &records, PostFlow::new("d", source).unique_key("u")).unwrap_err();
        assert!(
            matches!(&err, JobBoardError::Duplicate { key, existing } if key == "u" && *existing == held.id),
            "{err}"
        );
        let mut books: Vec<_> = records
            .list_logbooks()
            .unwrap()
            .into_iter()
            .map(|b| b.unwrap().uuid)
            .collect();
        books.sort();
        let mut expected = vec![first.logbook.unwrap(), held.logbook.unwrap()];
        expected.sort();
        assert_eq!(books, expected, "only the posted jobs' logbooks are left");
        assert_eq!(board.all_jobs().unwrap().len(), 2);
    }
}
