//! A failing flow reverting: three steps of a provisioning flow succeed,
//! the fourth fails, and every step that ran is undone, dependents first.
//! Run with `cargo run --example revert`.

use taskflow::prelude::*;

fn step(name: &'static str) -> taskflow::FnTask {
    task_fn(move |_| {
        println!("execute {name}");
        Ok(json!(format!("{name}-id")))
    })
    .with_revert(move |ctx| {
        println!(
            "revert  {name} (it had made {}; the flow failed because: {})",
            ctx.own_result().unwrap_or(&Value::Null),
            ctx.flow_failures()[0]
        );
        Ok(())
    })
}

fn main() {
    let flow = Linear::new("provision")
        .add(atom("network", step("network")).provides("net"))
        .add(
            Unordered::new("storage")
                .add(atom("volume", step("volume")).requires(["net"]))
                .add(atom("bucket", step("bucket")).requires(["net"])),
        )
        .add(atom(
            "boot",
            task_fn(|_| {
                println!("execute boot");
                Err(TaskError::new(
                    "NoCapacity",
                    "no host has room for the server",
                ))
            })
            .with_revert(|ctx| {
                println!(
                    "revert  boot (its own failure: {})",
                    ctx.own_failure().map_or("", |f| &f.kind)
                );
                Ok(())
            }),
        ));

    let mut engine = Engine::builder(flow).build().expect("the flow compiles");
    match engine.run() {
        Ok(state) => println!("flow ended {state}"),
        Err(err) => println!("{err}"),
    }
    for detail in engine.storage().atom_details() {
        println!("  {:8} {}", detail.name, detail.state);
    }
}
