//! Atoms: a task or retry controller with its declared inputs and outputs.

use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Names, Retry, Task, Value, VecMap};

/// A name in an atom's interface: the atom's own, an argument's, a
/// symbol's. A string held inline when it is 24 bytes or shorter, as most
/// names are, so a flow of many atoms does not hold a small heap block per
/// name; a longer one is on the heap as a `String` is. It derefs to
/// `str`, compares with `&str` and `String`, and converts from both:
///
/// ```
/// use taskflow_patterns::{atom, task_fn, Name, Value};
/// let a = atom("resize", task_fn(|_| Ok(Value::Null))).requires(["image"]);
/// assert_eq!(a.spec.name, "resize");
/// assert_eq!(a.spec.requires, [Name::from("image")]);
/// let owned: String = a.spec.name.to_string();
/// assert_eq!(owned, "resize");
/// ```
pub type Name = compact_str::CompactString;

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
    Single(Name),
    /// The result is an array; element `i` is stored under name `i`.
    /// (A boxed slice, so that `Provides` is no larger than a [`Name`].)
    Sequence(Box<[Name]>),
    /// The result is an object; each name is stored from the key of that name.
    Mapping(Box<[Name]>),
}

impl Provides {
    /// The names provided.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        let names: &[Name] = match self {
            Provides::Nothing => &[],
            Provides::Single(name) => std::slice::from_ref(name),
            Provides::Sequence(names) | Provides::Mapping(names) => names,
        };
        names.iter().map(Name::as_str)
    }

    /// The position of `name` among the names provided (the first, if it
    /// is given twice).
    pub fn position(&self, name: &str) -> Option<u32> {
        let position = self.names().position(|n| n == name)?;
        u32::try_from(position).ok()
    }

    /// The value of the name at `position` (see [`position`](Self::position))
    /// in `result`, as [`pick`](Self::pick) of that name would take it:
    /// the whole result for a single name, an element of an array for a
    /// sequence, the value under the name of an object for a mapping.
    /// `None` if the result has no such part or there is no such name.
    ///
    /// ```
    /// use serde_json::json;
    /// use taskflow_patterns::{Name, Provides};
    /// let seq = Provides::Sequence([Name::from("a"), Name::from("b")].into());
    /// assert_eq!(seq.part(1, &json!([10, 20])), Some(&json!(20)));
    /// let map = Provides::Mapping([Name::from("a")].into());
    /// assert_eq!(map.part(0, &json!({"a": 3})), Some(&json!(3)));
    /// assert_eq!(map.part(1, &json!({"a": 3})), None);
    /// ```
    pub fn part<'v>(&self, position: u32, result: &'v Value) -> Option<&'v Value> {
        let at = position as usize;
        match self {
            Provides::Nothing => None,
            Provides::Single(_) => (at == 0).then_some(result),
            Provides::Sequence(names) => {
                names.get(at)?;
                result.as_array()?.get(at)
            }
            Provides::Mapping(names) => result.as_object()?.get(names.get(at)?.as_str()),
        }
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
///
/// What every atom has is in fields; what few atoms declare (optional
/// arguments, injected values, revert's own arguments, a priority, a
/// timeout) is read through methods of the same names, and kept in one
/// box that an atom without any of it does not allocate: a flow holds one
/// spec per atom (W10). Atoms are declared with [`atom`] or [`retry`] and
/// the builder methods of [`Atom`].
///
/// Stored, it is one record with every field at its top level, as
/// before the box: `timeout` as `timeout_ms`, each field left out where it
/// holds its default.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(from = "SpecRecord", into = "SpecRecord")]
pub struct AtomSpec {
    /// Unique name of the atom in its flow.
    pub name: Name,
    /// Required argument names (one is held inline: see [`Names`]).
    pub requires: Names,
    /// Names the result is stored under.
    pub provides: Provides,
    /// Argument name to the symbol that feeds it (default: the same name).
    pub rebind: VecMap<Name, Name>,
    /// The atom's version.
    pub version: Version,
    /// What few atoms declare; `None` when it would all be empty.
    rare: Option<Box<RareSpec>>,
}

/// The parts of a spec that few atoms declare (see [`AtomSpec`]).
#[derive(Debug, Clone, Default, PartialEq)]
struct RareSpec {
    optional: VecMap<Name, Value>,
    inject: VecMap<Name, Value>,
    revert_requires: Vec<Name>,
    revert_rebind: VecMap<Name, Name>,
    priority: i32,
    timeout: Option<Duration>,
}

impl RareSpec {
    fn is_empty(&self) -> bool {
        *self == RareSpec::default()
    }
}

/// What a spec without rare parts reads them as.
static NO_RARE_SPEC: LazyLock<RareSpec> = LazyLock::new(RareSpec::default);

impl PartialEq for AtomSpec {
    /// Field by field, a spec whose rare parts are in an empty box equal to
    /// one without the box.
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.requires == other.requires
            && self.provides == other.provides
            && self.rebind == other.rebind
            && self.version == other.version
            && self.rare() == other.rare()
    }
}

/// An [`AtomSpec`] as a record: every field at the top level, each left
/// out where it holds its default.
#[derive(Serialize, Deserialize)]
struct SpecRecord {
    name: Name,
    #[serde(default, skip_serializing_if = "<[Name]>::is_empty")]
    requires: Names,
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    optional: VecMap<Name, Value>,
    #[serde(default)]
    provides: Provides,
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    rebind: VecMap<Name, Name>,
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    inject: VecMap<Name, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    revert_requires: Vec<Name>,
    #[serde(default, skip_serializing_if = "VecMap::is_empty")]
    revert_rebind: VecMap<Name, Name>,
    #[serde(default, skip_serializing_if = "is_zero")]
    priority: i32,
    #[serde(default)]
    version: Version,
    #[serde(
        default,
        rename = "timeout_ms",
        skip_serializing_if = "Option::is_none",
        with = "millis"
    )]
    timeout: Option<Duration>,
}

impl From<SpecRecord> for AtomSpec {
    fn from(r: SpecRecord) -> Self {
        let rare = RareSpec {
            optional: r.optional,
            inject: r.inject,
            revert_requires: r.revert_requires,
            revert_rebind: r.revert_rebind,
            priority: r.priority,
            timeout: r.timeout,
        };
        AtomSpec {
            name: r.name,
            requires: r.requires,
            provides: r.provides,
            rebind: r.rebind,
            version: r.version,
            rare: (!rare.is_empty()).then(|| Box::new(rare)),
        }
    }
}

impl From<AtomSpec> for SpecRecord {
    fn from(spec: AtomSpec) -> Self {
        let RareSpec {
            optional,
            inject,
            revert_requires,
            revert_rebind,
            priority,
            timeout,
        } = spec.rare.map(|r| *r).unwrap_or_default();
        SpecRecord {
            name: spec.name,
            requires: spec.requires,
            optional,
            provides: spec.provides,
            rebind: spec.rebind,
            inject,
            revert_requires,
            revert_rebind,
            priority,
            version: spec.version,
            timeout,
        }
    }
}

/// `Option<Duration>` as a whole number of milliseconds (serde has no form
/// of its own for a duration a person reads in a record).
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        timeout: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match timeout {
            Some(d) => serializer.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(deserializer)?.map(Duration::from_millis))
    }
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

impl AtomSpec {
    /// A spec named `name` that declares nothing else.
    pub fn new(name: impl Into<Name>) -> Self {
        AtomSpec {
            name: name.into(),
            ..AtomSpec::default()
        }
    }

    fn rare(&self) -> &RareSpec {
        self.rare.as_deref().unwrap_or(&NO_RARE_SPEC)
    }

    fn rare_mut(&mut self) -> &mut RareSpec {
        self.rare.get_or_insert_with(Box::default)
    }

    /// Optional argument names with the default used when nothing provides them.
    pub fn optional(&self) -> &VecMap<Name, Value> {
        &self.rare().optional
    }

    /// Symbol to a constant value, for this atom only: as TaskFlow's
    /// `inject`, keyed by the symbol an argument is fed from (its name
    /// after [`rebind`](Self::rebind)), and found before the store and
    /// before any atom's result.
    pub fn inject(&self) -> &VecMap<Name, Value> {
        &self.rare().inject
    }

    /// The arguments `revert` takes, when they differ from `execute`'s (as
    /// TaskFlow's `revert_requires`). Empty: `revert` takes the arguments
    /// of `execute` ([`requires`](Self::requires) and
    /// [`optional`](Self::optional)).
    pub fn revert_requires(&self) -> &[Name] {
        &self.rare().revert_requires
    }

    /// Argument name to the symbol that feeds it, for `revert` only (as
    /// TaskFlow's `revert_rebind`). Empty: `revert` binds its arguments by
    /// [`rebind`](Self::rebind).
    pub fn revert_rebind(&self) -> &VecMap<Name, Name> {
        &self.rare().revert_rebind
    }

    /// Among atoms ready to run (or revert) at once, those of higher
    /// priority are started first (as TaskFlow's `Atom.priority`); 0 by
    /// default, negative values allowed.
    pub fn priority(&self) -> i32 {
        self.rare.as_ref().map_or(0, |r| r.priority)
    }

    /// How long one execute (or revert) of the atom may take: past it the
    /// atom is cancelled and fails with a
    /// [`TIMEOUT`](crate::kinds::TIMEOUT) failure (see
    /// [`Atom::timeout`]). `None` (the default): no limit. Stored in
    /// milliseconds, under `timeout_ms`.
    pub fn timeout(&self) -> Option<Duration> {
        self.rare.as_ref().and_then(|r| r.timeout)
    }

    /// Every constant the spec holds, with the argument or symbol it is
    /// under: the injected values, then the defaults of optional
    /// arguments (compile checks their depth). Nothing to read, and no
    /// box to look through, on an atom that declares neither.
    pub(crate) fn constants(&self) -> impl Iterator<Item = (&Name, &Value)> {
        self.rare
            .iter()
            .flat_map(|r| r.inject.iter().chain(r.optional.iter()))
    }

    /// The default of optional argument `arg` (see
    /// [`optional`](Self::optional)); `None` if `arg` is not optional.
    pub fn default_of(&self, arg: &str) -> Option<&Value> {
        self.rare.as_ref()?.optional.get(arg)
    }

    /// Every argument `execute` takes, required ones first.
    pub fn arguments(&self) -> impl Iterator<Item = &str> {
        self.requires.iter().map(Name::as_str).chain(
            self.rare
                .iter()
                .flat_map(|r| r.optional.keys().map(Name::as_str)),
        )
    }

    /// The symbol that feeds argument `arg` of `execute`: its
    /// [`rebind`](Self::rebind), or the argument's own name.
    pub fn symbol_of<'s>(&'s self, arg: &'s str) -> &'s str {
        self.rebind.get(arg).map_or(arg, Name::as_str)
    }

    /// The constant injected for `symbol` (a symbol, after rebinding: see
    /// [`inject`](Self::inject)).
    pub fn injected(&self, symbol: &str) -> Option<&Value> {
        self.rare.as_ref()?.inject.get(symbol)
    }

    /// Whether `revert` takes other arguments than `execute`, or binds them
    /// otherwise ([`revert_requires`](Self::revert_requires) or
    /// [`revert_rebind`](Self::revert_rebind) given).
    pub fn has_revert_arguments(&self) -> bool {
        self.rare
            .as_ref()
            .is_some_and(|r| !r.revert_requires.is_empty() || !r.revert_rebind.is_empty())
    }

    /// Every argument `revert` takes, with whether it is optional:
    /// [`revert_requires`](Self::revert_requires), or when there are none,
    /// the arguments of `execute`.
    pub fn revert_arguments(&self) -> impl Iterator<Item = (&str, bool)> {
        let own = !self.revert_requires().is_empty();
        let required = if own {
            self.revert_requires()
        } else {
            &self.requires
        };
        let optional = (!own).then_some(self.optional()).into_iter();
        required
            .iter()
            .map(|a| (a.as_str(), false))
            .chain(optional.flat_map(|o| o.keys().map(|a| (a.as_str(), true))))
    }

    /// The symbol that feeds argument `arg` of `revert`: its
    /// [`revert_rebind`](Self::revert_rebind) when the atom has any (else
    /// its [`rebind`](Self::rebind)), or the argument's own name.
    pub fn revert_symbol_of<'s>(&'s self, arg: &'s str) -> &'s str {
        let rebind = if self.revert_rebind().is_empty() {
            &self.rebind
        } else {
            self.revert_rebind()
        };
        rebind.get(arg).map_or(arg, Name::as_str)
    }

    /// The symbols the atom needs from other atoms or the store, for
    /// `execute` and then for `revert` (after rebinding, without injected
    /// symbols), with whether each is optional; a symbol may come twice.
    pub fn required_symbols(&self) -> impl Iterator<Item = (&str, bool)> {
        let execute = self
            .requires
            .iter()
            .map(|a| (self.symbol_of(a), false))
            .chain(
                self.rare
                    .iter()
                    .flat_map(|r| r.optional.keys().map(|a| (self.symbol_of(a), true))),
            );
        let revert = self
            .has_revert_arguments()
            .then(|| self.revert_arguments())
            .into_iter()
            .flatten()
            .map(|(a, optional)| (self.revert_symbol_of(a), optional));
        execute
            .chain(revert)
            .filter(|(s, _)| self.injected(s).is_none())
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
///
/// A flow's atoms serialize (as part of its stored definition) when their
/// task is a [`StoredTask`](crate::StoredTask) or their controller a
/// [`StoredRetry`](crate::StoredRetry); otherwise serializing fails with an
/// error naming the atom.
#[derive(Clone)]
pub struct Atom<K> {
    /// The declared interface (shared: cloning a flow or compiling it does
    /// not copy it).
    pub spec: Arc<AtomSpec>,
    /// The task or retry controller.
    pub kind: K,
}

/// An atom that runs a [`Task`].
pub type TaskAtom = Atom<Arc<dyn Task>>;

/// An atom that runs a [`Retry`] controller.
pub type RetryAtom = Atom<Arc<dyn Retry>>;

/// A task atom named `name` running `task`.
pub fn atom(name: impl Into<Name>, task: impl Task) -> TaskAtom {
    Atom {
        spec: Arc::new(AtomSpec::new(name)),
        kind: task.into_shared(),
    }
}

/// A retry atom named `name` running the controller `controller`.
pub fn retry(name: impl Into<Name>, controller: impl Retry) -> RetryAtom {
    let mut atom = RetryAtom::from(controller);
    atom.spec_mut().name = name.into();
    atom
}

impl<R: Retry> From<R> for RetryAtom {
    /// A retry atom with no name yet: the flow it is attached to names it
    /// `<flow>_retry`, as TaskFlow does.
    fn from(controller: R) -> Self {
        Atom {
            spec: Arc::new(AtomSpec {
                requires: controller.requires().into_iter().map(Name::from).collect(),
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
        S: Into<Name>,
    {
        // `Names::push` holds the first name inline and boxes the rest in
        // a slice of exactly their number (a flow may hold many atoms).
        for name in names {
            let name = name.into();
            if !self.spec.requires.contains(&name) {
                self.spec_mut().requires.push(name);
            }
        }
        self
    }

    /// Adds an optional argument with the value used when nothing provides it.
    pub fn optional(mut self, name: impl Into<Name>, default: impl Into<Value>) -> Self {
        self.spec_mut()
            .rare_mut()
            .optional
            .insert(name.into(), default.into());
        self
    }

    /// Stores the whole result under `name`.
    pub fn provides(mut self, name: impl Into<Name>) -> Self {
        self.spec_mut().provides = Provides::Single(name.into());
        self
    }

    /// Stores element `i` of an array result under the `i`-th name.
    pub fn provides_seq<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Name>,
    {
        self.spec_mut().provides = Provides::Sequence(names.into_iter().map(Into::into).collect());
        self
    }

    /// Stores each named key of an object result under that name.
    pub fn provides_map<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Name>,
    {
        self.spec_mut().provides = Provides::Mapping(names.into_iter().map(Into::into).collect());
        self
    }

    /// Feeds argument `arg` from the symbol `symbol` instead of `arg`.
    pub fn rebind(mut self, arg: impl Into<Name>, symbol: impl Into<Name>) -> Self {
        self.spec_mut().rebind.insert(arg.into(), symbol.into());
        self
    }

    /// Feeds the argument bound to `symbol` (its name after
    /// [`rebind`](Self::rebind)) with a constant, for this atom only. As in
    /// TaskFlow, an injected value is found before the store and before
    /// any atom's result.
    ///
    /// ```
    /// use taskflow_patterns::{atom, task_fn, Value};
    /// // `x` is fed from `a`, so the constant is injected for `a`.
    /// let a = atom("t", task_fn(|_| Ok(Value::Null)))
    ///     .requires(["x"])
    ///     .rebind("x", "a")
    ///     .inject("a", 1);
    /// assert_eq!(a.spec.injected(a.spec.symbol_of("x")), Some(&Value::from(1)));
    /// ```
    pub fn inject(mut self, symbol: impl Into<Name>, value: impl Into<Value>) -> Self {
        self.spec_mut()
            .rare_mut()
            .inject
            .insert(symbol.into(), value.into());
        self
    }

    /// Gives `revert` its own required arguments (as TaskFlow's
    /// `revert_requires`), instead of the arguments of `execute`.
    pub fn revert_requires<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Name>,
    {
        for name in names {
            let name = name.into();
            if !self.spec.revert_requires().contains(&name) {
                self.spec_mut().rare_mut().revert_requires.push(name);
            }
        }
        self
    }

    /// Feeds argument `arg` of `revert` from the symbol `symbol` (as
    /// TaskFlow's `revert_rebind`). Once an atom has one, `revert` binds
    /// its arguments by these alone, not by [`rebind`](Self::rebind).
    ///
    /// ```
    /// use taskflow_patterns::{atom, task_fn, Value};
    /// let a = atom("create", task_fn(|_| Ok(Value::Null)))
    ///     .requires(["size"])
    ///     .revert_requires(["volume"])
    ///     .revert_rebind("volume", "created_volume");
    /// let revert: Vec<_> = a.spec.revert_arguments().collect();
    /// assert_eq!(revert, [("volume", false)]);
    /// assert_eq!(a.spec.revert_symbol_of("volume"), "created_volume");
    /// ```
    pub fn revert_rebind(mut self, arg: impl Into<Name>, symbol: impl Into<Name>) -> Self {
        self.spec_mut()
            .rare_mut()
            .revert_rebind
            .insert(arg.into(), symbol.into());
        self
    }

    /// Sets the priority: among atoms ready at once, higher runs first (as
    /// TaskFlow's `Atom.priority`; 0 by default).
    pub fn priority(mut self, priority: i32) -> Self {
        self.spec_mut().rare_mut().priority = priority;
        self
    }

    /// Sets the version.
    pub fn version(mut self, major: u32, minor: u32) -> Self {
        self.spec_mut().version = Version(major, minor);
        self
    }

    /// Limits how long one execute (or revert) of the atom may take, on
    /// every engine. Past it the atom is cancelled and fails with a
    /// failure of kind [`kinds::TIMEOUT`](crate::kinds::TIMEOUT), which
    /// its retry controller handles like any other failure (a `Times`
    /// runs it again; without one the flow reverts).
    ///
    /// Cancelled means: an async task ([`AsyncTask`](crate::AsyncTask))
    /// is dropped at its next `.await`; a blocking task cannot be stopped
    /// from outside, so it sees [`Context::is_cancelled`](crate::Context::is_cancelled)
    /// turn true and should return. One that does not goes on running on
    /// its thread (a pool thread, or the helper thread the serial engine
    /// runs timed atoms on) until it returns, and what it returns then is
    /// dropped: the flow has moved on (its revert may already be running).
    /// The time counts from when the engine hands the atom to its executor,
    /// so time spent waiting for a free thread counts too; an atom whose
    /// time ran out before it started is not started.
    ///
    /// ```
    /// use std::time::Duration;
    /// use taskflow_patterns::{atom, task_fn, Value};
    /// let a = atom("call", task_fn(|_| Ok(Value::Null))).timeout(Duration::from_secs(5));
    /// assert_eq!(a.spec.timeout(), Some(Duration::from_secs(5)));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.spec_mut().rare_mut().timeout = Some(timeout);
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

    /// What W10 measures: an atom's spec, and what it holds inline.
    #[test]
    fn a_spec_holds_its_parts_in_few_bytes() {
        assert_eq!(size_of::<Provides>(), size_of::<Name>());
        assert_eq!(size_of::<Names>(), size_of::<Name>());
        assert_eq!(size_of::<AtomSpec>(), 104);
    }

    /// `requires` keeps the order given and each name once, one call at a
    /// time or several names at once.
    #[test]
    fn requires_keeps_order_and_each_name_once() {
        let noop = || crate::task_fn(|_| Ok(Value::Null));
        let a = atom("a", noop()).requires(["x"]).requires(["x"]);
        assert_eq!(a.spec.requires, ["x"]);
        let b = atom("b", noop())
            .requires(["y"])
            .requires(["x", "y", "z", "x"])
            .requires(["w"]);
        assert_eq!(b.spec.requires, ["y", "x", "z", "w"]);
        let c = atom("c", noop())
            .requires(["x", "x"])
            .requires(Vec::<Name>::new());
        assert_eq!(c.spec.requires, ["x"]);
    }

    /// Atoms built from clones of one closure task hold the same task, not
    /// an `Arc` each around a clone; another task type gets one of its own.
    #[test]
    fn atoms_of_one_closure_task_share_it() {
        let step = crate::task_fn(|_| Ok(Value::Null)).with_revert(|_| Ok(()));
        let a = atom("a", step.clone());
        let b = atom("b", step);
        assert!(Arc::ptr_eq(&a.kind, &b.kind));
        assert_eq!(a.kind.type_name(), "taskflow::FnTask");
        let inputs = crate::Inputs::default();
        let mut ctx = crate::Context::new("a", &inputs);
        assert_eq!(a.kind.execute(&mut ctx).unwrap(), Value::Null);
        assert!(a.kind.revert(&mut ctx).is_ok());

        struct Noop;
        impl Task for Noop {
            fn execute(&self, _: &mut crate::Context<'_>) -> Result<Value, crate::TaskError> {
                Ok(Value::Null)
            }
        }
        let (c, d) = (atom("c", Noop), atom("d", Noop));
        assert!(!Arc::ptr_eq(&c.kind, &d.kind));
    }

    /// What W10 measures: a short name given as an owned `String` (as
    /// `format!` makes them) is held inline, not as a heap block of its
    /// own; a long one stays whole on the heap.
    #[test]
    fn short_names_are_held_inline_and_long_ones_whole() {
        let i = 123_456;
        let a = atom(format!("t{i}"), crate::task_fn(|_| Ok(Value::Null)))
            .requires(["x"])
            .rebind("x", format!("x{}", i - 1))
            .provides(format!("x{i}"));
        let spec = &a.spec;
        let Provides::Single(provided) = &spec.provides else {
            panic!("provides one name: {:?}", spec.provides);
        };
        let rebound = spec.rebind.iter().next().expect("one rebind");
        for name in [
            &spec.name,
            &spec.requires[0],
            provided,
            rebound.0,
            rebound.1,
        ] {
            assert!(!name.is_heap_allocated(), "{name} is on the heap");
        }
        assert_eq!(spec.symbol_of("x"), "x123455");

        let long = "a name longer than twenty-four bytes".to_owned();
        let a = atom(long.clone(), crate::task_fn(|_| Ok(Value::Null)));
        assert!(a.spec.name.is_heap_allocated());
        assert_eq!(a.spec.name, long);
    }

    #[test]
    fn picks_take_parts_of_results() {
        let seq = Provides::Sequence(["a".into(), "b".into()].into());
        assert_eq!(seq.pick("b"), Some(Pick::Index(1)));
        assert_eq!(Pick::Index(1).apply(&json!([1, 2])), Some(&json!(2)));
        let map = Provides::Mapping(["a".into()].into());
        assert_eq!(
            map.pick("a").unwrap().apply(&json!({"a": 3})),
            Some(&json!(3))
        );
        assert_eq!(map.pick("z"), None);
        assert_eq!(Pick::Index(5).apply(&json!([1])), None);
    }

    #[test]
    fn a_part_by_position_is_what_the_pick_of_its_name_takes() {
        let names = || Box::from([Name::from("a"), Name::from("b"), Name::from("a")]);
        let cases = [
            (Provides::Single("a".into()), json!({"a": 1})),
            (Provides::Sequence(names()), json!([10, 20, 30])),
            (Provides::Sequence(names()), json!([10])),
            (Provides::Sequence(names()), json!({"a": 1})),
            (Provides::Mapping(names()), json!({"a": 1, "b": 2})),
            (Provides::Mapping(names()), json!({"b": 2})),
            (Provides::Mapping(names()), json!([1, 2])),
            (Provides::Nothing, json!(1)),
        ];
        for (provides, result) in cases {
            for name in ["a", "b", "z"] {
                let by_pick = provides.pick(name).and_then(|p| p.apply(&result).cloned());
                let by_part = provides
                    .position(name)
                    .and_then(|at| provides.part(at, &result).cloned());
                assert_eq!(by_part, by_pick, "{provides:?} {name} of {result}");
            }
            assert_eq!(provides.part(3, &result), None, "{provides:?}");
        }
        // A name given twice is found at its first position.
        assert_eq!(Provides::Sequence(names()).position("a"), Some(0));
    }

    #[test]
    fn injected_symbols_are_not_required_and_are_keyed_after_rebind() {
        let a = atom("t", crate::task_fn(|_| Ok(Value::Null)))
            .requires(["a", "b", "c"])
            .rebind("a", "x")
            .rebind("c", "z")
            // `b` is fed from `b`, `c` from `z`: the key `c` feeds nothing.
            .inject("b", 1)
            .inject("c", 2);
        let spec = &a.spec;
        let syms: Vec<_> = spec.required_symbols().collect();
        assert_eq!(syms, vec![("x", false), ("z", false)]);
        assert_eq!(spec.injected(spec.symbol_of("b")), Some(&json!(1)));
        assert_eq!(spec.injected(spec.symbol_of("c")), None);
    }

    #[test]
    fn revert_takes_the_arguments_of_execute_unless_given_its_own() {
        let base = atom("t", crate::task_fn(|_| Ok(Value::Null)))
            .requires(["a"])
            .optional("o", 0)
            .rebind("a", "x");
        assert!(!base.spec.has_revert_arguments());
        let revert: Vec<_> = base.spec.revert_arguments().collect();
        assert_eq!(revert, [("a", false), ("o", true)]);
        assert_eq!(base.spec.revert_symbol_of("a"), "x");
        assert_eq!(
            base.spec.required_symbols().collect::<Vec<_>>(),
            [("x", false), ("o", true)]
        );

        // Its own rebinding replaces the execute one, for revert only.
        let rebound = base.clone().revert_rebind("o", "p");
        assert!(rebound.spec.has_revert_arguments());
        assert_eq!(rebound.spec.revert_symbol_of("a"), "a");
        assert_eq!(rebound.spec.revert_symbol_of("o"), "p");
        assert_eq!(rebound.spec.symbol_of("a"), "x");

        // Its own arguments replace those of execute, and are required too.
        let own = base
            .revert_requires(["v", "w", "v"])
            .revert_rebind("w", "y")
            .inject("v", 1);
        let revert: Vec<_> = own.spec.revert_arguments().collect();
        assert_eq!(revert, [("v", false), ("w", false)]);
        assert_eq!(
            own.spec.required_symbols().collect::<Vec<_>>(),
            [("x", false), ("o", true), ("y", false)]
        );
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
        assert_eq!(back.symbol_of("a"), "x");
        assert_eq!(back.injected("c"), Some(&json!(1)));
    }

    #[test]
    fn revert_arguments_and_priority_are_stored_and_default_when_absent() {
        let a = atom("t", crate::task_fn(|_| Ok(Value::Null)))
            .revert_requires(["v"])
            .revert_rebind("v", "w")
            .priority(-3);
        assert_eq!(a.spec.priority(), -3);
        let json = serde_json::to_value(&*a.spec).unwrap();
        assert_eq!(
            json,
            json!({
                "name": "t",
                "provides": "nothing",
                "revert_requires": ["v"],
                "revert_rebind": {"v": "w"},
                "priority": -3,
                "version": [1, 0],
            })
        );
        assert_eq!(serde_json::from_value::<AtomSpec>(json).unwrap(), *a.spec);
        let timed = a.clone().timeout(Duration::from_millis(1500));
        let json = serde_json::to_value(&*timed.spec).unwrap();
        assert_eq!(json["timeout_ms"], json!(1500));
        assert_eq!(
            serde_json::from_value::<AtomSpec>(json).unwrap().timeout(),
            Some(Duration::from_millis(1500))
        );
        // A spec stored before these fields existed reads with their defaults.
        let old: AtomSpec = serde_json::from_value(json!({
            "name": "t", "requires": ["a"], "provides": "nothing", "version": [1, 0]
        }))
        .unwrap();
        assert_eq!(old.priority(), 0);
        assert!(!old.has_revert_arguments());
        assert_eq!(old.timeout(), None);
        // It holds no box for them, and one whose box holds only defaults
        // is equal to it.
        assert!(old.rare.is_none());
        let mut boxed = old.clone();
        boxed.rare_mut();
        assert_eq!(boxed, old);
        assert!(AtomSpec::from(SpecRecord::from(boxed)).rare.is_none());
    }
}
