//! The exit codes of `taskflow`: how a command, or the flow it ran, ended.

use taskflow::{EngineError, FlowState};

use crate::CliError;

/// The command did what it was asked; a flow it ran ended `SUCCESS`.
pub const SUCCESS: u8 = 0;
/// The command could not do it: records unreachable, an engine error, a
/// failed write of its output.
pub const ERROR: u8 = 1;
/// What it was given is wrong: a flow file with mistakes, an unknown
/// flow, a malformed argument.
pub const INVALID: u8 = 2;
/// The flow failed and every executed atom was reverted (`REVERTED`).
pub const REVERTED: u8 = 3;
/// The flow failed and a revert failed too (`FAILURE`).
pub const FAILED: u8 = 4;
/// The flow was suspended (Ctrl-C): `taskflow resume` goes on with it.
pub const SUSPENDED: u8 = 5;

/// The code of a flow that ended in `state`.
pub fn of_state(state: FlowState) -> u8 {
    match state {
        FlowState::Success => SUCCESS,
        FlowState::Reverted => REVERTED,
        FlowState::Failure => FAILED,
        FlowState::Suspended => SUSPENDED,
        _ => ERROR,
    }
}

/// The code of a command that failed with `e`.
pub fn code_of(e: &CliError) -> u8 {
    match e {
        CliError::Invalid(_)
        | CliError::StoreArg { .. }
        | CliError::UnknownFlow { .. }
        | CliError::BadFlowDetailId(_)
        | CliError::BadJobId(_)
        | CliError::BoardUrl { .. }
        | CliError::RecordsUrl { .. }
        | CliError::Config { .. } => INVALID,
        CliError::Engine(EngineError::Compile(_)) => INVALID,
        CliError::Service(
            taskflow_service::ServiceError::Config { .. }
            | taskflow_service::ServiceError::ConfigRead { .. }
            | taskflow_service::ServiceError::NoSecret
            | taskflow_service::ServiceError::NoJobTypes
            | taskflow_service::ServiceError::Tls { .. },
        ) => INVALID,
        CliError::Engine(EngineError::Failed { state, .. }) => of_state(*state),
        _ => ERROR,
    }
}
