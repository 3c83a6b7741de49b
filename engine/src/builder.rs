//! Configuring an engine: [`EngineBuilder`].

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};
use taskflow_patterns::{
    compile, definition_depth, Compilation, FactoryError, Flow, FlowRegistry, FlowState, Name,
    MAX_FLOW_DEPTH,
};
use taskflow_persistence::{
    AtomDetail, Backend, FlowDefinition, FlowDetail, LogBook, MemoryBackend, PersistenceError,
    RecordKind,
};

use crate::engine::{Engine, RunOptions, SuspendHandle};
use crate::executor::{Executor, Serial};
use crate::listener::{Listener, Listeners};
use crate::storage::Storage;
use crate::{ConfigError, DefinitionError, EngineError, Missing, StoreError};
use taskflow_persistence::Epoch;
use taskflow_persistence::FlowDetailId;

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
/// let mut engine = Engine::builder(Linear::new("greet")
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
    /// How the records name the flow; `None`: serialize it at build, if
    /// every task can be.
    definition: Option<FlowDefinition>,
    resume: Option<FlowDetail>,
    accept_changes: bool,
    /// A setting given twice, or one that contradicts how the builder was
    /// made: `build` refuses it.
    conflict: Option<ConfigError>,
    /// The owner epoch to write at (and, when resuming, to fence at).
    owner_epoch: Option<Epoch>,
    defer_reverts: bool,
}

// The engine's constructors live beside the builder they return, so that
// the engine's module needs nothing of the builder's.
impl Engine {
    /// A builder for an engine running `flow`: on the [`Serial`] executor
    /// (atoms one at a time on the calling thread) unless
    /// [`executor`](EngineBuilder::executor) names another, such as
    /// [`Parallel`](crate::Parallel).
    pub fn builder(flow: impl Into<Flow>) -> EngineBuilder {
        EngineBuilder::new(flow.into())
    }

    /// A builder for the flow that the factory `name` of `registry` builds
    /// from `args`. The records name the factory and its arguments, so
    /// [`load_with`](Self::load_with) rebuilds the flow in another process.
    pub fn from_factory(
        registry: &FlowRegistry,
        name: &str,
        args: Value,
    ) -> Result<EngineBuilder, EngineError> {
        EngineBuilder::from_factory(registry, name, args)
    }

    /// A builder that resumes the flow detail `flow_detail` from `backend`,
    /// in this or another process: the flow is rebuilt from its stored
    /// definition, atoms already `SUCCESS` are not run again, an atom found
    /// `RUNNING` runs again, a revert in progress continues, and retry
    /// histories carry on. A flow whose atoms changed incompatibly since the
    /// records were written is refused at `build`, naming the atom.
    /// A flow detail with no atom details yet (posted to a job board, never
    /// run) starts from the beginning.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use serde::{Deserialize, Serialize};
    /// use taskflow_engine::Engine;
    /// use taskflow_patterns::{atom, Context, FlowState, Linear, StoredTask, TaskError, Value};
    /// use taskflow_persistence::{Backend, MemoryBackend};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct Hello;
    /// #[typetag::serde]
    /// impl StoredTask for Hello {
    ///     fn execute(&self, _: &mut Context) -> Result<Value, TaskError> { Ok("hi".into()) }
    /// }
    ///
    /// let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    /// let mut first = Engine::builder(Linear::new("f").add(atom("hello", Hello)))
    ///     .persistence(backend.clone())
    ///     .build()?;
    /// first.prepare()?; // records written, e.g. by a process that then died
    /// let id = first.storage().flow_detail_id();
    ///
    /// let mut resumed = Engine::load(backend, id)?.build()?;
    /// assert_eq!(resumed.run()?, FlowState::Success);
    /// # Ok::<(), taskflow_engine::EngineError>(())
    /// ```
    pub fn load(
        backend: impl Backend + 'static,
        flow_detail: FlowDetailId,
    ) -> Result<EngineBuilder, EngineError> {
        EngineBuilder::load(shared(backend), flow_detail, None)
    }

    /// Like [`load`](Self::load), for flows built by a factory of `registry`.
    pub fn load_with(
        backend: impl Backend + 'static,
        flow_detail: FlowDetailId,
        registry: &FlowRegistry,
    ) -> Result<EngineBuilder, EngineError> {
        EngineBuilder::load(shared(backend), flow_detail, Some(registry))
    }
}

/// A backend as the engine holds it. An `Arc<dyn Backend>` given here
/// (shared with other engines) is a backend too, and ends up behind a
/// second `Arc`: one more pointer to follow per checkpoint, against a
/// write of the backend's own.
pub(crate) fn shared(backend: impl Backend + 'static) -> Arc<dyn Backend> {
    Arc::new(backend)
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
            definition: None,
            resume: None,
            accept_changes: false,
            conflict: None,
            owner_epoch: None,
            defer_reverts: false,
        }
    }

    /// A builder for the flow the factory `name` of `registry` builds from
    /// `args`; the records name the factory, so [`Engine::load_with`] can
    /// rebuild the flow in another process.
    pub(crate) fn from_factory(
        registry: &FlowRegistry,
        name: &str,
        args: Value,
    ) -> Result<Self, EngineError> {
        let flow = registry.build(name, &args)?;
        let mut builder = EngineBuilder::new(flow);
        builder.definition = Some(FlowDefinition::Factory {
            name: name.to_owned(),
            args,
        });
        Ok(builder)
    }

    /// A builder that resumes the flow detail `id` of `backend`, rebuilding
    /// its flow from the records (a stored definition, or a factory of
    /// `registry`).
    pub(crate) fn load(
        backend: Arc<dyn Backend>,
        id: FlowDetailId,
        registry: Option<&FlowRegistry>,
    ) -> Result<Self, EngineError> {
        let detail = backend.get_flow_detail(id)?;
        let definition_error = |problem: DefinitionError| EngineError::Definition {
            flow_detail: id,
            problem,
        };
        let flow = match detail.run.definition.clone() {
            Some(FlowDefinition::Factory { name, args }) => {
                let Some(registry) = registry else {
                    return Err(EngineError::Unsupported {
                        flow_detail: id,
                        missing: Missing::Factory {
                            name,
                            registered: Vec::new(),
                        },
                    });
                };
                registry.build(&name, &args).map_err(|e| match e {
                    FactoryError::Unknown { name, known } => EngineError::Unsupported {
                        flow_detail: id,
                        missing: Missing::Factory {
                            name,
                            registered: known,
                        },
                    },
                    other => definition_error(DefinitionError::Factory(other)),
                })?
            }
            Some(FlowDefinition::Stored(stored)) => {
                // Decoding recurses per level of flows: a definition that
                // is corrupt (or hostile) and deep is refused before it.
                let depth = definition_depth(&stored);
                if depth > MAX_FLOW_DEPTH {
                    return Err(definition_error(DefinitionError::TooDeep {
                        depth,
                        limit: MAX_FLOW_DEPTH,
                    }));
                }
                serde_json::from_value::<Flow>(stored).map_err(|e| {
                    let message = e.to_string();
                    // An externally tagged type (a `#[typetag::serde]` task,
                    // a pattern) this build does not know is serde's
                    // `unknown variant`: another build may know it.
                    if message.starts_with("unknown variant") {
                        EngineError::Unsupported {
                            flow_detail: id,
                            missing: Missing::TaskType { message },
                        }
                    } else {
                        definition_error(DefinitionError::Undecodable(e))
                    }
                })?
            }
            None => {
                let why = detail
                    .run
                    .not_stored
                    .clone()
                    .unwrap_or_else(|| "none was recorded".to_owned());
                return Err(definition_error(DefinitionError::NotStored { why }));
            }
        };
        let mut builder = EngineBuilder::new(flow);
        builder.store = Value::Object(detail.run.store.clone());
        builder.backend = Some(backend);
        builder.resume = Some(detail);
        Ok(builder)
    }

    /// The initial store: a JSON object of symbol to value, available to
    /// every atom that requires one of its symbols. A resumed flow starts
    /// with the store it was first run with: replacing it is refused at
    /// `build` (add to it with [`extend_store`](Self::extend_store)).
    pub fn store(mut self, store: Value) -> Self {
        if self.resume.is_some() {
            self.refuse(ConfigError::StoreOfLoadedFlow);
        }
        self.store = store;
        self
    }

    /// Adds `values` to the store, over any value of the same symbol: e.g.
    /// a job's `details.store` over the store of the flow detail it
    /// resumes, as TaskFlow's conductors combine them. A store that is not
    /// an object is left as it is (and refused at `build`).
    ///
    /// ```
    /// # use serde_json::json;
    /// # use taskflow_engine::Engine;
    /// # use taskflow_patterns::{atom, task_fn, Linear};
    /// let flow = Linear::new("f").add(atom("a", task_fn(|ctx| ctx.input("x"))).requires(["x"]).provides("y"));
    /// let mut engine = Engine::builder(flow)
    ///     .store(json!({ "x": 1 }))
    ///     .extend_store(json!({ "x": 2 }).as_object().unwrap().clone())
    ///     .build()?;
    /// engine.run()?;
    /// assert_eq!(engine.storage().fetch("y"), Some(&json!(2)));
    /// # Ok::<(), taskflow_engine::EngineError>(())
    /// ```
    pub fn extend_store(mut self, values: Map<String, Value>) -> Self {
        if self.store.is_null() {
            self.store = Value::Object(Map::new());
        }
        if let Value::Object(store) = &mut self.store {
            store.extend(values);
        }
        self
    }

    /// Where records go (default: a fresh [`MemoryBackend`]): any backend,
    /// an `Arc<dyn Backend>` shared with other engines included. A flow
    /// resumed with [`Engine::load`] writes where its records are; naming
    /// a backend for it, or naming one twice, is refused at `build`.
    pub fn persistence(mut self, backend: impl Backend + 'static) -> Self {
        if self.resume.is_some() {
            self.refuse(ConfigError::PersistenceOfLoadedFlow);
        } else if self.backend.is_some() {
            self.refuse(ConfigError::Twice("persistence"));
        }
        self.backend = Some(shared(backend));
        self
    }

    /// Runs atoms on this executor (default: [`Serial`], one at a time on
    /// the calling thread), e.g. `.executor(Parallel::new(8)?)` for eight
    /// at once on a rayon pool. Chosen once: a second call is refused at
    /// `build`.
    pub fn executor(mut self, executor: impl Executor + 'static) -> Self {
        if self.executor.is_some() {
            self.refuse(ConfigError::Twice("executor"));
        }
        self.executor = Some(Box::new(executor));
        self
    }

    fn refuse(&mut self, conflict: ConfigError) {
        self.conflict.get_or_insert(conflict);
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

    /// Names the logbook the run's records go in (default: the flow's
    /// name). A resumed flow's logbook exists: naming one is refused at
    /// `build`.
    pub fn logbook_name(mut self, name: impl Into<String>) -> Self {
        if self.resume.is_some() {
            self.refuse(ConfigError::LogbookOfLoadedFlow);
        }
        self.logbook_name = Some(name.into());
        self
    }

    /// What a retry controller's `REVERT` does when no controller further
    /// out decides otherwise. By default, as TaskFlow: only that
    /// controller's subflow reverts (with what ran downstream of it); the
    /// atoms outside it stay `SUCCESS` and the flow ends `REVERTED`. With
    /// `defer_reverts()` (TaskFlow's `defer_reverts=True`), `REVERT` defers
    /// to the flow as a whole: with no controller further out, everything
    /// that ran reverts. Either way a controller further out that says
    /// `RETRY` or `REVERT_ALL` is obeyed.
    pub fn defer_reverts(mut self) -> Self {
        self.defer_reverts = true;
        self
    }

    /// When resuming: accept a flow that changed since its records were
    /// written. Atoms new in the flow start `PENDING`, records of atoms no
    /// longer in it are left alone, and version changes are accepted.
    pub fn accept_changed_flow(mut self) -> Self {
        self.accept_changes = true;
        self
    }

    /// The owner epoch this engine writes at: how the conductor that holds
    /// a job's claim keeps an earlier owner from overwriting its work.
    ///
    /// A job board gives each claim of a job an epoch higher than every
    /// earlier claim's. The conductor passes the epoch of its claim here:
    ///
    /// * a fresh flow's new flow detail is saved owned at `epoch`;
    /// * a resumed one ([`Engine::load`]): `build` fences its records at
    ///   `epoch` ([`Backend::fence_flow_detail`]), then reads them again, so
    ///   the run starts from the last checkpoint any earlier owner managed to
    ///   write. If the records are owned at a higher epoch (a newer claim
    ///   exists), `build` fails with
    ///   [`PersistenceError::Fenced`] (as [`EngineError::Persistence`]).
    ///
    /// Every checkpoint presents the epoch. Once a newer owner has fenced
    /// the flow detail, a stale owner (a conductor that was paused or
    /// partitioned while its lease expired) fails at its next checkpoint:
    /// its [`run`](Engine::run) schedules nothing more and returns that
    /// `Fenced` error, and the conductor should drop the job without
    /// touching it further (it is no longer its own). Atoms it had already
    /// started may still finish, but their outcomes are never recorded.
    ///
    /// Without it, a fresh flow is written at epoch 0, and a resumed one
    /// takes ownership of its records at the next epoch
    /// ([`Backend::take_flow_detail`]): an engine that is still running the
    /// same flow detail, in this or another process, fails at its next
    /// checkpoint with `Fenced`, so two runners never both record a run
    /// (at most the atom the first had in flight runs twice). The newest
    /// runner wins: without a board there is no lease to say whether the
    /// first is still alive. A flow detail that a job board hands out
    /// should be run only through its conductors.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use serde_json::Value;
    /// use taskflow_engine::{Engine, EngineError};
    /// use taskflow_patterns::{atom, task_fn, FlowRegistry, FlowState, Linear};
    /// use taskflow_persistence::{Backend, MemoryBackend, PersistenceError};
    ///
    /// let mut registry = FlowRegistry::new();
    /// registry.register("job", |_| {
    ///     Ok(Linear::new("f").add(atom("a", task_fn(|_| Ok(Value::Null)))).into())
    /// });
    /// let backend: Arc<dyn Backend> = Arc::new(MemoryBackend::new());
    ///
    /// // Conductor A claims the job at epoch 1, writes its records, stalls.
    /// let mut stale = Engine::from_factory(&registry, "job", Value::Null)?
    ///     .persistence(backend.clone())
    ///     .owner_epoch(1)
    ///     .build()?;
    /// stale.prepare()?;
    /// let id = stale.storage().flow_detail_id();
    ///
    /// // Its lease expires; conductor B claims the job at epoch 2.
    /// let mut owner = Engine::load_with(backend.clone(), id, &registry)?
    ///     .owner_epoch(2)
    ///     .build()?;
    ///
    /// // A wakes up: its first checkpoint is refused and its run stops.
    /// let err = stale.run().unwrap_err();
    /// assert!(matches!(
    ///     err,
    ///     EngineError::Persistence(PersistenceError::Fenced { held, presented, .. })
    ///         if held == 2 && presented == 1
    /// ));
    /// assert_eq!(owner.run()?, FlowState::Success);
    /// # Ok::<(), EngineError>(())
    /// ```
    pub fn owner_epoch(mut self, epoch: impl Into<Epoch>) -> Self {
        self.owner_epoch = Some(epoch.into());
        self
    }

    /// Compiles the flow and validates it against the store. Errors list
    /// every problem found, each naming the atom and symbol at fault.
    pub fn build(self) -> Result<Engine, EngineError> {
        if let Some(conflict) = self.conflict {
            return Err(conflict.into());
        }
        let store = match self.store {
            Value::Object(map) => map,
            Value::Null => Map::new(),
            other => {
                return Err(StoreError::NotAnObject {
                    found: other.to_string(),
                }
                .into())
            }
        };
        for (symbol, value) in &store {
            if let Some(depth) = crate::completer::too_deep(value) {
                return Err(StoreError::TooDeep {
                    symbol: symbol.clone(),
                    depth,
                    limit: taskflow_patterns::MAX_VALUE_DEPTH,
                }
                .into());
            }
        }
        let executor: Box<dyn Executor> = self.executor.unwrap_or_else(|| Box::new(Serial::new()));
        let compilation = Arc::new(compile(&self.flow)?);
        let name = self.flow.name().to_owned();
        // A new run stores the flow's definition, when it serializes; when
        // it does not, the records say why (naming the atom), for a load.
        let (definition, not_stored) = match (&self.resume, self.definition) {
            (Some(_), _) => (None, None),
            (None, Some(definition)) => (Some(definition), None),
            (None, None) => match serde_json::to_value(&self.flow) {
                Ok(stored) => (Some(FlowDefinition::Stored(stored)), None),
                Err(e) => (None, Some(unstorable(&compilation, &e))),
            },
        };
        // The compilation shares the atoms; the flow's own tree is not
        // needed any more, so it is freed before the records are built.
        drop(self.flow);
        let resolution = Arc::new(compilation.resolve(&store)?);
        let backend = self
            .backend
            .unwrap_or_else(|| Arc::new(MemoryBackend::new()));
        let storage = match self.resume {
            Some(flow_detail) => {
                // The records must match before the flow detail is taken: a
                // refused load takes nothing from whoever runs it.
                match_records(&compilation, flow_detail.clone(), self.accept_changes)?;
                // Running a flow detail takes ownership of it: at the epoch
                // given (a job board's claim), else at the next one.
                let flow_detail = match self.owner_epoch {
                    Some(epoch) => claim(&*backend, flow_detail.uuid, epoch)?,
                    None => take(&*backend, flow_detail.uuid)?,
                };
                resumed_storage(
                    backend,
                    compilation.clone(),
                    flow_detail,
                    &store,
                    self.accept_changes,
                )?
            }
            None => {
                let logbook = LogBook::new(self.logbook_name.unwrap_or_else(|| name.clone()));
                let mut flow_detail =
                    FlowDetail::for_run(name, definition, store.clone(), logbook.uuid);
                if let Some(why) = not_stored {
                    flow_detail.run.not_stored = Some(why);
                }
                flow_detail.owner_epoch = self.owner_epoch.unwrap_or(Epoch::ZERO);
                let details = compilation.atoms().iter().map(new_detail).collect();
                Storage::new(
                    backend,
                    compilation.clone(),
                    logbook,
                    flow_detail,
                    details,
                    &store,
                    false,
                )
            }
        };
        let listeners = Listeners::recording(self.listeners, storage.progress_sink());
        Ok(Engine::assemble(
            compilation,
            resolution,
            storage,
            executor,
            listeners,
            RunOptions {
                store,
                suspend: self.suspend,
                defer_reverts: self.defer_reverts,
            },
        ))
    }
}

/// Why a flow's definition does not serialize. The serializer names the
/// atom (or link) whose part is not a stored one; a stored task whose own
/// serialization failed is named here.
fn unstorable(compilation: &Compilation, error: &serde_json::Error) -> String {
    let culprit = compilation.atoms().iter().find(|a| match &a.imp {
        taskflow_patterns::AtomImpl::Task(t) => {
            t.stored().is_some_and(|t| serde_json::to_value(t).is_err())
                || t.stored_async()
                    .is_some_and(|t| serde_json::to_value(t).is_err())
        }
        taskflow_patterns::AtomImpl::Retry(r) => {
            r.stored().is_some_and(|r| serde_json::to_value(r).is_err())
        }
    });
    match culprit {
        Some(atom) => format!(
            "the task of atom `{}` does not serialize: {error}",
            atom.name()
        ),
        None => format!("it does not serialize: {error}"),
    }
}

/// Fences the flow detail `id` at `epoch`, then reads it again: an earlier
/// owner may have checkpointed since it was loaded, and from now on nothing
/// it writes lands. Refused with `Fenced` if it is owned at a higher epoch.
/// The detail returned is owned at `epoch`, which the engine writes at.
fn claim(backend: &dyn Backend, id: FlowDetailId, epoch: Epoch) -> Result<FlowDetail, EngineError> {
    backend.fence_flow_detail(id, epoch)?;
    reread(backend, id, epoch)
}

/// Takes the flow detail `id` at the next owner epoch, with no board to
/// give one ([`Backend::take_flow_detail`]), then reads it again: another
/// engine running it (in this or another process) is fenced out at its
/// next checkpoint.
fn take(backend: &dyn Backend, id: FlowDetailId) -> Result<FlowDetail, EngineError> {
    let epoch = backend.take_flow_detail(id)?;
    reread(backend, id, epoch)
}

/// The flow detail `id` as its owner at `epoch` sees it: refused with
/// `Fenced` if a newer owner took it in between.
fn reread(
    backend: &dyn Backend,
    id: FlowDetailId,
    epoch: Epoch,
) -> Result<FlowDetail, EngineError> {
    let mut detail = backend.get_flow_detail(id)?;
    if detail.owner_epoch > epoch {
        // Fenced again by a newer owner in between.
        return Err(PersistenceError::Fenced {
            flow: id,
            held: detail.owner_epoch,
            presented: epoch,
        }
        .into());
    }
    detail.owner_epoch = epoch;
    Ok(detail)
}

fn new_detail(atom: &taskflow_patterns::CompiledAtom) -> AtomDetail {
    let mut d = AtomDetail::new(atom.spec.name.clone(), atom.kind());
    d.version = atom.spec.version;
    d
}

/// Matches the records of `flow_detail` to the compiled flow, refusing an
/// incompatible change unless `accept_changes`; the engine writes at the
/// detail's owner epoch. A flow detail with no atom details at all was
/// posted (e.g. to a job board) and never run: its atoms start `PENDING`,
/// as in TaskFlow.
fn resumed_storage(
    backend: Arc<dyn Backend>,
    compilation: Arc<Compilation>,
    flow_detail: FlowDetail,
    store: &Map<String, Value>,
    accept_changes: bool,
) -> Result<Storage, EngineError> {
    let Matched {
        flow_detail,
        details,
        added,
        removed_failures,
    } = match_records(&compilation, flow_detail, accept_changes)?;
    let id = flow_detail.uuid;
    for i in added {
        backend.save_atom_detail(id, &details[i], flow_detail.owner_epoch)?;
    }
    let mut logbook = LogBook::new(flow_detail.name.clone());
    if let Some(book) = flow_detail.run.logbook {
        logbook.uuid = book;
    }
    let mut storage = Storage::new(
        backend,
        compilation,
        logbook,
        flow_detail,
        details,
        store,
        true,
    );
    storage.removed_failures = removed_failures;
    Ok(storage)
}

/// The records of a flow detail matched to the compiled flow.
struct Matched {
    /// The flow detail, its atom details taken out.
    flow_detail: FlowDetail,
    /// One atom detail per atom, by atom index.
    details: Vec<AtomDetail>,
    /// The atoms new in the flow (`accept_changes`, or never run), whose
    /// details are to be written.
    added: Vec<usize>,
    /// Failures recorded for atoms no longer in the flow.
    removed_failures: Vec<taskflow_patterns::Failure>,
}

/// Matches the atom details of `flow_detail` to the compiled flow, without
/// writing anything: refuses corrupt records and, unless `accept_changes`,
/// an incompatible change. `build` checks this before it takes a flow
/// detail, so a load it refuses takes nothing from the owner.
fn match_records(
    compilation: &Compilation,
    mut flow_detail: FlowDetail,
    accept_changes: bool,
) -> Result<Matched, EngineError> {
    let id = flow_detail.uuid;
    let mismatch = |atom: &str, reason: String| EngineError::Mismatch {
        flow_detail: id,
        atom: atom.to_owned(),
        reason,
    };
    // A flow still `PENDING` never started (posted to a board, or its
    // first run died while writing its atom details): atoms without
    // records start `PENDING`. In a started flow every atom must have
    // its record: a missing one is a mismatch, never an atom run again.
    let never_run = flow_detail.state == FlowState::Pending;
    if flow_detail.atom_details.is_empty() && !never_run {
        return Err(PersistenceError::Corrupt {
            kind: RecordKind::FlowDetail,
            id: id.to_string(),
            reason: format!(
                "the flow is {} but its records hold no atom details",
                flow_detail.state
            ),
        }
        .into());
    }
    let mut stored: HashMap<Name, AtomDetail> =
        HashMap::with_capacity(flow_detail.atom_details.len());
    for d in std::mem::take(&mut flow_detail.atom_details) {
        if let Some(first) = stored.insert(d.name.clone(), d) {
            return Err(PersistenceError::Corrupt {
                kind: RecordKind::FlowDetail,
                id: id.to_string(),
                reason: format!(
                    "atom `{}` has two atom details ({} and {})",
                    first.name, first.uuid, stored[&first.name].uuid
                ),
            }
            .into());
        }
    }
    let mut details = Vec::with_capacity(compilation.len());
    let mut added = Vec::new();
    for atom in compilation.atoms() {
        let Some(detail) = stored.remove(atom.name()) else {
            if !accept_changes && !never_run {
                return Err(mismatch(
                    atom.name(),
                    "is in the flow but not in its records (added since they were written)".into(),
                ));
            }
            added.push(details.len());
            details.push(new_detail(atom));
            continue;
        };
        if detail.kind != atom.kind() {
            return Err(mismatch(
                atom.name(),
                format!(
                    "is a {:?} in the flow but a {:?} in the records",
                    atom.kind(),
                    detail.kind
                ),
            ));
        }
        if detail.version.0 != atom.spec.version.0 && !accept_changes {
            return Err(mismatch(
                atom.name(),
                format!(
                    "is version {} in the flow but its records were written by version {}",
                    atom.spec.version, detail.version
                ),
            ));
        }
        if detail.state == taskflow_patterns::AtomState::Success
            && detail.result.is_none()
            && atom.spec.provides.names().next().is_some()
        {
            return Err(PersistenceError::Corrupt {
                kind: RecordKind::AtomDetail,
                id: detail.uuid.to_string(),
                reason: format!(
                    "atom `{}` is SUCCESS but its result is missing",
                    atom.name()
                ),
            }
            .into());
        }
        details.push(detail);
    }
    if let Some(name) = stored.keys().next() {
        if !accept_changes {
            return Err(mismatch(
                name,
                "is in the records but not in the flow (removed or renamed since)".into(),
            ));
        }
    }
    // The failures of atoms removed since stay the flow's, as TaskFlow
    // re-raises them when the resumed flow reverts.
    let mut removed: Vec<AtomDetail> = stored.into_values().collect();
    removed.sort_by_key(|d| d.name.clone());
    let removed_failures: Vec<_> = removed
        .iter()
        .flat_map(|d| [d.failure(), d.revert_failure()])
        .flatten()
        .cloned()
        .collect();
    Ok(Matched {
        flow_detail,
        details,
        added,
        removed_failures,
    })
}
