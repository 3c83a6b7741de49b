//! Reading `marked-yaml` nodes: positions, typed scalars, and maps whose
//! keys are checked against the keys a place allows.

use marked_yaml::types::{MarkedMappingNode, MarkedScalarNode, MarkedSequenceNode};
use marked_yaml::{Node, Span};
use serde_json::{Map, Number, Value};

use super::{Located, Pos};

/// The position a span starts at (the top of the file for a span with
/// none, which the loader never makes for a node it read).
pub(super) fn pos(span: &Span) -> Pos {
    span.start().map_or(Pos { line: 1, column: 1 }, |m| Pos {
        line: m.line(),
        column: m.column(),
    })
}

/// Where a node starts. For a block map, that is its first key (the
/// loader marks a block map where it saw its first `:`).
pub(super) fn at(node: &Node) -> Pos {
    match node {
        Node::Mapping(map) => map
            .keys()
            .next()
            .map_or_else(|| pos(node.span()), |k| pos(k.span()).min(pos(node.span()))),
        _ => pos(node.span()),
    }
}

/// What a node is, for messages: "a map", "a list", "the text `x`".
pub(super) fn describe(node: &Node) -> String {
    match node {
        Node::Mapping(_) => "a map".to_owned(),
        Node::Sequence(_) => "a list".to_owned(),
        Node::Scalar(s) if s.as_str().is_empty() => "nothing".to_owned(),
        Node::Scalar(s) => format!("`{}`", s.as_str()),
    }
}

/// Collects the mistakes of one file.
#[derive(Default)]
pub(super) struct Errors(pub(super) Vec<Located>);

impl Errors {
    /// A mistake at `pos`.
    pub(super) fn at(&mut self, pos: Pos, message: impl Into<String>) {
        self.0.push(Located {
            pos,
            message: message.into(),
        });
    }

    /// `node` is not what `expected` says a value there must be.
    pub(super) fn expected(&mut self, node: &Node, expected: &str) {
        self.at(
            at(node),
            format!("expected {expected}, found {}", describe(node)),
        );
    }

    /// `node` as a map, or a mistake saying what was expected.
    pub(super) fn map<'n>(
        &mut self,
        node: &'n Node,
        expected: &str,
    ) -> Option<&'n MarkedMappingNode> {
        let map = node.as_mapping();
        if map.is_none() {
            self.expected(node, expected);
        }
        map
    }

    /// `node` as a list, or a mistake.
    pub(super) fn seq<'n>(
        &mut self,
        node: &'n Node,
        expected: &str,
    ) -> Option<&'n MarkedSequenceNode> {
        let seq = node.as_sequence();
        if seq.is_none() {
            self.expected(node, expected);
        }
        seq
    }

    /// `node` as non-empty text, or a mistake.
    pub(super) fn text<'n>(&mut self, node: &'n Node, expected: &str) -> Option<&'n str> {
        match node.as_scalar() {
            Some(s) if !s.as_str().is_empty() => Some(s.as_str()),
            _ => {
                self.expected(node, expected);
                None
            }
        }
    }

    /// `node` as a list of names: one name, or a list of them.
    pub(super) fn names<'n>(&mut self, node: &'n Node, what: &str) -> Vec<(&'n str, Pos)> {
        let expected = format!("{what}: a name or a list of names");
        match node {
            Node::Scalar(_) => self
                .text(node, &expected)
                .map(|n| vec![(n, at(node))])
                .unwrap_or_default(),
            Node::Sequence(items) => items
                .iter()
                .filter_map(|item| {
                    self.text(item, &format!("{what}: a name"))
                        .map(|n| (n, at(item)))
                })
                .collect(),
            Node::Mapping(_) => {
                self.expected(node, &expected);
                Vec::new()
            }
        }
    }

    /// `node` as a map of name to name (as `rebind`).
    pub(super) fn name_map<'n>(&mut self, node: &'n Node, what: &str) -> Vec<(&'n str, &'n str)> {
        let Some(map) = self.map(node, &format!("{what}: a map of name to name")) else {
            return Vec::new();
        };
        map.iter()
            .filter_map(|(k, v)| {
                let to = self.text(v, &format!("{what}: a name for `{}`", k.as_str()))?;
                Some((k.as_str(), to))
            })
            .collect()
    }

    /// `node` as an integer in `range`, or a mistake.
    pub(super) fn integer(
        &mut self,
        node: &Node,
        expected: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        match node
            .as_scalar()
            .filter(|s| s.may_coerce())
            .and_then(|s| s.as_str().parse::<i64>().ok())
        {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.expected(node, expected);
                None
            }
        }
    }

    /// The keys of `map` that are not in `allowed` (nor accepted by
    /// `extra`) are mistakes naming the keys expected.
    pub(super) fn keys(
        &mut self,
        map: &MarkedMappingNode,
        what: &str,
        allowed: &[&str],
        extra: &dyn Fn(&str) -> bool,
    ) {
        for (key, _) in map.iter() {
            let k = key.as_str();
            if !allowed.contains(&k) && !extra(k) {
                let hint = closest(k, allowed)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                self.at(
                    pos(key.span()),
                    format!(
                        "unknown key `{k}` in {what}{hint}; expected one of: {}",
                        allowed.join(", ")
                    ),
                );
            }
        }
    }
}

/// The allowed key closest to a misspelt one, if any is close.
pub(super) fn closest<'a>(key: &str, allowed: &[&'a str]) -> Option<&'a str> {
    allowed
        .iter()
        .map(|a| (distance(key, a), *a))
        .filter(|(d, a)| *d <= 2.max(a.len() / 3))
        .min()
        .map(|(_, a)| a)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The value a node means, as YAML 1.2's core schema reads plain scalars:
/// `null`, `~` and nothing are null, `true` / `false` booleans, numbers
/// numbers; a quoted scalar is always text.
pub(super) fn value(node: &Node) -> Value {
    match node {
        Node::Scalar(s) => scalar(s),
        Node::Sequence(items) => Value::Array(items.iter().map(value).collect()),
        Node::Mapping(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.as_str().to_owned(), value(v)))
                .collect::<Map<String, Value>>(),
        ),
    }
}

fn scalar(s: &MarkedScalarNode) -> Value {
    let text = s.as_str();
    if !s.may_coerce() {
        return Value::String(text.to_owned());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::Number(n.into());
    }
    let numeric = text
        .trim_start_matches(['-', '+'])
        .starts_with(|c: char| c.is_ascii_digit() || c == '.');
    if numeric {
        if let Some(n) = text.parse::<f64>().ok().and_then(Number::from_f64) {
            return Value::Number(n);
        }
    }
    Value::String(text.to_owned())
}
