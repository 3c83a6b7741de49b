//! The first pass: a flow file's nodes into the library's flow, every
//! mistake of shape reported at its place, and the places of the names
//! kept for the second pass.

use std::collections::HashMap;

use marked_yaml::types::MarkedMappingNode;
use marked_yaml::{LoaderOptions, Node};
use serde_json::{Map, Value};
use taskflow::patterns::Node as FlowNode;
use taskflow::{
    retry, AlwaysRevert, AlwaysRevertAll, Atom, Depth, Flow, ForEach, Graph, Linear,
    ParameterizedForEach, RetryAtom, Times, Unordered,
};

use super::yaml::{at, pos, value, Errors};
use super::{Located, Pos, Spans};
use crate::decider::{Test, When};
use crate::tasks::TaskKinds;

/// The keys of the file's top level.
const TOP_KEYS: &[&str] = &[
    "name",
    "pattern",
    "description",
    "store",
    "retry",
    "steps",
    "links",
];
/// The keys of a subflow step.
const FLOW_KEYS: &[&str] = &["name", "pattern", "description", "retry", "steps", "links"];
/// The keys every task step may have besides its task type's.
const ATOM_KEYS: &[&str] = &[
    "name",
    "description",
    "requires",
    "provides",
    "rebind",
    "inject",
    "optional",
    "revert_requires",
    "revert_rebind",
    "priority",
    "version",
    "timeout",
];
/// The keys of a `retry` map besides its controller's.
const RETRY_KEYS: &[&str] = &[
    "name",
    "times",
    "for_each",
    "parameterized_for_each",
    "always",
    "on_exhausted",
    "requires",
    "provides",
    "rebind",
    "inject",
];
const CONTROLLERS: &[&str] = &["times", "for_each", "parameterized_for_each", "always"];
const LINK_KEYS: &[&str] = &["from", "to", "when", "depth"];
const WHEN_KEYS: &[&str] = &[
    "truthy",
    "falsy",
    "equals",
    "not_equals",
    "in",
    "path",
    "atom",
];
const PATTERNS: &str = "`linear`, `unordered` or `graph`";

pub(super) type Parsed = (Flow, Map<String, Value>, Spans);

/// Parses a whole file.
pub(super) fn parse(source: &str, kinds: &TaskKinds) -> Result<Parsed, Vec<Located>> {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    let root = marked_yaml::parse_yaml_with_options(0, source, options)
        .map_err(|e| vec![load_error(&e)])?;
    let mut p = Parser {
        kinds,
        errors: Errors::default(),
        spans: Spans::default(),
    };
    let flow = p.top(&root);
    match flow {
        Some(parsed) if p.errors.0.is_empty() => Ok((parsed.0, parsed.1, p.spans)),
        _ => Err(p.errors.0),
    }
}

/// The YAML document: a map, duplicate keys refused, quoted scalars kept
/// apart from plain ones.
pub(super) fn document(source: &str) -> Result<Node, Located> {
    let options = LoaderOptions::default()
        .error_on_duplicate_keys(true)
        .prevent_coercion(true);
    marked_yaml::parse_yaml_with_options(0, source, options).map_err(|e| load_error(&e))
}

fn load_error(e: &marked_yaml::LoadError) -> Located {
    use marked_yaml::LoadError as L;
    let (marker, message) = match e {
        L::TopLevelMustBeMapping(m) => (
            Some(*m),
            "a flow file is a map: `name`, `steps`, ...".to_owned(),
        ),
        L::TopLevelMustBeSequence(m) => (Some(*m), "expected a list".to_owned()),
        L::UnexpectedAnchor(m) => (
            Some(*m),
            "anchors and aliases (`&x`, `*x`) are not supported in flow files".to_owned(),
        ),
        L::MappingKeyMustBeScalar(m) => (Some(*m), "a map key must be a plain name".to_owned()),
        L::UnexpectedTag(m) => (
            Some(*m),
            "tags (`!x`) are not supported in flow files".to_owned(),
        ),
        L::ScanError(m, e) => {
            let hint = if e.info().contains("mapping values are not allowed") {
                " (text holding `: ` must be quoted, or written as a block after `|`)"
            } else {
                ""
            };
            (Some(*m), format!("invalid YAML: {}{hint}", e.info()))
        }
        L::DuplicateKey(d) => (
            d.key.span().start().copied(),
            format!(
                "the key `{}` is given twice in this map (first at {})",
                d.key.as_str(),
                pos(d.prev_key.span())
            ),
        ),
    };
    Located {
        pos: marker.map_or(Pos { line: 1, column: 1 }, |m| Pos {
            line: m.line(),
            column: m.column(),
        }),
        message,
    }
}

struct Parser<'k> {
    kinds: &'k TaskKinds,
    errors: Errors,
    spans: Spans,
}

/// A flow's pattern.
#[derive(Clone, Copy, PartialEq)]
enum Pattern {
    Linear,
    Unordered,
    Graph,
}

impl Parser<'_> {
    fn top(&mut self, root: &Node) -> Option<(Flow, Map<String, Value>)> {
        let map = self
            .errors
            .map(root, "a flow file: a map with `name` and `steps`")?;
        self.errors.keys(map, "the flow file", TOP_KEYS, &|_| false);
        let mut store = Map::new();
        if let Some(node) = map.get_node("store") {
            if let Some(m) = self.errors.map(node, "`store`: a map of symbol to value") {
                for (k, v) in m.iter() {
                    store.insert(k.as_str().to_owned(), value(v));
                }
            }
        }
        let flow = self.flow(map, root, "the flow file")?;
        Some((flow, store))
    }

    /// A flow from `map` (the top level or a subflow step).
    fn flow(&mut self, map: &MarkedMappingNode, node: &Node, what: &str) -> Option<Flow> {
        let name = self.name(map, node, what);
        let pattern = match map.get_node("pattern") {
            None => Pattern::Linear,
            Some(p) => match p.as_scalar().map(|s| s.as_str()) {
                Some("linear") => Pattern::Linear,
                Some("unordered") => Pattern::Unordered,
                Some("graph") => Pattern::Graph,
                _ => {
                    self.errors.expected(p, &format!("`pattern`: {PATTERNS}"));
                    Pattern::Linear
                }
            },
        };
        let mut children = Vec::new();
        let mut child_names: Vec<String> = Vec::new();
        match map.get_node("steps") {
            None => self.errors.at(
                at(node),
                format!("{what} has no `steps`: list the steps it runs"),
            ),
            Some(steps) => {
                if let Some(seq) = self.errors.seq(steps, "`steps`: a list of steps") {
                    if seq.is_empty() {
                        self.errors
                            .at(at(steps), "`steps` is empty: a flow runs at least one step");
                    }
                    for step in seq.iter() {
                        if let Some((child, child_name)) = self.step(step) {
                            children.push(child);
                            child_names.push(child_name);
                        }
                    }
                }
            }
        }
        let retry = map
            .get_node("retry")
            .and_then(|r| self.retry(r, name.as_deref()));
        let links = match map.get_node("links") {
            Some(l) if pattern != Pattern::Graph => {
                self.errors
                    .at(at(l), "`links` belong to a flow with `pattern: graph`");
                Vec::new()
            }
            Some(l) => self.links(l, name.as_deref().unwrap_or(""), &child_names),
            None => Vec::new(),
        };
        let name = name?;
        if let Some(first) = self.spans.flows.get(&name) {
            let first = *first;
            self.errors.at(
                map.get_node("name").map_or(at(node), at),
                format!("another flow is named `{name}` already (at {first})"),
            );
        }
        self.spans
            .flows
            .entry(name.clone())
            .or_insert(map.get_node("name").map_or(at(node), at));
        let flow: Flow = match pattern {
            Pattern::Linear => {
                let mut f = Linear::new(name).add_all(children);
                if let Some(r) = retry {
                    f = f.with_retry(r);
                }
                f.into()
            }
            Pattern::Unordered => {
                let mut f = Unordered::new(name).add_all(children);
                if let Some(r) = retry {
                    f = f.with_retry(r);
                }
                f.into()
            }
            Pattern::Graph => {
                let mut f = Graph::new(name).add_all(children);
                if let Some(r) = retry {
                    f = f.with_retry(r);
                }
                for link in links {
                    f = match link.when {
                        Some(when) => f.link_if(link.from, link.to, when, link.depth),
                        None => f.link(link.from, link.to),
                    };
                }
                f.into()
            }
        };
        Some(flow)
    }

    /// The `name` of a flow or step.
    fn name(&mut self, map: &MarkedMappingNode, node: &Node, what: &str) -> Option<String> {
        match map.get_node("name") {
            None => {
                self.errors.at(at(node), format!("{what} has no `name`"));
                None
            }
            Some(n) => self.errors.text(n, "`name`: a name").map(str::to_owned),
        }
    }

    /// One step: a task atom or a subflow. Its node and its name.
    fn step(&mut self, node: &Node) -> Option<(FlowNode, String)> {
        let map = self.errors.map(
            node,
            "a step: a map with `name` and a task type, or `name` and `steps`",
        )?;
        if map.get_node("steps").is_some() {
            self.errors
                .keys(map, "a subflow step", FLOW_KEYS, &|_| false);
            let flow = self.flow(map, node, "this subflow")?;
            let name = flow.name().to_owned();
            return Some((flow.into(), name));
        }
        let kinds = self.kinds;
        let known: Vec<&str> = kinds.names().collect();
        let mut allowed: Vec<&str> = ATOM_KEYS.to_vec();
        allowed.extend(known.iter().copied());
        allowed.push("steps");
        self.errors.keys(map, "a step", &allowed, &|_| false);
        let name = self.name(map, node, "this step");
        let mut kind = None;
        for (key, params) in map.iter() {
            if kinds.contains(key.as_str()) {
                match kind {
                    None => kind = Some((key.as_str(), params)),
                    Some((first, _)) => self.errors.at(
                        pos(key.span()),
                        format!("a step runs one task: it has `{first}` already, so `{}` cannot be here too", key.as_str()),
                    ),
                }
            }
        }
        let Some((kind, params)) = kind else {
            self.errors.at(
                at(node),
                format!(
                    "this step says neither what it runs ({}) nor `steps` for a subflow",
                    known.join(", ")
                ),
            );
            return None;
        };
        let name = name?;
        let task = match kinds.make(kind, &name, value(params)) {
            Ok(task) => task,
            Err(message) => {
                let place = unknown_field_place(&message, params).unwrap_or(at(params));
                self.errors
                    .at(place, format!("`{kind}`: {}", tidy(&message)));
                return None;
            }
        };
        let task = self.atom_options(task, map, &name);
        self.atom_name(&name, map, node);
        Some((task.into(), name))
    }

    /// Records where the atom `name` is, refusing a second atom of that name.
    fn atom_name(&mut self, name: &str, map: &MarkedMappingNode, node: &Node) {
        let place = map.get_node("name").map_or(at(node), at);
        if let Some(first) = self.spans.atoms.get(name) {
            let first = *first;
            self.errors.at(place, format!("another atom is named `{name}` already (at {first}); atom names are unique in a flow"));
        } else {
            self.spans.atoms.insert(name.to_owned(), place);
        }
    }

    /// `requires`, `provides`, `rebind`, ... on an atom (task or retry).
    fn atom_options<K>(
        &mut self,
        mut atom: Atom<K>,
        map: &MarkedMappingNode,
        name: &str,
    ) -> Atom<K> {
        if let Some(node) = map.get_node("requires") {
            let names = self.errors.names(node, "`requires`");
            for (symbol, place) in &names {
                self.spans
                    .requires
                    .insert((name.to_owned(), (*symbol).to_owned()), *place);
            }
            atom = atom.requires(names.into_iter().map(|(n, _)| n));
        }
        if let Some(node) = map.get_node("optional") {
            match node {
                Node::Mapping(m) => {
                    for (arg, default) in m.iter() {
                        atom = atom.optional(arg.as_str(), value(default));
                    }
                }
                _ => {
                    for (arg, _) in self
                        .errors
                        .names(node, "`optional`: a map of argument to default, or")
                    {
                        atom = atom.optional(arg, Value::Null);
                    }
                }
            }
        }
        if let Some(node) = map.get_node("rebind") {
            if let Some(m) = node.as_mapping() {
                for (arg, symbol) in m.iter() {
                    if let Some(s) = symbol.as_scalar() {
                        self.spans
                            .requires
                            .insert((name.to_owned(), s.as_str().to_owned()), at(symbol));
                    }
                    let _ = arg;
                }
            }
            for (arg, symbol) in self.errors.name_map(node, "`rebind`") {
                atom = atom.rebind(arg, symbol);
            }
        }
        if let Some(Node::Mapping(m)) = map.get_node("rebind") {
            for (arg, _) in m.iter() {
                let a = arg.as_str();
                if !atom.spec.requires.iter().any(|r| r == a)
                    && !atom.spec.optional().contains_key(a)
                {
                    self.errors.at(
                        pos(arg.span()),
                        format!("`rebind` renames `{a}`, which is not an argument of `{name}`: list it in `requires` or `optional`"),
                    );
                }
            }
        }
        if let Some(node) = map.get_node("inject") {
            if let Some(m) = self.errors.map(node, "`inject`: a map of symbol to value") {
                for (symbol, v) in m.iter() {
                    atom = atom.inject(symbol.as_str(), value(v));
                }
            }
        }
        if let Some(node) = map.get_node("provides") {
            atom = match node {
                Node::Scalar(_) => match self.errors.text(node, "`provides`: a name") {
                    Some(n) => atom.provides(n),
                    None => atom,
                },
                Node::Sequence(_) => {
                    let names = self.errors.names(node, "`provides`");
                    atom.provides_seq(names.into_iter().map(|(n, _)| n))
                }
                Node::Mapping(m) => {
                    self.errors.keys(m, "`provides`", &["keys"], &|_| false);
                    match m.get_node("keys") {
                        Some(keys) => {
                            let names = self.errors.names(keys, "`provides: keys`");
                            atom.provides_map(names.into_iter().map(|(n, _)| n))
                        }
                        None => {
                            self.errors.expected(node, "`provides`: a name, a list of names (by position) or `keys: [..]` (by key)");
                            atom
                        }
                    }
                }
            };
        }
        if let Some(node) = map.get_node("revert_requires") {
            let names = self.errors.names(node, "`revert_requires`");
            atom = atom.revert_requires(names.into_iter().map(|(n, _)| n));
        }
        if let Some(node) = map.get_node("revert_rebind") {
            for (arg, symbol) in self.errors.name_map(node, "`revert_rebind`") {
                atom = atom.revert_rebind(arg, symbol);
            }
        }
        if let Some(node) = map.get_node("priority") {
            if let Some(p) = self.errors.integer(
                node,
                "`priority`: a whole number",
                i32::MIN as i64..=i32::MAX as i64,
            ) {
                atom = atom.priority(p as i32);
            }
        }
        if let Some(node) = map.get_node("version") {
            match version(node) {
                Some((major, minor)) => atom = atom.version(major, minor),
                None => self
                    .errors
                    .expected(node, "`version`: `MAJOR` or `MAJOR.MINOR`"),
            }
        }
        if let Some(node) = map.get_node("timeout") {
            let timeout = node
                .as_scalar()
                .filter(|s| s.may_coerce())
                .and_then(|s| crate::tasks::Seconds::parse(s.as_str()))
                .filter(|t| t.0 > 0.0 && t.0.is_finite());
            match timeout {
                Some(timeout) => atom = atom.timeout(timeout.duration()),
                None => self.errors.expected(
                    node,
                    "`timeout`: a duration more than zero (seconds, or `500ms`, `30s`, `2m`, `1h`)",
                ),
            }
        }
        atom
    }

    /// A flow's `retry`.
    fn retry(&mut self, node: &Node, flow: Option<&str>) -> Option<RetryAtom> {
        let expected = "`retry`: a number of attempts, or a map with one of `times`, `for_each`, `parameterized_for_each`, `always`";
        let (controller, map) = match node {
            Node::Scalar(_) => {
                let n = self
                    .errors
                    .integer(node, expected, 1..=i64::from(u32::MAX))?;
                (Controller::Times(n as usize), None)
            }
            Node::Mapping(m) => {
                self.errors.keys(m, "`retry`", RETRY_KEYS, &|_| false);
                let given: Vec<&str> = CONTROLLERS
                    .iter()
                    .copied()
                    .filter(|c| m.get_node(c).is_some())
                    .collect();
                if given.len() != 1 {
                    self.errors.at(
                        at(node),
                        format!("`retry` needs exactly one of `times`, `for_each`, `parameterized_for_each`, `always`; found {}", given.len()),
                    );
                    return None;
                }
                let c = match given[0] {
                    "times" => {
                        let n = m.get_node("times")?;
                        Controller::Times(self.errors.integer(
                            n,
                            "`times`: a number of attempts, 1 or more",
                            1..=i64::from(u32::MAX),
                        )? as usize)
                    }
                    "for_each" => {
                        let values = m.get_node("for_each")?;
                        self.errors
                            .seq(values, "`for_each`: a list of values to try in turn")?;
                        match value(values) {
                            Value::Array(v) => Controller::ForEach(v),
                            _ => return None,
                        }
                    }
                    "parameterized_for_each" => Controller::Parameterized,
                    _ => {
                        let always = m.get_node("always")?;
                        match always.as_scalar().map(|s| s.as_str()) {
                            Some("revert") => Controller::AlwaysRevert,
                            Some("revert_all") => Controller::AlwaysRevertAll,
                            _ => {
                                self.errors
                                    .expected(always, "`always`: `revert` or `revert_all`");
                                return None;
                            }
                        }
                    }
                };
                (c, Some(m))
            }
            Node::Sequence(_) => {
                self.errors.expected(node, expected);
                return None;
            }
        };
        let all = match map.and_then(|m| m.get_node("on_exhausted")) {
            None => false,
            Some(n) => match n.as_scalar().map(|s| s.as_str()) {
                Some("revert") => false,
                Some("revert_all") => true,
                _ => {
                    self.errors
                        .expected(n, "`on_exhausted`: `revert` or `revert_all`");
                    false
                }
            },
        };
        let name = match map.and_then(|m| m.get_node("name")) {
            Some(n) => self.errors.text(n, "`name`: a name")?.to_owned(),
            None => format!("{}_retry", flow.unwrap_or("flow")),
        };
        let atom = match controller {
            Controller::Times(n) => {
                let t = Times::new(n);
                retry(&name, if all { t.revert_all() } else { t })
            }
            Controller::ForEach(v) => {
                let t = ForEach::new(v);
                retry(&name, if all { t.revert_all() } else { t })
            }
            Controller::Parameterized => {
                let t = ParameterizedForEach::new();
                retry(&name, if all { t.revert_all() } else { t })
            }
            Controller::AlwaysRevert => retry(&name, AlwaysRevert),
            Controller::AlwaysRevertAll => retry(&name, AlwaysRevertAll),
        };
        let atom = match map {
            Some(m) => self.atom_options(atom, m, &name),
            None => atom,
        };
        let place = map.and_then(|m| m.get_node("name")).map_or(at(node), at);
        if let Some(first) = self.spans.atoms.get(&name) {
            let first = *first;
            self.errors.at(place, format!("another atom is named `{name}` already (at {first}); name this retry with `name:`"));
        } else {
            self.spans.atoms.insert(name, place);
        }
        Some(atom)
    }

    /// A graph's `links`, each end checked against the graph's children.
    fn links(&mut self, node: &Node, flow: &str, children: &[String]) -> Vec<LinkSpec> {
        let Some(seq) = self.errors.seq(
            node,
            "`links`: a list of links (`a -> b`, or maps with `from` and `to`)",
        ) else {
            return Vec::new();
        };
        let mut links = Vec::new();
        for item in seq.iter() {
            let mut ends: Vec<(Ends, Ends)> = Vec::new();
            let mut when = None;
            let mut depth = Depth::All;
            match item {
                Node::Scalar(s) => {
                    let text = s.as_str();
                    let parts: Vec<&str> = text.split("->").map(str::trim).collect();
                    if parts.len() < 2 || parts.iter().any(|p| p.is_empty()) {
                        self.errors.expected(item, "a link: `from -> to` (or `a -> b -> c`), or a map with `from` and `to`");
                        continue;
                    }
                    // Each name's own column, on the link's line.
                    let start = at(item);
                    let mut offset = 0;
                    let mut placed = Vec::new();
                    for part in &parts {
                        let i = text[offset..].find(part).map_or(0, |i| offset + i);
                        offset = i + part.len();
                        let column = start.column + i;
                        placed.push((
                            (*part).to_owned(),
                            Pos {
                                line: start.line,
                                column,
                            },
                        ));
                    }
                    for pair in placed.windows(2) {
                        ends.push((vec![pair[0].clone()], vec![pair[1].clone()]));
                    }
                }
                Node::Mapping(m) => {
                    self.errors.keys(m, "a link", LINK_KEYS, &|_| false);
                    let end = |p: &mut Self, key: &str| -> Vec<(String, Pos)> {
                        match m.get_node(key) {
                            None => {
                                p.errors.at(at(item), format!("this link has no `{key}`"));
                                Vec::new()
                            }
                            Some(n) => p
                                .errors
                                .names(n, &format!("`{key}`"))
                                .into_iter()
                                .map(|(s, at)| (s.to_owned(), at))
                                .collect(),
                        }
                    };
                    let from = end(self, "from");
                    let to = end(self, "to");
                    ends.push((from, to));
                    if let Some(w) = m.get_node("when") {
                        when = self.when(w);
                    }
                    if let Some(d) = m.get_node("depth") {
                        depth = match d.as_scalar().map(|s| s.as_str()) {
                            Some("all") => Depth::All,
                            Some("flow") => Depth::Flow,
                            Some("neighbors") => Depth::Neighbors,
                            Some("atom") => Depth::Atom,
                            _ => {
                                self.errors
                                    .expected(d, "`depth`: `all`, `flow`, `neighbors` or `atom`");
                                Depth::All
                            }
                        };
                    }
                }
                Node::Sequence(_) => {
                    self.errors
                        .expected(item, "a link: `from -> to`, or a map with `from` and `to`");
                    continue;
                }
            }
            for (from, to) in ends {
                for (name, place) in from.iter().chain(&to) {
                    self.spans
                        .links
                        .entry((flow.to_owned(), name.clone()))
                        .or_insert(*place);
                    if !children.contains(name) {
                        self.errors.at(
                            *place,
                            format!(
                                "the link names `{name}`, which is not a step of graph `{flow}`; expected one of: {}",
                                children.join(", ")
                            ),
                        );
                    }
                }
                for (f, _) in &from {
                    for (t, _) in &to {
                        links.push(LinkSpec {
                            from: f.clone(),
                            to: t.clone(),
                            when: when.clone(),
                            depth,
                        });
                    }
                }
            }
        }
        links
    }

    /// A link's `when`.
    fn when(&mut self, node: &Node) -> Option<When> {
        let expected = "`when`: `truthy`, `falsy`, or a map with one of `equals`, `not_equals`, `in`, `truthy`, `falsy` (and optionally `path`, `atom`)";
        match node {
            Node::Scalar(s) => {
                let test = match s.as_str() {
                    "truthy" => Test::Truthy,
                    "falsy" => Test::Falsy,
                    _ => {
                        self.errors.expected(node, expected);
                        return None;
                    }
                };
                Some(When {
                    test,
                    path: None,
                    atom: None,
                })
            }
            Node::Mapping(m) => {
                self.errors.keys(m, "`when`", WHEN_KEYS, &|_| false);
                let tests: Vec<&str> = ["truthy", "falsy", "equals", "not_equals", "in"]
                    .into_iter()
                    .filter(|k| m.get_node(k).is_some())
                    .collect();
                if tests.len() != 1 {
                    self.errors
                        .at(at(node), format!("{expected}; found {} tests", tests.len()));
                    return None;
                }
                let v = m.get_node(tests[0]).map(value).unwrap_or(Value::Null);
                let test = match tests[0] {
                    "truthy" | "falsy" => {
                        let flag = v.as_bool().unwrap_or(true);
                        if (tests[0] == "truthy") == flag {
                            Test::Truthy
                        } else {
                            Test::Falsy
                        }
                    }
                    "equals" => Test::Equals(v),
                    "not_equals" => Test::NotEquals(v),
                    _ => match v {
                        Value::Array(values) => Test::In(values),
                        _ => {
                            if let Some(n) = m.get_node("in") {
                                self.errors.expected(n, "`in`: a list of values");
                            }
                            return None;
                        }
                    },
                };
                let path = m
                    .get_node("path")
                    .and_then(|n| self.errors.text(n, "`path`: a path such as `status.code`"))
                    .map(str::to_owned);
                let atom = m
                    .get_node("atom")
                    .and_then(|n| self.errors.text(n, "`atom`: an atom name"))
                    .map(str::to_owned);
                Some(When { test, path, atom })
            }
            Node::Sequence(_) => {
                self.errors.expected(node, expected);
                None
            }
        }
    }
}

enum Controller {
    Times(usize),
    ForEach(Vec<Value>),
    Parameterized,
    AlwaysRevert,
    AlwaysRevertAll,
}

/// The names at one end of a link, each where it is written.
type Ends = Vec<(String, Pos)>;

struct LinkSpec {
    from: String,
    to: String,
    when: Option<When>,
    depth: Depth,
}

fn version(node: &Node) -> Option<(u32, u32)> {
    let s = node.as_scalar()?.as_str();
    let mut parts = s.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    parts.next().is_none().then_some((major, minor))
}

/// serde_json's messages end with "at line 1 column 2" of the JSON the
/// params became, which means nothing to the file's reader.
fn tidy(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// For "unknown field `x`" and "missing field" messages, the place of the
/// key or of the params' map.
fn unknown_field_place(message: &str, params: &Node) -> Option<Pos> {
    let rest = message.strip_prefix("unknown field `")?;
    let field = &rest[..rest.find('`')?];
    let map = params.as_mapping()?;
    let found: HashMap<&str, Pos> = map
        .iter()
        .map(|(k, _)| (k.as_str(), pos(k.span())))
        .collect();
    found.get(field).copied()
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    /// Every key the parser accepts is in the JSON Schema, at its place.
    #[test]
    fn the_schema_covers_every_key() {
        let schema: Value = serde_json::from_str(include_str!("../../flow.schema.json")).unwrap();
        let props = |pointer: &str| -> Vec<String> {
            schema
                .pointer(pointer)
                .and_then(Value::as_object)
                .unwrap_or_else(|| panic!("no {pointer} in the schema"))
                .keys()
                .cloned()
                .collect()
        };
        let check = |keys: &[&str], pointer: &str| {
            let have = props(pointer);
            for k in keys {
                assert!(have.iter().any(|h| h == k), "`{k}` missing from {pointer}");
            }
            for h in &have {
                assert!(
                    keys.contains(&h.as_str()) || ["shell", "sleep", "http"].contains(&h.as_str()),
                    "{pointer} has `{h}`, which the parser refuses"
                );
            }
        };
        check(TOP_KEYS, "/properties");
        check(FLOW_KEYS, "/$defs/subflow/properties");
        check(ATOM_KEYS, "/$defs/task/properties");
        check(RETRY_KEYS, "/$defs/retry/oneOf/1/properties");
        check(LINK_KEYS, "/$defs/links/items/oneOf/1/properties");
        check(WHEN_KEYS, "/$defs/when/oneOf/1/properties");
        check(
            &["command", "revert", "env", "cwd", "timeout"],
            "/$defs/shell/oneOf/1/properties",
        );
        let request = ["method", "url", "headers", "body", "success", "timeout"];
        check(&request, "/$defs/request/properties");
        check(
            &[&request[..], &["revert"]].concat(),
            "/$defs/http/oneOf/1/properties",
        );
    }
}
