//! `taskflow.toml`: where the records and the board are, for every verb
//! run in its folder (or given with `--config`). Flags and the environment
//! (`TASKFLOW_RECORDS`, `TASKFLOW_BOARD`) come first; the file comes before
//! the defaults.
//!
//! ```toml
//! records = "postgres://taskflow@db.internal/flows"
//! board = "redis://queue.internal:6379"
//! lease = "5s"
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::CliError;

/// The file looked for in the working directory when `--config` is not given.
pub const CONFIG_FILE: &str = "taskflow.toml";

/// What `taskflow.toml` says.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The records' URL, as `--records`.
    pub records: Option<String>,
    /// The board's URL, as `--board`.
    pub board: Option<String>,
    /// The claims' lease, as `--lease` (`2s`, `500ms`).
    pub lease: Option<String>,
}

impl Config {
    /// The file `path` names, or else `taskflow.toml` in the working
    /// directory if there is one, or else nothing. A file named with
    /// `--config` must exist; any file read must be valid.
    pub fn load(path: Option<&Path>) -> Result<Config, CliError> {
        let (path, required) = match path {
            Some(path) => (path.to_path_buf(), true),
            None => (PathBuf::from(CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Config::default())
            }
            Err(e) => {
                return Err(CliError::Config {
                    path: path.display().to_string(),
                    why: format!("cannot read it: {e}"),
                })
            }
        };
        Config::parse(&path, &text)
    }

    /// Reads the text of the file `path`; a mistake is named with its line
    /// and column.
    pub fn parse(path: &Path, text: &str) -> Result<Config, CliError> {
        toml::from_str(text).map_err(|e| {
            let place = e.span().map(|span| line_col(text, span.start));
            let why = e.message().to_owned();
            let (path, why) = match place {
                Some((line, col)) => (format!("{}:{line}:{col}", path.display()), why),
                None => (path.display().to_string(), why),
            };
            CliError::Config { path, why }
        })
    }

    /// The lease, if the file sets one.
    pub fn lease(&self, path: &str) -> Result<Option<Duration>, CliError> {
        self.lease
            .as_deref()
            .map(|text| {
                crate::commands::duration(text).map_err(|why| CliError::Config {
                    path: path.to_owned(),
                    why: format!("lease `{text}`: {why}"),
                })
            })
            .transpose()
    }
}

/// The 1-based line and column of byte `at` of `text`.
fn line_col(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |nl| before.len() - nl - 1)
        + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_says_where_and_its_mistakes_have_a_place() {
        let path = Path::new("taskflow.toml");
        let config = Config::parse(path, "records = \"dir:r\"\nboard = \"sqlite:b.db\"\n").unwrap();
        assert_eq!(config.records.as_deref(), Some("dir:r"));
        assert_eq!(config.board.as_deref(), Some("sqlite:b.db"));
        let err = Config::parse(path, "records = \"dir:r\"\nbord = \"x\"\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("taskflow.toml:2:1: "), "{text}");
        assert!(text.contains("bord"), "{text}");
    }
}
