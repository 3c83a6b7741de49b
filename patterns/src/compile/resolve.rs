//! Resolving each atom's arguments, in TaskFlow's order: a constant
//! injected into the atom, then the flow's store, then the nearest atom
//! that runs before it and provides the symbol, then an optional argument's
//! default. So a value given from outside the flow (injected or in the
//! store) is found before any atom's result, as `fetch_mapped_args` of
//! TaskFlow's storage finds it.
//!
//! `revert` takes the arguments of `execute`, unless the atom declares its
//! own ([`AtomSpec::revert_requires`](crate::AtomSpec::revert_requires),
//! [`AtomSpec::revert_rebind`](crate::AtomSpec::revert_rebind)): those are
//! resolved too, by the same rules, and a missing one is an error as a
//! missing `execute` argument is.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;
use std::sync::Arc;

use super::{AtomIndex, Compilation};
use crate::{CompileError, CompileErrors, Pick, Value};

/// Where the value of one argument comes from.
#[derive(Debug, Clone)]
pub enum ArgSource {
    /// From the result of an atom that runs before.
    Atom {
        /// The providing atom.
        provider: AtomIndex,
        /// Which part of its result.
        pick: Pick,
    },
    /// From the flow's store, under this symbol.
    Store(Arc<str>),
    /// A constant: injected into the atom, or the default of an optional argument.
    Value(Arc<Value>),
}

/// One resolved argument of an atom.
#[derive(Debug, Clone)]
pub struct Argument {
    /// The argument's name, as the task asks for it.
    pub name: Arc<str>,
    /// The symbol that feeds it (after rebinding).
    pub symbol: Arc<str>,
    /// Where its value comes from.
    pub source: ArgSource,
    /// For an optional argument, the default used when the source has no value
    /// at run time (e.g. its provider was ignored).
    pub default: Option<Arc<Value>>,
}

/// Every atom's resolved arguments, by atom index: those of `execute`, and
/// of `revert` where they differ.
///
/// Kept as one vector for all atoms (the arguments of atom `i` are
/// `args[start[i]..start[i + 1]]`), and each distinct argument name or
/// symbol is one shared `Arc<str>`: a flow of many atoms that all take `x`
/// holds one `"x"`. The few atoms whose `revert` takes other arguments
/// have theirs in a second vector, found by a search of `revert`.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    start: Vec<u32>,
    args: Vec<Argument>,
    /// `(atom, from, to)`: the revert arguments of `atom` are
    /// `revert_args[from..to]`; sorted by atom.
    revert: Vec<(AtomIndex, u32, u32)>,
    revert_args: Vec<Argument>,
}

impl Resolution {
    /// The arguments of `atom`'s `execute` (for a retry controller, of its
    /// `execute` and `on_failure`).
    pub fn arguments(&self, atom: AtomIndex) -> &[Argument] {
        let i = atom.index();
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&from), Some(&to)) => &self.args[from as usize..to as usize],
            _ => &[],
        }
    }

    /// The arguments of `atom`'s `revert`: its own revert arguments if it
    /// declares any, else those of `execute`.
    pub fn revert_arguments(&self, atom: AtomIndex) -> &[Argument] {
        match self.revert.binary_search_by_key(&atom, |&(a, _, _)| a) {
            Ok(i) => {
                let (_, from, to) = self.revert[i];
                &self.revert_args[from as usize..to as usize]
            }
            Err(_) => self.arguments(atom),
        }
    }
}

/// One `Arc<str>` per distinct string, while resolving.
#[derive(Default)]
struct Interner<'s> {
    strings: HashMap<&'s str, Arc<str>, foldhash::fast::RandomState>,
}

impl<'s> Interner<'s> {
    fn get(&mut self, s: &'s str) -> Arc<str> {
        self.strings
            .entry(s)
            .or_insert_with(|| Arc::from(s))
            .clone()
    }
}

/// The nearest providers of a symbol.
enum Nearest {
    One(AtomIndex),
    Many(Vec<AtomIndex>),
}

impl Nearest {
    fn as_slice(&self) -> &[AtomIndex] {
        match self {
            Nearest::One(p) => std::slice::from_ref(p),
            Nearest::Many(v) => v,
        }
    }
}

/// What resolving one argument needs to know of the flow, shared by every
/// argument.
struct Lookup<'a, 's> {
    store: &'a serde_json::Map<String, Value>,
    providers: HashMap<&'s str, Range<usize>, foldhash::fast::RandomState>,
}

impl Compilation {
    /// Resolves every atom's arguments against the providers in the flow and
    /// the keys of `store`, reporting every missing or ambiguous requirement.
    ///
    /// An argument is fed, in this order, by a constant injected into the
    /// atom for its symbol, by the store, by the nearest atom that runs
    /// before it and provides the symbol, or by its default if optional.
    pub fn resolve(
        &self,
        store: &serde_json::Map<String, Value>,
    ) -> Result<Resolution, CompileErrors> {
        let mut errors = Vec::new();
        let total: usize = self.atoms.iter().map(|a| a.spec.arguments().count()).sum();
        let mut args = Vec::with_capacity(total);
        let mut start = Vec::with_capacity(self.atoms.len() + 1);
        let mut revert = Vec::new();
        let mut revert_args = Vec::new();
        let mut names = Interner::default();
        names.strings.reserve(total.min(self.atoms.len()));
        // Every provided name, hashed once: a search of the sorted index
        // per argument cost more than all the rest of resolving.
        let mut lookup = Lookup {
            store,
            providers: HashMap::default(),
        };
        let any_revert = self.atoms.iter().any(|a| a.spec.has_revert_arguments());
        if total > 0 || any_revert {
            lookup.providers.reserve(self.providers.atoms.len());
            lookup.providers.extend(self.provider_ranges());
        }
        start.push(0);
        for index in self.indices() {
            let spec = &self.atom(index).spec;
            let first_error = errors.len();
            for arg in spec.arguments() {
                let symbol = spec.symbol_of(arg);
                let default = spec.optional.get(arg);
                match self.argument(index, arg, symbol, default, &lookup, &mut names) {
                    Ok(argument) => args.push(argument),
                    Err(e) => errors.push(e),
                }
            }
            start.push(u32::try_from(args.len()).unwrap_or(u32::MAX));
            if !spec.has_revert_arguments() {
                continue;
            }
            let from = u32::try_from(revert_args.len()).unwrap_or(u32::MAX);
            for (arg, optional) in spec.revert_arguments() {
                let symbol = spec.revert_symbol_of(arg);
                let default = optional.then(|| spec.optional.get(arg)).flatten();
                match self.argument(index, arg, symbol, default, &lookup, &mut names) {
                    Ok(argument) => revert_args.push(argument),
                    // Reported once, if `execute` misses the symbol too.
                    Err(e) if !errors[first_error..].contains(&e) => errors.push(e),
                    Err(_) => {}
                }
            }
            let to = u32::try_from(revert_args.len()).unwrap_or(u32::MAX);
            revert.push((index, from, to));
        }
        if errors.is_empty() {
            Ok(Resolution {
                start,
                args,
                revert,
                revert_args,
            })
        } else {
            Err(CompileErrors(errors))
        }
    }

    /// Resolves argument `arg` of `atom`, fed from `symbol`.
    fn argument<'s>(
        &'s self,
        atom: AtomIndex,
        arg: &'s str,
        symbol: &'s str,
        default: Option<&Value>,
        lookup: &Lookup<'_, '_>,
        names: &mut Interner<'s>,
    ) -> Result<Argument, CompileError> {
        let spec = &self.atom(atom).spec;
        let default = default.map(|v| Arc::new(v.clone()));
        let name = names.get(arg);
        let symbol_name = names.get(symbol);
        let source = match spec.injected(symbol) {
            Some(value) => ArgSource::Value(Arc::new(value.clone())),
            None => self.source_of(atom, &symbol_name, lookup, default.as_ref())?,
        };
        Ok(Argument {
            name,
            symbol: symbol_name,
            source,
            default,
        })
    }

    /// Of the providers `all` of a symbol, those that run before `atom` and
    /// that no other such provider runs after.
    fn nearest(&self, atom: AtomIndex, all: &[AtomIndex]) -> Nearest {
        let runs_before = |p: AtomIndex| p != atom && self.is_ancestor(p, atom);
        if let [p] = all {
            // The common case, without allocating.
            return if runs_before(*p) {
                Nearest::One(*p)
            } else {
                Nearest::Many(Vec::new())
            };
        }
        let before: Vec<AtomIndex> = all.iter().copied().filter(|&p| runs_before(p)).collect();
        let nearest = before
            .iter()
            .copied()
            .filter(|&c| !before.iter().any(|&d| d != c && self.is_ancestor(c, d)))
            .collect();
        Nearest::Many(nearest)
    }

    /// Where a symbol not injected into `atom` comes from: the store, else
    /// the nearest provider, else the default.
    fn source_of(
        &self,
        atom: AtomIndex,
        symbol_name: &Arc<str>,
        lookup: &Lookup<'_, '_>,
        default: Option<&Arc<Value>>,
    ) -> Result<ArgSource, CompileError> {
        let symbol: &str = symbol_name;
        let store = lookup.store;
        if store.contains_key(symbol) {
            return Ok(ArgSource::Store(symbol_name.clone()));
        }
        let all = lookup
            .providers
            .get(symbol)
            .map_or(&[][..], |range| self.providers_at(range.clone()));
        let nearest = self.nearest(atom, all);
        match nearest.as_slice() {
            [provider] => {
                let pick = self
                    .atom(*provider)
                    .spec
                    .provides
                    .pick(symbol)
                    .unwrap_or(Pick::Whole);
                return Ok(ArgSource::Atom {
                    provider: *provider,
                    pick,
                });
            }
            [] => {}
            many => {
                return Err(CompileError::AmbiguousProvider {
                    atom: self.atom(atom).name.to_string(),
                    symbol: symbol.to_owned(),
                    providers: many
                        .iter()
                        .map(|p| self.atom(*p).name.to_string())
                        .collect(),
                })
            }
        }
        if let Some(default) = default {
            return Ok(ArgSource::Value(default.clone()));
        }
        let mut available: BTreeSet<String> = store.keys().cloned().collect();
        for a in self.walk(atom, |a| self.predecessors(a)) {
            available.extend(self.atom(a).spec.provides.names().map(str::to_owned));
        }
        Err(CompileError::MissingRequirement {
            atom: self.atom(atom).name.to_string(),
            symbol: symbol.to_owned(),
            available: available.into_iter().collect(),
            provided_by: all
                .iter()
                .filter(|&&p| p != atom)
                .map(|p| self.atom(*p).name.to_string())
                .collect(),
        })
    }
}
