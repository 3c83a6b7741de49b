//! The [`Task`] trait, the [`Context`] a task runs in, and closures as tasks.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::{Failure, TaskError, Value};

/// A unit of work that can be undone.
///
/// Any type implements it: a task may hold a connection pool, a client or a
/// lock. Such a flow runs in-process on every engine, and is rebuilt in
/// another process (a resume, a conductor) by a registered flow factory.
/// A task whose type is serializable can instead implement [`StoredTask`]
/// (with `#[typetag::serde]`), which makes it a `Task` too: a flow of only
/// such tasks is stored whole in its records and rebuilt from them. A
/// closure is a task through [`task_fn`].
///
/// ```
/// use std::sync::Mutex;
/// use taskflow_patterns::{Context, Task, TaskError, Value};
///
/// /// Sends through a client it holds (here a log, standing for one).
/// struct Notify { sent: Mutex<Vec<String>> }
///
/// impl Task for Notify {
///     fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
///         let message: String = ctx.input("message")?;
///         self.sent.lock().unwrap().push(message);
///         Ok(Value::Null)
///     }
/// }
/// ```
pub trait Task: Send + Sync + 'static {
    /// Does the work; the value returned is the atom's result, stored under
    /// the names the atom `provides`.
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError>;

    /// Undoes the work. `ctx.own_result()` or `ctx.own_failure()` says how
    /// `execute` ended; `ctx.flow_failures()` lists what failed in the flow.
    /// The default does nothing.
    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let _ = ctx;
        Ok(())
    }

    /// This task as a definition that can be stored, when its type is a
    /// [`StoredTask`] (which answers this itself); `None` otherwise, the
    /// default.
    fn stored(&self) -> Option<&dyn StoredTask> {
        None
    }

    /// This task as an [`AsyncTask`](crate::AsyncTask), when it is one
    /// (wrapped in [`Async`](crate::Async), which answers this itself);
    /// engines that can await it (the tokio executor) run it so, the
    /// others call [`execute`](Self::execute), which drives it to its end.
    /// `None` otherwise, the default.
    fn as_async(&self) -> Option<&dyn crate::AsyncTask> {
        None
    }

    /// This task as a stored async definition, when it is an async task of
    /// a [`StoredAsyncTask`](crate::StoredAsyncTask) type; `None`
    /// otherwise, the default.
    fn stored_async(&self) -> Option<&dyn crate::StoredAsyncTask> {
        None
    }

    /// The task's type: for a [`StoredTask`], the name its records give it
    /// (typetag's); otherwise the Rust type's name. Errors name it, and the
    /// worker engine routes work to the workers that run this type.
    fn type_name(&self) -> &'static str {
        std::any::type_name::<Self>()
    }

    /// This task as an atom holds it. The default puts it in an `Arc` of
    /// its own; a task that already is one pointer to shared state (an
    /// [`FnTask`]) hands over that pointer, so the atoms built from clones
    /// of it allocate nothing for their task.
    fn into_shared(self) -> Arc<dyn Task>
    where
        Self: Sized,
    {
        Arc::new(self)
    }
}

/// A task whose definition is stored in its flow's records, so the flow is
/// rebuilt from them in another process (a resume, a conductor, a remote
/// worker) without a registered factory.
///
/// Implement it, instead of [`Task`], on a serializable type with
/// `#[typetag::serde]`; the type is then a `Task` too. The name typetag
/// records (the type's name unless `#[typetag::serde(name = "...")]` says
/// otherwise) is what a process must know to rebuild it.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use taskflow_patterns::{Context, StoredTask, TaskError, Value};
///
/// #[derive(Serialize, Deserialize)]
/// struct Add { amount: i64 }
///
/// #[typetag::serde]
/// impl StoredTask for Add {
///     fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
///         let x: i64 = ctx.input("x")?;
///         Ok((x + self.amount).into())
///     }
/// }
/// ```
///
/// Its methods are those of [`Task`]; where both traits are in scope, call
/// a stored task's methods through the trait (`Task::execute(&add, ctx)`).
#[typetag::serde]
pub trait StoredTask: Send + Sync + 'static {
    /// As [`Task::execute`].
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError>;

    /// As [`Task::revert`]; the default does nothing.
    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let _ = ctx;
        Ok(())
    }
}

impl<T: StoredTask> Task for T {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        StoredTask::execute(self, ctx)
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        StoredTask::revert(self, ctx)
    }

    fn stored(&self) -> Option<&dyn StoredTask> {
        Some(self)
    }

    fn type_name(&self) -> &'static str {
        StoredTask::typetag_name(self)
    }
}

impl dyn StoredTask {
    /// The stored task (decoded from records or a message) as a [`Task`]
    /// an atom can run.
    pub fn into_task(self: Box<Self>) -> Arc<dyn Task> {
        Arc::new(crate::stored::DecodedTask(self))
    }
}

/// The resolved arguments of one atom run: argument name to value.
///
/// Built by the engine from the results of other atoms, the flow's store,
/// the atom's injected values and its optional defaults. A single argument
/// (the usual case) is held inline, so an atom's run allocates nothing for
/// it.
#[derive(Debug, Clone, Default)]
pub struct Inputs {
    args: Args,
}

/// The arguments of [`Inputs`]: `One` for a single argument added where no
/// room was reserved (`new`, or `with_capacity` below two), else a vector.
#[derive(Debug, Clone)]
enum Args {
    One([(Arc<str>, Arc<Value>); 1]),
    Many(Vec<(Arc<str>, Arc<Value>)>),
}

impl Default for Args {
    fn default() -> Self {
        Args::Many(Vec::new())
    }
}

impl Inputs {
    /// No inputs.
    pub fn new() -> Self {
        Inputs::default()
    }

    /// Room for `n` inputs (one is held inline: no allocation below two).
    pub fn with_capacity(n: usize) -> Self {
        Inputs {
            args: Args::Many(if n < 2 {
                Vec::new()
            } else {
                Vec::with_capacity(n)
            }),
        }
    }

    fn as_slice(&self) -> &[(Arc<str>, Arc<Value>)] {
        match &self.args {
            Args::One(one) => one,
            Args::Many(many) => many,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [(Arc<str>, Arc<Value>)] {
        match &mut self.args {
            Args::One(one) => one,
            Args::Many(many) => many,
        }
    }

    /// Adds (or replaces) the argument `name`.
    pub fn insert(&mut self, name: Arc<str>, value: Arc<Value>) {
        if let Some(slot) = self.as_mut_slice().iter_mut().find(|(n, _)| **n == *name) {
            slot.1 = value;
            return;
        }
        match &mut self.args {
            // Nothing reserved (so nothing held): the one argument inline.
            Args::Many(many) if many.capacity() == 0 => self.args = Args::One([(name, value)]),
            Args::Many(many) => many.push((name, value)),
            Args::One(_) => {
                if let Args::One([first]) = std::mem::take(&mut self.args) {
                    self.args = Args::Many(vec![first, (name, value)]);
                }
            }
        }
    }

    /// The value of the argument `name`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.as_slice()
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| &**v)
    }

    /// Every argument, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.as_slice().iter().map(|(n, v)| (&**n, &**v))
    }

    /// How many arguments there are.
    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }
}

impl<K: Into<Arc<str>>, V: Into<Value>> FromIterator<(K, V)> for Inputs {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        let mut inputs = Inputs::new();
        for (k, v) in iter {
            inputs.insert(k.into(), Arc::new(v.into()));
        }
        inputs
    }
}

/// What a task sees while it runs: its inputs, its own earlier outcome (when
/// reverting), the flow's failures, where progress reports and check-ins
/// go, and a cancel flag.
pub struct Context<'a> {
    atom: &'a str,
    inputs: &'a Inputs,
    own_result: Option<&'a Value>,
    own_failure: Option<&'a Failure>,
    flow_failures: &'a [Failure],
    progress: Option<&'a (dyn Fn(f32) + Sync)>,
    checkin: Option<&'a (dyn Fn(&str) + Sync)>,
    cancel: Option<&'a AtomicBool>,
    timed_out: Option<&'a AtomicBool>,
    revert_result: Option<Value>,
}

impl<'a> Context<'a> {
    /// A context for the atom `atom` with these inputs (engines build these;
    /// so can a unit test of a task).
    pub fn new(atom: &'a str, inputs: &'a Inputs) -> Self {
        Context {
            atom,
            inputs,
            own_result: None,
            own_failure: None,
            flow_failures: &[],
            progress: None,
            checkin: None,
            cancel: None,
            timed_out: None,
            revert_result: None,
        }
    }

    /// Sets the atom's own result (seen by `revert`).
    pub fn with_own_result(mut self, result: Option<&'a Value>) -> Self {
        self.own_result = result;
        self
    }

    /// Sets the atom's own failure (seen by `revert`).
    pub fn with_own_failure(mut self, failure: Option<&'a Failure>) -> Self {
        self.own_failure = failure;
        self
    }

    /// Sets the failures of the flow (seen by `revert`).
    pub fn with_flow_failures(mut self, failures: &'a [Failure]) -> Self {
        self.flow_failures = failures;
        self
    }

    /// Sets where progress reports go.
    pub fn with_progress(mut self, progress: &'a (dyn Fn(f32) + Sync)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Sets where check-ins go (see [`checkin`](Self::checkin)).
    pub fn with_checkin(mut self, checkin: &'a (dyn Fn(&str) + Sync)) -> Self {
        self.checkin = Some(checkin);
        self
    }

    /// Sets the flag that says the run was asked to stop.
    pub fn with_cancel(mut self, cancel: &'a AtomicBool) -> Self {
        self.cancel = Some(cancel);
        self
    }

    /// Sets the flag that says the atom ran past its timeout (see
    /// [`Atom::timeout`](crate::Atom::timeout)); [`is_cancelled`](Self::is_cancelled)
    /// then answers true too.
    pub fn with_timeout_flag(mut self, timed_out: &'a AtomicBool) -> Self {
        self.timed_out = Some(timed_out);
        self
    }

    /// The name of the atom being run.
    pub fn atom_name(&self) -> &str {
        self.atom
    }

    /// The argument `name`, deserialized into `T`.
    ///
    /// A missing argument or one that is not a valid `T` is an error naming
    /// the atom, the argument and the type.
    pub fn input<T: DeserializeOwned>(&self, name: &str) -> Result<T, TaskError> {
        let value = self.value(name)?;
        T::deserialize(value).map_err(|err| {
            TaskError::new(
                TaskError::INVALID_INPUT,
                format!(
                    "input `{name}` of atom `{}` is not a valid `{}`: {err}",
                    self.atom,
                    std::any::type_name::<T>()
                ),
            )
        })
    }

    /// The raw value of the argument `name`.
    pub fn value(&self, name: &str) -> Result<&'a Value, TaskError> {
        self.inputs
            .get(name)
            .ok_or_else(|| TaskError::missing_input(self.atom, name))
    }

    /// Every argument of this run.
    pub fn inputs(&self) -> &'a Inputs {
        self.inputs
    }

    /// While reverting: the result of this atom's execution, if it succeeded.
    pub fn own_result(&self) -> Option<&'a Value> {
        self.own_result
    }

    /// While reverting: this atom's own failure, if it failed.
    pub fn own_failure(&self) -> Option<&'a Failure> {
        self.own_failure
    }

    /// While reverting: every failure of the flow that caused the revert.
    pub fn flow_failures(&self) -> &'a [Failure] {
        self.flow_failures
    }

    /// Reports progress, from 0.0 to 1.0 (clamped), to the engine's listeners.
    pub fn progress(&self, fraction: f32) {
        if let Some(report) = self.progress {
            report(fraction.clamp(0.0, 1.0));
        }
    }

    /// Checks in: tells the engine, in words a person reads, where the task
    /// has got (`"30%"`, `"copied 12 of 40 blobs"`). The engine records the
    /// latest check-in at once in the atom's record (its detail's `meta`,
    /// under `AtomDetail::CHECKIN_KEY` of `taskflow-persistence`, as
    /// `{"message": ..., "at": <ms since the epoch>}`), where another
    /// process reading the records (a job service, a dashboard) sees it
    /// while the task runs, and tells the engine's listeners
    /// (`Listener::on_checkin`). On the worker engine the check-in travels
    /// back from the worker with the task's progress reports.
    ///
    /// The record keeps the last check-in after the task ends (its final
    /// word, or what it was doing when it failed) until the atom runs
    /// again. Each check-in is one small write to the records: check in
    /// when something a person would want to know changed, not in a tight
    /// loop. Outside an engine (a unit test of a task) it goes nowhere.
    ///
    /// ```
    /// use std::sync::Mutex;
    /// use taskflow_patterns::{task_fn, Context, Inputs, Task, Value};
    ///
    /// let copy = task_fn(|ctx| {
    ///     for done in [12, 40] {
    ///         ctx.checkin(format!("copied {done} of 40 blobs"));
    ///     }
    ///     Ok(Value::Null)
    /// });
    /// // What an engine does with check-ins, in miniature.
    /// let heard = Mutex::new(Vec::new());
    /// let hear = |message: &str| heard.lock().unwrap().push(message.to_owned());
    /// let inputs = Inputs::new();
    /// let mut ctx = Context::new("copy", &inputs).with_checkin(&hear);
    /// copy.execute(&mut ctx)?;
    /// assert_eq!(*heard.lock().unwrap(), ["copied 12 of 40 blobs", "copied 40 of 40 blobs"]);
    /// # Ok::<(), taskflow_patterns::TaskError>(())
    /// ```
    pub fn checkin(&self, message: impl Into<String>) {
        if let Some(checkin) = self.checkin {
            checkin(&message.into());
        }
    }

    /// While reverting: records what the revert did, kept in the atom's
    /// record as its revert result (TaskFlow's `revert_results`, the value
    /// its `revert` returns).
    ///
    /// ```
    /// use serde_json::json;
    /// use taskflow_patterns::{task_fn, Context, Inputs, Task};
    /// let task = task_fn(|_| Ok(json!("vol-1"))).with_revert(|ctx| {
    ///     ctx.set_revert_result(json!({ "deleted": "vol-1" }));
    ///     Ok(())
    /// });
    /// let inputs = Inputs::new();
    /// let mut ctx = Context::new("volume", &inputs);
    /// task.revert(&mut ctx)?;
    /// assert_eq!(ctx.take_revert_result(), Some(json!({ "deleted": "vol-1" })));
    /// # Ok::<(), taskflow_patterns::TaskError>(())
    /// ```
    pub fn set_revert_result(&mut self, result: impl Into<Value>) {
        self.revert_result = Some(result.into());
    }

    /// The revert result set by [`set_revert_result`](Self::set_revert_result),
    /// taken out (engines record it).
    pub fn take_revert_result(&mut self) -> Option<Value> {
        self.revert_result.take()
    }

    /// Whether the run was asked to stop, or this atom ran past its
    /// timeout; long tasks should check this and return.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_some_and(|c| c.load(Ordering::Relaxed))
            || self.timed_out.is_some_and(|t| t.load(Ordering::Relaxed))
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("atom", &self.atom)
            .field("inputs", &self.inputs)
            .finish_non_exhaustive()
    }
}

type ExecuteFn = dyn Fn(&mut Context<'_>) -> Result<Value, TaskError> + Send + Sync;
type RevertFn = dyn Fn(&mut Context<'_>) -> Result<(), TaskError> + Send + Sync;

/// A task made of closures (see [`task_fn`]). It runs anywhere in-process
/// but is not a [`StoredTask`]: a flow holding one is rebuilt in another
/// process through a registered flow factory, not from its records.
///
/// One pointer wide: every atom built from a clone of it shares the closures.
#[derive(Clone)]
pub struct FnTask {
    fns: Arc<TaskFns>,
}

#[derive(Clone)]
struct TaskFns {
    execute: Arc<ExecuteFn>,
    revert: Option<Arc<RevertFn>>,
}

/// Makes a task of a closure, as tower's `service_fn` makes a service.
///
/// ```
/// use taskflow_patterns::{task_fn, Value};
/// let double = task_fn(|ctx| Ok(Value::from(ctx.input::<i64>("x")? * 2)))
///     .with_revert(|_ctx| Ok(()));
/// # let _ = double;
/// ```
pub fn task_fn<F>(execute: F) -> FnTask
where
    F: Fn(&mut Context<'_>) -> Result<Value, TaskError> + Send + Sync + 'static,
{
    FnTask {
        fns: Arc::new(TaskFns {
            execute: Arc::new(execute),
            revert: None,
        }),
    }
}

impl FnTask {
    /// Adds a closure that reverts the task.
    pub fn with_revert<F>(mut self, revert: F) -> Self
    where
        F: Fn(&mut Context<'_>) -> Result<(), TaskError> + Send + Sync + 'static,
    {
        Arc::make_mut(&mut self.fns).revert = Some(Arc::new(revert));
        self
    }
}

impl fmt::Debug for FnTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FnTask")
            .field("revert", &self.fns.revert.is_some())
            .finish()
    }
}

/// What an atom built from an [`FnTask`] holds: the closures themselves,
/// shared by every clone of the task.
impl Task for TaskFns {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        (self.execute)(ctx)
    }

    fn type_name(&self) -> &'static str {
        FN_TASK_TYPE
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        match &self.revert {
            Some(revert) => revert(ctx),
            None => Ok(()),
        }
    }
}

/// The type name of a task of closures.
const FN_TASK_TYPE: &str = "taskflow::FnTask";

impl Task for FnTask {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        self.fns.execute(ctx)
    }

    /// `taskflow::FnTask`: the type a worker on an in-process transport
    /// advertises when it runs closures.
    fn type_name(&self) -> &'static str {
        FN_TASK_TYPE
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        self.fns.revert(ctx)
    }

    /// The shared closures, without a new allocation.
    fn into_shared(self) -> Arc<dyn Task> {
        self.fns
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// One argument is held inline however the inputs were made; a second
    /// moves both to a vector in the order added; a name given again
    /// replaces its value in place.
    #[test]
    fn one_input_is_held_inline_and_more_keep_their_order() {
        // A vector, and the tag: 8 bytes more than the vector alone.
        assert_eq!(size_of::<Inputs>(), 32);
        let value = |v: Value| Arc::new(v);
        for mut inputs in [
            Inputs::new(),
            Inputs::with_capacity(1),
            Inputs::with_capacity(3),
        ] {
            inputs.insert("x".into(), value(json!(1)));
            inputs.insert("x".into(), value(json!(2)));
            assert_eq!(inputs.len(), 1);
            assert_eq!(inputs.get("x"), Some(&json!(2)));
            inputs.insert("y".into(), value(json!(3)));
            inputs.insert("a".into(), value(json!(4)));
            inputs.insert("x".into(), value(json!(5)));
            let all: Vec<(&str, &Value)> = inputs.iter().collect();
            assert_eq!(all, [("x", &json!(5)), ("y", &json!(3)), ("a", &json!(4))]);
            assert!(inputs.get("z").is_none());
        }
        let one = Inputs::from_iter([("x", json!(1))]);
        assert!(matches!(one.args, Args::One(_)));
        assert!(!one.is_empty());
        assert!(Inputs::new().is_empty());
    }

    #[test]
    fn input_errors_name_atom_symbol_and_type() {
        let inputs: Inputs = [("x", json!("seven"))].into_iter().collect();
        let ctx = Context::new("adder", &inputs);
        let err = ctx.input::<i64>("x").unwrap_err();
        assert_eq!(err.kind(), TaskError::INVALID_INPUT);
        assert!(err.message().contains("input `x` of atom `adder`"));
        assert!(err.message().contains("i64"));
        let err = ctx.input::<i64>("y").unwrap_err();
        assert_eq!(err.message(), "atom `adder` has no input `y`");
    }

    #[test]
    fn closures_are_tasks_but_not_stored_ones() {
        let t: Box<dyn Task> = Box::new(task_fn(|_| Ok(Value::Null)));
        assert!(t.stored().is_none());
        assert_eq!(t.type_name(), "taskflow::FnTask");
    }
}
