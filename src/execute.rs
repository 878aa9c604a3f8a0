//! Running a plan for the user: the apply engine, a view rendering its events
//! as they come, and Ctrl-C watched for the whole run ([`interrupt`]). Used
//! by `apply`, by `apply --rehearse` against the rehearsal's copy, and by
//! the demo.
//!
//! It joins the parts and returns how the run ended; it must not print a
//! report or decide an exit code (the command does), and the engine under
//! it never prints. A second Ctrl-C drops the run here and returns
//! [`Executed::Abandoned`], so the process ends through `main` with its
//! destructors run.

use std::io::Write;

use crate::apply::{self, ApplyOptions, ApplyReport};
use crate::interrupt::{self, Signals};
use crate::plan::Plan;
use crate::provider::Provider;
use crate::view::progress::{self, EventView};

/// How a run ended.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // one per run, moved once: boxing buys nothing
pub enum Executed {
    /// The engine returned its report (also after a first Ctrl-C, which only
    /// stops starting steps).
    Finished(ApplyReport),
    /// A second Ctrl-C: the run was dropped where it was, with no report;
    /// AWS updates already started go on in AWS.
    Abandoned(interrupt::Abandon),
}

/// Runs `plan` through `provider` while `view` renders the events and
/// `signals` are watched; what interrupts say goes to `err`.
pub async fn execute<P: Provider, S: Signals, W: Write>(
    plan: &Plan,
    provider: &P,
    opts: &ApplyOptions,
    view: &mut (dyn EventView + Send),
    signals: S,
    mut err: W,
) -> Executed {
    let (tx, rx) = crate::channel::channel();
    let (cancel_tx, cancel_rx) = apply::cancel_signal();
    let executed = {
        let run = async {
            let (report, ()) = tokio::join!(
                apply::apply(plan, provider, opts, tx, cancel_rx),
                progress::drive(&mut *view, rx)
            );
            report
        };
        tokio::select! {
            report = run => Executed::Finished(report),
            abandon = interrupt::watch(signals, cancel_tx, &mut err) => {
                Executed::Abandoned(abandon)
            }
        }
    };
    if let Executed::Abandoned(abandon) = executed {
        // The stream was cut, not ended: close the view as its end would,
        // then say why below what it drew last.
        view.finish();
        abandon.tell(&mut err);
    }
    executed
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::sync::mpsc;

    use super::*;
    use crate::apply::fake;
    use crate::event::Event;
    use crate::wait::WaitOptions;

    #[derive(Default)]
    struct Recording {
        events: usize,
        finished: usize,
    }

    impl EventView for Recording {
        fn event(&mut self, _event: &Event) {
            self.events += 1;
        }
        fn finish(&mut self) {
            self.finished += 1;
        }
    }

    /// A cluster going private, whose update runs far longer than the test.
    fn slow() -> (fake::FakeAws, Plan, ApplyOptions) {
        let aws = fake::FakeAws::new().cluster("a", fake::public());
        aws.edit("a", |c| c.update_duration = Duration::from_secs(600));
        let plan = fake::plan(
            &aws,
            vec![fake::want("a", fake::private(), &["10.0.0.0/8"])],
        );
        let opts = ApplyOptions {
            wait: WaitOptions {
                first_interval: Duration::from_millis(5),
                max_interval: Duration::from_millis(10),
                timeout: Duration::from_secs(600),
            },
            ..ApplyOptions::default()
        };
        (aws, plan, opts)
    }

    /// Regression: the second Ctrl-C ended the process from the signal task,
    /// so the view was never closed. Now the run is dropped, the view
    /// closed, and the caller told.
    #[tokio::test]
    async fn a_second_interrupt_abandons_the_run_and_closes_the_view() {
        let (aws, plan, opts) = slow();
        let (tx, rx) = mpsc::unbounded_channel();
        let mut view = Recording::default();
        let interrupt_twice = async {
            while aws.updates_of("a").is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tx.send(()).unwrap();
            tx.send(()).unwrap();
        };
        let (executed, ()) = tokio::join!(
            tokio::time::timeout(
                Duration::from_secs(30),
                execute(&plan, &aws, &opts, &mut view, rx, std::io::sink())
            ),
            interrupt_twice
        );
        let executed = executed.expect("abandoned long before the update ends");
        assert!(matches!(executed, Executed::Abandoned(_)), "{executed:?}");
        assert_eq!(view.finished, 1, "the view was closed once");
        assert!(view.events > 0);
    }

    #[tokio::test]
    async fn without_interrupts_the_report_comes_back() {
        let (aws, plan, opts) = slow();
        aws.edit("a", |c| c.update_duration = Duration::from_millis(20));
        let (_tx, rx) = mpsc::unbounded_channel();
        let mut view = Recording::default();
        let executed = tokio::time::timeout(
            Duration::from_secs(30),
            execute(&plan, &aws, &opts, &mut view, rx, std::io::sink()),
        )
        .await
        .expect("the apply ends");
        let Executed::Finished(report) = executed else {
            panic!("{executed:?}")
        };
        assert!(report.success(), "{report:?}");
        assert_eq!(view.finished, 1);
    }
}
