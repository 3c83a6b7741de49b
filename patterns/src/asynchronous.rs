//! Async tasks: [`AsyncTask`], [`StoredAsyncTask`], and [`Async`], which
//! makes one an atom's task beside blocking ones.

use std::sync::Arc;

use async_trait::async_trait;

use crate::{Context, StoredTask, Task, TaskError, Value};

/// A unit of work that can be undone, written as `async fn`s: a task that
/// waits (on the network, a timer, another service) without holding a
/// thread while it waits.
///
/// It takes the same [`Context`] as a blocking [`Task`] (inputs, its own
/// result and failure when reverting, progress, check-ins, the cancel
/// flag), and its atom is configured, stored, retried and reverted like any
/// other. Wrap it in [`Async`] (or build the atom with [`async_atom`]) to
/// put it in a flow, where it mixes freely with blocking tasks.
///
/// On the tokio executor (`taskflow-engine`'s `tokio` feature) it runs as a
/// tokio task: thousands can wait at once on a few threads. The other
/// engines run it too, driving the future to its end on the thread that
/// runs the atom (through a small current-thread tokio runtime when the
/// engine has its `tokio` feature, so tokio's timers and sockets work
/// there; otherwise through a plain `block_on`).
///
/// The trait is implemented with [`#[async_trait]`](macro@crate::async_trait) (re-exported here), which
/// boxes the futures so that flows hold tasks of any type:
///
/// ```
/// use taskflow_patterns::{async_atom, async_trait, AsyncTask, Context, TaskError, Value};
///
/// struct Double;
///
/// #[async_trait]
/// impl AsyncTask for Double {
///     async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
///         let x: i64 = ctx.input("x")?;
///         // ... an `.await` on a client would go here ...
///         Ok((2 * x).into())
///     }
/// }
///
/// let atom = async_atom("double", Double).requires(["x"]).provides("doubled");
/// # let _ = atom;
/// ```
#[async_trait]
pub trait AsyncTask: Send + Sync + 'static {
    /// Does the work; the value returned is the atom's result, stored under
    /// the names the atom `provides`. As [`Task::execute`].
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError>;

    /// Undoes the work, as [`Task::revert`]; the default does nothing.
    async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let _ = ctx;
        Ok(())
    }

    /// This task as a definition that can be stored, when its type is a
    /// [`StoredAsyncTask`] (which answers this itself); `None` otherwise.
    fn stored(&self) -> Option<&dyn StoredAsyncTask> {
        None
    }

    /// The task's type, as [`Task::type_name`].
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }
}

/// An async task whose definition is stored in its flow's records, as
/// [`StoredTask`] is for blocking ones: implement it on a serializable type
/// with `#[async_trait]` and `#[typetag::serde]`, and the type is an
/// [`AsyncTask`] too, rebuilt in another process from the records alone.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use taskflow_patterns::{async_atom, async_trait, Context, StoredAsyncTask, TaskError, Value};
///
/// #[derive(Serialize, Deserialize)]
/// struct Add { amount: i64 }
///
/// #[async_trait]
/// #[typetag::serde]
/// impl StoredAsyncTask for Add {
///     async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
///         Ok((ctx.input::<i64>("x")? + self.amount).into())
///     }
/// }
///
/// let atom = async_atom("add", Add { amount: 2 }).requires(["x"]);
/// // Stored under `async_impl`, beside the atom's spec.
/// let stored = serde_json::to_value(&atom).unwrap();
/// assert_eq!(stored["async_impl"], serde_json::json!({ "Add": { "amount": 2 } }));
/// ```
#[async_trait]
#[typetag::serde]
pub trait StoredAsyncTask: Send + Sync + 'static {
    /// As [`AsyncTask::execute`].
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError>;

    /// As [`AsyncTask::revert`]; the default does nothing.
    async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let _ = ctx;
        Ok(())
    }
}

#[async_trait]
impl<T: StoredAsyncTask> AsyncTask for T {
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        StoredAsyncTask::execute(self, ctx).await
    }

    async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        StoredAsyncTask::revert(self, ctx).await
    }

    fn stored(&self) -> Option<&dyn StoredAsyncTask> {
        Some(self)
    }

    fn type_name(&self) -> &'static str {
        StoredAsyncTask::typetag_name(self)
    }
}

impl dyn StoredAsyncTask {
    /// The stored async task (decoded from records) as a [`Task`] an atom
    /// can run.
    pub fn into_task(self: Box<Self>) -> Arc<dyn Task> {
        Arc::new(Async(DecodedAsyncTask(self)))
    }
}

/// An [`AsyncTask`] as an atom's [`Task`]: engines see through it
/// ([`Task::as_async`]) and run the async task as such; called as a
/// blocking task, it drives the future to its end on the calling thread.
///
/// ```
/// use taskflow_patterns::{atom, async_trait, Async, AsyncTask, Context, TaskError, Value};
/// struct Ping;
/// #[async_trait]
/// impl AsyncTask for Ping {
///     async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
///         Ok("pong".into())
///     }
/// }
/// let ping = atom("ping", Async(Ping));
/// assert!(ping.kind.as_async().is_some());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Async<T>(pub T);

impl<T: AsyncTask> Task for Async<T> {
    /// Drives the future to its end on this thread (`futures-lite`'s
    /// `block_on`; engines use their own, see [`AsyncTask`]).
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        futures_lite::future::block_on(self.0.execute(ctx))
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        futures_lite::future::block_on(self.0.revert(ctx))
    }

    fn as_async(&self) -> Option<&dyn AsyncTask> {
        Some(&self.0)
    }

    fn stored(&self) -> Option<&dyn StoredTask> {
        None
    }

    fn stored_async(&self) -> Option<&dyn StoredAsyncTask> {
        self.0.stored()
    }

    fn type_name(&self) -> &'static str {
        self.0.type_name()
    }
}

/// A task atom named `name` running the async task `task` (the same as
/// `atom(name, Async(task))`).
pub fn async_atom(name: impl Into<crate::Name>, task: impl AsyncTask) -> crate::TaskAtom {
    crate::atom(name, Async(task))
}

/// A stored async task decoded from records, as an [`AsyncTask`] (see
/// `DecodedTask` in stored.rs for why it is a wrapper).
struct DecodedAsyncTask(Box<dyn StoredAsyncTask>);

#[async_trait]
impl AsyncTask for DecodedAsyncTask {
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        self.0.execute(ctx).await
    }

    async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        self.0.revert(ctx).await
    }

    fn stored(&self) -> Option<&dyn StoredAsyncTask> {
        Some(&*self.0)
    }

    fn type_name(&self) -> &'static str {
        self.0.typetag_name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Inputs, TaskAtom};
    use serde::{Deserialize, Serialize};
    use serde_json::json;

    #[derive(Serialize, Deserialize)]
    struct Offset {
        by: i64,
    }

    #[async_trait]
    #[typetag::serde]
    impl StoredAsyncTask for Offset {
        async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
            Ok((ctx.input::<i64>("x")? + self.by).into())
        }

        async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
            ctx.set_revert_result(json!("undone"));
            Ok(())
        }
    }

    #[test]
    fn a_stored_async_task_round_trips_and_runs_as_a_blocking_one() {
        let atom = async_atom("offset", Offset { by: 3 }).requires(["x"]);
        let stored = serde_json::to_value(&atom).unwrap();
        assert_eq!(stored["async_impl"], json!({ "Offset": { "by": 3 } }));
        assert!(stored.get("impl").is_none());
        let back: TaskAtom = serde_json::from_value(stored).unwrap();
        assert_eq!(back.kind.type_name(), "Offset");
        assert!(back.kind.as_async().is_some());
        assert!(back.kind.stored_async().is_some());
        let inputs: Inputs = [("x", json!(4))].into_iter().collect();
        let mut ctx = Context::new("offset", &inputs);
        assert_eq!(back.kind.execute(&mut ctx).unwrap(), json!(7));
        back.kind.revert(&mut ctx).unwrap();
        assert_eq!(ctx.take_revert_result(), Some(json!("undone")));
    }

    #[test]
    fn an_unstored_async_task_names_both_stored_traits() {
        struct Local;
        #[async_trait]
        impl AsyncTask for Local {
            async fn execute(&self, _: &mut Context<'_>) -> Result<Value, TaskError> {
                Ok(Value::Null)
            }
        }
        let err = serde_json::to_value(async_atom("local", Local)).unwrap_err();
        assert!(
            err.to_string().contains("atom `local` cannot be stored"),
            "{err}"
        );
        assert!(err.to_string().contains("StoredAsyncTask"), "{err}");
    }
}
