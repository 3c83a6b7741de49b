//! taskflow: OpenStack TaskFlow's model in Rust.
//!
//! Compose **flows** of **atoms** (tasks with `execute` and `revert`, and
//! retry controllers) in code with [`Linear`], [`Unordered`] and [`Graph`]
//! patterns; run them on an [`Engine`] that checkpoints every transition to
//! a persistence [`Backend`]; on failure, retry controllers decide whether to
//! retry a scope or revert, and executed atoms revert in reverse dependency
//! order.
//!
//! This crate is the facade: it re-exports the workspace crates
//! (`taskflow-patterns`, `taskflow-persistence`, `taskflow-engine`) and a
//! [`prelude`].
//!
//! ```
//! use taskflow::prelude::*;
//!
//! #[derive(Serialize, Deserialize)]
//! struct CreateVolume { size_gb: u32 }
//!
//! #[typetag::serde]
//! impl StoredTask for CreateVolume {
//!     fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
//!         let region: String = ctx.input("region")?;
//!         Ok(json!({ "id": format!("{region}-vol-{}", self.size_gb) }))
//!     }
//!     fn revert(&self, ctx: &mut Context) -> Result<(), TaskError> {
//!         if let Some(volume) = ctx.own_result() {
//!             println!("deleting {}", volume["id"]);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let flow = Linear::new("provision")
//!     .add(atom("volume", CreateVolume { size_gb: 10 }).requires(["region"]).provides("volume"))
//!     .add(Unordered::new("attach")
//!         .add(atom("attach_a", task_fn(|ctx| Ok(ctx.value("volume")?["id"].clone()))).requires(["volume"]))
//!         .add(atom("attach_b", task_fn(|_| Ok(json!("b")))).requires(["volume"])))
//!     .with_retry(Times::new(3));
//!
//! let mut engine = Engine::builder(flow)
//!     .store(json!({ "region": "eu-1" }))
//!     .persistence(MemoryBackend::new())
//!     .build()?;             // compiles and validates: errors name the atom and symbol
//! engine.run()?;             // checkpoints every transition
//! assert_eq!(engine.storage().fetch("volume"), Some(&json!({ "id": "eu-1-vol-10" })));
//! # Ok::<(), taskflow::EngineError>(())
//! ```

pub use taskflow_engine as engine;
pub use taskflow_jobboard as jobboard;
pub use taskflow_patterns as patterns;
pub use taskflow_persistence as persistence;

// The facade names what programs use; the rest of each crate (compiled
// flows, argument resolution, executor internals) stays reachable through
// the crate modules above (`taskflow::patterns::Compilation`, ...).
#[cfg(feature = "tokio")]
pub use taskflow_engine::Tokio;
pub use taskflow_engine::{
    AtomEvent, CapturingListener, DefinitionError, Engine, EngineBuilder, EngineError, EngineState,
    Event, Executor, ExecutorError, FlowEvent, Listener, LoggingListener, Missing, Parallel,
    ProgressListener, RunIter, Serial, Storage, StoreError, SuspendHandle, TimingListener,
};
#[cfg(feature = "etcd")]
pub use taskflow_jobboard::EtcdBoard;
#[cfg(feature = "postgres")]
pub use taskflow_jobboard::PostgresBoard;
#[cfg(feature = "redis")]
pub use taskflow_jobboard::RedisBoard;
#[cfg(feature = "zookeeper")]
pub use taskflow_jobboard::ZookeeperBoard;
pub use taskflow_jobboard::{
    post_flow, BoardOptions, Claim, Conductor, ConductorBuilder, ConductorEvent, ConductorListener,
    Control, Entity, FlowSource, Job, JobBoard, JobBoardError, JobId, JobState, JobWait,
    MemoryBoard, NewJob, Outcome, PostFlow, Retention, SqliteBoard, StopHandle,
};
pub use taskflow_patterns::{async_atom, async_trait, Async, AsyncTask, StoredAsyncTask};
pub use taskflow_patterns::{
    atom, decider_fn, kinds, retry, task_fn, AlwaysRevert, AlwaysRevertAll, Atom, AtomKind,
    AtomState, Attempt, Cause, CompileError, CompileErrors, Context, Decider, Decision, Depth,
    FactoryError, Failure, Flow, FlowRegistry, FlowState, FnTask, ForEach, Graph, History, Inputs,
    Intention, Linear, OnExhausted, ParameterizedForEach, Retry, RetryAtom, StoredDecider,
    StoredRetry, StoredTask, Task, TaskAtom, TaskError, Times, Unordered, Value, Version,
    MAX_FLOW_DEPTH, MAX_VALUE_DEPTH,
};
#[cfg(feature = "postgres")]
pub use taskflow_persistence::PostgresBackend;
pub use taskflow_persistence::{
    AtomDetail, AtomDetailId, Backend, DirBackend, Durability, Epoch, FlowDefinition, FlowDetail,
    FlowDetailId, LogBook, LogBookId, MemoryBackend, PersistenceError, RecordKind, RunSpec,
    SqliteBackend,
};

/// Re-exported so `#[typetag::serde]` works with only this crate as a dependency.
pub use typetag;

/// What most programs need: `use taskflow::prelude::*;`.
pub mod prelude {
    pub use serde::{Deserialize, Serialize};
    pub use serde_json::json;

    #[cfg(feature = "tokio")]
    pub use crate::Tokio;
    pub use crate::{async_atom, async_trait, AsyncTask, StoredAsyncTask};
    pub use crate::{
        atom, decider_fn, retry, task_fn, AlwaysRevert, AlwaysRevertAll, Backend, Context,
        Decision, Depth, Engine, EngineError, Flow, FlowRegistry, FlowState, ForEach, Graph,
        History, Linear, Listener, MemoryBackend, Parallel, ParameterizedForEach, Retry,
        SqliteBackend, StoredRetry, StoredTask, Task, TaskError, Times, Unordered, Value,
    };
}
