//! The local emulator of the slice of EKS, EC2 and STS that eksgate uses. It
//! speaks the real wire protocols (EKS REST-JSON, EC2 and STS Query with XML
//! answers) on a loopback port, so every client — the Rust SDK, the AWS CLI,
//! boto3 — drives it as it would drive AWS. DESIGN.md section 1 is its spec.
//!
//! This file owns the HTTP server and the order of a request: credential
//! scope, latency, then under the lock: settle due updates, checked
//! credentials (`auth`), regions not enabled and denied actions (`access`),
//! rate limit and injected faults (a targeted `fail_next`, then the random
//! ones), the operation (or the answer to an EC2 dry run), a server error after a
//! change took effect, a damaged answer (`malformed`), the history line.
//! Operations live in
//! `eks`, `ec2` and `sts`; the world and its history in `state`.
//! `GET /_sim/state` and `GET /_sim/history` show them.

pub mod access;
pub mod allow_list;
pub mod auth;
pub mod ec2;
pub mod eks;
pub mod malformed;
pub mod network;
pub mod policy;
pub mod protocol;
pub mod state;
pub mod sts;
pub mod world;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use rand::Rng;
use tokio::time::Instant;

use protocol::{parse_scope, AwsError};
use state::State;
pub use state::{
    Behaviour, Event, HistoryEntry, RevokedRule, DEFAULT_HISTORY_LIMIT, DEFAULT_RULE_QUOTA,
    DEFAULT_STATUS_LAG,
};
pub use world::World;

struct Shared {
    state: Mutex<State>,
    requests: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A handler that panicked mid-request leaves the state as it was at
        // the panic; serving on is more useful to a test than refusing.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running emulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests and state changes so far, in order: every one, or the
    /// most recent `Behaviour::history_limit` of them.
    pub fn history(&self) -> Vec<HistoryEntry> {
        let mut st = self.shared.lock();
        st.settle(Instant::now());
        st.history.iter().cloned().collect()
    }

    /// How many of the oldest history entries were dropped to keep within
    /// `Behaviour::history_limit`.
    pub fn history_dropped(&self) -> u64 {
        let mut st = self.shared.lock();
        st.settle(Instant::now());
        st.history_dropped
    }

    /// The world now, as `/_sim/state` shows it.
    pub fn snapshot(&self) -> serde_json::Value {
        let mut st = self.shared.lock();
        st.settle(Instant::now());
        st.snapshot()
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Starts the emulator on `listen` (port 0 picks a free one).
pub async fn start(
    world: &World,
    behaviour: Behaviour,
    listen: SocketAddr,
) -> std::io::Result<SimHandle> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        state: Mutex::new(State::new(world, behaviour)),
        requests: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/_sim/state", get(sim_state))
        .route("/_sim/history", get(sim_history))
        .fallback(aws)
        .with_state(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!("emulator stopped: {e}");
        }
    });
    Ok(SimHandle {
        addr,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

/// Merges a world's `[faults]` under flags given on the command line.
pub fn behaviour_from(world: &World, mut b: Behaviour, flags: &FaultFlags) -> Behaviour {
    let f = &world.faults;
    b.latency = flags.latency.or(f.latency).unwrap_or(b.latency);
    b.latency_jitter = f.latency_jitter.unwrap_or(b.latency_jitter);
    b.rate_limit = flags.rate_limit.or(f.rate_limit).or(b.rate_limit);
    b.throttle_rate = flags
        .throttle_rate
        .or(f.throttle_rate)
        .unwrap_or(b.throttle_rate);
    b.error_rate = flags.error_rate.or(f.error_rate).unwrap_or(b.error_rate);
    b.malformed_rate = flags
        .malformed_rate
        .or(f.malformed_rate)
        .unwrap_or(b.malformed_rate);
    b.seed = flags.seed.or(f.seed).unwrap_or(b.seed);
    b.applied_error_rate = flags
        .applied_error_rate
        .or(f.applied_error_rate)
        .unwrap_or(b.applied_error_rate);
    b.unavailable_rate = flags
        .unavailable_rate
        .or(f.unavailable_rate)
        .unwrap_or(b.unavailable_rate);
    b.status_lag = flags.status_lag.or(f.status_lag).unwrap_or(b.status_lag);
    b.shuffle_updates = if flags.ordered_updates {
        false
    } else {
        f.shuffle_updates.unwrap_or(b.shuffle_updates)
    };
    b.session_duration = flags
        .session_duration
        .or(f.session_duration)
        .or(b.session_duration);
    b.rule_quota = flags.rule_quota.or(f.rule_quota).unwrap_or(b.rule_quota);
    if let Some(d) = flags.update_duration {
        b.update_duration = d;
    }
    b
}

/// Fault settings given as flags; each overrides the world's `[faults]`.
#[derive(Clone, Debug, Default)]
pub struct FaultFlags {
    pub update_duration: Option<Duration>,
    pub latency: Option<Duration>,
    pub rate_limit: Option<f64>,
    pub throttle_rate: Option<f64>,
    pub error_rate: Option<f64>,
    pub malformed_rate: Option<f64>,
    pub seed: Option<u64>,
    pub applied_error_rate: Option<f64>,
    pub unavailable_rate: Option<f64>,
    pub status_lag: Option<Duration>,
    /// List updates oldest first instead of in no order.
    pub ordered_updates: bool,
    pub session_duration: Option<Duration>,
    pub rule_quota: Option<u32>,
}

async fn sim_state(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let mut st = shared.lock();
    st.settle(Instant::now());
    axum::Json(st.snapshot()).into_response()
}

/// `GET /_sim/history`: a JSON array of the entries kept, oldest first, each
/// with `seq`, its number among every entry recorded since the start (so the
/// first `seq` is the number dropped and a gap shows a reader what it
/// missed), and the header `x-sim-history-dropped` with the number dropped.
async fn sim_history(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let mut st = shared.lock();
    st.settle(Instant::now());
    let dropped = st.history_dropped;
    let mut resp = axum::Json(NumberedHistory {
        first: dropped,
        entries: &st.history,
    })
    .into_response();
    resp.headers_mut()
        .insert(HISTORY_DROPPED_HEADER, HeaderValue::from(dropped));
    resp
}

/// The header of `GET /_sim/history` that says how many entries were dropped.
pub const HISTORY_DROPPED_HEADER: &str = "x-sim-history-dropped";

/// The kept history as `/_sim/history` serves it: each entry with its `seq`.
struct NumberedHistory<'a> {
    first: u64,
    entries: &'a std::collections::VecDeque<HistoryEntry>,
}

impl serde::Serialize for NumberedHistory<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Numbered<'a> {
            seq: u64,
            #[serde(flatten)]
            entry: &'a HistoryEntry,
        }
        s.collect_seq(
            self.entries
                .iter()
                .zip(self.first..)
                .map(|(entry, seq)| Numbered { seq, entry }),
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Eks,
    Ec2,
    Sts,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::Eks => "eks",
            Service::Ec2 => "ec2",
            Service::Sts => "sts",
        }
    }

    fn throttled(self) -> AwsError {
        match self {
            Service::Eks => AwsError::new(429, "ThrottlingException", "Rate exceeded"),
            Service::Ec2 => AwsError::new(503, "RequestLimitExceeded", "Request limit exceeded."),
            Service::Sts => AwsError::new(400, "Throttling", "Rate exceeded"),
        }
    }

    fn server_error(self) -> AwsError {
        match self {
            Service::Eks => AwsError::new(500, "ServerException", "An internal error occurred."),
            Service::Ec2 => AwsError::new(500, "InternalError", "An internal error has occurred"),
            Service::Sts => AwsError::new(500, "InternalFailure", "An internal error occurred."),
        }
    }

    /// AWS's 503: the service is there but cannot answer now.
    fn unavailable(self) -> AwsError {
        match self {
            Service::Eks => AwsError::new(
                503,
                "ServiceUnavailableException",
                "The service is unavailable. Back off and retry the operation.",
            ),
            Service::Ec2 => AwsError::new(
                503,
                "Unavailable",
                "The server is overloaded and can't handle the request.",
            ),
            Service::Sts => AwsError::new(
                503,
                "ServiceUnavailable",
                "The request has failed due to a temporary failure of the server.",
            ),
        }
    }

    /// How each service refuses credentials.
    fn refused(self, why: auth::Refusal) -> AwsError {
        use auth::Refusal::*;
        const INVALID: &str = "The security token included in the request is invalid.";
        const EXPIRED: &str = "The security token included in the request is expired";
        const SIGNATURE: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.";
        match (self, why) {
            (Service::Eks, Unknown) => AwsError::new(403, "UnrecognizedClientException", INVALID),
            (Service::Eks, BadSignature) => {
                AwsError::new(403, "InvalidSignatureException", SIGNATURE)
            }
            (Service::Eks, Expired) => AwsError::new(403, "ExpiredTokenException", EXPIRED),
            (Service::Ec2, Unknown) => AwsError::new(
                401,
                "AuthFailure",
                "AWS was not able to validate the provided access credentials",
            ),
            (Service::Ec2, BadSignature) => AwsError::new(403, "SignatureDoesNotMatch", SIGNATURE),
            (Service::Ec2, Expired) => AwsError::new(400, "ExpiredToken", EXPIRED),
            (Service::Sts, Unknown) => AwsError::new(403, "InvalidClientTokenId", INVALID),
            (Service::Sts, BadSignature) => AwsError::new(403, "SignatureDoesNotMatch", SIGNATURE),
            (Service::Sts, Expired) => AwsError::new(403, "ExpiredToken", EXPIRED),
        }
    }

    fn error_response(self, err: &AwsError, request_id: &str) -> Response {
        let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = match self {
            Service::Eks => {
                let mut body = serde_json::json!({ "message": err.message });
                if let Some(name) = &err.cluster_name {
                    body["clusterName"] = serde_json::json!(name);
                }
                let mut r = (status, body.to_string()).into_response();
                r.headers_mut()
                    .insert("content-type", HeaderValue::from_static("application/json"));
                if let Ok(v) = HeaderValue::from_str(&err.code) {
                    r.headers_mut().insert("x-amzn-errortype", v);
                }
                r
            }
            Service::Ec2 => xml_response(status, ec2::error_xml(err, request_id)),
            Service::Sts => xml_response(status, sts::error_xml(err, request_id)),
        };
        if let Ok(v) = HeaderValue::from_str(request_id) {
            resp.headers_mut().insert("x-amzn-requestid", v);
        }
        resp
    }
}

fn xml_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/xml;charset=UTF-8"),
    );
    r
}

/// What a request asks for, once routed.
enum Call {
    Eks(eks::Op, Vec<(String, String)>),
    Query(Service, String, Vec<(String, String)>),
}

impl Call {
    fn service(&self) -> Service {
        match self {
            Call::Eks(..) => Service::Eks,
            Call::Query(s, ..) => *s,
        }
    }
}

fn route(
    method: &Method,
    uri: &Uri,
    scope_service: Option<&str>,
    body: &[u8],
) -> Result<Call, AwsError> {
    let path = uri.path();
    if path.starts_with("/clusters") || scope_service == Some("eks") {
        let query: Vec<(String, String)> =
            url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
                .into_owned()
                .collect();
        return eks::route(method.as_str(), path)
            .map(|op| Call::Eks(op, query))
            .ok_or_else(|| {
                AwsError::new(
                    404,
                    "UnknownOperationException",
                    format!("No operation at {method} {path}"),
                )
            });
    }
    let mut params: Vec<(String, String)> =
        url::form_urlencoded::parse(body).into_owned().collect();
    if let Some(q) = uri.query() {
        params.extend(url::form_urlencoded::parse(q.as_bytes()).into_owned());
    }
    let action = params
        .iter()
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| {
            AwsError::new(
                400,
                "MissingAction",
                "The request must contain the parameter Action",
            )
        })?;
    if !params.iter().any(|(k, _)| k == "Version") {
        return Err(AwsError::new(
            400,
            "MissingParameter",
            "The request must contain the parameter Version",
        ));
    }
    let service = match scope_service {
        Some("sts") => Service::Sts,
        Some("ec2") => Service::Ec2,
        _ if sts::ACTIONS.contains(&action.as_str()) => Service::Sts,
        _ => Service::Ec2,
    };
    Ok(Call::Query(service, action, params))
}

/// The operations that change something.
fn is_write(operation: &str) -> bool {
    matches!(
        operation,
        "UpdateClusterConfig"
            | "ModifyVpcAttribute"
            | "AuthorizeSecurityGroupIngress"
            | "CreateAccessEntry"
            | "DeleteAccessEntry"
            | "AssociateAccessPolicy"
            | "RevokeSecurityGroupIngress"
            | "ModifyManagedPrefixList"
    )
}

async fn aws(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = shared.requests.fetch_add(1, Ordering::Relaxed);
    let request_id = format!("00000000-0000-4000-8000-{n:012x}");
    let scope = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_scope);
    let call = match route(
        &method,
        &uri,
        scope.as_ref().map(|s| s.service.as_str()),
        &body,
    ) {
        Ok(c) => c,
        Err(e) => {
            let svc = if uri.path().starts_with("/clusters") {
                Service::Eks
            } else {
                Service::Ec2
            };
            return svc.error_response(&e, &request_id);
        }
    };
    let service = call.service();
    let Some(scope) = scope else {
        let e = match service {
            Service::Eks => AwsError::new(
                403,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            ),
            _ => AwsError::new(
                401,
                "MissingAuthenticationToken",
                "Request is missing Authentication Token",
            ),
        };
        return service.error_response(&e, &request_id);
    };

    // Latency is spent outside the lock, as a slow network would.
    let delay = {
        let mut st = shared.lock();
        let b = &st.behaviour;
        let (base, jitter) = (b.latency, b.latency_jitter);
        let extra = if jitter.is_zero() {
            Duration::ZERO
        } else {
            jitter.mul_f64(st.rng.random::<f64>())
        };
        base + extra
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }

    let mut st = shared.lock();
    let now = Instant::now();
    st.settle(now);
    let refusal = {
        let authorization = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let request = auth::Request {
            method: method.as_str(),
            path: uri.path(),
            query: uri.query().unwrap_or(""),
            headers: &headers,
            body: &body,
        };
        auth::check(&st, authorization, &request, now).err()
    };
    let account = st.account_for(&scope.access_key);
    let principal = st.caller_arn(&scope.access_key);
    let key = (account.clone(), scope.region.clone());
    let (operation, target) = match &call {
        Call::Eks(op, _) => (op.name().to_string(), op.target()),
        Call::Query(Service::Ec2, action, params) => {
            (action.clone(), ec2::target(action, &ec2::Params(params)))
        }
        Call::Query(_, action, params) => (
            action.clone(),
            params
                .iter()
                .find(|(k, _)| k == "RoleArn")
                .map(|(_, v)| v.clone()),
        ),
    };

    let fault = if let Some(why) = refusal {
        Some(service.refused(why))
    } else if st.policy.region_disabled(&account, &scope.region) {
        Some(service.refused(auth::Refusal::Unknown))
    } else if let Some(denied) = st.policy.denied(&policy::Request {
        service: service.name(),
        operation: &operation,
        access_key: &scope.access_key,
        principal: &principal,
        account: &account,
        region: &scope.region,
        target: target.as_deref(),
        request_id: &request_id,
    }) {
        Some(denied)
    } else if !st.take_token(&key, now) {
        Some(service.throttled())
    } else if st.take_injected_failure(&operation) {
        Some(service.server_error())
    } else {
        let (t, e, u) = (
            st.behaviour.throttle_rate,
            st.behaviour.error_rate,
            st.behaviour.unavailable_rate,
        );
        let roll: f64 = if t > 0.0 || e > 0.0 || u > 0.0 {
            st.rng.random()
        } else {
            1.0
        };
        if roll < t {
            Some(service.throttled())
        } else if roll < t + e {
            Some(service.server_error())
        } else if roll < t + e + u {
            Some(service.unavailable())
        } else {
            None
        }
    };

    let result: Result<(String, &'static str), AwsError> = match fault {
        Some(e) => Err(e),
        None => match &call {
            Call::Eks(op, query) => eks::handle(&mut st, &key, op, query, &body, now)
                .map(|v| (v.to_string(), "application/json")),
            Call::Query(Service::Sts, action, params) => {
                sts::handle(&mut st, &scope.access_key, action, params, &request_id, now)
                    .map(|x| (x, "text/xml;charset=UTF-8"))
            }
            Call::Query(_, action, params) if policy::dry_run(action, params) => {
                Err(policy::dry_run_answer())
            }
            Call::Query(_, action, params) => ec2::handle(
                &mut st,
                &key,
                action,
                &ec2::Params(params),
                &request_id,
                now,
            )
            .map(|x| (x, "text/xml;charset=UTF-8")),
        },
    };
    // A change that took effect can still be answered with a server error
    // (the SDK then retries a call that already happened). The roll happens
    // only with a rate set.
    let mut applied = false;
    let result = match result {
        Ok(_)
            if is_write(&operation)
                && st.behaviour.applied_error_rate > 0.0
                && st.rng.random::<f64>() < st.behaviour.applied_error_rate =>
        {
            applied = true;
            if st.rng.random::<bool>() {
                Err(service.server_error())
            } else {
                Err(service.unavailable())
            }
        }
        other => other,
    };
    // A damaged answer still reports the change it made: only the body is
    // bad. The roll happens only with a rate set, so other seeds' fault
    // sequences stay as they were.
    let result = match result {
        Ok((body, content_type))
            if st.behaviour.malformed_rate > 0.0
                && st.rng.random::<f64>() < st.behaviour.malformed_rate =>
        {
            let kind = malformed::Malformed::pick(&mut st.rng);
            let (body, applied) = malformed::damage(kind, &body, service == Service::Eks);
            Ok((body, content_type, Some(applied)))
        }
        other => other.map(|(b, c)| (b, c, None)),
    };
    let (outcome, status) = match &result {
        Ok((_, _, None)) => ("ok".to_string(), 200),
        Ok((_, _, Some(kind))) => (format!("ok+malformed:{}", kind.as_str()), 200),
        Err(e) if applied => (format!("applied+{}", e.code), e.status),
        Err(e) => (e.code.clone(), e.status),
    };
    st.record(
        now,
        Event::Request {
            service: service.name().to_string(),
            operation,
            account,
            principal,
            region: scope.region.clone(),
            target,
            outcome,
            http_status: status,
        },
    );
    drop(st);
    match result {
        Ok((body, content_type, _)) => {
            let mut r = (StatusCode::OK, body).into_response();
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static(content_type));
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                r.headers_mut().insert("x-amzn-requestid", v);
            }
            r
        }
        Err(e) => service.error_response(&e, &request_id),
    }
}
