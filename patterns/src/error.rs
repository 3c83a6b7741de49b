//! Errors of compiling and validating a flow. Each names its culprit.

use std::fmt;

/// One thing wrong with a flow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// An atom needs a symbol that nothing running before it provides.
    #[error(
        "atom `{atom}` requires `{symbol}`, but no atom that runs before it provides it and \
         the store does not hold it{later}; available to it: {available}",
        later = later_providers(provided_by),
        available = list(available)
    )]
    MissingRequirement {
        /// The atom.
        atom: String,
        /// The missing symbol.
        symbol: String,
        /// The symbols the atom could see.
        available: Vec<String>,
        /// Atoms that provide the symbol but do not run before the atom.
        provided_by: Vec<String>,
    },
    /// Several atoms, with no order between them, provide what an atom needs.
    #[error(
        "atom `{atom}` requires `{symbol}`, which {providers} all provide with no order between \
         them; link them or provide it under different names",
        providers = list(providers)
    )]
    AmbiguousProvider {
        /// The atom.
        atom: String,
        /// The symbol.
        symbol: String,
        /// The providers.
        providers: Vec<String>,
    },
    /// The atoms on a dependency cycle.
    #[error("the flow has a cycle: {}", cycle(atoms))]
    Cycle {
        /// The atoms on the cycle, in order.
        atoms: Vec<String>,
    },
    /// Two atoms share a name, or a graph link names a name two of its
    /// children share (a flow may share its name with an atom, as in
    /// TaskFlow).
    #[error("the name `{name}` is used by more than one atom, or by two children a link names")]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A graph link names something that is not a child of the graph.
    #[error("graph flow `{flow}` links `{name}`, which is not one of its children")]
    UnknownLinkTarget {
        /// The graph flow.
        flow: String,
        /// The unknown name.
        name: String,
    },
    /// Flows nest deeper than [`MAX_FLOW_DEPTH`](crate::MAX_FLOW_DEPTH)
    /// levels. Compile stops at this error (it reports no other): the
    /// flow is not walked any further.
    #[error(
        "flow `{flow}` is nested deeper than the {limit} levels of flows a flow may have (the \
         flow nests {depth} levels deep); flatten it, or split it into flows run one after \
         another"
    )]
    TooDeep {
        /// The outermost flow past the limit (the first found, in order).
        flow: String,
        /// How deeply the whole flow nests.
        depth: usize,
        /// The deepest nesting allowed.
        limit: usize,
    },
    /// A value an atom is given in its definition (injected, or the
    /// default of an optional argument) nests deeper than
    /// [`MAX_VALUE_DEPTH`](crate::MAX_VALUE_DEPTH) levels: it could not be
    /// checkpointed and read back.
    #[error(
        "atom `{atom}` is given a value for `{argument}` nested {depth} levels deep, deeper than \
         the {limit} levels a value may nest"
    )]
    ValueTooDeep {
        /// The atom.
        atom: String,
        /// The argument the value is for.
        argument: String,
        /// How deeply the value nests.
        depth: usize,
        /// The deepest a value may nest.
        limit: usize,
    },
    /// An atom or flow has an empty name.
    #[error("an atom or flow inside `{flow}` has an empty name")]
    EmptyName {
        /// The flow holding it.
        flow: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        return "nothing".to_owned();
    }
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn later_providers(names: &[String]) -> String {
    if names.is_empty() {
        String::new()
    } else {
        format!(" ({} provides it, but does not run before it)", list(names))
    }
}

fn cycle(atoms: &[String]) -> String {
    let mut path: Vec<String> = atoms.iter().map(|a| format!("`{a}`")).collect();
    if let Some(first) = path.first().cloned() {
        path.push(first);
    }
    path.join(" -> ")
}

/// Every error found in a flow (never only the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompileErrors(pub Vec<CompileError>);

impl CompileErrors {
    /// The errors.
    pub fn errors(&self) -> &[CompileError] {
        &self.0
    }
}

impl fmt::Display for CompileErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                write!(f, "{} errors in the flow:", all.len())?;
                for (i, e) in all.iter().enumerate() {
                    write!(f, "\n  {}. {e}", i + 1)?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for CompileErrors {}
