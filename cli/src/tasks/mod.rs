//! Task types a flow file can use: the built-in `shell`, `sleep` and `http`, and
//! those a program adds with [`App::task_type`](crate::App::task_type).
//!
//! Each is a [`StoredTask`], so a flow made of them is stored whole in its
//! records and any process with the same types rebuilds it (a resume, a
//! conductor) with no factory.

mod duration;
#[cfg(feature = "http")]
mod http;
mod shell;
mod sleep;

use std::collections::BTreeMap;
use std::fmt;

use serde::de::DeserializeOwned;
use serde_json::Value;
use taskflow::{atom, StoredTask, TaskAtom};

pub use duration::Seconds;
#[cfg(feature = "http")]
pub use http::{Http, Request};
pub use shell::Shell;
pub use sleep::Sleep;

/// A task type that flow files name: a step `KIND: params` makes an atom
/// running the task the params deserialize to.
///
/// ```
/// use serde::{Deserialize, Serialize};
/// use taskflow::{Context, StoredTask, TaskError, Value};
/// use taskflow_cli::FileTask;
///
/// /// `greet: {who: world}` in a flow file.
/// #[derive(Serialize, Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Greet { who: String }
///
/// #[typetag::serde(name = "example::Greet")]
/// impl StoredTask for Greet {
///     fn execute(&self, _: &mut Context) -> Result<Value, TaskError> {
///         Ok(format!("hello, {}", self.who).into())
///     }
/// }
///
/// impl FileTask for Greet {
///     const KIND: &'static str = "greet";
///     const SHORTHAND: Option<&'static str> = Some("who"); // `greet: world`
/// }
/// ```
pub trait FileTask: StoredTask + DeserializeOwned {
    /// The key that names this type in a step (`shell`).
    const KIND: &'static str;
    /// The field a bare scalar fills: with `Some("command")`,
    /// `shell: make` means `shell: {command: make}`.
    const SHORTHAND: Option<&'static str> = None;

    /// Checks the parameters beyond their types (an empty command, a
    /// zero timeout); the message says what is wrong.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
}

type Make = fn(&str, Value) -> Result<TaskAtom, String>;

struct Kind {
    shorthand: Option<&'static str>,
    make: Make,
}

/// The task types flow files may name, by their key.
#[derive(Default)]
pub struct TaskKinds {
    kinds: BTreeMap<&'static str, Kind>,
}

impl fmt::Debug for TaskKinds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.kinds.keys()).finish()
    }
}

fn make<T: FileTask>(name: &str, params: Value) -> Result<TaskAtom, String> {
    let task: T = serde_json::from_value(params).map_err(|e| e.to_string())?;
    task.check()?;
    Ok(atom(name, task))
}

impl TaskKinds {
    /// The built-in types: `shell`, `sleep` and (with the `http` feature,
    /// on by default) `http`.
    pub fn builtin() -> Self {
        let mut kinds = TaskKinds::default();
        kinds.add::<Shell>();
        kinds.add::<Sleep>();
        #[cfg(feature = "http")]
        kinds.add::<Http>();
        kinds
    }

    /// Adds (or replaces) the type `T` under its [`FileTask::KIND`].
    pub fn add<T: FileTask>(&mut self) {
        self.kinds.insert(
            T::KIND,
            Kind {
                shorthand: T::SHORTHAND,
                make: make::<T>,
            },
        );
    }

    /// Whether `key` names a task type.
    pub fn contains(&self, key: &str) -> bool {
        self.kinds.contains_key(key)
    }

    /// The keys, in order.
    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.kinds.keys().copied()
    }

    /// The atom `name` running the task of type `key` made from `params`
    /// (a scalar fills the type's shorthand field).
    pub fn make(&self, key: &str, name: &str, params: Value) -> Result<TaskAtom, String> {
        let kind = self
            .kinds
            .get(key)
            .ok_or_else(|| format!("`{key}` is not a task type"))?;
        let params = match (params, kind.shorthand) {
            (Value::Object(map), _) => Value::Object(map),
            (Value::Null, _) => Value::Object(Default::default()),
            (scalar, Some(field)) if !scalar.is_array() => {
                Value::Object([(field.to_owned(), scalar)].into_iter().collect())
            }
            (other, _) => other,
        };
        (kind.make)(name, params)
    }
}
