//! The vocabulary of taskflow: what to run.
//!
//! Atoms ([`Task`]s and [`Retry`] controllers with their declared inputs and
//! outputs), flows ([`Linear`], [`Unordered`], [`Graph`]) that arrange atoms
//! and subflows, the [`AtomState`] / [`FlowState`] machines, [`Failure`], and
//! [`compile`], which turns a flow into a DAG an engine can run.
//!
//! This crate does no I/O and starts no threads; engines live in
//! `taskflow-engine`, records in `taskflow-persistence`.
//!
//! ```
//! use taskflow_patterns::{atom, compile, task_fn, Linear, Unordered, Value};
//!
//! let flow = Linear::new("provision")
//!     .add(atom("volume", task_fn(|_| Ok(Value::from("vol-1")))).provides("volume"))
//!     .add(Unordered::new("attach")
//!         .add(atom("attach_a", task_fn(|_| Ok(Value::Null))).requires(["volume"]))
//!         .add(atom("attach_b", task_fn(|_| Ok(Value::Null))).requires(["volume"])));
//! let compiled = compile(&flow.into()).unwrap();
//! assert_eq!(compiled.len(), 3);
//! ```

mod asynchronous;
mod atom;
mod compile;
mod depth;
mod error;
mod failure;
mod flow;
pub mod kinds;
mod map;
mod names;
mod registry;
mod retry;
mod state;
mod stored;
mod task;

/// The attribute that implements [`AsyncTask`] and [`StoredAsyncTask`]
/// (re-exported from the `async-trait` crate).
pub use async_trait::async_trait;
pub use asynchronous::{async_atom, Async, AsyncTask, StoredAsyncTask};
pub use atom::{atom, retry, Atom, AtomSpec, Name, Pick, Provides, RetryAtom, TaskAtom, Version};
pub use compile::{
    compile, ArgSource, Argument, AtomImpl, AtomIndex, Compilation, CompiledAtom, CompiledDecider,
    CompiledFlow, FlowIndex, Resolution,
};
pub use depth::{definition_depth, flow_depth, value_depth, MAX_FLOW_DEPTH, MAX_VALUE_DEPTH};
pub use error::{CompileError, CompileErrors};
pub use failure::{Cause, Failure, TaskError};
pub use flow::{
    decider_fn, Decider, Depth, Flow, FnDecider, Graph, Linear, Link, Node, StoredDecider,
    Unordered,
};
pub use map::{VecMap, VecMapIter};
pub use names::Names;
pub use registry::{FactoryError, FlowRegistry};
pub use retry::{
    AlwaysRevert, AlwaysRevertAll, Attempt, Decision, ForEach, History, OnExhausted,
    ParameterizedForEach, Retry, StoredRetry, Times,
};
pub use state::{AtomKind, AtomState, FlowState, Intention, TransitionError};
pub use task::{task_fn, Context, FnTask, Inputs, StoredTask, Task};

/// The data that moves between atoms: any JSON value (results are checkpointed).
pub use serde_json::Value;
