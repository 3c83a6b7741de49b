//! `Authorization: <scheme> <secret>` on every request but the health
//! check, compared in constant time.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::{ApiError, AppState};

/// Lets a request through if it presents the secret.
pub(super) async fn require_secret(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '));
    match presented {
        Some((scheme, secret))
            if scheme == &*state.auth_scheme
                && bool::from(secret.trim().as_bytes().ct_eq(state.secret.as_bytes())) =>
        {
            next.run(request).await
        }
        Some((scheme, _)) if scheme != &*state.auth_scheme => ApiError::unauthorized(format!(
            "the Authorization header's scheme must be `{}`",
            state.auth_scheme
        ))
        .into_response(),
        Some(_) => ApiError::unauthorized("the secret is wrong").into_response(),
        None => ApiError::unauthorized(format!(
            "no secret: send `Authorization: {} <secret>`",
            state.auth_scheme
        ))
        .into_response(),
    }
}
