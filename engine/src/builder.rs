//! Configuring an engine: [`EngineBuilder`].

use std::sync::Arc;

use serde_json::{Map, Value};
use taskflow_patterns::{compile, Flow};
use taskflow_persistence::{AtomDetail, Backend, FlowDetail, LogBook, MemoryBackend};

use crate::engine::{Engine, SuspendHandle};
use crate::executor::{Executor, Serial};
use crate::listener::{Listener, Listeners};
use crate::storage::Storage;
use crate::EngineError;

/// Configures an [`Engine`]; [`build`](EngineBuilder::build) compiles the
/// flow, validates it against the store and returns the engine or every
/// error found.
///
/// ```
/// use std::sync::Arc;
/// use serde_json::json;
/// use taskflow_engine::{CapturingListener, Engine};
/// use taskflow_patterns::{atom, task_fn, Linear};
/// use taskflow_persistence::MemoryBackend;
///
/// let capture = Arc::new(CapturingListener::new());
/// let mut engine = Engine::serial(Linear::new("greet")
///         .add(atom("hello", task_fn(|ctx| Ok(json!(format!("hello {}", ctx.input::<String>("who")?)))))
///             .requires(["who"]).provides("greeting")))
///     .store(json!({ "who": "world" }))
///     .persistence(MemoryBackend::new())
///     .listener(capture.clone())
///     .build()?;
/// engine.run()?;
/// assert_eq!(engine.storage().fetch("greeting"), Some(&json!("hello world")));
/// # Ok::<(), taskflow_engine::EngineError>(())
/// ```
pub struct EngineBuilder {
    flow: Flow,
    store: Value,
    backend: Option<Arc<dyn Backend>>,
    executor: Option<Box<dyn Executor>>,
    listeners: Vec<Arc<dyn Listener>>,
    suspend: SuspendHandle,
    logbook_name: Option<String>,
}

impl EngineBuilder {
    pub(crate) fn new(flow: Flow) -> Self {
        EngineBuilder {
            flow,
            store: Value::Object(Map::new()),
            backend: None,
            executor: None,
            listeners: Vec::new(),
            suspend: SuspendHandle::new(),
            logbook_name: None,
        }
    }

    /// The initial store: a JSON object of symbol to value, available to
    /// every atom that requires one of its symbols.
    pub fn store(mut self, store: Value) -> Self {
        self.store = store;
        self
    }

    /// Where records go (default: a fresh [`MemoryBackend`]).
    pub fn persistence(mut self, backend: impl Backend + 'static) -> Self {
        self.backend = Some(Arc::new(backend));
        self
    }

    /// Where records go, as a backend shared with other engines.
    pub fn shared_persistence(mut self, backend: Arc<dyn Backend>) -> Self {
        self.backend = Some(backend);
        self
    }

    /// Runs atoms on this executor instead of the engine kind's default.
    pub fn executor(mut self, executor: impl Executor + 'static) -> Self {
        self.executor = Some(Box::new(executor));
        self
    }

    /// Adds a listener (an `Arc<L>` works too, to keep a handle on it).
    pub fn listener(mut self, listener: impl Listener + 'static) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Uses this suspend handle, e.g. one a listener already holds.
    pub fn suspend_handle(mut self, handle: SuspendHandle) -> Self {
        self.suspend = handle;
        self
    }

    /// Names the logbook the run's records go in (default: the flow's name).
    pub fn logbook_name(mut self, name: impl Into<String>) -> Self {
        self.logbook_name = Some(name.into());
        self
    }

    /// Compiles the flow and validates it against the store. Errors list
    /// every problem found, each naming the atom and symbol at fault.
    pub fn build(self) -> Result<Engine, EngineError> {
        let store = match self.store {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => return Err(EngineError::InvalidStore(other.to_string())),
        };
        let compilation = Arc::new(compile(&self.flow)?);
        let resolution = Arc::new(compilation.resolve(&store)?);
        let name = self.flow.name().to_owned();
        let mut flow_detail = FlowDetail::new(name.clone());
        if let Ok(definition) = serde_json::to_value(&self.flow) {
            flow_detail.meta.insert("flow".into(), definition);
        }
        flow_detail
            .meta
            .insert("store".into(), Value::Object(store.clone()));
        let details = compilation
            .atoms()
            .iter()
            .map(|a| {
                let mut d = AtomDetail::new(&*a.name, a.kind());
                d.version = a.spec.version;
                d
            })
            .collect();
        let logbook = LogBook::new(self.logbook_name.unwrap_or(name));
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(MemoryBackend::new()));
        let storage = Storage::new(
            backend,
            compilation.clone(),
            logbook,
            flow_detail,
            details,
            &store,
            false,
        );
        Ok(Engine::assemble(
            compilation,
            resolution,
            storage,
            self.executor.unwrap_or_else(|| Box::new(Serial::new())),
            Listeners::new(self.listeners),
            self.suspend,
            store,
        ))
    }
}
