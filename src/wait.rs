//! Waiting for AWS: poll until an EKS update (or a cluster that is
//! `UPDATING`) has finished, with a schedule that keeps both the number of
//! calls and the lag between "AWS finished" and "eksgate noticed" small, a
//! timeout, and an interruption signal.
//!
//! This module owns the poll schedule and the retry of failed polls. It must
//! not decide what a finished update means for a step (that is `apply`) and
//! must not emit events or print: callers see each answer through a callback.
//!
//! # The schedule, and why
//!
//! An update of unknown duration `D` is polled at `anchor + t1, t2, ...`, where
//! `anchor` is the moment eksgate learnt the update id (the answer to
//! `UpdateClusterConfig`, so never before AWS's `createdAt`) and each interval
//! is a tenth of the update's age, clamped to `[first_interval, max_interval]`:
//!
//! ```text
//! interval(age) = clamp(age / 10, first_interval, max_interval)
//! ```
//!
//! - Lag: the poll after the update ends comes at most one interval later, and
//!   an interval is at most `max(first_interval, age / 10)`, so the lag is at
//!   most 10% of `D` once `D >= 10 * first_interval`, and at most
//!   `first_interval` before that.
//! - Calls: about `D / first_interval` while the age is under
//!   `10 * first_interval`, then the intervals grow by 10% per poll
//!   (exponential backoff in time) until `max_interval`. With
//!   `first_interval = D / 10` that is 10 polls and a lag of a few
//!   milliseconds when the update ends on schedule (at most `first_interval`
//!   otherwise). With the defaults (2s, 15s) a 5-minute update takes about 41
//!   polls with a lag of at most 15s (5%); 20 minutes about 100 polls.
//! - Trade-off: a doubling backoff would poll less (about 25 times in 5
//!   minutes) but its lag grows with the last interval (up to half the
//!   duration); a fixed interval keeps the lag small but polls a 20-minute
//!   update hundreds of times. A tenth of the age bounds the relative lag and
//!   still grows geometrically.
//! - Jitter: status polls are not jittered, because any random lengthening
//!   breaks the lag bound and any shortening adds polls, and polls of
//!   different clusters are already spread by their updates' own start times.
//!   Jitter goes where contention is the problem: a poll that fails
//!   (throttling, a server error, no answer) is retried after a "full jitter"
//!   delay, uniform in `[0, min(max_interval, first_interval * 2^n))` for the
//!   n-th consecutive failure, so callers that collided spread out.
//!
//! When eksgate waits for an update it did not start, it does not know its
//! age (`DescribeUpdate`'s `createdAt` is not in [`UpdateState`]): it polls
//! once at once, in case the update has already ended, then counts the age
//! from the start of the wait, which only polls more often than needed.
//!
//! # Learning from the fleet
//!
//! The updates of one run are alike (the same kind of change, in the same
//! service), and most of the polls above are spent early, long before any
//! update could end. So the waits of one run (the waits given the run's
//! [`RunLearning`]) share what they learn: each update eksgate started and saw end
//! leaves a *sample*: the age at which it was last seen `InProgress` (a time
//! that update certainly lasted) and the age at which it was first seen ended
//! (a time by which it had ended). Ages count to when the poll went out, after
//! any wait for its turn at a throttled API (see `provider::sent_at`): the
//! answer tells the state of the update then. Once [`MIN_SAMPLES`] updates
//! have ended, the run's *floor* is the shortest of the last [`WINDOW`]
//! `InProgress` ages and its *ceiling* the shortest of the last [`WINDOW`]
//! ended ages. No wait polls before `anchor + floor`. From there [`REFINERS`]
//! waits at a time poll at a twentieth of the update's age (at most
//! `max_interval`), because that is where the updates of this run have been
//! ending; their samples are close to the real duration, so floor and ceiling
//! close in on it, and the coarse samples of the first waits leave the window.
//! Each refiner's first poll is a share of that first twentieth past the
//! floor (no further than the ceiling), the share moving on by the golden
//! ratio with each refiner, so their polls do not all fall at the same ages
//! and the ceiling can come down to within a few milliseconds of the end; a
//! refiner whose first poll already finds its update ended leaves a sample
//! too, with an ended age only, and one still short of the ceiling polls
//! there at the latest. The other waits poll first at `anchor + ceiling`;
//! still `InProgress` there (updates started a few milliseconds apart end a
//! few milliseconds apart), they look again a hundredth of the age later,
//! once, and then go on at a twentieth of the age. Floor and ceiling are read
//! again before every poll, and a new sample wakes the waits they hold back,
//! so a wait that started early uses what was learnt meanwhile. Most updates
//! of a large rollout are then polled once or twice; one that ends sooner
//! than the recent ones is noticed at the floor or ceiling, never later than
//! the quickest recent update.
//!
//! Until then, the first [`SCOUTS`] waits of a run poll on the schedule above,
//! except that once more updates than the scouts are waiting, a scout's
//! interval is a tenth of the age even below `first_interval`, so that the
//! first samples are within 10% of the duration (a few more polls for three
//! updates, against a lag of up to `first_interval` for every update of the
//! run; a lone update keeps the plain schedule). A scout whose first poll
//! already finds its update ended leaves a sample with a ceiling only. The
//! others skip the polls of the first `10 * first_interval` (where the
//! schedule's intervals are flat) unless something is learnt first: with
//! hundreds of updates started at once, those polls are most of the calls and
//! they compete with the updates still to be started for the same API rate.
//! Waits for updates eksgate did not start (unknown age) never skip polls.

use std::collections::VecDeque;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{watch, Notify};
use tokio::time::Instant;

use crate::live::{ClusterObservation, ClusterStatus};
use crate::provider::{sent_at, Provider, ProviderError, Scope, UpdateState, UpdateStatus};

/// How long and how often to wait for an AWS update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WaitOptions {
    /// The smallest interval between two polls, and the first one.
    pub first_interval: Duration,
    /// The largest interval between two polls.
    pub max_interval: Duration,
    /// How long to wait for one update before giving up on it.
    pub timeout: Duration,
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            first_interval: Duration::from_secs(2),
            max_interval: Duration::from_secs(15),
            timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The fraction of an update's age that the next poll waits (see the module
/// docs): the bound on the lag relative to the update's duration.
const AGE_FRACTION: u32 = 10;

/// The interval before the next poll of an update that has been running for
/// `age`.
pub fn poll_interval(opts: &WaitOptions, age: Duration) -> Duration {
    let first = opts.first_interval.max(Duration::from_millis(1));
    // A cap below the first interval is a configuration slip: honour the first.
    let cap = opts.max_interval.max(first);
    (age / AGE_FRACTION).clamp(first, cap)
}

/// The delay before retrying after the `failures`-th consecutive failed
/// poll: full jitter over an exponentially growing window.
pub fn retry_delay(opts: &WaitOptions, failures: u32, rng: &mut impl Rng) -> Duration {
    let first = opts.first_interval.max(Duration::from_millis(1));
    let cap = opts.max_interval.max(first);
    let window = first
        .checked_mul(1u32 << failures.saturating_sub(1).min(20))
        .unwrap_or(cap)
        .min(cap);
    window.mul_f64(rng.random::<f64>())
}

/// Whether a failed poll is worth retrying: no answer, throttling, or a
/// server-side error. Anything else (an unknown update id, access denied)
/// will not get better by asking again.
pub fn is_retryable(err: &ProviderError) -> bool {
    match err {
        ProviderError::Transport { .. } => true,
        ProviderError::Aws { code, .. } => matches!(
            code.as_str(),
            "ThrottlingException"
                | "Throttling"
                | "TooManyRequestsException"
                | "RequestLimitExceeded"
                | "ServerException"
                | "ServiceUnavailableException"
                | "ServiceUnavailable"
                | "Unavailable"
                | "InternalFailure"
                | "InternalError"
                | "InternalServerError"
        ),
        ProviderError::AccountMismatch { .. } => false,
        // The network may come back; credentials will not appear by
        // themselves.
        ProviderError::Local { failure, .. } => {
            matches!(**failure, crate::provider::failure::Failure::Endpoint(_))
        }
    }
}

/// What one poll found: `done` once the wait is over, and a status to show.
pub struct Polled<T> {
    pub done: Option<T>,
    pub status: String,
}

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WaitEnd<T> {
    /// The thing waited for finished; `polls` counts the answers, the last
    /// one included (1 means it had already finished).
    Finished { value: T, polls: u32 },
    /// Still running at the timeout. `last_status` is the last answer, if any
    /// poll got one.
    TimedOut {
        waited: Duration,
        last_status: Option<String>,
        last_error: Option<ProviderError>,
    },
    /// The cancel signal fired.
    Cancelled,
    /// A poll failed in a way retrying will not fix.
    Failed(ProviderError),
}

/// Resolves once `cancel` holds `true`; never when its sender is dropped
/// without cancelling.
pub async fn cancelled(cancel: &mut watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A seed without the `os_rng` feature: std's `RandomState` is seeded by the
/// OS once per process and differs per instance.
fn rng() -> SmallRng {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6b73_6761_7465);
    SmallRng::seed_from_u64(h.finish())
}

/// Polls until `poll` says done, the timeout passes, or `cancel` fires.
///
/// `anchor` is when the thing started (its age counts from there);
/// `poll_now` polls once immediately instead of one interval after `anchor`.
/// `on_status` sees every answer, the last one included.
pub async fn poll_until<T, F, Fut>(
    opts: &WaitOptions,
    cancel: &mut watch::Receiver<bool>,
    anchor: Instant,
    poll_now: bool,
    poll: F,
    on_status: impl FnMut(&str),
) -> WaitEnd<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Polled<T>, ProviderError>>,
{
    poll_learning(opts, cancel, anchor, poll_now, None, poll, on_status).await
}

/// The minimum number of ended updates before their floor is used.
pub const MIN_SAMPLES: u32 = 3;
/// How many waits of a run poll on the plain schedule before a floor exists.
pub const SCOUTS: u32 = 3;
/// How many of the most recent samples the floor and ceiling come from.
pub const WINDOW: usize = 8;
/// How many waits of a run poll finely from the floor at once (see
/// "Learning from the fleet").
pub const REFINERS: u32 = 2;
/// Past the floor, the interval is this fraction of the update's age.
const FINE_AGE_FRACTION: u32 = 20;
/// After the first poll at or past the ceiling that finds the update still
/// running, the interval is this fraction of its age.
const CLOSE_AGE_FRACTION: u32 = 100;

/// What the waits of one run know about its updates' durations.
#[derive(Debug, Default)]
struct Fleet {
    /// Waits started for updates this run started.
    started: u32,
    /// Updates seen ending: after at least one `InProgress` answer, or, for
    /// a scout or a refiner, at its first poll.
    samples: u32,
    /// The ages at which the most recent of them that were ever seen
    /// `InProgress` were last seen so (at most [`WINDOW`], oldest first).
    /// Kept apart from the ended ages: refiners whose first poll finds
    /// their update ended would otherwise push every `InProgress` age out
    /// of the window, and with it the floor and the refiners.
    recent_lo: VecDeque<Duration>,
    /// The ages at which the most recent of them were first seen ended (at
    /// most [`WINDOW`], oldest first).
    recent_hi: VecDeque<Duration>,
    /// Waits polling finely from the floor now.
    refining: u32,
    /// Turns as a refiner given so far.
    refiner_turns: u32,
    /// Wakes the waits held back by the floor or ceiling when a sample
    /// arrives, so a lower ceiling is used at once.
    learnt: Arc<Notify>,
}

impl Fleet {
    fn learned(&self) -> bool {
        self.samples >= MIN_SAMPLES
    }

    /// The shortest recent time an update was still running.
    fn floor(&self) -> Option<Duration> {
        self.recent_lo
            .iter()
            .min()
            .copied()
            .filter(|_| self.learned())
    }

    /// The shortest recent time by which an update had ended.
    fn ceiling(&self) -> Option<Duration> {
        self.recent_hi
            .iter()
            .min()
            .copied()
            .filter(|_| self.learned())
    }

    /// An update was last seen `InProgress` at age `lo` (if ever) and ended
    /// by `hi`.
    fn sample(&mut self, lo: Option<Duration>, hi: Duration) {
        fn keep(recent: &mut VecDeque<Duration>, age: Duration) {
            if recent.len() == WINDOW {
                recent.pop_front();
            }
            recent.push_back(age);
        }
        self.samples += 1;
        if let Some(lo) = lo {
            keep(&mut self.recent_lo, lo);
        }
        keep(&mut self.recent_hi, hi);
        self.learnt.notify_waiters();
    }

    /// The age of a new refiner's first poll: past the floor by a share of
    /// the first fine interval (or of the gap to the ceiling, if that is
    /// narrower), the share moving on by the golden ratio with each turn.
    /// Refiners that all started at the floor would poll at the same ages
    /// and leave the ceiling where the first of them found it, up to a
    /// whole fine interval after the updates end; spread over it, each
    /// sample can land closer to the end than the ones before.
    fn refine_from(&mut self, opts: &WaitOptions, floor: Duration, ceiling: Duration) -> Duration {
        let span =
            fraction_of_age(opts, floor, FINE_AGE_FRACTION).min(ceiling.saturating_sub(floor));
        let share = (f64::from(self.refiner_turns) * GOLDEN_SHARE).fract();
        self.refiner_turns = self.refiner_turns.wrapping_add(1);
        floor + span.mul_f64(share)
    }
}

/// The golden ratio less one: its multiples, modulo one, spread evenly over
/// `[0, 1)` however many of them are taken.
const GOLDEN_SHARE: f64 = 0.618_033_988_749_894_9;

/// A wait's turn as a refiner, and the age of its first poll; given back
/// when the wait ends, however it ends.
struct Refining(Arc<Mutex<Fleet>>, Duration);

impl Drop for Refining {
    fn drop(&mut self) {
        let mut f = lock(&self.0);
        f.refining = f.refining.saturating_sub(1);
    }
}

/// `age / fraction`, at least 1ms and at most `max_interval`: the interval
/// past the run's floor ([`FINE_AGE_FRACTION`]) and a scout's
/// ([`AGE_FRACTION`]), which `first_interval` does not hold up.
fn fraction_of_age(opts: &WaitOptions, age: Duration, fraction: u32) -> Duration {
    (age / fraction).clamp(
        Duration::from_millis(1),
        opts.max_interval.max(Duration::from_millis(1)),
    )
}

/// What the waits of one run learn about its updates (see "Learning from
/// the fleet"): the run owns one and hands it to each of its waits, so runs
/// never share what they learn and it goes away with the run.
#[derive(Clone, Debug, Default)]
pub struct RunLearning(Arc<Mutex<Fleet>>);

fn lock(f: &Mutex<Fleet>) -> std::sync::MutexGuard<'_, Fleet> {
    f.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`poll_until`], sharing what it learns with the other waits of the run
/// when `fleet` is given (see "Learning from the fleet").
async fn poll_learning<T, F, Fut>(
    opts: &WaitOptions,
    cancel: &mut watch::Receiver<bool>,
    anchor: Instant,
    poll_now: bool,
    fleet: Option<Arc<Mutex<Fleet>>>,
    mut poll: F,
    mut on_status: impl FnMut(&str),
) -> WaitEnd<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Polled<T>, ProviderError>>,
{
    let start = Instant::now();
    let deadline = start + opts.timeout;
    let scout = match &fleet {
        Some(f) => {
            let mut f = lock(f);
            f.started += 1;
            f.started <= SCOUTS
        }
        None => true,
    };
    // Where the schedule's intervals stop being flat.
    let flat_until = anchor
        + opts
            .first_interval
            .max(Duration::from_millis(1))
            .saturating_mul(AGE_FRACTION);
    let mut next = if poll_now {
        start
    } else {
        anchor + poll_interval(opts, Duration::ZERO)
    };
    let mut last_in_progress: Option<Duration> = None;
    let mut rng = rng();
    let mut failures = 0u32;
    let mut polls = 0u32;
    let mut last_status = None;
    let mut last_error = None;
    let mut refining: Option<Refining> = None;
    // Held back by what the run knows (not by the schedule): a new sample
    // may move the gate.
    let mut gated = false;
    let learnt = fleet.as_ref().map(|f| lock(f).learnt.clone());
    loop {
        next = next.min(deadline);
        let sample = async {
            match (&learnt, gated) {
                (Some(n), true) => n.notified().await,
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancelled(cancel) => return WaitEnd::Cancelled,
            () = tokio::time::sleep_until(next) => {}
            () = sample => {}
        }
        gated = false;
        // Not before the run's floor for a refiner, its ceiling for the
        // others (or, for a follower while nothing is learnt, the end of the
        // flat intervals). Wake every `first_interval` meanwhile to pick up
        // what the run learns: local checks, no calls. Bounded: `next` only
        // moves forward, towards a fixed instant.
        let now = Instant::now();
        let earliest = match &fleet {
            Some(f) => {
                let mut g = lock(f);
                match (g.floor(), g.ceiling()) {
                    (Some(floor), Some(ceiling)) => {
                        let at_floor = now >= anchor + floor;
                        if refining.is_none()
                            && at_floor
                            && g.refining < REFINERS
                            && last_in_progress.is_none_or(|lo| lo < ceiling)
                        {
                            g.refining += 1;
                            let from = g.refine_from(opts, floor, ceiling);
                            refining = Some(Refining(f.clone(), from));
                        }
                        // Before the floor, wake there to ask for a turn as
                        // a refiner; without one, poll at the ceiling.
                        Some(match &refining {
                            Some(r) => anchor + r.1,
                            None if !at_floor => anchor + floor,
                            None => anchor + ceiling,
                        })
                    }
                    // Only scouts' first polls ended their updates: poll
                    // when the quickest of them had ended.
                    (None, Some(ceiling)) => Some(anchor + ceiling),
                    _ if !scout => Some(flat_until),
                    _ => None,
                }
            }
            None => None,
        };
        if let Some(e) = earliest.filter(|e| *e > now && now < deadline) {
            next = e.min(now + opts.first_interval.max(Duration::from_millis(1)));
            gated = true;
            continue;
        }
        // When the poll went out: after any wait for a turn of a paced
        // client and the retries of a throttled poll, as late as the
        // answer's news. A sample timed at the asking would be early by
        // that wait, and a ceiling too early sends every later wait's first
        // poll before its update ends.
        let asked = Instant::now();
        let (answer, went) = tokio::select! {
            biased;
            () = cancelled(cancel) => return WaitEnd::Cancelled,
            answer = sent_at(poll()) => answer,
        };
        let sent = went.map_or(asked, Instant::from_std);
        match answer {
            Ok(p) => {
                polls += 1;
                failures = 0;
                on_status(&p.status);
                if let Some(value) = p.done {
                    // An update that ended before a follower's first poll
                    // (at the ceiling) tells nothing new; a scout's tells
                    // that updates can end that soon, and a refiner's (at or
                    // before the ceiling) that they end sooner than known.
                    if let Some(f) = fleet
                        .as_ref()
                        .filter(|_| last_in_progress.is_some() || scout || refining.is_some())
                    {
                        lock(f).sample(last_in_progress, sent.saturating_duration_since(anchor));
                    }
                    return WaitEnd::Finished { value, polls };
                }
                let age = sent.saturating_duration_since(anchor);
                let before = last_in_progress.replace(age);
                last_status = Some(p.status);
                let (learned, ceiling) = fleet.as_ref().map_or((None, None), |f| {
                    let g = lock(f);
                    (g.floor(), g.ceiling())
                });
                // Still running at the ceiling for the first time: the
                // update most likely ends just after it (the ceiling is
                // the quickest recent end, and starts differ by a few
                // milliseconds), so look again soon, once.
                let first_past_ceiling =
                    ceiling.is_some_and(|c| age >= c && before.is_none_or(|b| b < c));
                // A refiner still short of the ceiling polls there at the
                // latest: later waits do, and it should not notice later
                // than they do.
                let cap = ceiling
                    .filter(|c| refining.is_some() && age < *c)
                    .map(|c| anchor + c);
                next = sent
                    + match learned {
                        Some(_) if first_past_ceiling => {
                            fraction_of_age(opts, age, CLOSE_AGE_FRACTION)
                        }
                        // Past the floor: where this run's updates end.
                        Some(floor) if age >= floor => {
                            fraction_of_age(opts, age, FINE_AGE_FRACTION)
                        }
                        Some(_) => poll_interval(opts, age),
                        // A scout of a run that knows nothing yet while
                        // other updates wait on what it learns: a tenth of
                        // the age without the `first_interval` floor, so the
                        // first samples, and the waits that follow them, are
                        // within 10%.
                        None if scout
                            && fleet.as_ref().is_some_and(|f| lock(f).started > SCOUTS) =>
                        {
                            fraction_of_age(opts, age, AGE_FRACTION)
                        }
                        None => poll_interval(opts, age),
                    };
                if let Some(cap) = cap {
                    next = next.min(cap);
                }
            }
            Err(err) if is_retryable(&err) => {
                failures += 1;
                last_error = Some(err);
                next = Instant::now() + retry_delay(opts, failures, &mut rng);
            }
            Err(err) => return WaitEnd::Failed(err),
        }
        if sent >= deadline {
            return WaitEnd::TimedOut {
                waited: sent.saturating_duration_since(start),
                last_status,
                last_error,
            };
        }
    }
}

/// `DescribeUpdate`'s status as AWS spells it.
pub fn status_str(status: &UpdateStatus) -> &str {
    match status {
        UpdateStatus::InProgress => "InProgress",
        UpdateStatus::Successful => "Successful",
        UpdateStatus::Failed => "Failed",
        UpdateStatus::Cancelled => "Cancelled",
        UpdateStatus::Other(s) => s,
    }
}

/// Waits until update `update_id` of cluster `name` is no longer running
/// (`Successful`, `Failed` or `Cancelled`) and returns its last state.
#[allow(clippy::too_many_arguments)]
pub async fn wait_for_update<P: Provider>(
    provider: &P,
    scope: &Scope,
    name: &str,
    update_id: &str,
    opts: &WaitOptions,
    cancel: &mut watch::Receiver<bool>,
    learning: &RunLearning,
    anchor: Instant,
    poll_now: bool,
    on_status: impl FnMut(&str),
) -> WaitEnd<UpdateState> {
    let poll = move || async move {
        let state = provider.describe_update(scope, name, update_id).await?;
        let status = status_str(&state.status).to_string();
        let finished = matches!(
            state.status,
            UpdateStatus::Successful | UpdateStatus::Failed | UpdateStatus::Cancelled
        );
        Ok(Polled {
            done: finished.then_some(state),
            status,
        })
    };
    // Only updates this run started have a known age to learn from.
    let fleet = (!poll_now).then(|| learning.0.clone());
    poll_learning(opts, cancel, anchor, poll_now, fleet, poll, on_status).await
}

/// Waits until cluster `name` is no longer `UPDATING` (for a cluster that
/// says so without listing an update) and returns its status then.
pub async fn wait_while_updating<P: Provider>(
    provider: &P,
    scope: &Scope,
    name: &str,
    opts: &WaitOptions,
    cancel: &mut watch::Receiver<bool>,
    on_status: impl FnMut(&str),
) -> WaitEnd<ClusterStatus> {
    let poll = move || async move {
        match provider.describe_cluster(scope, name).await? {
            ClusterObservation::Found(c) => Ok(Polled {
                status: c.status.as_str().to_string(),
                done: (c.status != ClusterStatus::Updating).then_some(c.status),
            }),
            // Nothing left to wait for; the step that needs the cluster will
            // report it missing.
            ClusterObservation::NotFound => Ok(Polled {
                status: "not found".to_string(),
                done: Some(ClusterStatus::Other("NOT_FOUND".to_string())),
            }),
            ClusterObservation::AccountMismatch { expected, actual } => {
                Err(ProviderError::AccountMismatch { expected, actual })
            }
        }
    };
    poll_until(opts, cancel, Instant::now(), true, poll, on_status).await
}

#[cfg(test)]
mod tests {
    //! The schedule's arithmetic, and waits run on tokio's paused clock:
    //! time only moves when every task waits on a timer, and then straight
    //! to the next timer, so the polls a wait makes, and when, are exact and
    //! take no real time.

    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Mutex;

    fn opts(first_ms: u64, max_ms: u64, timeout_ms: u64) -> WaitOptions {
        WaitOptions {
            first_interval: Duration::from_millis(first_ms),
            max_interval: Duration::from_millis(max_ms),
            timeout: Duration::from_millis(timeout_ms),
        }
    }

    #[test]
    fn interval_is_a_tenth_of_the_age_within_bounds() {
        let o = WaitOptions::default();
        let cases = [
            (0, 2_000),
            (10_000, 2_000),
            (20_000, 2_000),
            (30_000, 3_000),
            (100_000, 10_000),
            (150_000, 15_000),
            (1_000_000, 15_000),
        ];
        for (age_ms, want_ms) in cases {
            assert_eq!(
                poll_interval(&o, Duration::from_millis(age_ms)),
                Duration::from_millis(want_ms),
                "age {age_ms}ms"
            );
        }
        // A cap below the first interval does not shrink the first interval.
        assert_eq!(
            poll_interval(&opts(500, 100, 1_000), Duration::ZERO),
            Duration::from_millis(500)
        );
    }

    /// Simulates the schedule against an update of duration `d` that ends on
    /// time: how many polls it takes and how late the last one is.
    fn simulate(o: &WaitOptions, d: Duration) -> (u32, Duration) {
        let mut t = poll_interval(o, Duration::ZERO);
        let mut polls = 1;
        while t < d {
            t += poll_interval(o, t);
            polls += 1;
        }
        (polls, t - d)
    }

    #[test]
    fn poll_counts_and_lag_meet_the_targets() {
        // (first, cap, duration) → (max polls, max lag)
        let cases = [
            // first interval a tenth of the duration: 10 polls, ends on a poll.
            (300, 15_000, 3_000, 10, 0),
            (100, 15_000, 1_000, 10, 0),
            // the defaults on typical EKS durations: lag within 10%.
            (2_000, 15_000, 300_000, 45, 15_000),
            (2_000, 15_000, 1_200_000, 110, 15_000),
            (2_000, 15_000, 45_000, 22, 4_500),
        ];
        for (first, cap, d, max_polls, max_lag) in cases {
            let o = opts(first, cap, 3_600_000);
            let (polls, lag) = simulate(&o, Duration::from_millis(d));
            assert!(polls <= max_polls, "D={d}ms: {polls} polls");
            assert!(
                lag <= Duration::from_millis(max_lag),
                "D={d}ms: lag {lag:?}"
            );
            assert!(
                lag.as_millis() as f64 <= d as f64 * 0.1,
                "D={d}ms: lag {lag:?}"
            );
        }
    }

    #[test]
    fn retry_delay_is_full_jitter_under_a_growing_cap() {
        let o = opts(100, 1_000, 10_000);
        let mut rng = SmallRng::seed_from_u64(7);
        for failures in 1..=8u32 {
            let window = Duration::from_millis((100u64 << (failures - 1)).min(1_000));
            for _ in 0..50 {
                let d = retry_delay(&o, failures, &mut rng);
                assert!(d < window || d == Duration::ZERO, "{failures}: {d:?}");
            }
        }
        // Huge failure counts do not overflow.
        assert!(retry_delay(&o, u32::MAX, &mut rng) <= Duration::from_millis(1_000));
    }

    #[test]
    fn only_transient_errors_are_retried() {
        let aws = |code: &str| ProviderError::Aws {
            operation: "DescribeUpdate".into(),
            code: code.into(),
            message: String::new(),
        };
        assert!(is_retryable(&aws("ThrottlingException")));
        assert!(is_retryable(&aws("ServerException")));
        assert!(is_retryable(&aws("Unavailable")));
        assert!(is_retryable(&ProviderError::Transport {
            operation: "DescribeUpdate".into(),
            message: "connection reset".into(),
        }));
        assert!(!is_retryable(&aws("ResourceNotFoundException")));
        assert!(!is_retryable(&aws("AccessDeniedException")));
    }

    /// A scripted poll: answers in order, then "running" forever.
    async fn run_script(
        o: WaitOptions,
        script: Vec<Result<Option<&'static str>, ProviderError>>,
        poll_now: bool,
    ) -> (WaitEnd<&'static str>, u32, Vec<String>) {
        let calls = AtomicU32::new(0);
        let script = Mutex::new(script.into_iter());
        let seen = Mutex::new(Vec::new());
        let (_tx, mut rx) = watch::channel(false);
        let end = poll_until(
            &o,
            &mut rx,
            Instant::now(),
            poll_now,
            || {
                calls.fetch_add(1, Ordering::SeqCst);
                let next = script.lock().unwrap().next();
                async move {
                    match next {
                        Some(Ok(Some(v))) => Ok(Polled {
                            done: Some(v),
                            status: v.to_string(),
                        }),
                        Some(Err(e)) => Err(e),
                        Some(Ok(None)) | None => Ok(Polled {
                            done: None,
                            status: "InProgress".to_string(),
                        }),
                    }
                }
            },
            |s| seen.lock().unwrap().push(s.to_string()),
        )
        .await;
        (
            end,
            calls.load(Ordering::SeqCst),
            seen.into_inner().unwrap(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn throttling_is_retried_and_other_errors_end_the_wait() {
        let throttle = || {
            Err(ProviderError::Aws {
                operation: "DescribeUpdate".into(),
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into(),
            })
        };
        let (end, calls, seen) = run_script(
            opts(2, 5, 2_000),
            vec![Ok(None), throttle(), throttle(), Ok(Some("Successful"))],
            false,
        )
        .await;
        assert_eq!(
            end,
            WaitEnd::Finished {
                value: "Successful",
                polls: 2
            }
        );
        assert_eq!(calls, 4);
        assert_eq!(seen, vec!["InProgress", "Successful"]);

        let not_found = ProviderError::Aws {
            operation: "DescribeUpdate".into(),
            code: "ResourceNotFoundException".into(),
            message: "No update found".into(),
        };
        let (end, calls, _) =
            run_script(opts(2, 5, 2_000), vec![Err(not_found.clone())], true).await;
        assert_eq!(end, WaitEnd::Failed(not_found));
        assert_eq!(calls, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_times_out_after_a_last_poll_at_the_deadline() {
        // Below ten times the first interval, every interval is the first
        // one: polls at 10, 20, ... 80ms, the last one at the deadline.
        let began = Instant::now();
        let (end, calls, _) = run_script(opts(10, 20, 80), vec![], false).await;
        let took = began.elapsed();
        assert_eq!(
            end,
            WaitEnd::TimedOut {
                waited: Duration::from_millis(80),
                last_status: Some("InProgress".to_string()),
                last_error: None,
            }
        );
        assert_eq!(calls, 8);
        assert_eq!(took, Duration::from_millis(80));
    }

    #[test]
    fn a_run_learns_a_floor_after_enough_updates() {
        let learning = RunLearning::default();
        {
            let mut g = lock(&learning.0);
            let ms = Duration::from_millis;
            for (lo, hi) in [(300, 400), (280, 420), (290, 310)] {
                assert_eq!((g.floor(), g.ceiling()), (None, None));
                g.sample(Some(ms(lo)), ms(hi));
            }
            assert_eq!((g.floor(), g.ceiling()), (Some(ms(280)), Some(ms(310))));
            // Only the last `WINDOW` samples count: early, coarse samples
            // stop holding the floor down.
            for _ in 0..WINDOW - 2 {
                g.sample(Some(ms(295)), ms(305));
            }
            assert_eq!((g.floor(), g.ceiling()), (Some(ms(280)), Some(ms(305))));
            g.sample(Some(ms(295)), ms(305));
            assert_eq!(g.floor(), Some(ms(290)));
            g.sample(Some(ms(295)), ms(305));
            assert_eq!(g.floor(), Some(ms(295)));
        }
    }

    /// One wait of the run that learns in `learning`, for an update that
    /// lasts `d` from `anchor`: the polls it made and how long after the
    /// update's end it noticed.
    async fn wait_in_run(
        learning: &RunLearning,
        o: &WaitOptions,
        anchor: Instant,
        d: Duration,
    ) -> (u32, Duration) {
        let (_tx, mut cancel) = watch::channel(false);
        let fleet = Some(learning.0.clone());
        let end = poll_learning(
            o,
            &mut cancel,
            anchor,
            false,
            fleet,
            || async move {
                let done = anchor.elapsed() >= d;
                Ok(Polled {
                    done: done.then_some(()),
                    status: if done { "Successful" } else { "InProgress" }.to_string(),
                })
            },
            |_| {},
        )
        .await;
        match end {
            WaitEnd::Finished { polls, .. } => (polls, anchor.elapsed().saturating_sub(d)),
            other => panic!("{other:?}"),
        }
    }

    fn fleet_opts(first: Duration) -> WaitOptions {
        WaitOptions {
            first_interval: first,
            max_interval: first * 10,
            timeout: Duration::from_secs(10),
        }
    }

    /// A run that already knows its updates coarsely: `MIN_SAMPLES` samples
    /// of (`lo`, `hi`).
    fn run_that_learnt(lo: Duration, hi: Duration) -> RunLearning {
        let learning = RunLearning::default();
        let mut g = lock(&learning.0);
        g.started = SCOUTS;
        for _ in 0..MIN_SAMPLES {
            g.sample(Some(lo), hi);
        }
        drop(g);
        learning
    }

    #[tokio::test(start_paused = true)]
    async fn scouts_notice_within_a_tenth_and_followers_poll_at_the_ceiling() {
        // First interval 200ms, 500ms updates, six started at once: the
        // plain schedule would poll at 200, 400 and 600ms (100ms late).
        // With others waiting on them, the three scouts go on at a tenth of
        // the age after their first poll; the others wait for what they
        // learn and poll at the ceiling, about once.
        let learning = RunLearning::default();
        let o = fleet_opts(Duration::from_millis(200));
        let d = Duration::from_millis(500);
        let anchor = Instant::now();
        let got =
            futures_util::future::join_all((0..6).map(|_| wait_in_run(&learning, &o, anchor, d)))
                .await;
        // Scouts: 200, 220, 242, 267, 294, 324, 357, 393, 433, 477 and
        // 525ms (timers fire on whole milliseconds), 25ms late. Their three
        // samples make the ceiling 525ms; the followers, held back until
        // then, poll once there.
        let ms = Duration::from_millis;
        assert_eq!(got[..3], [(11, ms(25)); 3], "{got:?}");
        assert_eq!(got[3..], [(1, ms(25)); 3], "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn updates_shorter_than_the_first_interval_do_not_hold_followers_back() {
        // 100ms updates, first interval 200ms: the scouts find theirs ended
        // at their first poll, never `InProgress`. That still tells the
        // followers when to poll (200ms), instead of their skipping the
        // flat part of the schedule (2s).
        let learning = RunLearning::default();
        let o = fleet_opts(Duration::from_millis(200));
        let d = Duration::from_millis(100);
        let anchor = Instant::now();
        let got =
            futures_util::future::join_all((0..6).map(|_| wait_in_run(&learning, &o, anchor, d)))
                .await;
        // Everyone polls once, at 200ms: the first interval, 100ms late.
        assert_eq!(got, [(1, Duration::from_millis(100)); 6], "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn the_floor_rises_to_the_duration_and_later_waits_poll_twice() {
        // The run knows its 500ms updates coarsely: still running at 400ms,
        // ended by 600ms. Past the floor, polls come every twentieth of the
        // age (20-25ms), so the samples, and the floor, climb towards 500ms
        // and the coarse samples leave the window. Each refiner starts
        // further into the first fine interval than the one before (by the
        // golden ratio), so the ceiling closes in on the end.
        let d = Duration::from_millis(500);
        let ms = Duration::from_millis;
        let learning = run_that_learnt(ms(400), ms(600));
        let o = fleet_opts(ms(200));
        let mut got = Vec::new();
        for _ in 0..WINDOW + 3 {
            got.push(wait_in_run(&learning, &o, Instant::now(), d).await);
        }
        // While a coarse sample is in the window, each wait polls from
        // the floor (400ms) every twentieth of the age: the first at 400,
        // 420, 441, 464, 488 and 513ms, 13ms late, not at the coarse
        // ceiling (100ms late); the next from 412ms, ending at 503ms; and
        // so on, until one ends exactly at 500ms. Once the window holds
        // only fine samples, the floor is past 480ms: two polls, on time.
        let z = Duration::ZERO;
        let want = [
            (6, ms(13)),
            (5, ms(3)),
            (6, ms(3)),
            (5, ms(3)),
            (5, z),
            (6, z),
            (5, z),
            (6, z),
            (2, z),
            (2, z),
            (2, z),
        ];
        assert_eq!(got, want, "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_waits_leave_the_fine_polls_to_a_few_refiners() {
        // The run knows its 1s updates coarsely (running at 800ms, ended by
        // 1.2s). Twelve updates start at once: `REFINERS` of them poll
        // finely from the floor; when the first one sees its update end, the
        // ceiling drops to about 1s and the others, woken by that sample,
        // poll once and find theirs ended.
        let ms = Duration::from_millis;
        let learning = run_that_learnt(ms(800), ms(1_200));
        let o = fleet_opts(ms(400));
        let anchor = Instant::now();
        let d = ms(1_000);
        let got =
            futures_util::future::join_all((0..12).map(|_| wait_in_run(&learning, &o, anchor, d)))
                .await;
        // The first refiner polls at 800, 840, 882, 927, 974 and 1023ms;
        // the second starts 25ms further in (the golden share of 40ms) and
        // sees its update ended at 1005ms; the others poll once, at the
        // ceiling that sample sets. All but the first noticed 5ms late,
        // well before the coarse ceiling (200ms late).
        let mut want = vec![(1, ms(5)); 12];
        want[..REFINERS as usize].copy_from_slice(&[(6, ms(23)), (5, ms(5))]);
        assert_eq!(got, want, "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_still_running_at_the_ceiling_looks_again_soon() {
        // The run has seen updates end by 490ms; these take 493ms (starts
        // differ by a few milliseconds). Twelve start at once: the
        // refiners poll from the floor (400ms) and, short of the
        // ceiling, at the ceiling at the latest; everyone finds theirs
        // still running at 490ms and looks again a hundredth of the age
        // later (495ms), not a twentieth (515ms, 22ms late).
        let ms = Duration::from_millis;
        let learning = run_that_learnt(ms(400), ms(490));
        let o = fleet_opts(ms(200));
        let anchor = Instant::now();
        let d = ms(493);
        let got =
            futures_util::future::join_all((0..12).map(|_| wait_in_run(&learning, &o, anchor, d)))
                .await;
        assert!(got.iter().all(|&(_, late)| late <= ms(2)), "{got:?}");
        let (refiners, others) = got.split_at(REFINERS as usize);
        assert!(refiners.iter().all(|&(polls, _)| polls <= 7), "{got:?}");
        assert_eq!(others, [(2, ms(2)); 12 - REFINERS as usize], "{got:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn cancel_ends_a_wait_at_once() {
        let (tx, mut rx) = watch::channel(false);
        let o = opts(1_000, 1_000, 60_000);
        let began = Instant::now();
        let waiter = poll_until::<(), _, _>(
            &o,
            &mut rx,
            Instant::now(),
            false,
            || async {
                Ok(Polled {
                    done: None,
                    status: "InProgress".to_string(),
                })
            },
            |_| {},
        );
        let canceller = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let _ = tx.send(true);
        };
        let (end, ()) = tokio::join!(waiter, canceller);
        assert_eq!(end, WaitEnd::Cancelled);
        // At the cancel, not at the next poll (1s).
        assert_eq!(began.elapsed(), Duration::from_millis(20));
    }
}
