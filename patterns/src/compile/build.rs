//! Flattening a flow tree into the DAG.
//!
//! One pass over the tree adds atoms and edges; data dependencies between
//! siblings are computed only where a pattern needs them (graph flows),
//! from the atoms of each child. The graph's adjacency is then
//! laid out as compressed lists, and checked for cycles with a topological
//! sort (Tarjan's algorithm runs only to name the atoms of a cycle found).
//!
//! Compile runs once per engine built, so it is on the path users time: a
//! pattern's symbol table is one sorted vector built in one pass (no tree
//! or hash node per child), the set of taken names hashes with `foldhash`,
//! and names are sorted with their first bytes as a key.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{
    prefix, provided_name, sort_by_name, AtomImpl, AtomIndex, Compilation, CompiledAtom,
    CompiledDecider, CompiledFlow, Csr, FlowIndex, NameKey, Providers,
};
use crate::depth;
use crate::flow::{FlowParts, Node};
use crate::{
    value_depth, AtomSpec, CompileError, CompileErrors, Flow, MAX_FLOW_DEPTH, MAX_VALUE_DEPTH,
};

/// The atoms at one end of a built part. A boxed slice, not a vector, for
/// many: a flow holds a part per child while it is built, a million of
/// them for a flow of a million atoms.
#[derive(Clone)]
enum Ends {
    One(AtomIndex),
    Many(Box<[AtomIndex]>),
}

impl Ends {
    fn as_slice(&self) -> &[AtomIndex] {
        match self {
            Ends::One(a) => std::slice::from_ref(a),
            Ends::Many(v) => v,
        }
    }

    fn collect(parts: impl Iterator<Item = AtomIndex>) -> Self {
        let v: Vec<AtomIndex> = parts.collect();
        match v.as_slice() {
            [one] => Ends::One(*one),
            _ => Ends::Many(v.into_boxed_slice()),
        }
    }
}

/// What a built child offers to its siblings.
struct Part {
    /// Atoms with no predecessor inside the part.
    sources: Ends,
    /// Atoms with no successor inside the part.
    sinks: Ends,
    /// The atoms of the part: `first..end`.
    first: usize,
    end: usize,
}

impl Part {
    fn is_empty(&self) -> bool {
        self.first == self.end
    }
}

/// Every name the children of a pattern provide, with the child (by
/// position) that provides it: sorted by (name, child), without repeats,
/// each name with its [`prefix`] first (to compare numbers, not strings).
struct Provided<'a>(Vec<(u64, &'a str, usize)>);

impl Provided<'_> {
    /// The pairs `(provider, child)` for every `(symbol, child)` of
    /// `wanted`, `provider` being each child that provides `symbol`.
    /// `wanted` is sorted by symbol as the index is, and both are walked once side by
    /// side, instead of a binary search of the index per symbol, whose cost
    /// grows with the graph.
    fn pairs(&self, wanted: &[(u64, &str, usize)]) -> Vec<(usize, usize)> {
        let mut pairs = Vec::with_capacity(wanted.len());
        let mut at = 0;
        for &(key, symbol, child) in wanted {
            while self
                .0
                .get(at)
                .is_some_and(|&(p, s, _)| (p, s) < (key, symbol))
            {
                at += 1;
            }
            let providers = self.0[at..]
                .iter()
                .take_while(|&&(p, s, _)| p == key && s == symbol);
            pairs.extend(providers.map(|&(_, _, provider)| (provider, child)));
        }
        pairs
    }

    /// Whether child `child` provides `symbol` itself.
    fn by(&self, symbol: &str, child: usize) -> bool {
        self.0
            .binary_search(&(prefix(symbol), symbol, child))
            .is_ok()
    }
}

#[derive(Default)]
struct Builder {
    atoms: Vec<CompiledAtom>,
    flows: Vec<CompiledFlow>,
    edges: Vec<(AtomIndex, AtomIndex, Option<u32>)>,
    deciders: Vec<CompiledDecider>,
    errors: Vec<CompileError>,
}

pub(super) fn build(flow: &Flow) -> Result<Compilation, CompileErrors> {
    // Building recurses once per level of flows: measure first, with a
    // heap stack, so a flow too deep is an error rather than an abort.
    let nesting = depth::nesting(flow, MAX_FLOW_DEPTH);
    if let Some(past) = nesting.past_limit {
        return Err(CompileErrors(vec![CompileError::TooDeep {
            flow: past.name().to_owned(),
            depth: nesting.depth,
            limit: MAX_FLOW_DEPTH,
        }]));
    }
    let mut b = Builder::default();
    let atoms = atom_count(flow);
    b.atoms.reserve_exact(atoms);
    b.flow(flow, None, None);
    b.finish()
}

impl Builder {
    /// The errors of atom names taken by more than one atom, from the atoms
    /// sorted by name (`by_name`, a stable sort, so each repeat follows
    /// the first of its name): one per repeat, in the order the repeats
    /// were added, put before the other errors as they were found while
    /// the atoms were added (the error a link to such a name gave is one
    /// of them, not one more). As in TaskFlow, atom names are
    /// unique among atoms only: a flow may share its name with an atom, or
    /// with another flow.
    ///
    /// A hash set of the names taken, filled as atoms were added, did the
    /// same; on a flow of a million atoms its inserts were a cache miss
    /// each, where the sort by name is needed anyway.
    fn repeated_names(&mut self, by_name: &[AtomIndex]) {
        let name = |a: AtomIndex| self.atoms[a.index()].name();
        let mut repeats: Vec<AtomIndex> = by_name
            .windows(2)
            // An empty name has its own error (`empty_name`), not this one.
            .filter(|w| !name(w[1]).is_empty() && name(w[0]) == name(w[1]))
            .map(|w| w[1])
            .collect();
        if repeats.is_empty() {
            return;
        }
        repeats.sort_unstable();
        let mut errors: Vec<CompileError> = Vec::with_capacity(repeats.len());
        for a in repeats {
            let error = CompileError::DuplicateName {
                name: name(a).to_owned(),
            };
            // A link to the name may have reported it already: moved here.
            if let Some(i) = self.errors.iter().position(|e| *e == error) {
                self.errors.remove(i);
            }
            errors.push(error);
        }
        self.errors.splice(0..0, errors);
    }

    /// The error of an atom or flow with an empty name inside `flow`.
    /// (Names that atoms share are found once every atom is in, by
    /// [`Builder::repeated_names`].)
    fn empty_name(&mut self, flow: Option<FlowIndex>) {
        let flow = flow.map_or_else(String::new, |f| self.flows[f.index()].name.clone());
        self.errors.push(CompileError::EmptyName { flow });
    }

    fn add_atom(
        &mut self,
        spec: &Arc<AtomSpec>,
        imp: AtomImpl,
        flow: FlowIndex,
        retry: Option<AtomIndex>,
    ) -> AtomIndex {
        for (argument, value) in spec.constants() {
            let depth = value_depth(value);
            if depth > MAX_VALUE_DEPTH {
                self.errors.push(CompileError::ValueTooDeep {
                    atom: spec.name.to_string(),
                    argument: argument.to_string(),
                    depth,
                    limit: MAX_VALUE_DEPTH,
                });
            }
        }
        let index = AtomIndex::new(self.atoms.len());
        self.atoms.push(CompiledAtom {
            spec: spec.clone(),
            imp,
            retry,
            flow,
            controls: None,
        });
        // Every flow from `flow` up holds the atom.
        let mut at = Some(flow);
        while let Some(f) = at {
            self.flows[f.index()].atoms.push(index);
            at = self.flows[f.index()].parent;
        }
        index
    }

    fn single(index: AtomIndex) -> Part {
        Part {
            sources: Ends::One(index),
            sinks: Ends::One(index),
            first: index.index(),
            end: index.index() + 1,
        }
    }

    fn node(&mut self, node: &Node, parent: FlowIndex, retry: Option<AtomIndex>) -> Part {
        match node {
            Node::Task(atom) => {
                if atom.name().is_empty() {
                    self.empty_name(Some(parent));
                }
                let task = AtomImpl::Task(atom.kind.clone());
                Self::single(self.add_atom(&atom.spec, task, parent, retry))
            }
            Node::Flow(flow) => self.flow(flow, Some(parent), retry),
        }
    }

    fn link(&mut self, from: &[AtomIndex], to: &[AtomIndex], decider: Option<u32>) {
        for &f in from {
            for &t in to {
                self.edges.push((f, t, decider));
            }
        }
    }

    /// The names `children` provide, each with its providers.
    fn provided(&self, children: &[Part]) -> Provided<'_> {
        let mut entries = Vec::new();
        for (i, c) in children.iter().enumerate() {
            for a in &self.atoms[c.first..c.end] {
                entries.extend(a.spec.provides.names().map(|s| (prefix(s), s, i)));
            }
        }
        sort_by_name(&mut entries, |e| e.0, |a, b| (a.1, a.2).cmp(&(b.1, b.2)));
        entries.dedup();
        Provided(entries)
    }

    /// The symbols `child` requires from outside itself (from its siblings
    /// or the store), in no particular order, repeats included.
    fn requires<'s>(
        &'s self,
        provided: &'s Provided<'_>,
        children: &[Part],
        child: usize,
    ) -> impl Iterator<Item = &'s str> + 's {
        let c = &children[child];
        let atoms = &self.atoms[c.first..c.end];
        atoms
            .iter()
            .flat_map(|a| a.spec.required_symbols().map(|(s, _)| s))
            .filter(move |s| match atoms {
                // The common child, one atom: its own names, not a search.
                [a] => !a.spec.provides.names().any(|p| p == *s),
                _ => !provided.by(s, child),
            })
    }

    fn flow(&mut self, flow: &Flow, parent: Option<FlowIndex>, retry: Option<AtomIndex>) -> Part {
        let parts: &FlowParts = flow.parts();
        if parts.name.is_empty() {
            self.empty_name(parent);
        }
        let index = FlowIndex::new(self.flows.len());
        self.flows.push(CompiledFlow {
            name: parts.name.clone(),
            parent,
            retry: None,
            atoms: Vec::with_capacity(atom_count(flow)),
        });
        let first = self.atoms.len();

        let mut controller = None;
        if let Some(r) = &parts.retry {
            if r.name().is_empty() {
                self.empty_name(Some(index));
            }
            let ri = self.add_atom(&r.spec, AtomImpl::Retry(r.kind.clone()), index, retry);
            self.atoms[ri.index()].controls = Some(index);
            self.flows[index.index()].retry = Some(ri);
            controller = Some(ri);
        }
        let inner_retry = controller.or(retry);
        let children: Vec<Part> = parts
            .children
            .iter()
            .map(|c| self.node(c, index, inner_retry))
            .collect();

        let (sources, sinks) = match flow {
            Flow::Linear(_) => self.linear(&children),
            Flow::Unordered(_) => self.unordered(&children),
            Flow::Graph(g) => self.graph(index, &parts.children, &children, g.links()),
        };
        let (sources, sinks) = match controller {
            Some(ri) if sources.is_empty() => (vec![ri], vec![ri]),
            Some(ri) => {
                self.link(&[ri], &sources, None);
                (vec![ri], sinks)
            }
            None => (sources, sinks),
        };
        Part {
            sources: Ends::collect(sources.into_iter()),
            sinks: Ends::collect(sinks.into_iter()),
            first,
            end: self.atoms.len(),
        }
    }

    fn linear(&mut self, children: &[Part]) -> (Vec<AtomIndex>, Vec<AtomIndex>) {
        let mut sources: &[AtomIndex] = &[];
        let mut prev: &[AtomIndex] = &[];
        for c in children.iter().filter(|c| !c.is_empty()) {
            if sources.is_empty() {
                sources = c.sources.as_slice();
            } else {
                for &f in prev {
                    for &t in c.sources.as_slice() {
                        self.edges.push((f, t, None));
                    }
                }
            }
            prev = c.sinks.as_slice();
        }
        (sources.to_vec(), prev.to_vec())
    }

    /// Children of an unordered flow have no order among them, so none
    /// feeds another: what a child requires comes from outside the flow
    /// (the store, or atoms that run before it), never from a sibling, as
    /// in TaskFlow ([`Compilation::resolve`] finds no sibling before it).
    fn unordered(&mut self, children: &[Part]) -> (Vec<AtomIndex>, Vec<AtomIndex>) {
        let sources = children
            .iter()
            .flat_map(|c| c.sources.as_slice())
            .copied()
            .collect();
        let sinks = children
            .iter()
            .flat_map(|c| c.sinks.as_slice())
            .copied()
            .collect();
        (sources, sinks)
    }

    fn graph(
        &mut self,
        flow: FlowIndex,
        nodes: &[Node],
        children: &[Part],
        links: &[crate::Link],
    ) -> (Vec<AtomIndex>, Vec<AtomIndex>) {
        // Child names for the links, sorted. Children may share a name
        // (a flow and an atom, or two flows); a link naming such a name is
        // refused, and the last child of the name is meant meanwhile.
        let mut by_name: Vec<(&str, usize)> = Vec::new();
        if !links.is_empty() {
            by_name = nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (n.name(), i))
                .collect();
            by_name.sort_unstable();
        }
        let find = |name: &str| {
            let end = by_name.partition_point(|&(n, _)| n <= name);
            let shared = end >= 2 && by_name[end - 2].0 == name;
            let found = end
                .checked_sub(1)
                .map(|i| by_name[i])
                .filter(|&(n, _)| n == name)
                .map(|(_, i)| i);
            (found, shared)
        };
        // Linked pairs of children: declared, then inferred.
        let mut linked: Vec<(usize, usize)> = Vec::with_capacity(links.len());
        for link in links {
            let ends = [&link.from, &link.to].map(|n| {
                let (found, shared) = find(n.as_str());
                if found.is_none() {
                    self.errors.push(CompileError::UnknownLinkTarget {
                        flow: self.flows[flow.index()].name.clone(),
                        name: n.clone(),
                    });
                }
                let duplicate = CompileError::DuplicateName { name: n.clone() };
                if shared && !self.errors.contains(&duplicate) {
                    self.errors.push(duplicate);
                }
                found
            });
            let [Some(from), Some(to)] = ends else {
                continue;
            };
            let decider = link.decider.as_ref().map(|d| {
                let id = u32::try_from(self.deciders.len()).unwrap_or(u32::MAX);
                let src = &children[from];
                self.deciders.push(CompiledDecider {
                    decider: d.clone(),
                    depth: link.depth,
                    sources: (src.first..src.end).map(AtomIndex::new).collect(),
                    flow,
                    from: link.from.clone(),
                    to: link.to.clone(),
                });
                id
            });
            self.link(
                children[from].sinks.as_slice(),
                children[to].sources.as_slice(),
                decider,
            );
            linked.push((from, to));
        }
        linked.sort_unstable();
        linked.dedup();
        // Links inferred from data: a child that requires what another
        // provides runs after it. (Edges are sorted by their ends when the
        // graph is laid out, so the order found here does not show.)
        let provided = self.provided(children);
        let mut wanted = Vec::new();
        for to in 0..children.len() {
            // `to` itself is not among the providers: `requires` leaves out
            // what it provides.
            wanted.extend(
                self.requires(&provided, children, to)
                    .map(|symbol| (prefix(symbol), symbol, to)),
            );
        }
        // By symbol alone: the pairs are sorted by their ends below.
        sort_by_name(&mut wanted, |w| w.0, |a, b| a.1.cmp(b.1));
        let mut inferred = provided.pairs(&wanted);
        drop(wanted);
        drop(provided);
        // Radix: a graph of many children infers about as many pairs.
        radsort::sort_by_key(&mut inferred, |&pair| pair);
        inferred.dedup();
        inferred.retain(|pair| linked.binary_search(pair).is_err());
        for &(from, to) in &inferred {
            self.link(
                children[from].sinks.as_slice(),
                children[to].sources.as_slice(),
                None,
            );
        }
        let mut has_in = vec![false; children.len()];
        let mut has_out = vec![false; children.len()];
        for &(from, to) in linked.iter().chain(&inferred) {
            has_out[from] = true;
            has_in[to] = true;
        }
        let sources = (0..children.len())
            .filter(|&i| !has_in[i])
            .flat_map(|i| children[i].sources.as_slice())
            .copied()
            .collect();
        let sinks = (0..children.len())
            .filter(|&i| !has_out[i])
            .flat_map(|i| children[i].sinks.as_slice())
            .copied()
            .collect();
        (sources, sinks)
    }

    fn finish(mut self) -> Result<Compilation, CompileErrors> {
        let n = self.atoms.len();
        let mut edges: Vec<(AtomIndex, AtomIndex, Option<u32>)> = std::mem::take(&mut self.edges);
        // Of duplicate edges, the first declared is kept (a stable sort).
        edges.sort_by_key(|&(f, t, _)| (f, t));
        let mut incoming: Vec<(AtomIndex, u32)> = edges
            .iter()
            .filter_map(|&(_, t, d)| d.map(|d| (t, d)))
            .collect();
        incoming.sort_unstable();
        incoming.dedup();
        let incoming_deciders = csr(n, incoming.into_iter());
        edges.dedup_by_key(|&mut (f, t, _)| (f, t));
        edges.shrink_to_fit();
        let conditional: Vec<(AtomIndex, AtomIndex, u32)> = edges
            .iter()
            .filter_map(|&(f, t, d)| d.map(|d| (f, t, d)))
            .collect();

        let succ = csr(n, edges.iter().map(|&(f, t, _)| (f, t)));
        let pred = csr(n, edges.iter().map(|&(f, t, _)| (t, f)));
        drop(edges);
        if !is_acyclic(&succ, &pred, n) {
            let mut graph: DiGraph<Arc<str>, ()> = DiGraph::with_capacity(n, succ.items.len());
            for atom in &self.atoms {
                graph.add_node(Arc::from(atom.name()));
            }
            for f in 0..n {
                for &t in succ.of(AtomIndex::new(f)) {
                    graph.add_edge(NodeIndex::new(f), t.node(), ());
                }
            }
            for scc in tarjan_scc(&graph) {
                let self_loop = scc.len() == 1 && graph.contains_edge(scc[0], scc[0]);
                if scc.len() > 1 || self_loop {
                    let atoms = cycle_path(&graph, &scc)
                        .into_iter()
                        .map(|i| graph[i].to_string())
                        .collect();
                    self.errors.push(CompileError::Cycle { atoms });
                }
            }
        }
        let by_name = sorted_by_name(&self.atoms);
        self.repeated_names(&by_name);
        if !self.errors.is_empty() {
            return Err(CompileErrors(self.errors));
        }
        let atoms = self.atoms;
        let providers = providers(&atoms);
        let prioritized = atoms.iter().any(|a| a.priority() != 0);
        Ok(Compilation {
            graph: OnceLock::new(),
            atoms,
            flows: self.flows,
            deciders: self.deciders,
            by_name,
            providers,
            succ,
            pred,
            incoming_deciders,
            conditional,
            prioritized,
        })
    }
}

/// Every atom, sorted by name.
fn sorted_by_name(atoms: &[CompiledAtom]) -> Vec<AtomIndex> {
    let mut keyed: Vec<(u64, AtomIndex)> = atoms
        .iter()
        .enumerate()
        .map(|(i, a)| (prefix(a.name()), AtomIndex::new(i)))
        .collect();
    sort_by_name(
        &mut keyed,
        |x| x.0,
        |x, y| atoms[x.1.index()].name().cmp(atoms[y.1.index()].name()),
    );
    keyed.into_iter().map(|(_, a)| a).collect()
}

/// The providers of every provided name, sorted by (name, atom).
fn providers(atoms: &[CompiledAtom]) -> Providers {
    let mut entries: Vec<(NameKey, AtomIndex, u32)> = Vec::with_capacity(atoms.len());
    for (i, atom) in atoms.iter().enumerate() {
        entries.extend(
            (0u32..)
                .zip(atom.spec.provides.names())
                .map(|(k, name)| (NameKey::of(name), AtomIndex::new(i), k)),
        );
    }
    let name = |a: AtomIndex, k: u32| provided_name(&atoms[a.index()].spec.provides, k);
    // Entries of one name stay in atom order (and an atom's own in order).
    sort_by_name(
        &mut entries,
        |x| x.0.prefix,
        |x, y| {
            x.0.cmp_names(|| name(x.1, x.2), y.0, || name(y.1, y.2))
                .then_with(|| (x.1, x.2).cmp(&(y.1, y.2)))
        },
    );
    Providers {
        atoms: entries.iter().map(|&(_, a, _)| a).collect(),
        names: entries.iter().map(|&(_, _, k)| k).collect(),
        keys: entries.iter().map(|&(key, _, _)| key).collect(),
    }
}

/// How many atoms `flow` holds, nested flows and retry controllers included
/// (to allocate exactly what compile needs).
fn atom_count(flow: &Flow) -> usize {
    let parts = flow.parts();
    let children: usize = parts
        .children
        .iter()
        .map(|c| match c {
            Node::Task(_) => 1,
            Node::Flow(f) => atom_count(f),
        })
        .sum();
    children + usize::from(parts.retry.is_some())
}

/// Kahn's algorithm: whether every atom can be ordered.
fn is_acyclic(succ: &Csr<AtomIndex>, pred: &Csr<AtomIndex>, n: usize) -> bool {
    let mut indegree: Vec<u32> = (0..n)
        .map(|i| u32::try_from(pred.of(AtomIndex::new(i)).len()).unwrap_or(u32::MAX))
        .collect();
    let mut stack: Vec<AtomIndex> = (0..n)
        .filter(|&i| indegree[i] == 0)
        .map(AtomIndex::new)
        .collect();
    let mut seen = 0;
    while let Some(a) = stack.pop() {
        seen += 1;
        for &s in succ.of(a) {
            indegree[s.index()] -= 1;
            if indegree[s.index()] == 0 {
                stack.push(s);
            }
        }
    }
    seen == n
}

/// One cycle through the first node of a strongly connected component, in
/// edge order (a shortest one, found breadth first inside the component).
fn cycle_path(graph: &DiGraph<Arc<str>, ()>, scc: &[NodeIndex]) -> Vec<NodeIndex> {
    let start = scc[0];
    let inside: HashSet<NodeIndex> = scc.iter().copied().collect();
    let mut parent: HashMap<NodeIndex, NodeIndex> = HashMap::new();
    let mut queue = std::collections::VecDeque::from([start]);
    while let Some(at) = queue.pop_front() {
        for next in graph.neighbors(at) {
            if next == start {
                let mut path = vec![at];
                while let Some(&p) = parent.get(path.last().unwrap_or(&start)) {
                    path.push(p);
                }
                if path.last() != Some(&start) {
                    path.push(start);
                }
                path.reverse();
                path.dedup();
                return path;
            }
            if inside.contains(&next) && !parent.contains_key(&next) && next != start {
                parent.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    scc.to_vec()
}

/// Compressed lists from pairs; each atom's list keeps the order its pairs
/// come in. Empty when there are no pairs.
fn csr<T: Copy>(n: usize, pairs: impl Iterator<Item = (AtomIndex, T)> + Clone) -> Csr<T> {
    let Some((_, filler)) = pairs.clone().next() else {
        return Csr {
            start: Vec::new(),
            items: Vec::new(),
        };
    };
    let mut start = vec![0u32; n + 1];
    for (from, _) in pairs.clone() {
        start[from.index() + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut items = vec![filler; start[n] as usize];
    for (from, item) in pairs {
        let slot = &mut fill[from.index()];
        items[*slot as usize] = item;
        *slot += 1;
    }
    Csr { start, items }
}

#[cfg(test)]
mod tests {
    /// A part per child of a flow is held while the flow is built: its
    /// size is what compiling a large flow writes to fresh memory.
    #[test]
    #[cfg(target_pointer_width = "64")]
    fn a_part_is_48_bytes() {
        assert_eq!(std::mem::size_of::<super::Part>(), 48);
    }
}
