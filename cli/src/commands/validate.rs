//! `taskflow validate FILE`: every mistake in a flow file, or a summary.

use std::io::Write;

use serde::Serialize;
use taskflow::patterns::Compilation;
use taskflow::AtomKind;

use super::{store_args, FlowArg};
use crate::{exit, App, CliError, FlowFile};

/// Arguments of `validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The flow file.
    file: FlowArg,
    /// Store values the run will be given (KEY=VALUE, the value as JSON when
    /// it is JSON), so requirements they meet are not reported missing.
    #[arg(long = "store", value_name = "KEY=VALUE")]
    store: Vec<String>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report<'a> {
    file: String,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    flow: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tasks: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    retries: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    flows: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    requires: Option<Vec<&'a str>>,
    errors: &'a [crate::Located],
}

pub(crate) fn exec(app: &App, args: Args) -> Result<u8, CliError> {
    let extra = store_args(&args.store)?;
    let checked = FlowFile::load(&args.file, &app.kinds).and_then(|file| {
        let compilation = file.check(&extra).map_err(CliError::Invalid)?;
        Ok((file, compilation))
    });
    let mut out = std::io::stdout().lock();
    match checked {
        Ok((file, compilation)) => {
            let counts = count(&compilation);
            let requires: Vec<&str> = file.flow().requires().into_iter().collect();
            if args.json {
                let report = Report {
                    file: args.file.display().to_string(),
                    valid: true,
                    flow: Some(file.flow().name()),
                    tasks: Some(counts.0),
                    retries: Some(counts.1),
                    flows: Some(compilation.flows().len()),
                    requires: Some(requires),
                    errors: &[],
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?
                )?;
            } else {
                write!(
                    out,
                    "{}: flow `{}` is valid: {} task{}, {} retr{}, {} flow{}",
                    args.file.display(),
                    file.flow().name(),
                    counts.0,
                    plural(counts.0, "", "s"),
                    counts.1,
                    plural(counts.1, "y", "ies"),
                    compilation.flows().len(),
                    plural(compilation.flows().len(), "", "s"),
                )?;
                if !requires.is_empty() {
                    write!(out, "; reads from the store: {}", requires.join(", "))?;
                }
                writeln!(out)?;
            }
            Ok(exit::SUCCESS)
        }
        Err(CliError::Invalid(errors)) => {
            if args.json {
                let report = Report {
                    file: args.file.display().to_string(),
                    valid: false,
                    flow: None,
                    tasks: None,
                    retries: None,
                    flows: None,
                    requires: None,
                    errors: &errors.errors,
                };
                writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&report).map_err(std::io::Error::other)?
                )?;
            } else {
                eprintln!("{errors}");
                let n = errors.errors.len();
                eprintln!("{}: {n} mistake{}", args.file.display(), plural(n, "", "s"));
            }
            Ok(exit::INVALID)
        }
        Err(other) => Err(other),
    }
}

fn count(c: &Compilation) -> (usize, usize) {
    let retries = c
        .atoms()
        .iter()
        .filter(|a| a.kind() == AtomKind::Retry)
        .count();
    (c.len() - retries, retries)
}

fn plural(n: usize, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 {
        one
    } else {
        many
    }
}
