//! How to run a flow: one runtime, pluggable executors, a checkpoint after
//! every transition.
//!
//! An [`Engine`] compiles a flow (see `taskflow-patterns`), validates it
//! against its store, writes its records through a persistence
//! [`Backend`](taskflow_persistence::Backend), and runs it: ready atoms go to
//! an [`Executor`], outcomes are checkpointed before dependents start,
//! failures are resolved by retry controllers, and executed atoms are
//! reverted in reverse dependency order when the flow fails. The runtime's
//! loop and what it checkpoints are described in the `runtime` module's
//! source.
//!
//! ```
//! use serde_json::json;
//! use taskflow_engine::{Engine, EngineError};
//! use taskflow_patterns::{atom, task_fn, Linear, TaskError};
//!
//! let flow = Linear::new("order")
//!     .add(atom("reserve", task_fn(|_| Ok(json!("r-1")))).provides("reservation"))
//!     .add(atom("charge", task_fn(|_| Err(TaskError::new("CardDeclined", "insufficient funds")))));
//! let err = Engine::builder(flow).build()?.run().unwrap_err();
//! assert!(err.to_string().contains("CardDeclined"));
//! # Ok::<(), EngineError>(())
//! ```

mod builder;
mod completer;
mod engine;
mod error;
mod executor;
mod listener;
mod ready;
mod runtime;
mod scheduler;
mod selector;
mod storage;
mod sync;
#[cfg(any(test, feature = "testkit"))]
#[allow(clippy::unwrap_used)]
pub mod testkit;

pub use builder::EngineBuilder;
pub use engine::{Engine, RunIter, SuspendHandle};
pub use error::{ConfigError, DefinitionError, EngineError, ExecutorError, Missing, StoreError};
pub use executor::{worker, Action, AtomOutcome, AtomWork, Executor, Parallel, Serial};
pub use listener::{
    AtomEvent, CapturingListener, EngineState, Event, FlowEvent, Listener, Listeners,
    LoggingListener, ProgressListener, TimingListener,
};
pub use storage::Storage;
