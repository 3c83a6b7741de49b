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

#[test]
fn a_program_posts_and_conducts_its_factories() {
    let dir = tempfile::tempdir().unwrap();
    let records = format!("sqlite:{}", dir.path().join("r.db").display());
    let board = format!("sqlite:{}", dir.path().join("b.db").display());
    let places = ["--records", records.as_str(), "--board", board.as_str()];
    let with = |args: &[&str]| -> Vec<String> {
        let all = [&["taskflow"], args, &places[..]].concat();
        all.into_iter().map(str::to_owned).collect()
    };
    assert_eq!(app().execute(with(&["post", "hello"])), exit::SUCCESS);
    let jobs = || -> Vec<serde_json::Value> {
        let out = super::taskflow()
            .args(with(&["jobs", "--all", "--json"])[1..].iter())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The stock conductor lacks the factory: it leaves the job alone.
    let stock = super::taskflow()
        .args(with(&["conductor", "--drain"])[1..].iter())
        .output()
        .unwrap();
    assert!(
        stock.status.success(),
        "{}",
        String::from_utf8_lossy(&stock.stderr)
    );
    assert_eq!(jobs()[0]["state"], "UNCLAIMED");
    // The program's own runs it.
    assert_eq!(
        app().execute(with(&["conductor", "--drain", "--name", "mine"])),
        exit::SUCCESS
    );
    let done = jobs();
    assert_eq!(done[0]["name"], "hello");
    assert_eq!(done[0]["state"], "COMPLETE", "{done:#?}");
    assert_eq!(done[0]["owner"], "mine");
    assert_eq!(done[0]["flow_state"], "SUCCESS");
    assert_eq!(
        (&done[0]["atoms_done"], &done[0]["atoms_total"]),
        (&1.into(), &1.into())
    );
}
