//! The stock `taskflow` command: the built-in task types, no factories.

fn main() -> std::process::ExitCode {
    taskflow_cli::App::new().run()
}
