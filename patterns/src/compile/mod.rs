//! Compilation: a flow tree becomes a `petgraph` DAG of atoms, plus the tree
//! of flows and retry scopes. After compile the graph never changes, so the
//! engine keeps per-atom state in vectors indexed by [`AtomIndex`].
//!
//! Edges come from pattern order (linear), explicit and inferred links
//! (graph), and retry controllers (a controller runs before every atom of its
//! flow). A retry's *scope* is every atom of its flow, nested flows included.

mod build;
mod resolve;

use std::fmt;
use std::num::NonZeroU32;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::{AtomKind, AtomSpec, CompileErrors, Decider, Depth, Flow, Name, Provides, Retry, Task};

pub use resolve::{ArgSource, Argument, Resolution};

/// A position held plus one in a `NonZeroU32`, so that an `Option` of it
/// is 4 bytes (no position is `u32::MAX`): the compiled atoms and the
/// engine's per-atom vectors hold such options for every atom of a flow,
/// a million of them in a large one. Ordered as the positions are.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Dense(NonZeroU32);

impl Dense {
    /// Position `i`; from `u32::MAX - 1` on it saturates there (no flow
    /// has that many atoms: compiling it would not fit in memory).
    /// (Written out: `u32::try_from(i).unwrap_or(u32::MAX)` here cost W1
    /// and W3 half a percent more instructions to build and run.)
    #[inline]
    fn new(i: usize) -> Self {
        let i = if i < u32::MAX as usize {
            i as u32
        } else {
            u32::MAX - 1
        };
        Dense(NonZeroU32::MIN.saturating_add(i))
    }

    #[inline]
    fn get(self) -> u32 {
        self.0.get() - 1
    }
}

/// Shows the position, so an index reads `AtomIndex(7)`.
impl fmt::Debug for Dense {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.get().fmt(f)
    }
}

/// The dense index of an atom in a [`Compilation`] (4 bytes, and 4 in an
/// `Option` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AtomIndex(Dense);

impl AtomIndex {
    /// The index as a `usize`, for indexing per-atom vectors.
    #[inline]
    pub fn index(self) -> usize {
        self.0.get() as usize
    }

    /// The atom at position `i`.
    #[inline]
    pub fn new(i: usize) -> Self {
        AtomIndex(Dense::new(i))
    }

    fn node(self) -> NodeIndex {
        NodeIndex::new(self.index())
    }
}

/// The dense index of a flow in a [`Compilation`] (4 bytes, and 4 in an
/// `Option` too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FlowIndex(Dense);

impl FlowIndex {
    /// The index as a `usize`.
    #[inline]
    pub fn index(self) -> usize {
        self.0.get() as usize
    }

    #[inline]
    fn new(i: usize) -> Self {
        FlowIndex(Dense::new(i))
    }
}

/// What an atom runs.
#[derive(Clone)]
pub enum AtomImpl {
    /// A task.
    Task(Arc<dyn Task>),
    /// A retry controller.
    Retry(Arc<dyn Retry>),
}

/// One atom of a compiled flow.
#[derive(Clone)]
pub struct CompiledAtom {
    /// Its declared interface (its name is [`name`](Self::name)).
    pub spec: Arc<AtomSpec>,
    /// What it runs.
    pub imp: AtomImpl,
    /// The innermost retry controller whose scope holds it (for a retry atom,
    /// the controller of the flow around its own flow).
    pub retry: Option<AtomIndex>,
    /// The innermost flow that holds it.
    pub flow: FlowIndex,
    /// For a retry atom, the flow it controls.
    pub controls: Option<FlowIndex>,
}

impl CompiledAtom {
    /// The atom's name (its spec's).
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// The atom's priority: among atoms ready to run (or revert) at once,
    /// higher starts first (TaskFlow's `Atom.priority`; 0 unless set with
    /// [`Atom::priority`](crate::Atom::priority)).
    pub fn priority(&self) -> i32 {
        self.spec.priority()
    }

    /// Task or retry.
    pub fn kind(&self) -> AtomKind {
        match self.imp {
            AtomImpl::Task(_) => AtomKind::Task,
            AtomImpl::Retry(_) => AtomKind::Retry,
        }
    }
}

impl fmt::Debug for CompiledAtom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledAtom")
            .field("name", &self.name())
            .field("kind", &self.kind())
            .field("retry", &self.retry)
            .field("flow", &self.flow)
            .finish()
    }
}

/// One flow of a compiled flow tree.
#[derive(Debug, Clone)]
pub struct CompiledFlow {
    /// The flow's name.
    pub name: String,
    /// The flow around it.
    pub parent: Option<FlowIndex>,
    /// Its retry controller.
    pub retry: Option<AtomIndex>,
    /// Every atom inside it, nested flows and its own controller included.
    pub atoms: Vec<AtomIndex>,
}

/// A conditional link, compiled.
#[derive(Clone)]
pub struct CompiledDecider {
    /// The decider.
    pub decider: Arc<dyn Decider>,
    /// How far a false decision reaches.
    pub depth: Depth,
    /// The atoms whose results the decider sees (the link's source node).
    pub sources: Vec<AtomIndex>,
    /// The graph flow that declared the link.
    pub flow: FlowIndex,
    /// The link's source name.
    pub from: String,
    /// The link's target name.
    pub to: String,
}

impl fmt::Debug for CompiledDecider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledDecider")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("depth", &self.depth)
            .finish()
    }
}

/// A compiled flow: the DAG of atoms, their flows and retry scopes, and the
/// conditional links. Build one with [`compile`].
///
/// ```
/// use taskflow_patterns::{atom, compile, task_fn, Linear, Value};
/// let flow = Linear::new("f")
///     .add(atom("a", task_fn(|_| Ok(Value::from(1)))).provides("x"))
///     .add(atom("b", task_fn(|_| Ok(Value::Null))).requires(["x"]));
/// let c = compile(&flow.into()).unwrap();
/// let a = c.atom_index("a").unwrap();
/// let b = c.atom_index("b").unwrap();
/// assert_eq!(c.successors(a), &[b]);
/// ```
pub struct Compilation {
    /// Built on first use: the engine never asks for it.
    graph: OnceLock<DiGraph<Arc<str>, Option<u32>>>,
    atoms: Vec<CompiledAtom>,
    flows: Vec<CompiledFlow>,
    deciders: Vec<CompiledDecider>,
    /// Every atom, sorted by name.
    by_name: Vec<AtomIndex>,
    providers: Providers,
    succ: Csr<AtomIndex>,
    pred: Csr<AtomIndex>,
    /// For each atom, the deciders on its incoming edges.
    incoming_deciders: Csr<u32>,
    /// The conditional edges `(from, to, decider)`, sorted.
    conditional: Vec<(AtomIndex, AtomIndex, u32)>,
    /// Some atom has a priority other than 0.
    prioritized: bool,
}

/// Compressed per-atom lists (one allocation for all atoms): the items of
/// atom `i` are `items[start[i]..start[i + 1]]`. With no items at all,
/// `start` is empty too.
struct Csr<T> {
    start: Vec<u32>,
    items: Vec<T>,
}

impl<T> Csr<T> {
    fn of(&self, atom: AtomIndex) -> &[T] {
        let i = atom.index();
        match (self.start.get(i), self.start.get(i + 1)) {
            (Some(&from), Some(&to)) => &self.items[from as usize..to as usize],
            _ => &[],
        }
    }
}

/// Symbol to the atoms that provide it, without a copy of the symbols: one
/// entry per provided name, sorted by (name, atom); the name is read from
/// the atom's [`Provides`].
#[derive(Default)]
struct Providers {
    /// The providing atom of each entry.
    atoms: Vec<AtomIndex>,
    /// The position of the entry's name in its atom's `provides`.
    names: Vec<u32>,
    /// The key of the entry's name ([`NameKey`]), so that resolving can
    /// walk the index beside its own sorted symbols without reading the
    /// names of atoms all over the flow.
    keys: Vec<NameKey>,
}

/// What orders a name cheaply: its [`prefix`] and length. Two names of at
/// most eight bytes compare by these alone (the prefix holds all their
/// bytes, and of two that differ only by trailing zero bytes the shorter
/// sorts first); longer ones with one prefix are told apart by their text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct NameKey {
    prefix: u64,
    len: u32,
}

impl NameKey {
    fn of(s: &str) -> Self {
        NameKey {
            prefix: prefix(s),
            len: u32::try_from(s.len()).unwrap_or(u32::MAX),
        }
    }

    /// How the names `a` (key `self`) and `b` (key `other`) compare, as
    /// strings: the text is read only when the keys cannot tell.
    fn cmp_names<'a, 'b>(
        self,
        a: impl FnOnce() -> &'a str,
        other: NameKey,
        b: impl FnOnce() -> &'b str,
    ) -> std::cmp::Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| {
            if self.len <= 8 && other.len <= 8 {
                self.len.cmp(&other.len)
            } else {
                a().cmp(b())
            }
        })
    }
}

/// Sorts `items` by name, keeping items of one name in the order they came:
/// `prefix_of` gives the [`prefix`] of an item's name, `cmp` orders two
/// items whose prefixes are equal (by the rest of their names, then by
/// whatever else the caller orders by).
///
/// A large slice is radix-sorted by the prefixes (radsort makes a pass per
/// byte that differs between them, where a comparison sort made about
/// `log2(n)` comparisons of each item, a fifth of W3's instructions at
/// N=20,000);
/// then each run that shares a prefix, names of more than eight bytes alike
/// in their first eight, is sorted by `cmp`.
fn sort_by_name<T>(
    items: &mut [T],
    prefix_of: impl Fn(&T) -> u64,
    cmp: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    /// Below this, a comparison sort: radsort's documentation finds it
    /// slower on short slices (its histograms have 256 buckets per byte).
    /// The value is a round guess, not measured here.
    const SMALL: usize = 64;
    if items.len() < SMALL {
        items.sort_by(|a, b| prefix_of(a).cmp(&prefix_of(b)).then_with(|| cmp(a, b)));
        return;
    }
    radsort::sort_by_key(items, &prefix_of);
    let mut start = 0;
    while start < items.len() {
        let key = prefix_of(&items[start]);
        let end = start
            + items[start..]
                .iter()
                .take_while(|item| prefix_of(item) == key)
                .count();
        if end - start > 1 {
            items[start..end].sort_by(&cmp);
        }
        start = end;
    }
}

/// The first `i` in `lo..hi` for which `below(i)` is false (`below` holds
/// for a prefix of the range).
fn partition_point(mut lo: usize, mut hi: usize, below: impl Fn(usize) -> bool) -> usize {
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The first eight bytes of `s`, zero-padded, as a big-endian number:
/// `prefix(a) < prefix(b)` implies `a < b`, so sorts and searches compare
/// these first and read the strings only on a tie.
fn prefix(s: &str) -> u64 {
    let bytes = s.as_bytes();
    match bytes
        .get(..8)
        .and_then(|head| <[u8; 8]>::try_from(head).ok())
    {
        Some(head) => u64::from_be_bytes(head),
        None => {
            let mut head = [0u8; 8];
            for (to, from) in head.iter_mut().zip(bytes) {
                *to = *from;
            }
            u64::from_be_bytes(head)
        }
    }
}

/// Name `position` of `provides`.
fn provided_name(provides: &Provides, position: u32) -> &str {
    match provides {
        Provides::Single(name) if position == 0 => name,
        Provides::Sequence(names) | Provides::Mapping(names) => {
            names.get(position as usize).map_or("", Name::as_str)
        }
        _ => "",
    }
}

/// Compiles a flow, reporting every structural error found: atoms sharing a
/// name, empty names, unknown or ambiguous link targets, cycles.
/// Requirements are checked later, against the store, by
/// [`Compilation::resolve`]: a child of an unordered flow is fed from
/// outside the flow, never by a sibling, as in TaskFlow.
pub fn compile(flow: &Flow) -> Result<Compilation, CompileErrors> {
    build::build(flow)
}

impl Compilation {
    /// Whether some atom has a [`priority`](CompiledAtom::priority) other
    /// than 0 (engines keep ready atoms in priority order only then).
    pub fn has_priorities(&self) -> bool {
        self.prioritized
    }

    /// The DAG: node weights are atom names, edge weights the index of the
    /// link's decider, if conditional. Node `i` is atom `AtomIndex(i)`.
    /// Built on the first call.
    pub fn graph(&self) -> &DiGraph<Arc<str>, Option<u32>> {
        self.graph.get_or_init(|| {
            let edges = self.succ.items.len();
            let mut graph = DiGraph::with_capacity(self.atoms.len(), edges);
            for atom in &self.atoms {
                graph.add_node(Arc::from(atom.name()));
            }
            for from in self.indices() {
                for &to in self.successors(from) {
                    let decider = self
                        .conditional
                        .binary_search_by_key(&(from, to), |&(f, t, _)| (f, t))
                        .ok()
                        .map(|i| self.conditional[i].2);
                    graph.add_edge(from.node(), to.node(), decider);
                }
            }
            graph
        })
    }

    /// How many atoms there are.
    pub fn len(&self) -> usize {
        self.atoms.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.atoms.is_empty()
    }

    /// Every atom, by index.
    pub fn atoms(&self) -> &[CompiledAtom] {
        &self.atoms
    }

    /// The atom at `index`.
    pub fn atom(&self, index: AtomIndex) -> &CompiledAtom {
        &self.atoms[index.index()]
    }

    /// The index of the atom named `name`.
    pub fn atom_index(&self, name: &str) -> Option<AtomIndex> {
        self.by_name
            .binary_search_by(|a| (*self.atom(*a).name()).cmp(name))
            .ok()
            .map(|i| self.by_name[i])
    }

    /// Every atom index, in order.
    pub fn indices(&self) -> impl Iterator<Item = AtomIndex> + '_ {
        (0..self.atoms.len()).map(AtomIndex::new)
    }

    /// The atoms that run right after `atom`.
    pub fn successors(&self, atom: AtomIndex) -> &[AtomIndex] {
        self.succ.of(atom)
    }

    /// The atoms that run right before `atom`.
    pub fn predecessors(&self, atom: AtomIndex) -> &[AtomIndex] {
        self.pred.of(atom)
    }

    /// Every flow; index 0 is the top flow.
    pub fn flows(&self) -> &[CompiledFlow] {
        &self.flows
    }

    /// The flow at `index`.
    pub fn flow(&self, index: FlowIndex) -> &CompiledFlow {
        &self.flows[index.index()]
    }

    /// The name of the top flow.
    pub fn name(&self) -> &str {
        &self.flows[0].name
    }

    /// The atoms of a retry controller's scope (its flow, without itself).
    pub fn scope(&self, retry: AtomIndex) -> impl Iterator<Item = AtomIndex> + '_ {
        let atoms: &[AtomIndex] = match self.atom(retry).controls {
            Some(flow) => &self.flow(flow).atoms,
            None => &[],
        };
        atoms.iter().copied().filter(move |a| *a != retry)
    }

    /// Whether `flow` holds `atom`, directly or through nested flows.
    pub fn flow_contains(&self, flow: FlowIndex, atom: AtomIndex) -> bool {
        let mut at = Some(self.atom(atom).flow);
        while let Some(f) = at {
            if f == flow {
                return true;
            }
            at = self.flow(f).parent;
        }
        false
    }

    /// The conditional links.
    pub fn deciders(&self) -> &[CompiledDecider] {
        &self.deciders
    }

    /// The deciders on the edges into `atom` (indices into [`deciders`](Self::deciders)).
    pub fn incoming_deciders(&self, atom: AtomIndex) -> &[u32] {
        self.incoming_deciders.of(atom)
    }

    /// The atoms that provide `symbol`.
    pub fn providers(&self, symbol: &str) -> &[AtomIndex] {
        let p = &self.providers;
        let name = |i: usize| provided_name(&self.atom(p.atoms[i]).spec.provides, p.names[i]);
        let first = partition_point(0, p.atoms.len(), |i| name(i) < symbol);
        // A name has few providers: walk them rather than search again.
        let end = (first..p.atoms.len())
            .find(|&i| name(i) != symbol)
            .unwrap_or(p.atoms.len());
        &p.atoms[first..end]
    }

    /// The providers at `range` of the index (as resolving found the
    /// range).
    fn providers_at(&self, range: Range<usize>) -> &[AtomIndex] {
        self.providers.atoms.get(range).unwrap_or_default()
    }

    /// Every atom reachable from `from` (not itself), following edges forward.
    pub fn descendants(&self, from: AtomIndex) -> Vec<AtomIndex> {
        self.walk(from, |a| self.successors(a))
    }

    /// Whether `ancestor` runs, directly or not, before `atom`.
    pub fn is_ancestor(&self, ancestor: AtomIndex, atom: AtomIndex) -> bool {
        if self.predecessors(atom).contains(&ancestor) {
            return true;
        }
        let mut seen = vec![false; self.atoms.len()];
        let mut stack = vec![atom];
        while let Some(a) = stack.pop() {
            for &p in self.predecessors(a) {
                if p == ancestor {
                    return true;
                }
                if !seen[p.index()] {
                    seen[p.index()] = true;
                    stack.push(p);
                }
            }
        }
        false
    }

    fn walk<'s, F>(&'s self, from: AtomIndex, next: F) -> Vec<AtomIndex>
    where
        F: Fn(AtomIndex) -> &'s [AtomIndex],
    {
        let mut seen = vec![false; self.atoms.len()];
        let mut out = Vec::new();
        let mut stack = vec![from];
        while let Some(a) = stack.pop() {
            for &n in next(a) {
                if !seen[n.index()] {
                    seen[n.index()] = true;
                    out.push(n);
                    stack.push(n);
                }
            }
        }
        out
    }
}

impl fmt::Debug for Compilation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compilation")
            .field("flow", &self.name())
            .field("atoms", &self.atoms.len())
            .field("edges", &self.succ.items.len())
            .finish()
    }
}

#[cfg(test)]
mod tests;
