//! The `shell` task: a command run by the system shell, and the command
//! that undoes it.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Map;
use taskflow::{Context, StoredTask, TaskError, Value};

use super::{FileTask, Seconds};

/// How much of a failed command's stderr its failure keeps.
const STDERR_TAIL: usize = 2000;

/// Runs `command` with `sh -c` (`cmd /C` on Windows).
///
/// The task's inputs reach the command twice: as environment variables
/// named as the arguments (text as it is, anything else as JSON), and as
/// one JSON object on its standard input. `TASKFLOW_ATOM` names the atom.
/// Its result is its standard output, parsed as JSON when it is JSON and
/// otherwise the text without its trailing newline (null when empty). A
/// non-zero exit is a failure of kind `ShellExit` whose message holds the
/// exit code and the tail of its standard error; a command still running
/// after `timeout` is killed and fails with kind `Timeout`.
///
/// `revert`, if set, runs the same way when the atom reverts, with
/// `TASKFLOW_RESULT` (the command's result as JSON) or `TASKFLOW_FAILURE`
/// (its failure's message) in its environment.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shell {
    /// The command.
    pub command: String,
    /// The command that undoes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revert: Option<String>,
    /// More environment variables (values that are not text are given as
    /// JSON).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, Value>,
    /// The working directory (the engine's own when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<PathBuf>,
    /// How long the command may run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Seconds>,
}

#[typetag::serde(name = "taskflow::cli::Shell")]
impl StoredTask for Shell {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        let out = self.run(&self.command, ctx, &[])?;
        Ok(parse_output(&out))
    }

    fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let Some(revert) = &self.revert else {
            return Ok(());
        };
        let mut extra = Vec::new();
        if let Some(result) = ctx.own_result() {
            extra.push(("TASKFLOW_RESULT", json_text(result)));
        }
        if let Some(failure) = ctx.own_failure() {
            extra.push(("TASKFLOW_FAILURE", failure.to_string()));
        }
        let out = self.run(revert, ctx, &extra)?;
        let result = parse_output(&out);
        if !result.is_null() {
            ctx.set_revert_result(result);
        }
        Ok(())
    }
}

impl FileTask for Shell {
    const KIND: &'static str = "shell";
    const SHORTHAND: Option<&'static str> = Some("command");

    fn check(&self) -> Result<(), String> {
        if self.command.trim().is_empty() {
            return Err("`command` is empty".to_owned());
        }
        if self.timeout.is_some_and(|t| t.0 <= 0.0) {
            return Err("`timeout` must be more than zero".to_owned());
        }
        Ok(())
    }
}

fn json_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Standard output as a result: JSON when it parses, else the text.
fn parse_output(out: &str) -> Value {
    let trimmed = out.trim_end_matches(['\n', '\r']);
    if trimmed.trim().is_empty() {
        return Value::Null;
    }
    serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(trimmed.to_owned()))
}

fn shell(command: &str) -> Command {
    if cfg!(windows) {
        let mut c = Command::new("cmd");
        c.arg("/C").arg(command);
        c
    } else {
        let mut c = Command::new("sh");
        c.arg("-c").arg(command);
        c
    }
}

impl Shell {
    /// Runs `command` with the task's inputs; its standard output, or the
    /// failure.
    fn run(
        &self,
        command: &str,
        ctx: &Context<'_>,
        extra: &[(&str, String)],
    ) -> Result<String, TaskError> {
        let mut cmd = shell(command);
        let mut inputs = Map::new();
        for (name, value) in ctx.inputs().iter() {
            cmd.env(name, json_text(value));
            inputs.insert(name.to_owned(), value.clone());
        }
        for (name, value) in &self.env {
            cmd.env(name, json_text(value));
        }
        cmd.env("TASKFLOW_ATOM", ctx.atom_name());
        for (name, value) in extra {
            cmd.env(name, value);
        }
        if let Some(cwd) = &self.cwd {
            cmd.current_dir(cwd);
        }
        // Its own process group: a timeout kills what the command started
        // too (whose open pipes would otherwise keep the task waiting), and
        // a Ctrl-C at the terminal, which suspends the flow, does not kill
        // the command running now.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                TaskError::new(
                    "ShellSpawn",
                    format!("cannot start `{}`: {e}", label(command)),
                )
            })?;
        let stdin = child.stdin.take().map(|mut pipe| {
            let body = Value::Object(inputs).to_string();
            // A command that does not read its input closes the pipe: that
            // is not a failure.
            thread::spawn(move || {
                let _ = pipe.write_all(body.as_bytes());
            })
        });
        let stdout = child.stdout.take().map(reader);
        let stderr = child.stderr.take().map(reader);
        let status = wait(&mut child, self.timeout.map(Seconds::duration));
        if let Some(t) = stdin {
            let _ = t.join();
        }
        let out = stdout.map(collect).unwrap_or_default();
        let err = stderr.map(collect).unwrap_or_default();
        // What the command said on stderr is its log (in the job service,
        // the job's log): one event per line, once it has ended.
        for line in err.lines().filter(|l| !l.trim().is_empty()) {
            tracing::info!(atom = ctx.atom_name(), "{line}");
        }
        match status {
            Ok(status) if status.success() => Ok(out),
            Ok(status) => Err(TaskError::new(
                "ShellExit",
                format!("`{}` {}{}", label(command), exit(status), tail(&err)),
            )),
            Err(Waited::TimedOut(after)) => Err(TaskError::new(
                "Timeout",
                format!(
                    "`{}` still ran after {}s and was killed{}",
                    label(command),
                    after.as_secs_f64(),
                    tail(&err)
                ),
            )),
            Err(Waited::Io(e)) => Err(TaskError::new(
                "ShellWait",
                format!("`{}`: {e}", label(command)),
            )),
        }
    }
}

/// A command as failures name it: its first line, cut short.
fn label(command: &str) -> String {
    let mut lines = command.trim().lines();
    let first = lines.next().unwrap_or_default();
    let more = lines.next().is_some();
    let mut label: String = first.chars().take(60).collect();
    if more || label.len() < first.len() {
        label.push_str(" ...");
    }
    label
}

fn exit(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exited with code {code}"),
        None => format!("was killed ({status})"),
    }
}

fn tail(stderr: &str) -> String {
    let trimmed = stderr.trim_end();
    if trimmed.is_empty() {
        return String::new();
    }
    let mut start = trimmed.len().saturating_sub(STDERR_TAIL);
    while !trimmed.is_char_boundary(start) {
        start += 1;
    }
    let cut = if start > 0 { "..." } else { "" };
    format!("; stderr: {cut}{}", &trimmed[start..])
}

fn reader<R: Read + Send + 'static>(mut pipe: R) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

fn collect(handle: thread::JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}

enum Waited {
    TimedOut(Duration),
    Io(std::io::Error),
}

fn wait(child: &mut Child, timeout: Option<Duration>) -> Result<ExitStatus, Waited> {
    let Some(limit) = timeout else {
        return child.wait().map_err(Waited::Io);
    };
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(Waited::Io)? {
            return Ok(status);
        }
        if start.elapsed() >= limit {
            kill_group(child);
            let _ = child.kill();
            let _ = child.wait();
            return Err(Waited::TimedOut(limit));
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Kills the process group the command leads (see `process_group`).
fn kill_group(child: &Child) {
    if cfg!(unix) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_json_when_it_is_json() {
        assert_eq!(parse_output("{\"id\": 1}\n"), serde_json::json!({"id": 1}));
        assert_eq!(parse_output("hello\n"), Value::from("hello"));
        assert_eq!(parse_output("\n"), Value::Null);
    }

    #[test]
    fn stderr_tail_is_bounded() {
        let long = "x".repeat(5000);
        assert!(tail(&long).len() < STDERR_TAIL + 20);
        assert_eq!(tail(""), "");
    }
}
