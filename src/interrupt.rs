//! Ctrl-C while an apply runs: the first one asks the engine to start no new
//! step (the steps running finish, and the report lists the AWS updates
//! still going); a second one exits at once.
//!
//! This module maps signals to those two answers and says so on stderr; it
//! must not decide anything about steps (the engine does, through its cancel
//! signal) or end the process (`main` does, with the exit code it is given).

use std::future::Future;
use std::io::Write;

use tokio::sync::watch;

/// Where interrupts come from: Ctrl-C in the binary, a channel in tests.
pub trait Signals {
    /// The next interrupt; `None` when no more can come.
    fn recv(&mut self) -> impl Future<Output = Option<()>> + Send;
}

/// SIGINT (Ctrl-C) for this process.
pub struct CtrlC(());

impl CtrlC {
    pub fn listen() -> CtrlC {
        CtrlC(())
    }
}

impl Signals for CtrlC {
    async fn recv(&mut self) -> Option<()> {
        tokio::signal::ctrl_c().await.ok()
    }
}

/// Watches `signals` for the whole apply: on the first interrupt, sends
/// `true` on `cancel` and says so on `err`; on the second, exits.
pub async fn watch<S: Signals, W: Write>(mut signals: S, cancel: watch::Sender<bool>, mut err: W) {
    if signals.recv().await.is_none() {
        return;
    }
    let _ = cancel.send(true);
    let _ = writeln!(
        err,
        "\nInterrupted: starting no new step. Press Ctrl-C again to exit at once."
    );
    if signals.recv().await.is_none() {
        return;
    }
    let _ = writeln!(err, "Exiting; AWS updates already started go on in AWS.");
    std::process::exit(130);
}
