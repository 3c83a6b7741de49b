//! An atom's `timeout` in a flow file: the atom past it is cancelled, fails
//! with `Timeout`, and the flow's retry handles it (here: none, it reverts).

use serde_json::Value;

use super::run_in;

#[test]
fn a_step_past_its_timeout_fails_with_timeout_and_the_flow_reverts() {
    let dir = tempfile::tempdir().unwrap();
    let flow = r#"
name: timed
steps:
  - name: first
    shell:
      command: echo one
      revert: echo undone
  - name: stuck
    sleep: 60
    timeout: 200ms
  - name: never
    shell: echo never
"#;
    std::fs::write(dir.path().join("timed.yaml"), flow).unwrap();
    let started = std::time::Instant::now();
    let ran = run_in(dir.path(), &["run", "timed.yaml", "--json"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "held by the step"
    );
    assert_eq!(ran.code, 3, "REVERTED: {}{}", ran.stdout, ran.stderr);
    let summary: Value = serde_json::from_str(&ran.stdout).unwrap();
    let atoms = summary["atoms"].as_array().unwrap();
    let state = |name: &str| {
        atoms
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["state"].as_str().unwrap_or_default().to_owned())
    };
    assert_eq!(state("first").as_deref(), Some("REVERTED"));
    assert_eq!(state("stuck").as_deref(), Some("REVERTED"));
    assert_eq!(state("never").as_deref(), Some("PENDING"));
    let stuck = atoms.iter().find(|a| a["name"] == "stuck").unwrap();
    let failure = stuck["failure"].as_str().unwrap_or_default();
    assert!(failure.starts_with("Timeout: "), "{failure}");
}

#[test]
fn a_timeout_that_is_not_a_duration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let flow = "name: f\nsteps:\n  - name: a\n    sleep: 1\n    timeout: soon\n";
    std::fs::write(dir.path().join("f.yaml"), flow).unwrap();
    let ran = run_in(dir.path(), &["validate", "f.yaml"]);
    assert_ne!(ran.code, 0);
    assert!(
        ran.stderr.contains("f.yaml:5:") && ran.stderr.contains("`timeout`: a duration"),
        "{}",
        ran.stderr
    );
}
