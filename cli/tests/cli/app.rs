//! The library entry: a program's own task types and flow factories.

use serde::{Deserialize, Serialize};
use taskflow::{Context, StoredTask, TaskError, Value};
use taskflow_cli::{exit, App, FileTask};

/// `greet: world` in a flow file.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Greet {
    who: String,
}

#[typetag::serde(name = "tests::Greet")]
impl StoredTask for Greet {
    fn execute(&self, _: &mut Context) -> Result<Value, TaskError> {
        Ok(format!("hello, {}", self.who).into())
    }
}

impl FileTask for Greet {
    const KIND: &'static str = "greet";
    const SHORTHAND: Option<&'static str> = Some("who");
}

fn app() -> App {
    App::new().task_type::<Greet>().flow("hello", |_| {
        Ok(taskflow::Linear::new("hello")
            .add(taskflow::atom(
                "greet",
                Greet {
                    who: "factory".into(),
                },
            ))
            .into())
    })
}

#[test]
fn a_program_adds_task_types_and_factories() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greet.yaml");
    std::fs::write(&file, "name: g\nsteps:\n  - name: hi\n    greet: world\n").unwrap();
    let records = format!("sqlite:{}", dir.path().join("r.db").display());
    let f = file.to_str().unwrap();
    assert_eq!(app().execute(["taskflow", "validate", f]), exit::SUCCESS);
    assert_eq!(
        app().execute(["taskflow", "run", f, "--records", &records]),
        exit::SUCCESS
    );
    assert_eq!(
        app().execute(["taskflow", "run", "hello", "--records", &records]),
        exit::SUCCESS
    );
    assert_eq!(app().execute(["taskflow", "graph", "hello"]), exit::SUCCESS);
    // The stock command does not know `greet`.
    assert_eq!(
        App::new().execute(["taskflow", "validate", f]),
        exit::INVALID
    );
    assert_eq!(
        App::new().execute(["taskflow", "run", "hello"]),
        exit::INVALID
    );
}
