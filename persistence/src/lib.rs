//! Records of what happened, and the backends that store them.
//!
//! As in TaskFlow, a [`LogBook`] holds [`FlowDetail`]s, each holding the
//! [`AtomDetail`]s of its atoms (state, intention, result, failure, revert
//! failure, retry history). Engines write through a [`Backend`] on every
//! transition; [`MemoryBackend`] keeps the records in memory.

mod backend;
mod error;
mod memory;
mod model;
#[cfg(any(test, feature = "testkit"))]
pub mod testkit;

pub use backend::Backend;
pub use error::{PersistenceError, RecordKind};
pub use memory::MemoryBackend;
pub use model::{now_millis, AtomDetail, FlowDetail, LogBook};
