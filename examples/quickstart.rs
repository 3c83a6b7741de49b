//! A graph flow with data passing: fetch two prices in any order, then sum
//! them and apply a discount from the store. Run with
//! `cargo run --example quickstart`.

use std::sync::Arc;

use taskflow::prelude::*;
use taskflow::TimingListener;

/// A serializable task: quotes a price for an item.
#[derive(Serialize, Deserialize)]
struct Quote {
    item: String,
    cents: i64,
}

#[typetag::serde]
impl StoredTask for Quote {
    fn execute(&self, ctx: &mut Context) -> Result<Value, TaskError> {
        println!(
            "  {} quotes {} for {}",
            ctx.atom_name(),
            self.cents,
            self.item
        );
        Ok(json!(self.cents))
    }
}

fn main() -> Result<(), EngineError> {
    let flow = Graph::new("checkout")
        .add(
            atom(
                "quote_book",
                Quote {
                    item: "book".into(),
                    cents: 1250,
                },
            )
            .provides("book"),
        )
        .add(
            atom(
                "quote_pen",
                Quote {
                    item: "pen".into(),
                    cents: 199,
                },
            )
            .provides("pen"),
        )
        .add(
            atom(
                "total",
                task_fn(|ctx| {
                    let sum = ctx.input::<i64>("book")? + ctx.input::<i64>("pen")?;
                    let discount: i64 = ctx.input("discount_pct")?;
                    Ok(json!(sum * (100 - discount) / 100))
                }),
            )
            // Links are inferred from data: `total` runs after both quotes.
            .requires(["book", "pen", "discount_pct"])
            .provides("total"),
        )
        .add(
            atom(
                "receipt",
                task_fn(|ctx| {
                    Ok(json!(format!(
                        "total: {} cents",
                        ctx.input::<i64>("total")?
                    )))
                }),
            )
            .requires(["total"])
            .provides("receipt"),
        );

    let timing = Arc::new(TimingListener::new());
    let mut engine = Engine::builder(flow)
        .store(json!({ "discount_pct": 10 }))
        .listener(timing.clone())
        .build()?;
    println!(
        "running flow `checkout` ({} atoms)",
        engine.compilation().len()
    );
    let state = engine.run()?;
    println!("flow ended {state}");
    println!(
        "receipt: {}",
        engine.storage().fetch("receipt").unwrap_or(&Value::Null)
    );
    let mut timings: Vec<_> = timing.durations().into_iter().collect();
    timings.sort();
    for (atom, took) in timings {
        println!("  {atom} took {took:?}");
    }
    Ok(())
}
