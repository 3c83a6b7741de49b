//! The REST API: Harbor's jobservice paths and bodies, over axum.
//!
//! | method and path | answer |
//! | --- | --- |
//! | `POST /api/v1/jobs` | 202, the job's stats |
//! | `GET /api/v1/jobs` | 200, a page of jobs (`status`, `name`, `kind`, `page_number`, `page_size`); `X-Total-Count` |
//! | `GET /api/v1/jobs/{id}` | 200, the job's stats |
//! | `POST /api/v1/jobs/{id}` | 204 (`{"action": "stop" \| "cancel" \| "retry"}`) |
//! | `GET /api/v1/jobs/{id}/log` | 200, the job's log (text) |
//! | `GET /api/v1/jobs/{id}/executions` | 200, a page of a periodic policy's executions |
//! | `GET /api/v1/stats` | 200, every node: id, started, heartbeat, job types, concurrency, health |
//! | `GET /api/v1/health` | 200, without a secret |
//! | `GET /api/v1/openapi.yaml` | the OpenAPI document, without a secret |
//!
//! Errors are `{"code", "err", "description"}`: 400 for a body, parameter
//! or query that is wrong (naming the field), 401, 404, 409 for an action
//! the job's status forbids (naming the status) or a unique job that runs
//! already (naming it), 503 when the board or the records fail. Nothing a
//! client sends gets a 500.

mod auth;
mod error;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};
use serde_json::json;

use crate::error::ApiError;

use crate::core::{Core, ListQuery};
use crate::JobStats;

/// The OpenAPI document of this API, as kept in the repository.
pub const OPENAPI: &str = include_str!("../../openapi.yaml");

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) core: Arc<Core>,
    pub(crate) secret: Arc<str>,
    pub(crate) auth_scheme: Arc<str>,
}

/// The API's routes.
pub(crate) fn router(state: AppState) -> Router {
    let authed = Router::new()
        .route("/api/v1/jobs", post(submit).get(list))
        .route("/api/v1/jobs/{id}", get(stats).post(act))
        .route("/api/v1/jobs/{id}/log", get(log))
        .route("/api/v1/jobs/{id}/executions", get(executions))
        .route("/api/v1/stats", get(nodes))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_secret,
        ));
    Router::new()
        .route("/api/v1/health", get(health))
        .route("/api/v1/openapi.yaml", get(openapi))
        .merge(authed)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Runs `work` on a blocking thread (the board and the records block), and
/// answers a panic in it with 503 rather than dropping the connection.
async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|e| Err(ApiError::unavailable(format!("the request failed: {e}"))))
}

fn page_response(jobs: Vec<JobStats>, total: usize) -> Response {
    let body: Vec<_> = jobs.iter().map(JobStats::body).collect();
    let mut response = Json(body).into_response();
    if let Ok(total) = HeaderValue::from_str(&total.to_string()) {
        response.headers_mut().insert("X-Total-Count", total);
    }
    response
}

fn query(query: Result<Query<ListQuery>, QueryRejection>) -> Result<ListQuery, ApiError> {
    query
        .map(|Query(q)| q)
        .map_err(|e| ApiError::bad_request(format!("the query is wrong: {}", e.body_text())))
}

async fn submit(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let stats = blocking(move || state.core.submit(&body)).await?;
    Ok((StatusCode::ACCEPTED, Json(stats.body())).into_response())
}

async fn list(
    State(state): State<AppState>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (jobs, total) = blocking(move || state.core.list(&q)).await?;
    Ok(page_response(jobs, total))
}

async fn stats(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let stats = blocking(move || state.core.stats(&id)).await?;
    Ok(Json(stats.body()).into_response())
}

async fn act(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    blocking(move || state.core.act(&id, &body)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn log(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let text = blocking(move || state.core.log(&id)).await?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response())
}

async fn executions(
    State(state): State<AppState>,
    Path(id): Path<String>,
    q: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let (jobs, total) = blocking(move || state.core.executions(&id, &q)).await?;
    Ok(page_response(jobs, total))
}

async fn nodes(State(state): State<AppState>) -> Result<Response, ApiError> {
    let nodes = blocking(move || state.core.nodes()).await?;
    Ok(Json(nodes).into_response())
}

async fn health(State(state): State<AppState>) -> Response {
    Json(json!({ "status": "healthy", "node": state.core.node_id })).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI).into_response()
}

async fn not_found() -> ApiError {
    ApiError::not_found("no such path; see /api/v1/openapi.yaml")
}

async fn method_not_allowed() -> Response {
    let mut error = ApiError::bad_request("this method is not allowed on this path");
    error.status = StatusCode::METHOD_NOT_ALLOWED;
    error.into_response()
}
