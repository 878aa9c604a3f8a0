//! Ctrl-C while an apply runs: the first one asks the engine to start no new
//! step (the steps running finish, and the report lists the AWS updates
//! still going); a second one abandons the run at once.
//!
//! This module maps signals to those two answers and says so on stderr; it
//! must not decide anything about steps (the engine does, through its cancel
//! signal) nor end the process: [`watch`] resolves on the second Ctrl-C, the
//! caller drops the run, and the exit code goes back through `main`, so
//! destructors run (progress bars are closed, stdout is flushed).

use std::future::Future;
use std::io::Write;

use tokio::sync::watch;

/// Where interrupts come from: Ctrl-C in the binary, a channel in tests.
pub trait Signals {
    /// The next interrupt; `None` when no more can come.
    fn recv(&mut self) -> impl Future<Output = Option<()>> + Send;
}

/// SIGINT (Ctrl-C) for this process, listened to from [`CtrlC::listen`] on:
/// one listener for the whole run, so a second Ctrl-C that comes while the
/// first is being answered is not missed.
pub struct CtrlC {
    #[cfg(unix)]
    sigint: Option<tokio::signal::unix::Signal>,
}

impl CtrlC {
    /// Starts listening; call inside the runtime.
    pub fn listen() -> CtrlC {
        CtrlC {
            #[cfg(unix)]
            sigint: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok(),
        }
    }
}

impl Signals for CtrlC {
    async fn recv(&mut self) -> Option<()> {
        #[cfg(unix)]
        if let Some(sigint) = &mut self.sigint {
            return sigint.recv().await;
        }
        tokio::signal::ctrl_c().await.ok()
    }
}

/// Interrupts sent by a test.
#[cfg(test)]
impl Signals for tokio::sync::mpsc::UnboundedReceiver<()> {
    async fn recv(&mut self) -> Option<()> {
        tokio::sync::mpsc::UnboundedReceiver::recv(self).await
    }
}

/// The second Ctrl-C: the caller is to drop the run, close what shows it,
/// [`Abandon::tell`] the user, and exit with 130.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abandon;

impl Abandon {
    /// Says so on `err`; once the progress view is closed, so that its last
    /// drawing does not cover the line.
    pub fn tell<W: Write>(self, mut err: W) {
        let _ = writeln!(err, "Exiting; AWS updates already started go on in AWS.");
    }
}

/// Watches `signals` for the whole run: on the first interrupt, sends `true`
/// on `cancel` and says so on `err`; on the second, resolves.
/// While no second interrupt can come (the signals ended), it never
/// resolves: the run is then only ever cancelled, never abandoned.
pub async fn watch<S: Signals, W: Write>(
    mut signals: S,
    cancel: watch::Sender<bool>,
    mut err: W,
) -> Abandon {
    if signals.recv().await.is_none() {
        return std::future::pending().await;
    }
    let _ = cancel.send(true);
    let _ = writeln!(
        err,
        "\nInterrupted: starting no new step. Press Ctrl-C again to exit at once."
    );
    if signals.recv().await.is_none() {
        return std::future::pending().await;
    }
    Abandon
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;

    /// Regression: the second Ctrl-C called `std::process::exit(130)` from
    /// the signal task, skipping every destructor. It must come back to the
    /// caller instead (before the fix, this test ended the test process).
    #[tokio::test]
    async fn the_second_interrupt_comes_back_to_the_caller() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let mut err = Vec::new();
        tx.send(()).unwrap();
        tx.send(()).unwrap();
        let abandon =
            tokio::time::timeout(Duration::from_secs(5), watch(rx, cancel_tx, &mut err)).await;
        assert_eq!(abandon, Ok(Abandon));
        assert!(*cancel_rx.borrow(), "the first interrupt cancelled the run");
        Abandon.tell(&mut err);
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "\nInterrupted: starting no new step. Press Ctrl-C again to exit at once.\n\
             Exiting; AWS updates already started go on in AWS.\n"
        );
    }

    #[tokio::test]
    async fn one_interrupt_only_cancels() {
        let (tx, rx) = mpsc::unbounded_channel();
        let (cancel_tx, cancel_rx) = watch::channel(false);
        tx.send(()).unwrap();
        let mut err = Vec::new();
        let watching =
            tokio::time::timeout(Duration::from_millis(100), watch(rx, cancel_tx, &mut err)).await;
        assert!(watching.is_err(), "still watching for a second interrupt");
        assert!(*cancel_rx.borrow());
        drop(tx);
    }

    #[tokio::test]
    async fn without_signals_the_run_is_never_abandoned() {
        let (tx, rx) = mpsc::unbounded_channel::<()>();
        drop(tx);
        let (cancel_tx, cancel_rx) = watch::channel(false);
        let watching =
            tokio::time::timeout(Duration::from_millis(100), watch(rx, cancel_tx, Vec::new()))
                .await;
        assert!(watching.is_err());
        assert!(!*cancel_rx.borrow());
    }
}
