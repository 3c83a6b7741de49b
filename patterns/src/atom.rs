//! Atoms: a task or retry controller with its declared inputs and outputs.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{Retry, Task, Value, VecMap};

/// What names an atom's result is stored under.
///
/// As TaskFlow's `provides`: one name for the whole result, several names
/// taken by position from a sequence result, or several names taken by key
/// from a map result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provides {
    /// The result is not stored under any name.
    #[default]
    Nothing,
    /// The whole result is stored under one name.
    Single(String),
    /// The result is an array; element `i` is stored under name `i`.
    Sequence(Vec<String>),
    /// The result is an object; each name is stored from the key of that name.
    Mapping(Vec<String>),
}

impl Provides {
    /// The names provided.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let names: &[String] = match self {
            Provides::Nothing => &[],
            Provides::Single(name) => std::slice::from_ref(name),
            Provides::Sequence(names) | Provides::Mapping(names) => names,
        };
        names.iter().map(String::as_str)
    }

    /// How to pick the value of `name` out of a result.
    pub fn pick(&self, name: &str) -> Option<Pick> {
        match self {
            Provides::Nothing => None,
            Provides::Single(n) => (n == name).then_some(Pick::Whole),
            Provides::Sequence(names) => names.iter().position(|n| n == name).map(Pick::Index),
            Provides::Mapping(names) => names
                .iter()
                .any(|n| n == name)
                .then(|| Pick::Key(name.to_owned())),
        }
    }
}

/// How one provided name is taken out of an atom's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    /// The whole result.
    Whole,
    /// Element `i` of an array result.
    Index(usize),
    /// The value under a key of an object result.
    Key(String),
}

impl Pick {
    /// Applies the pick to a result; `None` if the result has no such part.
    pub fn apply<'v>(&self, result: &'v Value) -> Option<&'v Value> {
        match self {
            Pick::Whole => Some(result),
            Pick::Index(i) => result.as_array().and_then(|a| a.get(*i)),
            Pick::Key(k) => result.as_object().and_then(|o| o.get(k)),
        }
    }
}

/// The version of an atom (major, minor). A resumed flow whose atom changed
/// major version is refused unless the user opts in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Version(pub u32, pub u32);

impl Default for Version {
    fn default() -> Self {
        Version(1, 0)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

/// An atom's declared interface: what it requires, what it provides, and how
/// its arguments are bound. Declared where the atom is built.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AtomSpec {
    /// Unique name of the atom in its flow.
    pub name: String,
    /// Required argument names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Optional argument names with the default used when nothing provides them.
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    pub optional: VecMap<String, Value>,
    /// Names the result is stored under.
    #[serde(default)]
    pub provides: Provides,
    /// Argument name to the symbol that feeds it (default: the same name).
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    pub rebind: VecMap<String, String>,
    /// Argument name to a constant value.
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    pub inject: VecMap<String, Value>,
    /// The atom's version.
    #[serde(default)]
    pub version: Version,
}

impl AtomSpec {
    /// Every argument the atom takes, required ones first.
    pub fn arguments(&self) -> impl Iterator<Item = &str> {
        self.requires
            .iter()
            .map(String::as_str)
            .chain(self.optional.keys().map(String::as_str))
    }

    /// The symbol that feeds argument `arg`, or `None` when it is injected.
    pub fn symbol_of<'s>(&'s self, arg: &'s str) -> Option<&'s str> {
        if self.inject.contains_key(arg) {
            return None;
        }
        Some(self.rebind.get(arg).map_or(arg, String::as_str))
    }

    /// The symbols the atom needs from other atoms or the store (after
    /// rebinding, without injected arguments), with whether each is optional.
    pub fn required_symbols(&self) -> impl Iterator<Item = (&str, bool)> {
        let required = self
            .requires
            .iter()
            .filter_map(|a| self.symbol_of(a).map(|s| (s, false)));
        let optional = self
            .optional
            .keys()
            .filter_map(|a| self.symbol_of(a).map(|s| (s, true)));
        required.chain(optional)
    }
}

/// An atom: a task or a retry controller (`K`) with its [`AtomSpec`].
///
/// Built with [`atom`] or [`retry`], then configured:
///
/// ```
/// use taskflow_patterns::{atom, task_fn, Value};
/// let a = atom("resize", task_fn(|ctx| Ok(ctx.value("image")?.clone())))
///     .requires(["image"])
///     .optional("width", 800)
///     .rebind("image", "thumbnail_source")
///     .provides("resized")
///     .version(2, 1);
/// assert_eq!(a.name(), "resize");
/// ```
#[derive(Clone, Serialize, Deserialize)]
pub struct Atom<K> {
    /// The declared interface (shared: cloning a flow or compiling it does
    /// not copy it).
    #[serde(flatten)]
    pub spec: Arc<AtomSpec>,
    /// The task or retry controller.
    #[serde(rename = "impl")]
    pub kind: K,
}

/// An atom that runs a [`Task`].
pub type TaskAtom = Atom<Arc<dyn Task>>;

/// An atom that runs a [`Retry`] controller.
pub type RetryAtom = Atom<Arc<dyn Retry>>;

/// A task atom named `name` running `task`.
pub fn atom(name: impl Into<String>, task: impl Task) -> TaskAtom {
    Atom {
        spec: Arc::new(AtomSpec {
            name: name.into(),
            ..AtomSpec::default()
        }),
        kind: Arc::new(task),
    }
}

/// A retry atom named `name` running the controller `controller`.
pub fn retry(name: impl Into<String>, controller: impl Retry) -> RetryAtom {
    let mut atom = RetryAtom::from(controller);
    atom.spec_mut().name = name.into();
    atom
}

impl<R: Retry> From<R> for RetryAtom {
    /// A retry atom with no name yet: the flow it is attached to names it
    /// `<flow>.retry`.
    fn from(controller: R) -> Self {
        Atom {
            spec: Arc::new(AtomSpec {
                requires: controller.requires(),
                ..AtomSpec::default()
            }),
            kind: Arc::new(controller),
        }
    }
}

impl<K> Atom<K> {
    /// The atom's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The spec, to change (copied first if shared with a clone of the atom).
    pub fn spec_mut(&mut self) -> &mut AtomSpec {
        Arc::make_mut(&mut self.spec)
    }

    /// Adds required arguments.
    pub fn requires<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names = names.into_iter();
        // Exactly what is asked for: a flow may hold many atoms, and a
        // vector grown one push at a time keeps room for four.
        let expected = names.size_hint().0;
        if expected > 0 {
            self.spec_mut().requires.reserve_exact(expected);
        }
        for name in names {
            let name = name.into();
            if !self.spec.requires.contains(&name) {
                self.spec_mut().requires.push(name);
            }
        }
        self
    }

    /// Adds an optional argument with the value used when nothing provides it.
    pub fn optional(mut self, name: impl Into<String>, default: impl Into<Value>) -> Self {
        self.spec_mut().optional.insert(name.into(), default.into());
        self
    }

    /// Stores the whole result under `name`.
    pub fn provides(mut self, name: impl Into<String>) -> Self {
        self.spec_mut().provides = Provides::Single(name.into());
        self
    }

    /// Stores element `i` of an array result under the `i`-th name.
    pub fn provides_seq<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec_mut().provides = Provides::Sequence(names.into_iter().map(Into::into).collect());
        self
    }

    /// Stores each named key of an object result under that name.
    pub fn provides_map<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec_mut().provides = Provides::Mapping(names.into_iter().map(Into::into).collect());
        self
    }

    /// Feeds argument `arg` from the symbol `symbol` instead of `arg`.
    pub fn rebind(mut self, arg: impl Into<String>, symbol: impl Into<String>) -> Self {
        self.spec_mut().rebind.insert(arg.into(), symbol.into());
        self
    }

    /// Feeds argument `arg` with a constant.
    pub fn inject(mut self, arg: impl Into<String>, value: impl Into<Value>) -> Self {
        self.spec_mut().inject.insert(arg.into(), value.into());
        self
    }

    /// Sets the version.
    pub fn version(mut self, major: u32, minor: u32) -> Self {
        self.spec_mut().version = Version(major, minor);
        self
    }
}

impl<K> fmt::Debug for Atom<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Atom").field("spec", &self.spec).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn picks_take_parts_of_results() {
        let seq = Provides::Sequence(vec!["a".into(), "b".into()]);
        assert_eq!(seq.pick("b"), Some(Pick::Index(1)));
        assert_eq!(Pick::Index(1).apply(&json!([1, 2])), Some(&json!(2)));
        let map = Provides::Mapping(vec!["a".into()]);
        assert_eq!(
            map.pick("a").unwrap().apply(&json!({"a": 3})),
            Some(&json!(3))
        );
        assert_eq!(map.pick("z"), None);
        assert_eq!(Pick::Index(5).apply(&json!([1])), None);
    }

    #[test]
    fn injected_arguments_need_no_symbol() {
        let spec = AtomSpec {
            name: "t".into(),
            requires: vec!["a".into(), "b".into()],
            rebind: [("a".to_owned(), "x".to_owned())].into(),
            inject: [("b".to_owned(), json!(1))].into(),
            ..AtomSpec::default()
        };
        let syms: Vec<_> = spec.required_symbols().collect();
        assert_eq!(syms, vec![("x", false)]);
    }

    #[test]
    fn bindings_serialize_as_sorted_objects() {
        let a = atom("t", crate::task_fn(|_| Ok(Value::Null)))
            .requires(["b", "a"])
            .rebind("b", "y")
            .rebind("a", "x")
            .inject("c", 1)
            .optional("d", "dflt");
        let json = serde_json::to_value(&*a.spec).unwrap();
        assert_eq!(
            json,
            json!({
                "name": "t",
                "requires": ["b", "a"],
                "optional": {"d": "dflt"},
                "provides": "nothing",
                "rebind": {"a": "x", "b": "y"},
                "inject": {"c": 1},
                "version": [1, 0],
            })
        );
        assert_eq!(
            serde_json::to_string(&a.spec.rebind).unwrap(),
            r#"{"a":"x","b":"y"}"#
        );
        let back: AtomSpec = serde_json::from_value(json).unwrap();
        assert_eq!(back, *a.spec);
        assert_eq!(back.symbol_of("a"), Some("x"));
        assert_eq!(back.symbol_of("c"), None);
    }
}
