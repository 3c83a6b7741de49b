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
use crate::{CompileError, CompileErrors, Value};

/// Where the value of one argument comes from.
#[derive(Debug, Clone)]
pub enum ArgSource {
    /// From the result of an atom that runs before.
    Atom {
        /// The providing atom.
        provider: AtomIndex,
        /// Which of the names the provider provides feeds the argument: its
        /// position in the provider's [`Provides`](crate::Provides), whose
        /// [`part`](crate::Provides::part) takes it out of the result (a
        /// position, not a [`Pick`](crate::Pick), keeps an argument at 48
        /// bytes; a flow holds one per argument of every atom).
        part: u32,
    },
    /// From the flow's store, under this symbol.
    Store(Arc<str>),
    /// A constant: injected into the atom, or the default of an optional argument.
    Value(Arc<Value>),
}

/// One resolved argument of an atom.
#[derive(Debug, Clone)]
pub struct Argument {
    /// The argument's name, as the task asks for it. (The symbol that
    /// feeds it, after rebinding, is the atom's
    /// [`AtomSpec::symbol_of`](crate::AtomSpec::symbol_of) it, or for a
    /// revert argument [`AtomSpec::revert_symbol_of`](crate::AtomSpec::revert_symbol_of).)
    pub name: Arc<str>,
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
/// `args[start[i]..start[i + 1]]`), and each distinct argument name is one
/// shared `Arc<str>`: a flow of many atoms that all take `x` holds one
/// `"x"`. The few atoms whose `revert` takes other arguments
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
    /// The string asked for last: atom after atom asks for the same one
    /// (every atom of a chain takes `x`), and comparing it spares hashing.
    last: Option<(&'s str, Arc<str>)>,
}

impl<'s> Interner<'s> {
    fn get(&mut self, s: &'s str) -> Arc<str> {
        if let Some((last, shared)) = &self.last {
            if *last == s {
                return shared.clone();
            }
        }
        let shared = self
            .strings
            .entry(s)
            .or_insert_with(|| Arc::from(s))
            .clone();
        self.last = Some((s, shared.clone()));
        shared
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

/// The symbol feeding one argument, as resolving found it in the
/// providers' index: its name (borrowed from the atom's spec) and the range
/// of the index holding its providers (empty if none).
struct Symbol<'s> {
    name: &'s str,
    providers: Range<usize>,
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
        // Every symbol an argument is fed from, looked up in the sorted
        // index of providers by one walk beside the symbols sorted the same
        // way: a hash table of a million symbols costs a cache miss or two
        // per lookup, which was most of resolving a large flow.
        let mut symbols = self.symbols(total).into_iter();
        start.push(0);
        for index in self.indices() {
            let spec = &self.atom(index).spec;
            let first_error = errors.len();
            for arg in spec.arguments() {
                let Some(symbol) = symbols.next() else { break };
                let default = spec.default_of(arg);
                match self.argument(index, arg, symbol, default, store, &mut names) {
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
                let Some(symbol) = symbols.next() else { break };
                let default = optional.then(|| spec.default_of(arg)).flatten();
                match self.argument(index, arg, symbol, default, store, &mut names) {
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

    /// Every argument's symbol with its providers, in the order `resolve`
    /// takes them: each atom's `execute` arguments, then its own `revert`
    /// arguments if it declares any, atom by atom. `total` is the number of
    /// `execute` arguments.
    ///
    /// The symbols are sorted as the index of providers is (by
    /// [`NameKey`](super::NameKey), then text) and both are walked once
    /// side by side, so no symbol is hashed and the atoms' names are read
    /// only where two keys tie.
    fn symbols(&self, total: usize) -> Vec<Symbol<'_>> {
        let mut wanted: Vec<(super::NameKey, &str, u32)> = Vec::with_capacity(total);
        for atom in &self.atoms {
            let spec = &atom.spec;
            for arg in spec.arguments() {
                let symbol = spec.symbol_of(arg);
                let slot = u32::try_from(wanted.len()).unwrap_or(u32::MAX);
                wanted.push((super::NameKey::of(symbol), symbol, slot));
            }
            if spec.has_revert_arguments() {
                for (arg, _) in spec.revert_arguments() {
                    let symbol = spec.revert_symbol_of(arg);
                    let slot = u32::try_from(wanted.len()).unwrap_or(u32::MAX);
                    wanted.push((super::NameKey::of(symbol), symbol, slot));
                }
            }
        }
        super::sort_by_name(
            &mut wanted,
            |x| x.0.prefix,
            |x, y| x.0.cmp_names(|| x.1, y.0, || y.1),
        );
        let index = &self.providers;
        let provider = |i: usize| {
            super::provided_name(&self.atom(index.atoms[i]).spec.provides, index.names[i])
        };
        // Every slot is set below (each of `wanted` is in one group): the
        // symbols are written in place, with no second vector to collect
        // them into (a million of them are 32 MB).
        let mut found: Vec<Symbol> = Vec::new();
        found.resize_with(wanted.len(), || Symbol {
            name: "",
            providers: 0..0,
        });
        let mut at = 0;
        let mut group = 0;
        while group < wanted.len() {
            let (key, symbol, _) = wanted[group];
            let same = |&(k, s, _): &(super::NameKey, &str, u32)| {
                k.cmp_names(|| s, key, || symbol).is_eq()
            };
            let end = group + wanted[group..].iter().take_while(|w| same(w)).count();
            let before = |i: usize| index.keys[i].cmp_names(|| provider(i), key, || symbol);
            while at < index.atoms.len() && before(at).is_lt() {
                at += 1;
            }
            let first = at;
            while at < index.atoms.len() && before(at).is_eq() {
                at += 1;
            }
            for &(_, _, slot) in &wanted[group..end] {
                if let Some(f) = found.get_mut(slot as usize) {
                    *f = Symbol {
                        name: symbol,
                        providers: first..at,
                    };
                }
            }
            group = end;
        }
        found
    }

    /// Resolves argument `arg` of `atom`, fed from `symbol`.
    fn argument<'s>(
        &'s self,
        atom: AtomIndex,
        arg: &'s str,
        symbol: Symbol<'s>,
        default: Option<&Value>,
        store: &serde_json::Map<String, Value>,
        names: &mut Interner<'s>,
    ) -> Result<Argument, CompileError> {
        let spec = &self.atom(atom).spec;
        let default = default.map(|v| Arc::new(v.clone()));
        let name = names.get(arg);
        let source = match spec.injected(symbol.name) {
            Some(value) => ArgSource::Value(Arc::new(value.clone())),
            None => self.source_of(atom, &symbol, store, default.as_ref(), names)?,
        };
        Ok(Argument {
            name,
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
    fn source_of<'s>(
        &'s self,
        atom: AtomIndex,
        symbol_found: &Symbol<'s>,
        store: &serde_json::Map<String, Value>,
        default: Option<&Arc<Value>>,
        names: &mut Interner<'s>,
    ) -> Result<ArgSource, CompileError> {
        let symbol = symbol_found.name;
        if store.contains_key(symbol) {
            return Ok(ArgSource::Store(names.get(symbol)));
        }
        let all = self.providers_at(symbol_found.providers.clone());
        let nearest = self.nearest(atom, all);
        match nearest.as_slice() {
            [provider] => {
                let part = self
                    .atom(*provider)
                    .spec
                    .provides
                    .position(symbol)
                    .unwrap_or(0);
                return Ok(ArgSource::Atom {
                    provider: *provider,
                    part,
                });
            }
            [] => {}
            many => {
                return Err(CompileError::AmbiguousProvider {
                    atom: self.atom(atom).name().to_string(),
                    symbol: symbol.to_owned(),
                    providers: many
                        .iter()
                        .map(|p| self.atom(*p).name().to_string())
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
            atom: self.atom(atom).name().to_string(),
            symbol: symbol.to_owned(),
            available: available.into_iter().collect(),
            provided_by: all
                .iter()
                .filter(|&&p| p != atom)
                .map(|p| self.atom(*p).name().to_string())
                .collect(),
        })
    }
}
