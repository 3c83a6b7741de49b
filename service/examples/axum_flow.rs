//! An axum handler that runs a small flow of HTTP calls, with reverts, on
//! the tokio executor, and answers with the flow's result.
//!
//! ```sh
//! cargo run -p taskflow-service --example axum_flow
//! ```
//!
//! It starts two servers on loopback: a payments service (the upstream the
//! flow calls: holds, releases and charges) and the app, whose
//! `POST /orders` runs the flow `order`: `hold` (an async task: POST a
//! hold; its revert DELETEs it), `charge` (an async task: POST a charge,
//! which the upstream declines above 100) and `receipt` (a blocking task, on
//! the runtime's blocking pool). The handler awaits `engine.run_async()`,
//! so no runtime thread blocks while the calls are in flight. Then it
//! orders twice: 40 (charged) and 500 (declined: the hold is released).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use taskflow::prelude::*;
use taskflow::{async_atom, async_trait, AsyncTask, Tokio};

// ---- the upstream: a payments service the flow calls ----

/// What the payments service did.
#[derive(Default)]
struct Ledger {
    holds: Vec<String>,
    released: Vec<String>,
    charges: Vec<String>,
}

type Payments = Arc<Mutex<Ledger>>;

async fn hold(State(ledger): State<Payments>, Json(body): Json<Value>) -> Json<Value> {
    let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
    let id = format!("hold-{}-{}", ledger.holds.len() + 1, body["amount"]);
    ledger.holds.push(id.clone());
    Json(json!({ "id": id }))
}

async fn release(State(ledger): State<Payments>, Path(id): Path<String>) -> StatusCode {
    let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
    ledger.released.push(id);
    StatusCode::NO_CONTENT
}

async fn charge(
    State(ledger): State<Payments>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, (StatusCode, String)> {
    if body["amount"].as_u64().unwrap_or(0) > 100 {
        return Err((
            StatusCode::PAYMENT_REQUIRED,
            "card declined: the limit is 100".to_owned(),
        ));
    }
    let mut ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
    let id = format!("charge-{}", ledger.charges.len() + 1);
    ledger.charges.push(format!("{id} on {}", body["hold"]));
    Ok(Json(json!({ "id": id })))
}

async fn show_ledger(State(ledger): State<Payments>) -> Json<Value> {
    let ledger = ledger.lock().unwrap_or_else(|e| e.into_inner());
    Json(json!({
        "holds": ledger.holds,
        "released": ledger.released,
        "charges": ledger.charges,
    }))
}

fn payments() -> Router {
    Router::new()
        .route("/holds", post(hold))
        .route("/holds/{id}", delete(release))
        .route("/charges", post(charge))
        .route("/ledger", get(show_ledger))
        .with_state(Payments::default())
}

// ---- the flow's tasks: HTTP calls ----

/// What a task needs to call the payments service.
#[derive(Clone)]
struct Upstream {
    http: reqwest::Client,
    base: String,
}

impl Upstream {
    /// POSTs `body` to `path`; a refusal is a failure naming the call.
    async fn post(&self, path: &str, body: Value) -> Result<Value, TaskError> {
        let url = format!("{}{path}", self.base);
        let answer = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| TaskError::new("Unreachable", format!("POST {url}: {e}")))?;
        let status = answer.status();
        if !status.is_success() {
            let why = answer.text().await.unwrap_or_default();
            return Err(TaskError::new(
                "Declined",
                format!("POST {url}: {status}: {why}"),
            ));
        }
        answer
            .json()
            .await
            .map_err(|e| TaskError::new("BadAnswer", format!("POST {url}: {e}")))
    }
}

/// Holds the amount; reverting releases the hold.
struct Hold(Upstream);

#[async_trait]
impl AsyncTask for Hold {
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        let amount: u64 = ctx.input("amount")?;
        let hold = self.0.post("/holds", json!({ "amount": amount })).await?;
        Ok(hold["id"].clone())
    }

    async fn revert(&self, ctx: &mut Context<'_>) -> Result<(), TaskError> {
        let Some(id) = ctx.own_result().and_then(Value::as_str) else {
            return Ok(()); // nothing was held
        };
        let url = format!("{}/holds/{id}", self.0.base);
        self.0
            .http
            .delete(&url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| TaskError::new("Unreachable", format!("DELETE {url}: {e}")))?;
        ctx.set_revert_result(json!({ "released": id }));
        Ok(())
    }
}

/// Charges the held amount.
struct Charge(Upstream);

#[async_trait]
impl AsyncTask for Charge {
    async fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        let amount: u64 = ctx.input("amount")?;
        let hold: String = ctx.input("hold")?;
        let charge = self
            .0
            .post("/charges", json!({ "amount": amount, "hold": hold }))
            .await?;
        Ok(charge["id"].clone())
    }
}

// ---- the app ----

#[derive(Deserialize)]
struct Order {
    amount: u64,
}

/// `POST /orders`: runs the flow and answers with how it ended.
async fn order(
    State(upstream): State<Upstream>,
    Json(order): Json<Order>,
) -> (StatusCode, Json<Value>) {
    let flow = Linear::new("order")
        .add(
            async_atom("hold", Hold(upstream.clone()))
                .requires(["amount"])
                .provides("hold")
                .timeout(Duration::from_secs(5)),
        )
        .add(
            async_atom("charge", Charge(upstream))
                .requires(["amount", "hold"])
                .provides("charge")
                .timeout(Duration::from_secs(5)),
        )
        .add(
            atom(
                "receipt",
                task_fn(|ctx| {
                    let charge: String = ctx.input("charge")?;
                    Ok(json!(format!(
                        "paid {} ({charge})",
                        ctx.input::<u64>("amount")?
                    )))
                }),
            )
            .requires(["amount", "charge"])
            .provides("receipt"),
        );
    let built = Tokio::current().and_then(|tokio| {
        Engine::builder(flow)
            .store(json!({ "amount": order.amount }))
            .executor(tokio)
            .build()
    });
    let mut engine = match built {
        Ok(engine) => engine,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    };
    match engine.run_async().await {
        Ok(state) => (
            StatusCode::OK,
            Json(json!({
                "state": state.to_string(),
                "receipt": engine.storage().fetch("receipt"),
            })),
        ),
        Err(EngineError::Failed {
            state, failures, ..
        }) => {
            let released = engine
                .storage()
                .atom_detail("hold")
                .and_then(|d| d.revert_result().map(|v| &**v).cloned());
            (
                StatusCode::CONFLICT,
                Json(json!({
                    "state": state.to_string(),
                    "failures": failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
                    "reverted": released,
                })),
            )
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, &e),
    }
}

fn error(status: StatusCode, e: &EngineError) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": e.to_string() })))
}

/// Serves `router` on a free loopback port; returns its base URL.
async fn serve(router: Router) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router).await {
            eprintln!("server stopped: {e}");
        }
    });
    Ok(base)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let http = reqwest::Client::new();
    let upstream = Upstream {
        http: http.clone(),
        base: serve(payments()).await?,
    };
    let app = serve(
        Router::new()
            .route("/orders", post(order))
            .with_state(upstream.clone()),
    )
    .await?;
    for amount in [40, 500] {
        let answer = http
            .post(format!("{app}/orders"))
            .json(&json!({ "amount": amount }))
            .send()
            .await?;
        let status = answer.status().as_u16();
        let body: Value = answer.json().await?;
        println!("order of {amount}: {status} {body}");
    }
    let ledger: Value = http
        .get(format!("{}/ledger", upstream.base))
        .send()
        .await?
        .json()
        .await?;
    println!("ledger: {ledger}");
    Ok(())
}
