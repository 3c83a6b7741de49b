//! The same flow on the serial and the parallel engine: four downloads
//! that each wait 200 ms on the "network" run one after another on the
//! serial engine and at the same time on the parallel one; the merge runs
//! after all four either way. Run with `cargo run --example parallel`.

use std::time::{Duration, Instant};

use taskflow::prelude::*;
use taskflow::EngineBuilder;

fn download(part: usize) -> taskflow::FnTask {
    task_fn(move |ctx| {
        let thread = std::thread::current().name().unwrap_or("main").to_owned();
        std::thread::sleep(Duration::from_millis(200));
        ctx.progress(1.0);
        Ok(json!(format!("part {part} (fetched on {thread})")))
    })
}

fn flow() -> Flow {
    let downloads = Unordered::new("downloads").add_all(
        (0..4).map(|i| atom(format!("download_{i}"), download(i)).provides(format!("part_{i}"))),
    );
    let merge = atom(
        "merge",
        task_fn(|ctx| {
            let parts: Vec<String> = (0..4)
                .map(|i| ctx.input::<String>(&format!("part_{i}")))
                .collect::<Result<_, _>>()?;
            Ok(json!(parts))
        }),
    )
    .requires((0..4).map(|i| format!("part_{i}")))
    .provides("merged");
    Linear::new("fetch").add(downloads).add(merge).into()
}

fn run(label: &str, builder: EngineBuilder) -> Result<(), EngineError> {
    let mut engine = builder.build()?;
    let started = Instant::now();
    let state = engine.run()?;
    println!("{label}: {state} in {} ms", started.elapsed().as_millis());
    for part in engine
        .storage()
        .fetch("merged")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        println!("  {}", part.as_str().unwrap_or_default());
    }
    Ok(())
}

fn main() -> Result<(), EngineError> {
    run("serial engine", Engine::builder(flow()))?;
    run(
        "parallel engine, 4 workers",
        Engine::builder(flow()).executor(Parallel::new(4)?),
    )?;
    Ok(())
}
