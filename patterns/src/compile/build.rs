//! Flattening a flow tree into the DAG.

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

/// What a built child offers to its siblings.
struct Part {
    /// Atoms with no predecessor inside the part.
    sources: Vec<AtomIndex>,
    /// Atoms with no successor inside the part.
    sinks: Vec<AtomIndex>,
    /// The atoms of the part: `first..end`.
    first: usize,
    end: usize,
    /// Symbols provided inside the part.
    provides: BTreeSet<String>,
    /// Symbols required inside the part and not provided inside it.
    requires: BTreeSet<String>,
}

impl Part {
    fn is_empty(&self) -> bool {
        self.first == self.end
    }
}

#[derive(Default)]
struct Builder {
    atoms: Vec<CompiledAtom>,
    flows: Vec<CompiledFlow>,
    edges: Vec<(AtomIndex, AtomIndex, Option<u32>)>,
    deciders: Vec<CompiledDecider>,
    names: HashSet<String>,
    errors: Vec<CompileError>,
}

pub(super) fn build(flow: &Flow) -> Result<Compilation, CompileErrors> {
    let mut b = Builder::default();
    b.flow(flow, None, None);
    b.finish()
}

impl Builder {
    fn claim_name(&mut self, name: &str, flow: &str) {
        if name.is_empty() {
            self.errors.push(CompileError::EmptyName {
                flow: flow.to_owned(),
            });
        } else if !self.names.insert(name.to_owned()) {
            self.errors.push(CompileError::DuplicateName {
                name: name.to_owned(),
            });
        }
    }

    fn add_atom(
        &mut self,
        spec: &AtomSpec,
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

    fn single(&self, index: AtomIndex) -> Part {
        let spec = &self.atoms[index.index()].spec;
        let provides: BTreeSet<String> = spec.provides.names().map(str::to_owned).collect();
        let requires = spec
            .required_symbols()
            .map(|(s, _)| s.to_owned())
            .filter(|s| !provides.contains(s))
            .collect();
        Part {
            sources: vec![index],
            sinks: vec![index],
            first: index.index(),
            end: index.index() + 1,
            provides,
            requires,
        }
    }

    fn node(&mut self, node: &Node, parent: FlowIndex, retry: Option<AtomIndex>) -> Part {
        match node {
            Node::Task(atom) => {
                let flow_name = self.flows[parent.index()].name.clone();
                self.claim_name(atom.name(), &flow_name);
                let index =
                    self.add_atom(&atom.spec, AtomImpl::Task(atom.kind.clone()), parent, retry);
                self.single(index)
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

    fn flow(&mut self, flow: &Flow, parent: Option<FlowIndex>, retry: Option<AtomIndex>) -> Part {
        let parts: &FlowParts = flow.parts();
        let parent_name = parent.map_or_else(String::new, |p| self.flows[p.index()].name.clone());
        self.claim_name(&parts.name, &parent_name);
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
            self.claim_name(r.name(), &parts.name);
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

        let mut part = Part {
            sources,
            sinks,
            first,
            end: self.atoms.len(),
            provides: BTreeSet::new(),
            requires: BTreeSet::new(),
        };
        for c in &children {
            part.provides.extend(c.provides.iter().cloned());
        }
        for c in &children {
            part.requires.extend(
                c.requires
                    .iter()
                    .filter(|s| !part.provides.contains(*s))
                    .cloned(),
            );
        }
        if let Some(ri) = controller {
            let retry_part = self.single(ri);
            part.requires.extend(retry_part.requires);
            part.provides.extend(retry_part.provides);
            if part.sources.is_empty() {
                part.sinks = vec![ri];
            } else {
                self.link(&[ri], &part.sources, None);
            }
            part.sources = vec![ri];
        }
        part
    }

    fn linear(&mut self, children: &[Part]) -> (Vec<AtomIndex>, Vec<AtomIndex>) {
        let mut sources: Vec<AtomIndex> = Vec::new();
        let mut prev: Vec<AtomIndex> = Vec::new();
        for c in children.iter().filter(|c| !c.is_empty()) {
            if sources.is_empty() {
                sources = c.sources.clone();
            } else {
                self.link(&prev, &c.sources, None);
            }
            prev = c.sinks.clone();
        }
        (sources, prev)
    }

    fn unordered(
        &mut self,
        flow: &str,
        nodes: &[Node],
        children: &[Part],
    ) -> (Vec<AtomIndex>, Vec<AtomIndex>) {
        for (i, needy) in children.iter().enumerate() {
            for (j, giver) in children.iter().enumerate() {
                if i == j {
                    continue;
                }
                if let Some(symbol) = needy.requires.intersection(&giver.provides).next() {
                    self.errors.push(CompileError::UnorderedDependency {
                        flow: flow.to_owned(),
                        atom: nodes[i].name().to_owned(),
                        symbol: symbol.clone(),
                        provider: nodes[j].name().to_owned(),
                    });
                }
            }
        }
        let sources = children.iter().flat_map(|c| c.sources.clone()).collect();
        let sinks = children.iter().flat_map(|c| c.sinks.clone()).collect();
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
            self.link(&children[from].sinks, &children[to].sources, decider);
            linked.insert((from, to));
        }
        // Links inferred from data: a child that requires what another
        // provides runs after it.
        for (to, needy) in children.iter().enumerate() {
            for (from, giver) in children.iter().enumerate() {
                if from != to
                    && !linked.contains(&(from, to))
                    && needy
                        .requires
                        .intersection(&giver.provides)
                        .next()
                        .is_some()
                {
                    self.link(&giver.sinks, &needy.sources, None);
                    linked.insert((from, to));
                }
            }
        }
        let has_in: HashSet<usize> = linked.iter().map(|&(_, t)| t).collect();
        let has_out: HashSet<usize> = linked.iter().map(|&(f, _)| f).collect();
        let sources = (0..children.len())
            .filter(|i| !has_in.contains(i))
            .flat_map(|i| children[i].sources.clone())
            .collect();
        let sinks = (0..children.len())
            .filter(|i| !has_out.contains(i))
            .flat_map(|i| children[i].sinks.clone())
            .collect();
        (sources, sinks)
    }

    fn finish(mut self) -> Result<Compilation, CompileErrors> {
        let n = self.atoms.len();
        let mut graph: DiGraph<Arc<str>, Option<u32>> = DiGraph::with_capacity(n, self.edges.len());
        for atom in &self.atoms {
            graph.add_node(atom.name.clone());
        }
        let mut seen = HashSet::with_capacity(self.edges.len());
        let mut incoming_deciders = vec![Vec::new(); n];
        for &(f, t, d) in &self.edges {
            if let Some(d) = d {
                if !incoming_deciders[t.index()].contains(&d) {
                    incoming_deciders[t.index()].push(d);
                }
            }
            if seen.insert((f, t)) {
                graph.add_edge(f.node(), t.node(), d);
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
        if !self.errors.is_empty() {
            return Err(CompileErrors(self.errors));
        }
        let succ = adjacency(n, seen.iter().map(|&(f, t)| (f, t)));
        let pred = adjacency(n, seen.iter().map(|&(f, t)| (t, f)));
        let by_name = self
            .atoms
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.clone(), AtomIndex::new(i)))
            .collect();
        let mut providers: HashMap<String, Vec<AtomIndex>> = HashMap::new();
        for (i, atom) in self.atoms.iter().enumerate() {
            for name in atom.spec.provides.names() {
                providers
                    .entry(name.to_owned())
                    .or_default()
                    .push(AtomIndex::new(i));
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

/// Adjacency lists from edges, each list sorted by index.
fn adjacency(n: usize, edges: impl Iterator<Item = (AtomIndex, AtomIndex)>) -> Adjacency {
    let mut lists: Vec<Vec<AtomIndex>> = vec![Vec::new(); n];
    for (from, to) in edges {
        lists[from.index()].push(to);
    }
    let mut start = Vec::with_capacity(n + 1);
    let mut targets = Vec::new();
    for list in &mut lists {
        list.sort_unstable();
        start.push(u32::try_from(targets.len()).unwrap_or(u32::MAX));
        targets.extend_from_slice(list);
    }
    start.push(u32::try_from(targets.len()).unwrap_or(u32::MAX));
    Adjacency { start, targets }
}
