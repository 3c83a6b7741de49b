//! Ctrl-C (and SIGTERM, SIGHUP): the first asks the running verb to stop
//! gracefully, a second ends the process at once (exit 130).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crate::CliError;

type Action = Arc<dyn Fn() + Send + Sync>;

/// What the first signal does: set by the verb running now, if any.
static FIRST: Mutex<Option<Action>> = Mutex::new(None);
static PRESSES: AtomicUsize = AtomicUsize::new(0);
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// The first signal from now on calls `first` (a suspend, a stop); a
/// second ends the process. The handler is installed once per process (a
/// program may run several flows); each call points it at its action.
pub(crate) fn on_interrupt(first: impl Fn() + Send + Sync + 'static) -> Result<(), CliError> {
    let installed = INSTALLED.get_or_init(|| {
        ctrlc::set_handler(|| {
            if PRESSES.fetch_add(1, Ordering::SeqCst) == 0 {
                let action = FIRST.lock().ok().and_then(|a| a.clone());
                if let Some(action) = action {
                    action();
                }
            } else {
                std::process::exit(130);
            }
        })
        .map_err(|e| e.to_string())
    });
    if let Err(e) = installed {
        return Err(CliError::Signal(e.clone()));
    }
    PRESSES.store(0, Ordering::SeqCst);
    if let Ok(mut slot) = FIRST.lock() {
        *slot = Some(Arc::new(first));
    }
    Ok(())
}
