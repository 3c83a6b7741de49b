//! Flows as stored definitions: the serde forms of atoms and links, whose
//! tasks, retry controllers and deciders are stored through
//! [`StoredTask`], [`StoredRetry`] and [`StoredDecider`] (typetag), and the
//! errors that name the atom or link whose part is not one.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::Deserializer;
use serde::ser::{Error as _, Serializer};
use serde::{Deserialize, Serialize};

use crate::flow::Link;
use crate::{
    Atom, AtomSpec, Context, Decider, Decision, Depth, History, Retry, RetryAtom, StoredAsyncTask,
    StoredDecider, StoredRetry, StoredTask, Task, TaskAtom, TaskError, Value,
};

/// What a flow with a part that cannot be stored is told to do instead.
const USE_A_FACTORY: &str = "rebuild this flow with a registered flow factory";

/// An atom as it is written: its spec beside its stored task or controller.
#[derive(Serialize)]
struct AtomOut<'a, K: ?Sized> {
    #[serde(flatten)]
    spec: &'a AtomSpec,
    #[serde(rename = "impl")]
    kind: &'a K,
}

/// An atom as it is read.
#[derive(Deserialize)]
#[serde(bound(deserialize = "Box<K>: Deserialize<'de>"))]
struct AtomIn<K: ?Sized> {
    #[serde(flatten)]
    spec: AtomSpec,
    #[serde(rename = "impl")]
    kind: Box<K>,
}

/// Writes an atom whose `kind` is stored as `stored`, or fails naming the
/// atom (`what`: "atom" or "retry atom"), its part and the trait it lacks.
fn write_atom<S: Serializer, K: Serialize + ?Sized>(
    serializer: S,
    spec: &AtomSpec,
    stored: Option<&K>,
    (what, part, type_name, stored_trait): (&str, &str, &str, &str),
) -> Result<S::Ok, S::Error> {
    let kind = stored.ok_or_else(|| {
        S::Error::custom(format!(
            "{what} `{}` cannot be stored: its {part} `{type_name}` is not a {stored_trait} \
             (#[typetag::serde] impl {stored_trait}); {USE_A_FACTORY}",
            spec.name
        ))
    })?;
    AtomOut { spec, kind }.serialize(serializer)
}

/// An atom with an async task as it is written: its stored async task
/// under `async_impl` (a blocking one is under `impl`).
#[derive(Serialize)]
struct AsyncAtomOut<'a> {
    #[serde(flatten)]
    spec: &'a AtomSpec,
    async_impl: &'a dyn StoredAsyncTask,
}

/// A task atom as it is read: a blocking stored task under `impl`, or an
/// async one under `async_impl`.
#[derive(Deserialize)]
struct TaskAtomIn {
    #[serde(flatten)]
    spec: AtomSpec,
    #[serde(rename = "impl", default)]
    blocking: Option<Box<dyn StoredTask>>,
    #[serde(default)]
    async_impl: Option<Box<dyn StoredAsyncTask>>,
}

impl Serialize for TaskAtom {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(task) = self.kind.stored_async() {
            return AsyncAtomOut {
                spec: &self.spec,
                async_impl: task,
            }
            .serialize(serializer);
        }
        let lacks = if self.kind.as_async().is_some() {
            "StoredAsyncTask"
        } else {
            "StoredTask"
        };
        let part = ("atom", "task", self.kind.type_name(), lacks);
        write_atom(serializer, &self.spec, self.kind.stored(), part)
    }
}

impl<'de> Deserialize<'de> for TaskAtom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        let atom = TaskAtomIn::deserialize(deserializer)?;
        let kind = match (atom.blocking, atom.async_impl) {
            (Some(task), None) => task.into_task(),
            (None, Some(task)) => task.into_task(),
            (Some(_), Some(_)) => {
                return Err(D::Error::custom(format!(
                    "atom `{}` has both a task (`impl`) and an async task (`async_impl`)",
                    atom.spec.name
                )))
            }
            (None, None) => {
                return Err(D::Error::custom(format!(
                    "atom `{}` has no task: neither `impl` nor `async_impl`",
                    atom.spec.name
                )))
            }
        };
        Ok(Atom {
            spec: Arc::new(atom.spec),
            kind,
        })
    }
}

impl Serialize for RetryAtom {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let part = (
            "retry atom",
            "controller",
            self.kind.type_name(),
            "StoredRetry",
        );
        write_atom(serializer, &self.spec, self.kind.stored(), part)
    }
}

impl<'de> Deserialize<'de> for RetryAtom {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let atom = AtomIn::<dyn StoredRetry>::deserialize(deserializer)?;
        Ok(Atom {
            spec: Arc::new(atom.spec),
            kind: Arc::new(DecodedRetry(atom.kind)),
        })
    }
}

/// A link as it is written.
#[derive(Serialize)]
struct LinkOut<'a> {
    from: &'a str,
    to: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    decider: Option<&'a dyn StoredDecider>,
    depth: Depth,
}

/// A link as it is read.
#[derive(Deserialize)]
struct LinkIn {
    from: String,
    to: String,
    #[serde(default)]
    decider: Option<Box<dyn StoredDecider>>,
    #[serde(default)]
    depth: Depth,
}

impl Serialize for Link {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let decider = match &self.decider {
            None => None,
            Some(decider) => Some(decider.stored().ok_or_else(|| {
                S::Error::custom(format!(
                    "the link `{}` -> `{}` cannot be stored: its decider `{}` is not a \
                     StoredDecider (#[typetag::serde] impl StoredDecider); {USE_A_FACTORY}",
                    self.from,
                    self.to,
                    decider.type_name()
                ))
            })?),
        };
        LinkOut {
            from: &self.from,
            to: &self.to,
            decider,
            depth: self.depth,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Link {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let link = LinkIn::deserialize(deserializer)?;
        Ok(Link {
            from: link.from,
            to: link.to,
            decider: link
                .decider
                .map(|d| Arc::new(DecodedDecider(d)) as Arc<dyn Decider>),
            depth: link.depth,
        })
    }
}

/// A stored task decoded from records, as a [`Task`]: a `Box<dyn
/// StoredTask>` cannot become a `dyn Task` by itself before Rust 1.86's
/// trait upcasting, and the workspace builds on 1.80.
pub(crate) struct DecodedTask(pub(crate) Box<dyn StoredTask>);

impl Task for DecodedTask {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        self.0.execute(ctx)
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        self.0.revert(ctx)
    }

    fn stored(&self) -> Option<&dyn StoredTask> {
        Some(&*self.0)
    }

    fn type_name(&self) -> &'static str {
        self.0.typetag_name()
    }
}

/// A stored controller decoded from records, as a [`Retry`].
struct DecodedRetry(Box<dyn StoredRetry>);

impl Retry for DecodedRetry {
    fn execute(&self, history: &History, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        self.0.execute(history, ctx)
    }

    fn on_failure(&self, history: &History, ctx: &Context<'_>) -> Decision {
        self.0.on_failure(history, ctx)
    }

    fn revert(&self, history: &History, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        self.0.revert(history, ctx)
    }

    fn requires(&self) -> Vec<String> {
        self.0.requires()
    }

    fn stored(&self) -> Option<&dyn StoredRetry> {
        Some(&*self.0)
    }

    fn type_name(&self) -> &'static str {
        self.0.typetag_name()
    }
}

/// A stored decider decoded from records, as a [`Decider`].
struct DecodedDecider(Box<dyn StoredDecider>);

impl Decider for DecodedDecider {
    fn decide(&self, history: &BTreeMap<String, Value>) -> bool {
        self.0.decide(history)
    }

    fn stored(&self) -> Option<&dyn StoredDecider> {
        Some(&*self.0)
    }

    fn type_name(&self) -> &'static str {
        self.0.typetag_name()
    }
}
