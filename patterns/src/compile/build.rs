//! Flattening a flow tree into the DAG.
//!
//! One pass over the tree adds atoms and edges; data dependencies between
//! siblings are computed only where a pattern needs them (unordered and
//! graph flows), from the atoms of each child. The graph's adjacency is then
//! laid out as compressed lists, and checked for cycles with a topological
//! sort (Tarjan's algorithm runs only to name the atoms of a cycle found).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use super::{
    Adjacency, AtomImpl, AtomIndex, Compilation, CompiledAtom, CompiledDecider, CompiledFlow,
    FlowIndex,
};
use crate::flow::{FlowParts, Node};
use crate::{AtomSpec, CompileError, CompileErrors, Flow};

/// The atoms at one end of a built part.
#[derive(Clone)]
enum Ends {
    One(AtomIndex),
    Many(Vec<AtomIndex>),
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
            _ => Ends::Many(v),
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

/// The symbols a part provides, and those it requires from outside itself.
struct Symbols<'a> {
    provides: BTreeSet<&'a str>,
    requires: BTreeSet<&'a str>,
}

#[derive(Default)]
struct Builder<'f> {
    atoms: Vec<CompiledAtom>,
    flows: Vec<CompiledFlow>,
    edges: Vec<(AtomIndex, AtomIndex, Option<u32>)>,
    deciders: Vec<CompiledDecider>,
    names: HashSet<&'f str>,
    errors: Vec<CompileError>,
}

pub(super) fn build(flow: &Flow) -> Result<Compilation, CompileErrors> {
    let mut b = Builder::default();
    b.flow(flow, None, None);
    b.finish()
}

impl<'f> Builder<'f> {
    /// Records `name` as taken, or the error if it is empty or taken. `flow`
    /// is the flow holding it, named in the error.
    fn claim_name(&mut self, name: &'f str, flow: Option<FlowIndex>) {
        if name.is_empty() {
            let flow = flow.map_or_else(String::new, |f| self.flows[f.index()].name.clone());
            self.errors.push(CompileError::EmptyName { flow });
        } else if !self.names.insert(name) {
            self.errors.push(CompileError::DuplicateName {
                name: name.to_owned(),
            });
        }
    }

    fn add_atom(
        &mut self,
        spec: &Arc<AtomSpec>,
        imp: AtomImpl,
        flow: FlowIndex,
        retry: Option<AtomIndex>,
    ) -> AtomIndex {
        let index = AtomIndex::new(self.atoms.len());
        self.atoms.push(CompiledAtom {
            name: Arc::from(spec.name.as_str()),
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

    fn node(&mut self, node: &'f Node, parent: FlowIndex, retry: Option<AtomIndex>) -> Part {
        match node {
            Node::Task(atom) => {
                self.claim_name(atom.name(), Some(parent));
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

    /// The symbols of the atoms `first..end`.
    fn symbols(&self, part: &Part) -> Symbols<'_> {
        let atoms = &self.atoms[part.first..part.end];
        let provides: BTreeSet<&str> = atoms.iter().flat_map(|a| a.spec.provides.names()).collect();
        let requires = atoms
            .iter()
            .flat_map(|a| a.spec.required_symbols().map(|(s, _)| s))
            .filter(|s| !provides.contains(s))
            .collect();
        Symbols { provides, requires }
    }

    fn flow(
        &mut self,
        flow: &'f Flow,
        parent: Option<FlowIndex>,
        retry: Option<AtomIndex>,
    ) -> Part {
        let parts: &'f FlowParts = flow.parts();
        self.claim_name(&parts.name, parent);
        let index = FlowIndex(u32::try_from(self.flows.len()).unwrap_or(u32::MAX));
        self.flows.push(CompiledFlow {
            name: parts.name.clone(),
            parent,
            retry: None,
            atoms: Vec::new(),
        });
        let first = self.atoms.len();

        let mut controller = None;
        if let Some(r) = &parts.retry {
            self.claim_name(r.name(), Some(index));
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
            Flow::Unordered(_) => self.unordered(&parts.name, &parts.children, &children),
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

    fn unordered(
        &mut self,
        flow: &str,
        nodes: &[Node],
        children: &[Part],
    ) -> (Vec<AtomIndex>, Vec<AtomIndex>) {
        let symbols: Vec<Symbols<'_>> = children.iter().map(|c| self.symbols(c)).collect();
        let providers = providers_of(&symbols);
        let mut errors = Vec::new();
        for (i, needy) in symbols.iter().enumerate() {
            // One error per sibling pair, naming the first shared symbol.
            let mut reported = HashSet::new();
            for symbol in &needy.requires {
                for &j in providers.get(symbol).map_or(&[][..], Vec::as_slice) {
                    if j != i && reported.insert(j) {
                        errors.push(CompileError::UnorderedDependency {
                            flow: flow.to_owned(),
                            atom: nodes[i].name().to_owned(),
                            symbol: (*symbol).to_owned(),
                            provider: nodes[j].name().to_owned(),
                        });
                    }
                }
            }
        }
        drop(symbols);
        self.errors.extend(errors);
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
        let by_name: HashMap<&str, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name(), i))
            .collect();
        let flow_name = self.flows[flow.index()].name.clone();
        let mut linked: HashSet<(usize, usize)> = HashSet::new();
        for link in links {
            let ends = [&link.from, &link.to].map(|n| {
                let found = by_name.get(n.as_str()).copied();
                if found.is_none() {
                    self.errors.push(CompileError::UnknownLinkTarget {
                        flow: flow_name.clone(),
                        name: n.clone(),
                    });
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
            linked.insert((from, to));
        }
        // Links inferred from data: a child that requires what another
        // provides runs after it.
        let symbols: Vec<Symbols<'_>> = children.iter().map(|c| self.symbols(c)).collect();
        let providers = providers_of(&symbols);
        let mut inferred = Vec::new();
        for (to, needy) in symbols.iter().enumerate() {
            for symbol in &needy.requires {
                for &from in providers.get(symbol).map_or(&[][..], Vec::as_slice) {
                    if from != to && linked.insert((from, to)) {
                        inferred.push((from, to));
                    }
                }
            }
        }
        drop(symbols);
        for (from, to) in inferred {
            self.link(
                children[from].sinks.as_slice(),
                children[to].sources.as_slice(),
                None,
            );
        }
        let has_in: HashSet<usize> = linked.iter().map(|&(_, t)| t).collect();
        let has_out: HashSet<usize> = linked.iter().map(|&(f, _)| f).collect();
        let sources = (0..children.len())
            .filter(|i| !has_in.contains(i))
            .flat_map(|i| children[i].sources.as_slice())
            .copied()
            .collect();
        let sinks = (0..children.len())
            .filter(|i| !has_out.contains(i))
            .flat_map(|i| children[i].sinks.as_slice())
            .copied()
            .collect();
        (sources, sinks)
    }

    fn finish(mut self) -> Result<Compilation, CompileErrors> {
        let n = self.atoms.len();
        let mut incoming_deciders = vec![Vec::new(); n];
        for &(_, t, d) in &self.edges {
            if let Some(d) = d {
                if !incoming_deciders[t.index()].contains(&d) {
                    incoming_deciders[t.index()].push(d);
                }
            }
        }
        let mut edges: Vec<(AtomIndex, AtomIndex, Option<u32>)> = std::mem::take(&mut self.edges);
        edges.sort_unstable_by_key(|&(f, t, _)| (f, t));
        edges.dedup_by_key(|&mut (f, t, _)| (f, t));

        let mut graph: DiGraph<Arc<str>, Option<u32>> = DiGraph::with_capacity(n, edges.len());
        for atom in &self.atoms {
            graph.add_node(atom.name.clone());
        }
        for &(f, t, d) in &edges {
            graph.add_edge(f.node(), t.node(), d);
        }
        let succ = adjacency(n, edges.iter().map(|&(f, t, _)| (f, t)));
        let pred = adjacency(n, edges.iter().map(|&(f, t, _)| (t, f)));
        if !is_acyclic(&succ, &pred, n) {
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
        if !self.errors.is_empty() {
            return Err(CompileErrors(self.errors));
        }
        let by_name = self
            .atoms
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), AtomIndex::new(i)))
            .collect();
        let mut providers: HashMap<String, Vec<AtomIndex>> = HashMap::new();
        for (i, atom) in self.atoms.iter().enumerate() {
            for name in atom.spec.provides.names() {
                match providers.get_mut(name) {
                    Some(list) => list.push(AtomIndex::new(i)),
                    None => {
                        providers.insert(name.to_owned(), vec![AtomIndex::new(i)]);
                    }
                }
            }
        }
        Ok(Compilation {
            graph,
            atoms: self.atoms,
            flows: self.flows,
            deciders: self.deciders,
            by_name,
            providers,
            succ,
            pred,
            incoming_deciders,
        })
    }
}

/// Symbol to the children (by position) that provide it.
fn providers_of<'a>(symbols: &[Symbols<'a>]) -> HashMap<&'a str, Vec<usize>> {
    let mut providers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, part) in symbols.iter().enumerate() {
        for symbol in &part.provides {
            providers.entry(*symbol).or_default().push(i);
        }
    }
    providers
}

/// Kahn's algorithm: whether every atom can be ordered.
fn is_acyclic(succ: &Adjacency, pred: &Adjacency, n: usize) -> bool {
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
fn cycle_path(graph: &DiGraph<Arc<str>, Option<u32>>, scc: &[NodeIndex]) -> Vec<NodeIndex> {
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

/// Compressed adjacency lists from edges sorted by their first element
/// (the successor lists come out sorted; the predecessor ones are sorted too
/// because edges are sorted by source).
fn adjacency(n: usize, edges: impl Iterator<Item = (AtomIndex, AtomIndex)> + Clone) -> Adjacency {
    let mut start = vec![0u32; n + 1];
    for (from, _) in edges.clone() {
        start[from.index() + 1] += 1;
    }
    for i in 0..n {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut targets = vec![AtomIndex::new(0); start[n] as usize];
    for (from, to) in edges {
        let slot = &mut fill[from.index()];
        targets[*slot as usize] = to;
        *slot += 1;
    }
    Adjacency { start, targets }
}
