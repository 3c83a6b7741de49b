//! Flow factories registered in code: how a flow of closures (which cannot
//! be serialized) is rebuilt in another process from its records, as
//! `jobrunner`'s `register_job` does for Python.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use crate::{Flow, TaskError, Value};

type FactoryFn = dyn Fn(&Value) -> Result<Flow, TaskError> + Send + Sync;

/// Named functions that build a flow from JSON arguments. A flow built
/// through one is recorded as the factory's name and arguments, so any
/// process that registered the same factory can rebuild it.
///
/// ```
/// use serde_json::json;
/// use taskflow_patterns::{atom, task_fn, FlowRegistry, Linear, Value};
///
/// let mut registry = FlowRegistry::new();
/// registry.register("greet", |args| {
///     let who = args["who"].as_str().unwrap_or("world").to_owned();
///     Ok(Linear::new("greet")
///         .add(atom("hello", task_fn(move |_| Ok(Value::from(format!("hello {who}"))))))
///         .into())
/// });
/// let flow = registry.build("greet", &json!({"who": "ops"})).unwrap();
/// assert_eq!(flow.name(), "greet");
/// assert!(registry.build("nope", &Value::Null).is_err());
/// ```
#[derive(Clone, Default)]
pub struct FlowRegistry {
    factories: BTreeMap<String, Arc<FactoryFn>>,
}

/// Why a registry could not build a flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FactoryError {
    /// No factory of that name is registered.
    #[error("no flow factory named `{name}` is registered (registered: {})", known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names registered.
        known: Vec<String>,
    },
    /// The factory refused its arguments.
    #[error("flow factory `{name}` failed: {message}")]
    Failed {
        /// The factory.
        name: String,
        /// Its error.
        message: String,
    },
}

impl FlowRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        FlowRegistry::default()
    }

    /// Registers (or replaces) the factory `name`.
    pub fn register<F>(&mut self, name: impl Into<String>, factory: F) -> &mut Self
    where
        F: Fn(&Value) -> Result<Flow, TaskError> + Send + Sync + 'static,
    {
        self.factories.insert(name.into(), Arc::new(factory));
        self
    }

    /// Whether a factory named `name` is registered.
    pub fn contains(&self, name: &str) -> bool {
        self.factories.contains_key(name)
    }

    /// The names registered.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.factories.keys().map(String::as_str)
    }

    /// Builds the flow of factory `name` with `args`.
    pub fn build(&self, name: &str, args: &Value) -> Result<Flow, FactoryError> {
        let factory = self
            .factories
            .get(name)
            .ok_or_else(|| FactoryError::Unknown {
                name: name.to_owned(),
                known: self.factories.keys().cloned().collect(),
            })?;
        factory(args).map_err(|e| FactoryError::Failed {
            name: name.to_owned(),
            message: e.to_string(),
        })
    }
}

impl fmt::Debug for FlowRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowRegistry")
            .field("factories", &self.factories.keys().collect::<Vec<_>>())
            .finish()
    }
}
