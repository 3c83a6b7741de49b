//! The engine crate's error.

use std::fmt;

use taskflow_patterns::{CompileErrors, FactoryError, Failure, FlowState, TransitionError};
use taskflow_persistence::FlowDetailId;
use taskflow_persistence::PersistenceError;

/// What can go wrong building or running an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The flow does not compile or does not validate against the store;
    /// every error found is listed.
    #[error("the flow does not compile: {0}")]
    Compile(#[from] CompileErrors),
    /// Reading or writing records failed.
    #[error(transparent)]
    Persistence(#[from] PersistenceError),
    /// The engine was asked for a transition the state tables forbid.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The initial store is not a JSON object of symbol to value, or holds
    /// a value nested deeper than records hold.
    #[error("invalid store: {0}")]
    InvalidStore(#[from] StoreError),
    /// The builder was told contradictory things.
    #[error("the engine's configuration contradicts itself: {0}")]
    Config(#[from] ConfigError),
    /// A flow factory refused its arguments (before any record was written).
    #[error(transparent)]
    Factory(#[from] FactoryError),
    /// The records do not match the flow being resumed (it changed
    /// incompatibly since they were written).
    #[error(
        "flow detail {flow_detail} cannot be resumed with this flow: atom `{atom}` {reason} \
         (build with accept_changed_flow() to resume anyway)"
    )]
    Mismatch {
        /// The flow detail's id.
        flow_detail: FlowDetailId,
        /// The atom that does not match.
        atom: String,
        /// What does not match.
        reason: String,
    },
    /// The flow of a flow detail cannot be rebuilt from its records.
    #[error("flow detail {flow_detail}: cannot rebuild its flow: {problem}")]
    Definition {
        /// The flow detail's id.
        flow_detail: FlowDetailId,
        /// Why.
        #[source]
        problem: DefinitionError,
    },
    /// This process cannot rebuild the flow of a flow detail, though one
    /// that registers what is missing can: the records name a flow factory
    /// or a task type this build does not know. The records are sound; a
    /// conductor leaves such a job to another conductor rather than
    /// trashing it.
    #[error("flow detail {flow_detail}: this process cannot rebuild its flow: {missing}")]
    Unsupported {
        /// The flow detail's id.
        flow_detail: FlowDetailId,
        /// What this process lacks.
        missing: Missing,
    },
    /// The flow failed: it was reverted (state `REVERTED`), or a revert
    /// failed too (state `FAILURE`). Every failure is kept.
    #[error("flow `{flow}` ended {state}: {}", FailureList(failures))]
    Failed {
        /// The flow's name.
        flow: String,
        /// `REVERTED` or `FAILURE`.
        state: FlowState,
        /// What failed, in the order it failed (execution failures, then
        /// revert failures).
        failures: Vec<Failure>,
    },
    /// The executor failed: it could not start, or lost its workers or
    /// track of the work it was given.
    #[error("executor: {0}")]
    Executor(#[from] ExecutorError),
}

/// A contradiction in an [`EngineBuilder`](crate::EngineBuilder)'s settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A setting chosen once was given twice.
    #[error("`{0}` was given twice; choose it once")]
    Twice(&'static str),
    /// A loaded flow writes where its records are.
    #[error("a flow loaded from its records writes to the backend it was loaded from; drop `.persistence(..)`")]
    PersistenceOfLoadedFlow,
    /// A loaded flow starts with the store it was first run with.
    #[error("a flow loaded from its records keeps its store; add to it with `.extend_store(..)`")]
    StoreOfLoadedFlow,
    /// A loaded flow's logbook exists.
    #[error("a flow loaded from its records is in its logbook already; drop `.logbook_name(..)`")]
    LogbookOfLoadedFlow,
}

/// What went wrong in an executor (its pool, its workers, its transport).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExecutorError {
    /// The parallel executor's thread pool did not start.
    #[error("cannot start the thread pool: {0}")]
    PoolStart(#[source] rayon::ThreadPoolBuildError),
    /// The tokio executor's own runtime did not start.
    #[error("cannot start the tokio runtime: {0}")]
    RuntimeStart(#[source] std::io::Error),
    /// The tokio executor was asked for the caller's runtime
    /// (`Tokio::current`) outside any.
    #[error("no tokio runtime is running here: call Tokio::current from inside one, or pass a handle (Tokio::with_handle) or let the executor make one (Tokio::new)")]
    NoRuntime,
    /// `Engine::run` with the tokio executor was called on the thread of a
    /// current-thread tokio runtime, the only thread that could run the
    /// atoms it would wait for.
    #[error("Engine::run with the tokio executor cannot wait on the thread of a current-thread tokio runtime (it alone would run the atoms): await Engine::run_async there, or call run from spawn_blocking or a multi-thread runtime")]
    WaitOnCurrentThread,
    /// Work was submitted and the executor has no outcome for it.
    #[error("{in_flight} atoms were submitted but the executor has no outcome for them")]
    LostOutcomes {
        /// How many atoms were in flight.
        in_flight: usize,
    },
    /// A worker's name is not one a transport can route to.
    #[error("worker name `{name}` is not valid: use 1 to 200 letters, digits, `-`, `_` or `.`")]
    InvalidWorkerName {
        /// The name given.
        name: String,
    },
    /// The transport refused a worker or an engine (`who` says which).
    #[error("{who}: {source}")]
    Transport {
        /// `worker `name`` or `worker executor`, and what it was doing.
        who: String,
        /// The transport's error.
        #[source]
        source: crate::worker::TransportError,
    },
    /// A worker's threads did not start.
    #[error("worker `{worker}`: cannot start its threads: {source}")]
    WorkerThreads {
        /// The worker.
        worker: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A worker's thread panicked.
    #[error("worker `{worker}`: its thread panicked")]
    WorkerPanicked {
        /// The worker.
        worker: String,
    },
    /// A worker lost its transport while it served.
    #[error("worker `{worker}` lost its transport: {why}")]
    WorkerLost {
        /// The worker.
        worker: String,
        /// What happened.
        why: String,
    },
}

/// Why a store is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// It is not a JSON object (nor null).
    #[error("it must be a JSON object of symbol to value, got {found}")]
    NotAnObject {
        /// What it is, as JSON.
        found: String,
    },
    /// A value nests deeper than records hold
    /// ([`MAX_VALUE_DEPTH`](taskflow_patterns::MAX_VALUE_DEPTH)).
    #[error(
        "its value `{symbol}` nests {depth} levels deep; records hold values nested at most \
         {limit} levels"
    )]
    TooDeep {
        /// The symbol.
        symbol: String,
        /// How deep its value nests.
        depth: usize,
        /// The limit.
        limit: usize,
    },
}

/// Why the records of a flow detail do not rebuild its flow (see also
/// [`EngineError::Unsupported`], for what another process could rebuild).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DefinitionError {
    /// The records hold no definition: its tasks did not serialize when it
    /// was first run, and no factory built it.
    #[error(
        "its records hold no flow definition ({why}): build it through a flow factory, and \
         load it with Engine::load_with"
    )]
    NotStored {
        /// Why it was not stored, as recorded when it first ran.
        why: String,
    },
    /// The stored definition does not decode.
    #[error("the stored flow cannot be decoded: {0}")]
    Undecodable(#[source] serde_json::Error),
    /// The stored definition nests deeper than a flow may.
    #[error("the stored flow nests {depth} levels of flows, more than the {limit} a flow may")]
    TooDeep {
        /// Its depth in levels of flows.
        depth: usize,
        /// [`MAX_FLOW_DEPTH`](taskflow_patterns::MAX_FLOW_DEPTH).
        limit: usize,
    },
    /// The factory that builds it refused the recorded arguments.
    #[error(transparent)]
    Factory(FactoryError),
}

/// What a process lacks to rebuild a flow from its records.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Missing {
    /// No flow factory of this name is registered.
    Factory {
        /// The factory the records name.
        name: String,
        /// The factories that are registered.
        registered: Vec<String>,
    },
    /// The stored definition holds a task (or pattern) type this build does
    /// not know (a `#[typetag::serde]` type not compiled in).
    TaskType {
        /// What the decoder said, naming the type.
        message: String,
    },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Factory { name, registered } => {
                write!(
                    f,
                    "no flow factory named `{name}` is registered here (registered: "
                )?;
                if registered.is_empty() {
                    f.write_str("none; pass a FlowRegistry holding it, as Engine::load_with does")?;
                } else {
                    f.write_str(&registered.join(", "))?;
                }
                f.write_str(")")
            }
            Missing::TaskType { message } => {
                write!(
                    f,
                    "the stored flow names a type this build does not know ({message})"
                )
            }
        }
    }
}

impl EngineError {
    /// The failures of a failed flow (empty for other errors).
    pub fn failures(&self) -> &[Failure] {
        match self {
            EngineError::Failed { failures, .. } => failures,
            _ => &[],
        }
    }
}

struct FailureList<'a>(&'a [Failure]);

impl fmt::Display for FailureList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{failure}")?;
        }
        Ok(())
    }
}
