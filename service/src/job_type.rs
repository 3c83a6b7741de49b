//! Job types: the names a submission may ask for, each with Harbor's
//! contract (validate the parameters, how many failures are allowed,
//! whether to retry) and the flow that runs a job of it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};
use taskflow::{Flow, FlowRegistry, TaskError};

/// A job's parameters: the `parameters` object of its submission.
pub type Parameters = Map<String, Value>;

/// Why a submission's parameters were refused, naming the parameter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("parameter `{field}`: {reason}")]
pub struct InvalidParameter {
    /// The parameter at fault (a dotted path for nested ones).
    pub field: String,
    /// What is wrong with it.
    pub reason: String,
}

impl InvalidParameter {
    /// Parameter `field` is refused because `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        InvalidParameter {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Parameter `field` is required and missing.
    pub fn missing(field: impl Into<String>) -> Self {
        Self::new(field, "is required")
    }
}

/// What a job of one type does: Harbor's job interface, where `Run` is a
/// flow, so a job is checkpointed atom by atom, resumed where it stopped
/// when its node dies or it is retried, and cancelled by reverting what
/// it did.
///
/// ```
/// use serde_json::json;
/// use taskflow::{atom, task_fn, Flow, Linear, TaskError, Value};
/// use taskflow_service::{InvalidParameter, JobType, Parameters};
///
/// struct Replicate;
///
/// impl JobType for Replicate {
///     fn validate(&self, params: &Parameters) -> Result<(), InvalidParameter> {
///         match params.get("image") {
///             Some(Value::String(_)) => Ok(()),
///             Some(_) => Err(InvalidParameter::new("image", "must be a string")),
///             None => Err(InvalidParameter::missing("image")),
///         }
///     }
///     fn max_fails(&self) -> u32 { 3 }
///     fn should_retry(&self) -> bool { true }
///     fn flow(&self, params: &Parameters) -> Result<Flow, TaskError> {
///         let image = params["image"].as_str().unwrap_or_default().to_owned();
///         Ok(Linear::new("replicate")
///             .add(atom("copy", task_fn(move |ctx| {
///                 ctx.progress(0.5);
///                 Ok(json!({ "copied": image }))
///             })))
///             .into())
///     }
/// }
///
/// let params = json!({ "image": "library/redis" }).as_object().cloned().unwrap();
/// assert!(Replicate.validate(&params).is_ok());
/// assert_eq!(
///     Replicate.validate(&Parameters::new()).unwrap_err().to_string(),
///     "parameter `image`: is required"
/// );
/// ```
pub trait JobType: Send + Sync + 'static {
    /// Checks a submission's parameters: an error names the parameter and
    /// is answered with 400. The default accepts any.
    fn validate(&self, params: &Parameters) -> Result<(), InvalidParameter> {
        let _ = params;
        Ok(())
    }

    /// How many times a job of this type may fail and be run again by the
    /// service on its own ([`should_retry`](Self::should_retry)); each run
    /// again resumes from the job's last checkpoint. Default 0.
    fn max_fails(&self) -> u32 {
        0
    }

    /// Whether a failed job is run again on its own while it has failed
    /// fewer than [`max_fails`](Self::max_fails) times. Default false.
    fn should_retry(&self) -> bool {
        false
    }

    /// The store a job's flow starts from: by default its parameters, so
    /// every atom finds them as the symbols it requires. Recorded with the
    /// job's run when it is submitted.
    fn store(&self, params: &Parameters) -> Parameters {
        params.clone()
    }

    /// The flow that runs a job with these (validated) parameters: a
    /// one-task flow for a plain job, any flow for a bigger one. Built
    /// again on whichever node claims the job, from the same parameters.
    fn flow(&self, params: &Parameters) -> Result<Flow, TaskError>;
}

/// The job types of a service, by name.
#[derive(Clone, Default)]
pub struct JobTypes {
    types: BTreeMap<String, Arc<dyn JobType>>,
}

impl JobTypes {
    /// No job types.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers (or replaces) the job type `name`.
    pub fn insert(&mut self, name: impl Into<String>, job_type: impl JobType) {
        self.types.insert(name.into(), Arc::new(job_type));
    }

    pub(crate) fn insert_shared(&mut self, name: String, job_type: Arc<dyn JobType>) {
        self.types.insert(name, job_type);
    }

    /// The job type `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn JobType>> {
        self.types.get(name)
    }

    /// The names registered, in order.
    pub fn names(&self) -> Vec<String> {
        self.types.keys().cloned().collect()
    }

    /// Whether none is registered.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// A flow registry with one factory per job type, named as the type:
    /// a conductor rebuilds a job's flow from the type's name and the
    /// job's parameters, recorded with its flow detail.
    pub(crate) fn registry(&self) -> FlowRegistry {
        let mut registry = FlowRegistry::new();
        for (name, job_type) in &self.types {
            let job_type = Arc::clone(job_type);
            registry.register(name.clone(), move |args: &Value| {
                let empty = Parameters::new();
                let params = args.as_object().unwrap_or(&empty);
                job_type.flow(params)
            });
        }
        registry
    }
}

impl fmt::Debug for JobTypes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.types.keys()).finish()
    }
}
