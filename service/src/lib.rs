//! # taskflow-service: the job service
//!
//! Harbor's jobservice (a REST service other services submit background
//! jobs to) built on taskflow's jobboard, conductors and records, so that
//! every job is a flow with a checkpoint after every atom:
//!
//! - a job whose node dies is taken over by another node when its lease
//!   lapses and resumed at its last checkpoint, so its status never
//!   sticks at `running`;
//! - stop suspends a job at the next atom boundary (tasks see the request
//!   through `ctx.is_cancelled()` and may return early), cancel also
//!   reverts what it did, and retry resumes a failed or stopped job from
//!   its checkpoint;
//! - scheduled jobs wait on the board (not claimable before their time),
//!   unique jobs are refused by the board while one with the same name
//!   and parameters is not finished, and each fire time of a periodic
//!   policy is one execution however many nodes run, because the board
//!   keeps one job per execution key;
//! - a job's status is read off the board and the records, both fenced by
//!   the claim's epoch, so a node that lost its claim cannot move it back.
//!
//! A node is [`Service::builder`] with the job types it runs, given a
//! board and records; several nodes on one board are one service.
//!
//! ```no_run
//! use std::sync::Arc;
//! use serde_json::json;
//! use taskflow::{atom, task_fn, BoardOptions, Flow, Linear, SqliteBackend, SqliteBoard, TaskError};
//! use taskflow_service::{JobType, Parameters, Service, ServiceConfig};
//!
//! struct Replicate;
//!
//! impl JobType for Replicate {
//!     fn flow(&self, params: &Parameters) -> Result<Flow, TaskError> {
//!         let image = params.get("image").cloned().unwrap_or_default();
//!         Ok(Linear::new("replicate")
//!             .add(atom("copy", task_fn(move |ctx| {
//!                 ctx.checkin("copying");
//!                 Ok(json!({ "copied": image }))
//!             })))
//!             .into())
//!     }
//! }
//!
//! let config = ServiceConfig::default();
//! let board = Arc::new(SqliteBoard::open(".taskflow/board.db", BoardOptions::default())?);
//! let records = Arc::new(SqliteBackend::open(".taskflow/records.db")?);
//! let service = Service::builder(config, board, records)
//!     .job_type("replicate", Replicate)
//!     .secret("s3cret")
//!     .build()?;
//! service.run()?; // until service.stop_handle().stop()
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod api;
mod clock;
mod config;
mod core;
mod cron;
mod error;
mod hooks;
mod job_type;
mod logs;
mod meta;
mod node;
mod periodic;
mod stats;
mod status;
mod tls;

pub use api::OPENAPI;
pub use config::{
    secret_from_env, FlowFileType, JobExecutor, Protocol, ServiceConfig, DEFAULT_PORT, ENVIRONMENT,
};
pub use core::NodeStats;
pub use error::{ApiError, ServiceError};
pub use hooks::{HookEvent, HookOptions, OutboxError};
pub use job_type::{InvalidParameter, JobType, JobTypes, Parameters};
pub use logs::{JobLogLayer, JobLogs, JOB_FIELD, JOB_SPAN};
pub use node::{Service, ServiceBuilder, ServiceHandle};
pub use stats::JobStats;
pub use status::{Kind, Status};
