//! `taskflow graph FILE|FACTORY --format dot|mermaid|text`.

use std::fmt::Write as _;
use std::io::Write;

use clap::ValueEnum;
use taskflow::patterns::compile;
use taskflow::patterns::{Compilation, FlowIndex, Node, Provides};
use taskflow::{AtomKind, EngineError, Flow};

use super::{source, FlowArg, Source};
use crate::{App, CliError};

/// How to draw.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Graphviz: `taskflow graph f.yaml | dot -Tsvg > f.svg`.
    Dot,
    /// A Mermaid flowchart, for Markdown.
    Mermaid,
    /// An indented tree of flows and atoms, with what each requires and provides.
    Text,
}

/// Arguments of `graph`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// A flow file, or the name of a flow factory of this program.
    flow: FlowArg,
    /// The drawing.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// A factory's arguments, as JSON.
    #[arg(long, value_name = "JSON", default_value = "{}")]
    args: String,
}

pub(crate) fn exec(app: &App, args: Args) -> Result<u8, CliError> {
    let flow = match source(app, &args.flow)? {
        Source::File(file) => {
            file.compile().map_err(CliError::Invalid)?;
            file.into_flow()
        }
        Source::Factory(name) => {
            let factory_args = super::factory_args(&args.args)?;
            app.registry
                .build(&name, &factory_args)
                .map_err(|e| CliError::Engine(e.into()))?
        }
    };
    let compilation = compile(&flow).map_err(EngineError::from)?;
    let text = match args.format {
        Format::Dot => dot(&compilation),
        Format::Mermaid => mermaid(&compilation),
        Format::Text => {
            let mut out = String::new();
            tree(&flow, "", &mut out);
            out
        }
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(crate::exit::SUCCESS)
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// The flows nested directly in `flow` (`None`: the outermost).
fn children(c: &Compilation, flow: Option<FlowIndex>) -> Vec<FlowIndex> {
    let mut known: Vec<FlowIndex> = c
        .atoms()
        .iter()
        .map(|a| a.flow)
        .chain(c.flows().iter().filter_map(|f| f.parent))
        .collect();
    known.sort();
    known.dedup();
    known.retain(|f| c.flow(*f).parent == flow);
    known
}

fn dot(c: &Compilation) -> String {
    let mut out =
        String::from("digraph flow {\n  rankdir=TB;\n  node [shape=box, style=rounded];\n");
    fn cluster(c: &Compilation, flow: FlowIndex, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let f = c.flow(flow);
        let _ = writeln!(
            out,
            "{pad}subgraph cluster_{} {{\n{pad}  label=\"{}\";",
            flow.index(),
            quote(&f.name)
        );
        body(c, Some(flow), depth + 1, out);
        let _ = writeln!(out, "{pad}}}");
    }
    fn body(c: &Compilation, flow: Option<FlowIndex>, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for (i, a) in c.atoms().iter().enumerate() {
            if Some(a.flow) == flow {
                let shape = if a.kind() == AtomKind::Retry {
                    ", shape=diamond"
                } else {
                    ""
                };
                let _ = writeln!(out, "{pad}a{i} [label=\"{}\"{shape}];", quote(a.name()));
            }
        }
        for child in children(c, flow) {
            cluster(c, child, depth, out);
        }
    }
    let roots = children(c, None);
    for root in roots {
        let _ = writeln!(out, "  label=\"{}\";", quote(&c.flow(root).name));
        body(c, Some(root), 1, &mut out);
    }
    let graph = c.graph();
    for e in graph.edge_indices() {
        if let Some((from, to)) = graph.edge_endpoints(e) {
            let style = if graph[e].is_some() {
                " [style=dashed, label=\"when\"]"
            } else {
                ""
            };
            let _ = writeln!(out, "  a{} -> a{}{style};", from.index(), to.index());
        }
    }
    out.push_str("}\n");
    out
}

fn mermaid(c: &Compilation) -> String {
    let mut out = String::from("flowchart TD\n");
    fn sub(c: &Compilation, flow: FlowIndex, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(
            out,
            "{pad}subgraph f{}[\"{}\"]",
            flow.index(),
            c.flow(flow).name.replace('"', "#quot;")
        );
        body(c, flow, depth + 1, out);
        let _ = writeln!(out, "{pad}end");
    }
    fn body(c: &Compilation, flow: FlowIndex, depth: usize, out: &mut String) {
        let pad = "  ".repeat(depth);
        for (i, a) in c.atoms().iter().enumerate() {
            if a.flow == flow {
                let name = a.name().replace('"', "#quot;");
                let node = if a.kind() == AtomKind::Retry {
                    format!("a{i}{{\"{name}\"}}")
                } else {
                    format!("a{i}[\"{name}\"]")
                };
                let _ = writeln!(out, "{pad}{node}");
            }
        }
        for child in children(c, Some(flow)) {
            sub(c, child, depth, out);
        }
    }
    for root in children(c, None) {
        sub(c, root, 1, &mut out);
    }
    let graph = c.graph();
    for e in graph.edge_indices() {
        if let Some((from, to)) = graph.edge_endpoints(e) {
            let arrow = if graph[e].is_some() {
                "-. when .->"
            } else {
                "-->"
            };
            let _ = writeln!(out, "  a{} {arrow} a{}", from.index(), to.index());
        }
    }
    out
}

fn provides(p: &Provides) -> String {
    match p {
        Provides::Nothing => String::new(),
        Provides::Single(n) => n.to_string(),
        Provides::Sequence(ns) => format!("[{}]", ns.join(", ")),
        Provides::Mapping(ns) => format!("{{{}}}", ns.join(", ")),
    }
}

fn short_type(name: &str) -> String {
    name.rsplit("::").next().unwrap_or(name).to_lowercase()
}

fn tree(flow: &Flow, pad: &str, out: &mut String) {
    let pattern = match flow {
        Flow::Linear(_) => "linear",
        Flow::Unordered(_) => "unordered",
        Flow::Graph(_) => "graph",
    };
    let _ = writeln!(out, "{}{} ({pattern})", pad, flow.name());
    let inner = format!("{pad}  ");
    if let Some(r) = flow.retry() {
        let _ = writeln!(
            out,
            "{inner}retry {} [{}]",
            r.name(),
            short_type(r.kind.type_name())
        );
    }
    for child in flow.children() {
        match child {
            Node::Task(a) => {
                let mut line = format!("{inner}{} [{}]", a.name(), short_type(a.kind.type_name()));
                if !a.spec.requires.is_empty() {
                    let _ = write!(line, " requires {}", a.spec.requires.join(", "));
                }
                let p = provides(&a.spec.provides);
                if !p.is_empty() {
                    let _ = write!(line, " provides {p}");
                }
                let _ = writeln!(out, "{line}");
            }
            Node::Flow(f) => tree(f, &inner, out),
        }
    }
    if let Flow::Graph(g) = flow {
        for link in g.links() {
            let when = if link.decider.is_some() {
                " (conditional)"
            } else {
                ""
            };
            let _ = writeln!(out, "{inner}link {} -> {}{when}", link.from, link.to);
        }
    }
}
