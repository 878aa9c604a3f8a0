//! Pacing after a throttle: how fast one SDK client (one credentials,
//! region and service) sends once AWS has said it is going too fast.
//!
//! AWS limits each account, region and service with a token bucket of its
//! own and answers a request over the rate with a throttling error. Left to
//! the SDK's standard retries, every throttled call sleeps a random,
//! growing backoff of its own: calls started later take the tokens a
//! throttled call waited for, a few calls end up throttled six or seven
//! times in a row and sleep for seconds while the API's rate goes unused
//! (a 1,000-cluster plan over 4 regions spent its last 1.7 s on ten such
//! calls, a third more than the rates allow).
//!
//! A [`Pacer`] does nothing until its client is throttled. From then on
//! every attempt of that client (first tries and retries alike) takes a
//! turn from a token bucket of eksgate's own whose rate is what AWS
//! accepted: the answers that were not throttled in the last second (once
//! paced, those since the latest moment AWS's bucket was seen empty that
//! ten answers followed, so they show how fast it refills, not the burst
//! its full bucket allowed before), cut to that figure at each throttle and
//! grown with each answer that was not, so it follows the API's rate up as
//! well as down. Its bucket holds one
//! second of that rate, so a pause (while updates run) can be followed by a
//! short burst, as AWS's own bucket allows. Turns are handed out in the
//! order they are asked for, so a throttled call goes again after the calls
//! already waiting, never behind calls started after it, and a throttled
//! call is retried at its turn instead of after the SDK's backoff (the
//! attempt limit still holds: a call throttled at every turn fails in the
//! end like any other). A second without a throttle ends the pacing, so a
//! client throttled while others took the API's rate is not held to the
//! little it got then.
//!
//! Throttles that keep coming at a quarter of the answers after two seconds
//! of pacing do not follow the rate (AWS throttling at random, a neighbour
//! taking what pacing frees): pacing stops for five seconds and the SDK's
//! backoff takes over, as before a throttle.
//!
//! The connector sees every answer once; a throttle is a 429 or a 503 (see
//! [`slow_down`]). Only throttling is paced: server errors, time-outs and
//! connection errors keep the SDK's exponential backoff.

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_eks::config::interceptors::InterceptorContext;
use aws_sdk_eks::config::retry::{ClassifyRetry, RetryAction};
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::retries::classifiers::{RetryClassifierPriority, RetryReason};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::retry::ErrorKind;

/// How far back the answers AWS accepted are counted.
const WINDOW: Duration = Duration::from_secs(1);
/// The shortest time a rate is learnt over.
const MIN_SPAN: Duration = Duration::from_millis(100);
/// The fewest answers in the last [`WINDOW`] a rate is learnt from: a
/// throttle after fewer says AWS's bucket is empty now (others took it),
/// not how fast it fills, and is left to the SDK's backoff.
const MIN_SAMPLE: usize = 10;
/// The slowest eksgate goes, in requests per second, whatever AWS accepted.
const MIN_RATE: f64 = 1.0;
/// How much each answer that was not throttled raises the rate, in
/// requests per second: one request per answer doubles the rate each
/// second at any rate. A rate above what AWS accepts is cut back at the
/// next throttle, which comes within a fraction of a second, so a quick
/// growth costs a few throttled calls and a slow one left the API's rate
/// unused: a client paced at 40 calls a second while another took part of
/// the same limit needed half a second at half a request per answer to
/// reach the 50 it had once the other was done, and a 10,000-cluster
/// plan's reads ended on that climb.
const GROWTH: f64 = 1.0;
/// The share of throttled answers over the last [`WINDOW`], once pacing
/// has run for two windows, past which pacing stops: throttles that keep
/// coming whatever the rate (AWS throttling at random, or a neighbour that
/// takes what is freed) are left to the SDK's backoff, as before a throttle.
const GIVE_UP: f64 = 0.25;
/// How long a client that gave up pacing is not paced again.
const HOLD_OFF: Duration = Duration::from_secs(5);
/// How long after its last throttle a client stops pacing: long enough to
/// ride out the bursts of throttles a busy rate gives, short enough that a
/// client throttled while another one took the API's rate is soon free.
const QUIET: Duration = Duration::from_secs(1);

/// Adds an answer that came at `now` to a window of answers. Two answers may
/// read the clock in one order and take the lock in the other: each is kept
/// no earlier than the one before, so the window stays in time order.
fn keep_in_order(window: &mut VecDeque<Instant>, now: Instant) {
    let at = window.back().map_or(now, |last| now.max(*last));
    window.push_back(at);
}

/// The pace of one SDK client; see the module docs.
#[derive(Debug, Default)]
pub struct Pacer {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Requests per second while engaged.
    rate: f64,
    /// Turns in the bucket; below zero, turns already handed out ahead.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    at: Option<Instant>,
    /// When the answers AWS accepted in the last [`WINDOW`] came.
    accepted: VecDeque<Instant>,
    /// When the throttled answers of the last [`WINDOW`] came.
    throttles: VecDeque<Instant>,
    /// When the client was last throttled.
    throttled_at: Option<Instant>,
    /// When the pacing now in force began; `None` while the client is not
    /// paced (nothing waits).
    engaged_at: Option<Instant>,
    /// Until when throttles do not start pacing again (see [`GIVE_UP`]).
    held_off_until: Option<Instant>,
}

impl State {
    fn refill(&mut self, now: Instant) {
        if let Some(at) = self.at {
            let gained = now.saturating_duration_since(at).as_secs_f64() * self.rate;
            // The bucket holds one second of the rate.
            self.tokens = (self.tokens + gained).min(self.rate);
        }
        self.at = Some(now);
    }

    /// What AWS accepted per second, as seen at a throttle at `now`.
    ///
    /// Once paced, since an instant AWS's bucket was seen empty (a throttle
    /// in the window, or when pacing began): what it accepted since then is
    /// what it refilled, however the client paced meanwhile. The second
    /// before pacing also held the burst of a full bucket, which counted as
    /// rate (a 10,000-cluster plan's clients began paced at 110–120 calls a
    /// second where the emulator refilled 50, and took a second to forget
    /// the burst, throttled at a fifth of their calls meanwhile). The
    /// latest such instant at least [`MIN_SPAN`] ago with [`MIN_SAMPLE`]
    /// answers accepted since, so a rate that moved (another client of the
    /// same limit stopped) is seen soon, and a moment when others took
    /// every token is not taken for the rate (a client cut to one call a
    /// second that way waited a second for each turn).
    ///
    /// Before pacing, or when no such instant has that many answers since
    /// (a rate of a few calls a second): the answers of the window, over
    /// the part of it the client was answered in (a client that began
    /// sending a moment ago is judged by that moment, not by the second
    /// before it).
    fn accepted_rate(&self, now: Instant) -> f64 {
        if let Some(since) = self.engaged_at {
            // Latest first: both windows are in time order (see
            // `keep_in_order`), and pacing began at a throttle, so `since`
            // is one of them (to within a reading of the clock) or older
            // than all.
            let refilled = self
                .throttles
                .iter()
                .rev()
                .chain([&since])
                .filter(|t| now.saturating_duration_since(**t) >= MIN_SPAN)
                .find_map(|from| {
                    let count = self.accepted.len() - self.accepted.partition_point(|t| t <= from);
                    let span = now.saturating_duration_since(*from).min(WINDOW);
                    (count >= MIN_SAMPLE).then(|| count as f64 / span.as_secs_f64())
                });
            if let Some(rate) = refilled {
                return rate;
            }
        }
        let span = [self.accepted.front(), self.throttles.front()]
            .into_iter()
            .flatten()
            .min()
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(*t));
        self.accepted.len() as f64 / span.clamp(MIN_SPAN, WINDOW).as_secs_f64()
    }

    fn forget_before(&mut self, now: Instant) {
        for q in [&mut self.accepted, &mut self.throttles] {
            while q
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) > WINDOW)
            {
                q.pop_front();
            }
        }
    }
}

impl Pacer {
    /// How long an attempt asked for at `now` waits for its turn: `None`
    /// until the client was first throttled.
    pub fn turn(&self, now: Instant) -> Option<Duration> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.engaged_at.is_some()
            && s.throttled_at
                .is_some_and(|t| now.saturating_duration_since(t) > QUIET)
        {
            s.engaged_at = None;
            tracing::debug!("no throttle for a while: pacing ends");
        }
        s.engaged_at?;
        s.refill(now);
        s.tokens -= 1.0;
        (s.tokens < 0.0).then(|| Duration::from_secs_f64(-s.tokens / s.rate))
    }

    /// A turn taken at `now` without waiting (see [`urgent`]).
    pub fn take(&self, now: Instant) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if s.engaged_at.is_some() {
            s.refill(now);
            s.tokens -= 1.0;
        }
    }

    /// An answer came at `now`: throttled or not.
    pub fn answered(&self, now: Instant, throttled: bool) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.forget_before(now);
        if !throttled {
            keep_in_order(&mut s.accepted, now);
            if s.engaged_at.is_some() {
                s.refill(now);
                s.rate += GROWTH;
            }
            return;
        }
        keep_in_order(&mut s.throttles, now);
        let accepted = s.accepted_rate(now);
        let engaged = s.engaged_at.is_some();
        if !engaged && s.accepted.len() + s.throttles.len() < MIN_SAMPLE {
            return;
        }
        if s.held_off_until.is_some_and(|t| now < t) {
            return;
        }
        if let Some(since) = s.engaged_at {
            let share = s.throttles.len() as f64 / (s.accepted.len() + s.throttles.len()) as f64;
            if now.saturating_duration_since(since) >= 2 * WINDOW && share > GIVE_UP {
                // Paced to what AWS accepts, a rate limit throttles a few
                // calls in a hundred; this many means the throttles do not
                // follow the rate, and holding the client to what got
                // through would only shrink it further at each throttle.
                s.engaged_at = None;
                s.held_off_until = Some(now + HOLD_OFF);
                tracing::debug!(share, "throttles do not follow the rate: pacing stops");
                return;
            }
        }
        s.refill(now);
        s.rate = if engaged {
            s.rate.min(accepted)
        } else {
            accepted
        }
        .max(MIN_RATE);
        if !engaged {
            s.engaged_at = Some(now);
        }
        s.throttled_at = Some(now);
        tracing::debug!(rate = s.rate, "throttled: pacing this client");
        // AWS's bucket is empty: so is ours.
        s.tokens = s.tokens.min(0.0);
    }

    /// Whether the client is paced now.
    fn engaged(&self) -> bool {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .engaged_at
            .is_some()
    }

    /// The rate the client is held to, once throttled.
    #[cfg(test)]
    fn rate(&self) -> Option<f64> {
        let s = self.state.lock().unwrap();
        s.engaged_at.map(|_| s.rate)
    }
}

/// The HTTP client of one paced SDK client: every attempt waits for its
/// turn, then goes through the shared HTTP client.
#[derive(Clone)]
pub struct PacedHttpClient {
    inner: SharedHttpClient,
    pacer: Arc<Pacer>,
}

impl PacedHttpClient {
    pub fn shared(inner: SharedHttpClient, pacer: Arc<Pacer>) -> SharedHttpClient {
        SharedHttpClient::new(PacedHttpClient { inner, pacer })
    }
}

impl fmt::Debug for PacedHttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PacedHttpClient").finish_non_exhaustive()
    }
}

impl HttpClient for PacedHttpClient {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(PacedConnector {
            inner: self.inner.http_connector(settings, components),
            pacer: self.pacer.clone(),
        })
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.inner.connector_metadata()
    }
}

#[derive(Debug)]
struct PacedConnector {
    inner: SharedHttpConnector,
    pacer: Arc<Pacer>,
}

tokio::task_local! {
    static URGENT: ();
    static SENT: Cell<Option<Instant>>;
}

/// Runs `f` and tells when the last attempt of its last call went out,
/// after any wait for its turn (`None` if no attempt did). An answer tells
/// the state of things when AWS received it, which for a call that waited
/// in line, or was throttled and retried, is later than when the caller
/// asked: whoever learns from an answer's timing uses this instant.
///
/// `f` is moved to the heap: the futures that await this one (a wait for
/// an update, inside an apply's steps) would otherwise hold it inline, more
/// than once in a build without optimisations.
pub fn sent_at<F: std::future::Future>(
    f: F,
) -> impl std::future::Future<Output = (F::Output, Option<Instant>)> {
    let f = Box::pin(f);
    SENT.scope(Cell::new(None), async move {
        let out = f.await;
        (out, SENT.with(Cell::get))
    })
}

/// Runs `f` with its calls' first attempts sent at once, ahead of the
/// turns of a paced client (they still count against its rate, so the
/// calls waiting go later). For the polls that see an update end: the next
/// step of that cluster waits for them, and waiting in line behind reads
/// delayed every update after the first by the length of the line. Retries
/// of a throttled urgent call wait for their turn like any other.
pub async fn urgent<F: std::future::Future>(f: F) -> F::Output {
    URGENT.scope((), f).await
}

/// Whether `request` is the first attempt of a call made under [`urgent`]:
/// the SDK numbers attempts in the `amz-sdk-request` header.
fn jumps_the_line(request: &HttpRequest) -> bool {
    URGENT.try_with(|_| ()).is_ok()
        && request
            .headers()
            .get("amz-sdk-request")
            .is_none_or(|v| v.starts_with("attempt=1;"))
}

impl HttpConnector for PacedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let now = Instant::now();
        let wait = if jumps_the_line(&request) {
            self.pacer.take(now);
            None
        } else {
            self.pacer.turn(now)
        };
        let inner = self.inner.clone();
        let pacer = self.pacer.clone();
        HttpConnectorFuture::new(async move {
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
            // Outside `sent_at` there is no one to tell.
            let _ = SENT.try_with(|at| at.set(Some(Instant::now())));
            let answer = inner.call(request).await;
            if let Ok(response) = &answer {
                pacer.answered(Instant::now(), slow_down(response.status().as_u16()));
            }
            answer
        })
    }
}

/// Whether an answer's status says "slower": 429 is every JSON and REST
/// service's throttling status (EKS's `ThrottlingException`), 503 EC2's
/// (`RequestLimitExceeded`, and `Unavailable`, which asks for the same).
/// STS throttles with a 400 that cannot be told from other errors without
/// reading the answer; its few calls keep the SDK's backoff.
fn slow_down(status: u16) -> bool {
    matches!(status, 429 | 503)
}

/// Retries a throttled call of a paced client at its turn rather than
/// after the SDK's backoff. It runs after the SDK's classifiers, so
/// throttling is what the SDK calls throttling (every service's codes).
#[derive(Clone, Debug)]
pub struct PaceClassifier {
    pacer: Arc<Pacer>,
}

impl PaceClassifier {
    pub fn new(pacer: Arc<Pacer>) -> PaceClassifier {
        PaceClassifier { pacer }
    }
}

impl ClassifyRetry for PaceClassifier {
    fn classify_retry(&self, _ctx: &InterceptorContext) -> RetryAction {
        RetryAction::NoActionIndicated
    }

    fn classify_retry_v2(&self, _ctx: &InterceptorContext, previous: &RetryAction) -> RetryAction {
        let throttled = matches!(
            previous,
            RetryAction::RetryIndicated(RetryReason::RetryableError {
                kind: ErrorKind::ThrottlingError,
                ..
            })
        );
        // The SDK runs its classifiers more than once per attempt, so this
        // only decides; the connector counts the answers.
        if throttled && self.pacer.engaged() {
            RetryAction::retryable_error_with_explicit_delay(
                ErrorKind::ThrottlingError,
                Duration::ZERO,
            )
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "eksgate pacing"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A pacer answered every 20 ms for the last two seconds, then
    /// throttled now (the instant returned).
    fn throttled_at_fifty() -> (Pacer, Instant) {
        let p = Pacer::default();
        let t0 = Instant::now().checked_sub(ms(2000)).unwrap();
        for i in 0..100 {
            p.answered(t0 + ms(i * 20), false);
        }
        let now = t0 + ms(2000);
        p.answered(now, true);
        (p, now)
    }

    /// Answers every request at once with an empty 200.
    #[derive(Debug)]
    struct Answers;

    impl HttpConnector for Answers {
        fn call(&self, _: HttpRequest) -> HttpConnectorFuture {
            let ok = aws_smithy_runtime_api::http::StatusCode::try_from(200).unwrap();
            HttpConnectorFuture::ready(Ok(
                aws_smithy_runtime_api::client::orchestrator::HttpResponse::new(
                    ok,
                    aws_smithy_types::body::SdkBody::empty(),
                ),
            ))
        }
    }

    #[tokio::test]
    async fn a_call_that_waited_for_its_turn_is_timed_from_when_it_went_out() {
        // Paced at fifty a second, with five turns already handed out.
        let (p, _) = throttled_at_fifty();
        let pacer = Arc::new(p);
        let line: Vec<Duration> = (0..5)
            .map(|_| pacer.turn(Instant::now()).unwrap())
            .collect();
        let c = PacedConnector {
            inner: SharedHttpConnector::new(Answers),
            pacer,
        };
        let asked = Instant::now();
        let (answer, went) = sent_at(c.call(HttpRequest::empty())).await;
        assert!(answer.is_ok());
        let went = went.expect("the attempt went out");
        assert!(
            went >= asked + line[4],
            "sent {:?} after asking",
            went - asked
        );
        // Nothing sent, nothing to tell; a call outside `sent_at` still goes.
        assert_eq!(sent_at(async {}).await.1, None);
        assert!(c.call(HttpRequest::empty()).await.is_ok());
    }

    #[test]
    fn nothing_waits_until_the_first_throttle() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..200 {
            assert_eq!(p.turn(t0 + ms(i)), None);
            p.answered(t0 + ms(i), false);
        }
        assert_eq!(p.rate(), None);
    }

    #[test]
    fn a_throttle_holds_the_client_to_what_aws_accepted_in_the_last_second() {
        // 50 answers accepted over the last second, older ones forgotten.
        let (p, now) = throttled_at_fifty();
        let rate = p.rate().unwrap();
        assert!((rate - 50.0).abs() < 1.0, "{rate}");
        // Turns come one fiftieth of a second apart, in the order asked.
        let waits: Vec<f64> = (0..4).map(|_| p.turn(now).unwrap().as_secs_f64()).collect();
        for (k, w) in waits.iter().enumerate() {
            let want = (k + 1) as f64 / rate;
            assert!((w - want).abs() < 1e-6, "turn {k}: {w} vs {want}");
        }
    }

    #[test]
    fn once_paced_the_rate_is_what_aws_refilled_not_its_burst() {
        // A full bucket of 50 let the first 50 calls through in 100 ms, then
        // it refilled at 50 a second: one answer every 20 ms.
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..50 {
            p.answered(t0 + ms(i * 2), false);
        }
        for i in 1..=20 {
            p.answered(t0 + ms(100 + i * 20), false);
        }
        p.answered(t0 + ms(500), true);
        // The first throttle can only tell the burst and the refill
        // together: 70 answers in half a second.
        let first = p.rate().unwrap();
        assert!((first - 140.0).abs() < 1.0, "{first}");
        // A throttle too soon after it teaches nothing new.
        p.answered(t0 + ms(520), false);
        p.answered(t0 + ms(550), true);
        assert!(p.rate().unwrap() <= first + GROWTH, "{:?}", p.rate());
        // 200 ms after pacing began, the refill alone: ten answers since
        // then (the one above and nine more, each 20 ms apart; eight since
        // the throttle at 550 ms, too few), fifty a second, against 140
        // had the burst still counted.
        for i in 1..=9 {
            p.answered(t0 + ms(520 + i * 20), false);
        }
        p.answered(t0 + ms(700), true);
        let refill = p.rate().unwrap();
        assert!((refill - 50.0).abs() < 1.0, "{refill}");
    }

    #[test]
    fn throttles_while_others_take_every_token_do_not_cut_the_rate_to_nothing() {
        // Paced at fifty a second; then another client of the same limit
        // takes nearly every token: one answer in 300 ms, three throttles.
        let (p, t0) = throttled_at_fifty();
        p.answered(t0 + ms(100), true);
        p.answered(t0 + ms(150), false);
        p.answered(t0 + ms(200), true);
        p.answered(t0 + ms(300), true);
        // One answer since any of them tells nothing of how fast AWS
        // refills: the window does (its last 700 ms of answers every 20 ms
        // and the one since, 36 a second), not the one answer in the 300 ms
        // since pacing began (3 a second).
        let rate = p.rate().unwrap();
        assert!((rate - 36.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn a_slow_rate_is_learnt_from_the_whole_window() {
        // Ten answers a second, then a throttle: paced at ten.
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..10 {
            p.answered(t0 + ms(i * 100), false);
        }
        p.answered(t0 + ms(1000), true);
        assert!((p.rate().unwrap() - 10.0).abs() < 0.5, "{:?}", p.rate());
        // AWS refills five a second: every other turn is throttled. No
        // span since a throttle holds ten answers, so the answers of the
        // last second tell the rate.
        for k in 0..4 {
            p.answered(t0 + ms(1200 + k * 200), false);
            p.answered(t0 + ms(1300 + k * 200), true);
        }
        let rate = p.rate().unwrap();
        assert!(rate < 6.0, "still paced at {rate} where AWS accepts 5");
    }

    #[test]
    fn the_rate_grows_back_and_a_pause_allows_a_burst() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..10 {
            p.answered(t0 + ms(i * 100), false);
        }
        p.answered(t0 + ms(1000), true);
        let cut = p.rate().unwrap();
        assert!((cut - 10.0).abs() < 1.5, "{cut}");
        for i in 0..10 {
            p.answered(t0 + ms(1000 + i), false);
        }
        let grown = p.rate().unwrap();
        assert!((grown - (cut + 10.0 * GROWTH)).abs() < 1e-6, "{grown}");
        // Half a second later, half a second of turns go at once and the
        // next one waits.
        let later = t0 + ms(1509);
        let free = (0..1000).take_while(|_| p.turn(later).is_none()).count();
        assert!(
            (free as f64 - grown / 2.0).abs() <= 1.0,
            "{free} turns free at {grown}/s"
        );
    }

    #[test]
    fn pacing_ends_a_second_after_the_last_throttle() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..MIN_SAMPLE as u64 {
            p.answered(t0 + ms(i), false);
        }
        p.answered(t0 + ms(10), true);
        let t0 = t0 + ms(10);
        assert!(p.turn(t0).is_some());
        assert_eq!(p.turn(t0 + ms(1001)), None);
        assert_eq!(p.rate(), None);
        // The next throttle after enough answers paces it again.
        for i in 0..MIN_SAMPLE as u64 {
            p.answered(t0 + ms(1100 + i), false);
        }
        p.answered(t0 + ms(1200), true);
        assert!(p.rate().is_some());
    }

    #[test]
    fn throttles_that_do_not_follow_the_rate_end_the_pacing() {
        let p = Pacer::default();
        let t0 = Instant::now();
        // One answer in three throttled, every 10 ms, whatever the pace.
        let mut gave_up_at = None;
        for i in 0..400u64 {
            let t = t0 + ms(i * 10);
            p.answered(t, i % 3 == 0);
            if i > 20 && p.rate().is_none() && gave_up_at.is_none() {
                gave_up_at = Some(i * 10);
            }
        }
        let at = gave_up_at.expect("pacing stopped");
        assert!((2000..=2200).contains(&at), "stopped at {at} ms");
        // Held off: throttles do not start it again at once.
        assert_eq!(p.rate(), None);
    }

    #[test]
    fn throttling_statuses() {
        assert!(slow_down(429));
        assert!(slow_down(503));
        for ok_or_other in [200, 400, 403, 404, 409, 500] {
            assert!(!slow_down(ok_or_other), "{ok_or_other}");
        }
    }

    #[test]
    fn a_client_that_just_began_is_judged_by_the_time_it_was_answered_in() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..20 {
            p.answered(t0 + ms(i * 10), false);
        }
        p.answered(t0 + ms(200), true);
        let rate = p.rate().unwrap();
        assert!((rate - 100.0).abs() < 1.0, "{rate}");
    }

    #[test]
    fn an_urgent_turn_goes_at_once_and_the_next_turns_wait_longer() {
        let (p, now) = throttled_at_fifty();
        let first = p.turn(now).unwrap();
        p.take(now);
        let third = p.turn(now).unwrap();
        assert!(third > first * 2, "{first:?} then {third:?}");
    }

    #[test]
    fn a_throttle_after_few_answers_teaches_nothing() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..3 {
            p.answered(t0 + ms(i), false);
        }
        p.answered(t0 + ms(5), true);
        assert_eq!(p.rate(), None);
        assert_eq!(p.turn(t0 + ms(6)), None);
    }

    #[test]
    fn the_rate_never_drops_below_one_request_a_second() {
        let p = Pacer::default();
        let t0 = Instant::now();
        for i in 0..MIN_SAMPLE as u64 {
            p.answered(t0 + ms(i), true);
        }
        assert_eq!(p.rate(), Some(MIN_RATE));
        let w = p.turn(t0 + ms(10)).unwrap();
        assert!(w <= Duration::from_secs(1), "{w:?}");
    }
}
