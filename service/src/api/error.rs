//! The API's error body: `{"code", "err", "description"}` with the status
//! that fits (Harbor's shape).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;

#[derive(Serialize)]
struct Body<'a> {
    code: u16,
    err: &'a str,
    description: &'a str,
}

impl ApiError {
    /// The short message of the status.
    fn err(&self) -> &'static str {
        match self.status {
            StatusCode::BAD_REQUEST => "bad request",
            StatusCode::UNAUTHORIZED => "unauthorized",
            StatusCode::NOT_FOUND => "not found",
            StatusCode::CONFLICT => "conflict",
            StatusCode::METHOD_NOT_ALLOWED => "method not allowed",
            StatusCode::SERVICE_UNAVAILABLE => "service unavailable",
            _ => "error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body {
            code: self.status.as_u16(),
            err: self.err(),
            description: &self.description,
        };
        (self.status, Json(body)).into_response()
    }
}
