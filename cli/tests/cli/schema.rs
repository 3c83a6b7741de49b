//! The JSON Schema of flow files accepts the example files, and refuses
//! what the parser refuses.

use std::path::Path;

use serde_json::Value;

fn validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("flow.schema.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
}

fn document(text: &str) -> Value {
    taskflow_cli::document_json(text).expect("YAML")
}

#[test]
fn the_examples_follow_the_schema() {
    let validator = validator();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/flows");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        let doc = document(&text);
        let errors: Vec<String> = validator
            .iter_errors(&doc)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        seen += 1;
    }
    assert!(seen >= 3);
}

#[test]
fn the_schema_refuses_mistakes() {
    let validator = validator();
    for bad in [
        "name: f\nsteps:\n  - name: a\n    shel: echo\n",
        "name: f\nsteps:\n  - name: a\n    shell: echo\n    sleep: 1\n",
        "name: f\nsteps:\n  - name: a\n    shell: {command: echo, timout: 1}\n",
        "name: f\nsteps: []\n",
        "name: f\nsteps: [{name: a, shell: echo}]\nretry: {times: 0}\n",
        "name: f\npattern: tree\nsteps: [{name: a, shell: echo}]\n",
    ] {
        assert!(!validator.is_valid(&document(bad)), "accepted: {bad}");
    }
}
