//! Resolving each atom's arguments: from an atom that runs before it, from
//! the store, from an injected constant, or from an optional default.

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

/// Every atom's resolved arguments, by atom index.
///
/// Kept as one vector for all atoms (the arguments of atom `i` are
/// `args[start[i]..start[i + 1]]`), and each distinct argument name or
/// symbol is one shared `Arc<str>`: a flow of many atoms that all take `x`
/// holds one `"x"`.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    start: Vec<u32>,
    args: Vec<Argument>,
}

impl Resolution {
    /// The arguments of `atom`.
    pub fn arguments(&self, atom: AtomIndex) -> &[Argument] {
        let i = atom.index();
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&from), Some(&to)) => &self.args[from as usize..to as usize],
            _ => &[],
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

impl Compilation {
    /// Resolves every atom's arguments against the providers in the flow and
    /// the keys of `store`, reporting every missing or ambiguous requirement.
    pub fn resolve(
        &self,
        store: &serde_json::Map<String, Value>,
    ) -> Result<Resolution, CompileErrors> {
        let mut errors = Vec::new();
        let total: usize = self.atoms.iter().map(|a| a.spec.arguments().count()).sum();
        let mut args = Vec::with_capacity(total);
        let mut start = Vec::with_capacity(self.atoms.len() + 1);
        let mut names = Interner::default();
        names.strings.reserve(total.min(self.atoms.len()));
        // Every provided name, hashed once: a search of the sorted index
        // per argument cost more than all the rest of resolving.
        let mut providers: HashMap<&str, Range<usize>, foldhash::fast::RandomState> =
            HashMap::default();
        if total > 0 {
            providers.reserve(self.providers.atoms.len());
            providers.extend(self.provider_ranges());
        }
        start.push(0);
        for index in self.indices() {
            let spec = &self.atom(index).spec;
            for arg in spec.arguments() {
                let default = spec.optional.get(arg).map(|v| Arc::new(v.clone()));
                let name = names.get(arg);
                if let Some(value) = spec.inject.get(arg) {
                    args.push(Argument {
                        symbol: name.clone(),
                        name,
                        source: ArgSource::Value(Arc::new(value.clone())),
                        default,
                    });
                    continue;
                }
                let symbol = names.get(spec.rebind.get(arg).map_or(arg, String::as_str));
                let all = providers
                    .get(&*symbol)
                    .map_or(&[][..], |range| self.providers_at(range.clone()));
                match self.source_of(index, &symbol, all, store, default.as_ref()) {
                    Ok(source) => args.push(Argument {
                        name,
                        symbol,
                        source,
                        default,
                    }),
                    Err(e) => errors.push(e),
                }
            }
            start.push(u32::try_from(args.len()).unwrap_or(u32::MAX));
        }
        if errors.is_empty() {
            Ok(Resolution { start, args })
        } else {
            Err(CompileErrors(errors))
        }
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

    fn source_of(
        &self,
        atom: AtomIndex,
        symbol_name: &Arc<str>,
        all: &[AtomIndex],
        store: &serde_json::Map<String, Value>,
        default: Option<&Arc<Value>>,
    ) -> Result<ArgSource, CompileError> {
        let symbol: &str = symbol_name;
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
        if store.contains_key(symbol) {
            return Ok(ArgSource::Store(symbol_name.clone()));
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
