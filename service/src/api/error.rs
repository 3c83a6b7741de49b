//! The API's error body: `{"code", "err", "description"}` with the status
//! that fits (Harbor's shape).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use taskflow::JobBoardError;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, naming the field, job or server at fault.
    pub description: String,
}

#[derive(Serialize)]
struct Body<'a> {
    code: u16,
    err: &'a str,
    description: &'a str,
}

impl ApiError {
    /// 400: a body, a parameter or a query that is wrong.
    pub fn bad_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, description)
    }

    /// 401: no secret, or the wrong one.
    pub fn unauthorized(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, description)
    }

    /// 404: no such job.
    pub fn not_found(description: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, description)
    }

    /// 409: the job's state forbids it, or a unique job runs already.
    pub fn conflict(description: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, description)
    }

    /// 503: the board or the records cannot be reached.
    pub fn unavailable(description: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, description)
    }

    fn new(status: StatusCode, description: impl Into<String>) -> Self {
        ApiError {
            status,
            description: description.into(),
        }
    }

    /// The answer to a board error: what a client caused is 4xx, a board
    /// that is down or failing is 503 (never 500).
    pub fn from_board(error: JobBoardError) -> Self {
        match &error {
            JobBoardError::NotFound(id) => Self::not_found(format!("no job {id}")),
            JobBoardError::Complete(id) => Self::conflict(format!("job {id} is finished")),
            JobBoardError::NotComplete(id) => Self::conflict(format!("job {id} is not finished")),
            JobBoardError::Duplicate { key, existing } => Self::conflict(format!(
                "a unique job `{key}` is not finished: job {existing}"
            )),
            JobBoardError::AlreadyClaimed { .. } | JobBoardError::NotOwner { .. } => {
                Self::conflict(error.to_string())
            }
            _ => Self::unavailable(format!("the jobboard failed: {error}")),
        }
    }

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
