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
//!
//! # Cancelling with compensation
//!
//! [`Engine::revert`] undoes what a flow did, as its own failure would: a
//! suspended job that is cancelled, a failed flow, even a finished one.
//! Every atom that ran is reverted, dependents first, checkpointed like a
//! run; a revert cut short by a suspension or a crash continues on the next
//! `revert` (or `run`) of the records.
//!
//! # Check-ins
//!
//! A task says where it has got, for people, with
//! [`Context::checkin`](taskflow_patterns::Context::checkin)
//! (`ctx.checkin("copied 12 of 40 blobs")`). The engine records the latest
//! in the atom's record at once
//! ([`AtomDetail::CHECKIN_KEY`](taskflow_persistence::AtomDetail::CHECKIN_KEY))
//! and tells listeners ([`Listener::on_checkin`]); the worker engine
//! carries check-ins back from its workers.
//!
//! # Tracing
//!
//! Tasks log inside the span that was current when `run`, `run_iter` or
//! `revert` was called, on the serial and parallel engines alike (the
//! parallel one enters it, with its subscriber, on its pool threads), so a
//! caller that wraps a run in `tracing::info_span!("job", id = ...)` sees
//! every line its tasks log tagged with the job. Outside any span this
//! costs one check per atom. Tasks the worker engine runs in other
//! processes log there, outside the engine's span (see [`worker`]).
//!
//! ```
//! use serde_json::json;
//! use taskflow_engine::Engine;
//! use taskflow_patterns::{atom, task_fn, Linear};
//!
//! let flow = Linear::new("copy").add(atom("blobs", task_fn(|ctx| {
//!     tracing::info!("copying"); // inside the span `job`, id = 7
//!     ctx.checkin("copied 40 of 40 blobs");
//!     Ok(json!(40))
//! })));
//! let mut engine = Engine::builder(flow).build()?;
//! tracing::info_span!("job", id = 7).in_scope(|| engine.run())?;
//! # Ok::<(), taskflow_engine::EngineError>(())
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
#[cfg(feature = "tokio")]
pub use engine::RunStream;
pub use engine::{Engine, RunIter, SuspendHandle};
pub use error::{ConfigError, DefinitionError, EngineError, ExecutorError, Missing, StoreError};
#[cfg(feature = "tokio")]
pub use executor::Tokio;
pub use executor::{
    worker, Action, AtomOutcome, AtomWork, Executor, Parallel, Serial, TimeoutHandle,
};
pub use listener::{
    AtomEvent, CapturingListener, EngineState, Event, FlowEvent, Listener, Listeners,
    LoggingListener, ProgressListener, TimingListener,
};
pub use storage::Storage;
