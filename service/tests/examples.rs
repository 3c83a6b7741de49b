//! The service crate's examples run as they are and print what they should
//! (cargo builds them before running tests).

use std::path::PathBuf;
use std::process::Command;

fn example(name: &str) -> (bool, String) {
    let exe = std::env::current_exe().expect("test binary path");
    let dir: PathBuf = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples");
    if !dir.join(name).exists() {
        // Run alone (`cargo test --test examples`), cargo did not build the
        // examples: build this one, with the same cargo and target dir.
        let built = Command::new(env!("CARGO"))
            .args([
                "build",
                "--quiet",
                "-p",
                "taskflow-service",
                "--example",
                name,
            ])
            .status()
            .expect("cargo runs");
        assert!(built.success(), "cannot build example {name}");
    }
    let out = Command::new(dir.join(name))
        .output()
        .unwrap_or_else(|e| panic!("cannot run example {name} from {}: {e}", dir.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn an_axum_handler_runs_a_flow_of_http_calls_and_reverts_it() {
    let (ok, out) = example("axum_flow");
    assert!(ok, "{out}");
    // The order the upstream accepts is charged.
    assert!(
        out.contains(r#"order of 40: 200 {"receipt":"paid 40 (charge-1)","state":"SUCCESS"}"#),
        "{out}"
    );
    // The one it declines fails the flow, which releases its hold.
    let declined = out
        .lines()
        .find(|l| l.starts_with("order of 500: 409 "))
        .unwrap_or_else(|| panic!("no answer to the order of 500:\n{out}"));
    assert!(declined.contains(r#""state":"REVERTED""#), "{declined}");
    assert!(declined.contains("402 Payment Required"), "{declined}");
    assert!(
        declined.contains(r#""reverted":{"released":"hold-2-500"}"#),
        "{declined}"
    );
    // What the upstream saw: two holds, the second released, one charge.
    assert!(
        out.contains(
            r#"ledger: {"charges":["charge-1 on \"hold-1-40\""],"holds":["hold-1-40","hold-2-500"],"released":["hold-2-500"]}"#
        ),
        "{out}"
    );
}
