//! The `sleep` task: waits, and gives way to a suspension.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use taskflow::{Context, StoredTask, TaskError, Value};

use super::{FileTask, Seconds};

/// Waits for `seconds` (`sleep: 2s` in a flow file). A suspension asked
/// for while it waits interrupts it: the atom goes back to `PENDING` and
/// waits again when the flow resumes. Its result is null.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sleep {
    /// How long.
    pub seconds: Seconds,
}

#[typetag::serde(name = "taskflow::cli::Sleep")]
impl StoredTask for Sleep {
    fn execute(&self, ctx: &mut Context<'_>) -> Result<Value, TaskError> {
        let total = self.seconds.duration();
        let start = Instant::now();
        loop {
            let elapsed = start.elapsed();
            if elapsed >= total {
                return Ok(Value::Null);
            }
            if ctx.is_cancelled() {
                return Err(TaskError::interrupted("sleep interrupted by a stop"));
            }
            if !total.is_zero() {
                ctx.progress(elapsed.as_secs_f32() / total.as_secs_f32());
            }
            std::thread::sleep((total - elapsed).min(Duration::from_millis(20)));
        }
    }
}

impl FileTask for Sleep {
    const KIND: &'static str = "sleep";
    const SHORTHAND: Option<&'static str> = Some("seconds");
}
