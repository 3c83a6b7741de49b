//! Retries: a flaky upload retried by `Times`, and a mirror chosen by
//! `ForEach`, nested inside it. Run with `cargo run --example retry`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use taskflow::prelude::*;

fn main() -> Result<(), EngineError> {
    let uploads = Arc::new(AtomicUsize::new(0));
    let flow = Linear::new("publish")
        .add(
            atom(
                "package",
                task_fn(|_| {
                    println!("package: built release.tar.gz");
                    Ok(json!("release.tar.gz"))
                }),
            )
            .provides("artifact"),
        )
        .add(
            Linear::new("upload_scope")
                .add(
                    atom(
                        "upload",
                        task_fn(move |ctx| {
                            let mirror: String = ctx.input("mirror")?;
                            let n = uploads.fetch_add(1, Ordering::SeqCst) + 1;
                            println!(
                                "upload #{n}: {} to {mirror}",
                                ctx.input::<String>("artifact")?
                            );
                            match mirror.as_str() {
                                "eu.mirror" => Err(TaskError::new(
                                    "Timeout",
                                    format!("{mirror} did not answer"),
                                )),
                                _ if n < 3 => Err(TaskError::new("Reset", "connection reset")),
                                _ => Ok(json!(format!("https://{mirror}/release.tar.gz"))),
                            }
                        })
                        .with_revert(|ctx| {
                            println!(
                                "  revert upload ({})",
                                ctx.own_failure().map_or("ok", |f| &f.message)
                            );
                            Ok(())
                        }),
                    )
                    .requires(["artifact", "mirror"])
                    .provides("url"),
                )
                // Inner controller: try each mirror; when all failed, pass the
                // failure to the outer controller.
                .with_retry(
                    retry(
                        "mirrors",
                        ForEach::new([json!("eu.mirror"), json!("us.mirror")]),
                    )
                    .provides("mirror"),
                ),
        )
        // Outer controller: run the whole flow up to 3 times.
        .with_retry(retry("attempts", Times::new(3)).provides("attempt"));

    let mut engine = Engine::builder(flow).build()?;
    let state = engine.run()?;
    println!(
        "flow ended {state}: {}",
        engine.storage().fetch("url").unwrap_or(&Value::Null)
    );
    for name in ["attempts", "mirrors"] {
        let detail = engine.storage().atom_detail(name).expect("a retry atom");
        println!("history of {name}:");
        for (i, attempt) in detail.history().attempts().iter().enumerate() {
            let failed: Vec<String> = attempt
                .failures
                .iter()
                .map(|(a, f)| format!("{a}: {}", f.message))
                .collect();
            println!(
                "  attempt {} ({}) failures: {:?}",
                i + 1,
                attempt.result,
                failed
            );
        }
    }
    Ok(())
}
