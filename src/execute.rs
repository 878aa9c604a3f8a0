//! Running a plan for the user: the apply engine, a view rendering its events
//! as they come, and Ctrl-C watched for the whole run ([`interrupt`]). Used
//! by `apply`, by `apply --rehearse` against the rehearsal's copy, and by
//! the demo.
//!
//! It joins the parts and returns the report; it must not print a report or
//! decide an exit code (the command does), and the engine under it never
//! prints.

use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::interrupt::{self, Signals};
use crate::plan::Plan;
use crate::printer::Writer;
use crate::provider::Provider;
use crate::view::progress::{self, EventView};

/// Runs `plan` through `provider` while `view` renders the events and
/// `signals` are watched; what interrupts say goes to `err`.
pub async fn execute<P: Provider, S: Signals + Send + 'static>(
    plan: &Plan,
    provider: &P,
    opts: &ApplyOptions,
    view: &mut (dyn EventView + Send),
    signals: S,
    err: Writer,
) -> ApplyReport {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (cancel_tx, cancel_rx) = apply::cancel_signal();
    let watcher = tokio::spawn(interrupt::watch(signals, cancel_tx, err));
    let (report, ()) = tokio::join!(
        apply::apply(plan, provider, opts, tx, cancel_rx),
        progress::drive(view, rx)
    );
    watcher.abort();
    report
}
