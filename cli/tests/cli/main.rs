//! End-to-end tests of the `taskflow` binary: each runs the real command in
//! a temporary directory and reads its output and exit code.

#![allow(clippy::unwrap_used)]

mod app;
mod examples;
#[cfg(feature = "http")]
mod http;
mod jobs;
mod mistakes;
mod places;
mod schema;
#[cfg(feature = "http")]
mod serve;
mod suspend;
mod timeout;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
fn taskflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_taskflow"))
}

/// An example flow file of the crate.
fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/flows")
        .join(name)
}

/// What a finished command said.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Ran {
    fn from(out: Output) -> Self {
        Ran {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs `taskflow ARGS` in `dir`.
fn run_in(dir: &Path, args: &[&str]) -> Ran {
    taskflow()
        .args(args)
        .current_dir(dir)
        .env_remove("TASKFLOW_RECORDS")
        .env_remove("TASKFLOW_BOARD")
        .output()
        .expect("the binary runs")
        .into()
}
