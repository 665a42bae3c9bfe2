//! Stopping a run cleanly on Ctrl-C or SIGTERM.
//!
//! The first signal asks [`train::fit`](crate::train::fit()) to stop at the next batch
//! boundary: the run keeps its last complete state (written at the end of the previous
//! epoch) and `fit` returns [`Error::Interrupted`](crate::Error::Interrupted). A second
//! signal exits the process at once, with status 130.

use std::sync::atomic::{AtomicUsize, Ordering};

static SIGNALS: AtomicUsize = AtomicUsize::new(0);

/// Installs the handler for Ctrl-C (SIGINT) and SIGTERM. Call it once, early in `main`;
/// a library embedding convkit can instead call [`request_stop`] from its own handler.
pub fn install_handler() -> crate::Result<()> {
    ctrlc::set_handler(|| {
        if SIGNALS.fetch_add(1, Ordering::SeqCst) > 0 {
            eprintln!("\ninterrupted again: exiting now");
            std::process::exit(130);
        }
        eprintln!("\ninterrupted: stopping at the next batch (Ctrl-C again to exit now)");
    })
    .map_err(|e| crate::Error::InvalidConfig(format!("cannot install the Ctrl-C handler: {e}")))
}

/// Asks the running `fit` to stop at the next batch boundary, as a first Ctrl-C does.
pub fn request_stop() {
    SIGNALS.fetch_add(1, Ordering::SeqCst);
}

/// Whether a stop was asked for.
pub fn stop_requested() -> bool {
    SIGNALS.load(Ordering::SeqCst) > 0
}

/// Forgets a stop request (for a program that trains again after an interruption).
pub fn clear() {
    SIGNALS.store(0, Ordering::SeqCst);
}
