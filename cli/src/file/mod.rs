//! Flow files: YAML documents that describe a flow for people, parsed into
//! a [`Flow`] of stored tasks.
//!
//! Parsing goes in two passes over `marked-yaml`'s nodes, each of which
//! keeps its line and column. The first ([`parse`]) reads the document
//! into the library's flow, reporting every mistake of shape it finds
//! (unknown keys, wrong types, links to children that do not exist) and
//! remembering where each atom, requirement and link was written. The
//! second ([`FlowFile::check`]) compiles the flow and resolves it against
//! its store, and maps each of the library's errors, which name atoms and
//! symbols, back to the place in the file that wrote them.

mod build;
mod yaml;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};
use taskflow::patterns::{compile, Compilation};
use taskflow::{CompileError, Flow};

use crate::tasks::TaskKinds;
use crate::CliError;

/// A flow file's document as JSON, read as flow files are (YAML 1.2's
/// core schema: plain `10` is a number, quoted `"10"` text): what
/// `flow.schema.json` describes. A YAML mistake is located.
pub fn document_json(source: &str) -> Result<Value, Located> {
    build::document(source).map(|root| yaml::value(&root))
}

/// A place in a flow file: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize)]
pub struct Pos {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1.
    pub column: usize,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One mistake in a flow file, at the place that made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Located {
    /// Where.
    #[serde(flatten)]
    pub pos: Pos,
    /// What is wrong, and what was expected.
    pub message: String,
}

/// Every mistake found in one flow file, in the order of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileErrors {
    /// The file, as it was named.
    pub file: PathBuf,
    /// The mistakes.
    pub errors: Vec<Located>,
    /// The file's text, to quote the lines at fault.
    #[serde(skip)]
    pub source: String,
}

impl fmt::Display for FileErrors {
    /// Each error as `file:line:column: message`, followed by the line it
    /// points into and a caret under the column.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<&str> = self.source.lines().collect();
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}:{}: {}", self.file.display(), e.pos, e.message)?;
            if let Some(text) = e.pos.line.checked_sub(1).and_then(|l| lines.get(l)) {
                let gutter = e.pos.line.to_string();
                write!(f, "\n {gutter} | {text}")?;
                let pad = " ".repeat(gutter.len());
                let col = " ".repeat(e.pos.column.saturating_sub(1));
                write!(f, "\n {pad} | {col}^")?;
            }
        }
        Ok(())
    }
}

/// Where each named thing of a file was written, to place the library's
/// errors.
#[derive(Debug, Clone, Default)]
pub(crate) struct Spans {
    /// Atom name to the position of its step.
    atoms: HashMap<String, Pos>,
    /// (atom, symbol) to where the atom requires it.
    requires: HashMap<(String, String), Pos>,
    /// Flow name to where it is named.
    flows: HashMap<String, Pos>,
    /// (graph flow, name) to where a link names it.
    links: HashMap<(String, String), Pos>,
}

impl Spans {
    fn atom(&self, name: &str) -> Option<Pos> {
        self.atoms.get(name).copied()
    }

    fn flow(&self, name: &str) -> Option<Pos> {
        self.flows.get(name).copied()
    }

    fn first_of_atoms(&self, names: &[String]) -> Option<Pos> {
        names.iter().filter_map(|n| self.atom(n)).min()
    }
}

/// A flow file, read and turned into a flow.
pub struct FlowFile {
    path: PathBuf,
    source: String,
    flow: Flow,
    store: Map<String, Value>,
    spans: Spans,
}

impl fmt::Debug for FlowFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FlowFile")
            .field("path", &self.path)
            .field("flow", &self.flow.name())
            .finish_non_exhaustive()
    }
}

impl FlowFile {
    /// Reads and parses the file at `path`, knowing the task types of
    /// `kinds`.
    pub fn load(path: &Path, kinds: &TaskKinds) -> Result<FlowFile, CliError> {
        let source = std::fs::read_to_string(path).map_err(|source| CliError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(path, source, kinds).map_err(CliError::Invalid)
    }

    /// Parses `source`, the text of the file named `path`.
    pub fn parse(path: &Path, source: String, kinds: &TaskKinds) -> Result<FlowFile, FileErrors> {
        match build::parse(&source, kinds) {
            Ok((flow, store, spans)) => Ok(FlowFile {
                path: path.to_owned(),
                source,
                flow,
                store,
                spans,
            }),
            Err(mut errors) => {
                errors.sort_by_key(|e| e.pos);
                errors.dedup();
                Err(FileErrors {
                    file: path.to_owned(),
                    errors,
                    source,
                })
            }
        }
    }

    /// The flow.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The flow, taken out of the file.
    pub fn into_flow(self) -> Flow {
        self.flow
    }

    /// The file's name, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The store the file sets (its `store:`).
    pub fn store(&self) -> &Map<String, Value> {
        &self.store
    }

    /// Compiles the flow and resolves it against the file's store with
    /// `extra` over it: every error the library finds, placed in the file.
    pub fn check(&self, extra: &Map<String, Value>) -> Result<Compilation, FileErrors> {
        let compilation = self.compile()?;
        let mut store = self.store.clone();
        store.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        compilation.resolve(&store).map_err(|e| self.located(e.0))?;
        Ok(compilation)
    }

    /// Compiles the flow, without resolving its arguments against a store
    /// (what `graph` needs): the errors placed in the file.
    pub fn compile(&self) -> Result<Compilation, FileErrors> {
        compile(&self.flow).map_err(|e| self.located(e.0))
    }

    fn located(&self, errors: Vec<CompileError>) -> FileErrors {
        let mut errors: Vec<Located> = errors.iter().map(|e| self.place(e)).collect();
        errors.sort_by_key(|e| e.pos);
        FileErrors {
            file: self.path.clone(),
            errors,
            source: self.source.clone(),
        }
    }

    /// Where in the file the library's error `e` comes from.
    fn place(&self, e: &CompileError) -> Located {
        let s = &self.spans;
        let top = Pos { line: 1, column: 1 };
        let pos = match e {
            CompileError::MissingRequirement { atom, symbol, .. }
            | CompileError::AmbiguousProvider { atom, symbol, .. } => s
                .requires
                .get(&(atom.clone(), symbol.clone()))
                .copied()
                .or_else(|| s.atom(atom)),
            CompileError::Cycle { atoms } => s.first_of_atoms(atoms),
            CompileError::DuplicateName { name } => s.atom(name).or_else(|| s.flow(name)),
            CompileError::UnknownLinkTarget { flow, name } => s
                .links
                .get(&(flow.clone(), name.clone()))
                .copied()
                .or_else(|| s.flow(flow)),
            CompileError::TooDeep { flow, .. } | CompileError::EmptyName { flow } => s.flow(flow),
            CompileError::ValueTooDeep { atom, .. } => s.atom(atom),
            _ => None,
        };
        Located {
            pos: pos.unwrap_or(top),
            message: e.to_string(),
        }
    }
}
