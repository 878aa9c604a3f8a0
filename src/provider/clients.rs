//! The SDK clients of the AWS provider: one client set per (role, region),
//! built once and shared by every call with those credentials. Clients come
//! from `aws-config`, so the default credential chain, `--profile`, SSO, web
//! identity, `AWS_REGION` and `AWS_ENDPOINT_URL` all work as AWS users
//! expect; a scope with a `role_arn` gets credentials from STS `AssumeRole`,
//! one without uses the base credentials. The role is the scope's own (the
//! cluster's, or the step's), never one borrowed from another cluster of the
//! same account.
//!
//! Retries: the SDK's standard retry mode (exponential backoff with full
//! jitter) with a generous attempt budget, on retry partitions of eksgate's
//! own with no retry quota, so throttling across a large fleet is absorbed
//! instead of surfacing as errors. Not the adaptive mode: its client-side
//! rate limiter drops to half a request per second after a burst of
//! throttles and then delays every call by up to 20 s, which turned a
//! throttled rollout into a stall. AWS throttles per account, region and
//! service, so each (credentials, region, service) has its own partition: a
//! throttled region does not use up another's retries. The backoff window
//! stops growing at 2 s instead of the SDK's 20 s: with hundreds of calls in
//! flight against one region's rate, a few calls are throttled six or seven
//! times in a row, and a window that keeps doubling left one of them asleep
//! for seconds after every other call was done (a 1,000-cluster plan at
//! `--parallelism 256` took 1.7 times its lower bound, 0.9 with the cap);
//! twenty attempts still span half a minute or more. Once a client is
//! throttled it is paced (see `pace`): its throttled calls retry at their
//! turn, not after this backoff.
//!
//! Failing fast: a call that cannot connect (the name does not resolve,
//! nothing listens, no connection within [`CONNECT_TIMEOUT`]) will not
//! connect on the twentieth try either. Connection errors share a small
//! budget per client ([`ConnectionBudget`]): once [`CONNECTION_RETRIES`]
//! in a row have failed, they are no longer retried, so a wrong endpoint
//! or a missing network ends in a second or two instead of half a minute.
//! Throttling and server errors keep every retry above.
//! A role is assumed once for every region: STS credentials are valid in
//! all of them, so the client sets of one role share one credentials
//! provider, and the SDK's identity cache keeps one entry per role. (One
//! provider per region made a 10,000-cluster plan over 16 regions and 5
//! roles assume roles 80 times and more, since the cache's 64 entries were
//! then too few and evicted credentials still in use.) The role's
//! `AssumeRole` is sent as soon as its first client set is built, and the
//! fleet read builds one set of each role before it queues the clusters:
//! the round trip runs while they are queued, not before the first call.
//!
//! Every SDK client shares one HTTP client: one connection pool and one TLS
//! configuration. Left to themselves, the SDK clients build one each, and a
//! fleet over 80 account-region pairs held 240 copies of the root
//! certificates (11 MB at its peak) and opened a connection for most calls.
//!
//! This file builds clients; it makes no AWS call of its own (the calls are
//! in `aws`, the fleet read in `fleet`).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_eks::config::interceptors::InterceptorContext;
use aws_sdk_eks::config::retry::{ClassifyRetry, RetryAction, RetryPartition, TokenBucket};
use aws_sdk_eks::config::{SharedCredentialsProvider, SharedHttpClient};
use tokio::sync::OnceCell;

use super::failure::{endpoint_of, Endpoint};
use super::pace::{PaceClassifier, PacedHttpClient, Pacer};
use super::Scope;
use crate::live::DEFAULT_SG_RULE_QUOTA;

/// The first retry's backoff window (see the module docs).
const RETRY_INITIAL_BACKOFF: Duration = Duration::from_millis(100);
/// The largest backoff window (see the module docs).
const RETRY_MAX_BACKOFF: Duration = Duration::from_secs(2);

/// How long a connection may take to open: AWS's endpoints answer within
/// milliseconds, so seconds mean a firewall or a wrong address.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Retries of connection errors in a row, per client (see the module docs).
const CONNECTION_RETRIES: u32 = 2;
/// Attempts of the `AssumeRole` call that gives a role's credentials: it is
/// one call per role per hour, so a few tries are plenty, and an STS that
/// cannot be reached must not hold every step of the role for half a minute.
const ASSUME_ROLE_ATTEMPTS: u32 = 3;

/// How the provider builds its clients.
#[derive(Clone, Debug, Default)]
pub struct AwsOptions {
    /// A profile of the shared config files (`--profile`).
    pub profile: Option<String>,
    /// The region for clusters that name none (`--region`).
    pub region: Option<String>,
    /// Attempts per call, including the first (default 20).
    pub max_attempts: Option<u32>,
    /// Another endpoint for every service (the in-process emulator of
    /// `eksgate demo`); otherwise `AWS_ENDPOINT_URL` and the config files
    /// decide, as for any AWS tool.
    pub endpoint_url: Option<String>,
    /// Fixed credentials (for the emulator) instead of the default chain.
    pub static_credentials: Option<(String, String)>,
    /// The account's quota of inbound rules per security group, when raised
    /// above EC2's default (`--sg-rule-quota`).
    pub sg_rule_quota: Option<u32>,
}

/// The clients of one (role, region).
#[derive(Clone)]
pub(super) struct Clients {
    pub eks: aws_sdk_eks::Client,
    pub ec2: aws_sdk_ec2::Client,
    /// Built on first use: a fleet's scopes ask STS once per role, so most
    /// client sets never need it (80 scopes' STS clients held about 0.9 MB).
    sts: Arc<LazySts>,
    /// Updates (cluster, update id) seen in a final state: they never run
    /// again, so the check for updates in progress does not ask about them
    /// twice (the second endpoint step of a cluster would otherwise describe
    /// the first one's update again).
    ended: Arc<Mutex<HashSet<(String, String)>>>,
    /// The quota of inbound rules per security group ([`AwsOptions`]).
    pub rule_quota: u32,
    /// Where these clients' endpoints are, for errors that cannot reach one.
    endpoints: Arc<Endpoints>,
}

/// An STS client and what builds it.
struct LazySts {
    config: aws_sdk_sts::config::Builder,
    client: std::sync::OnceLock<aws_sdk_sts::Client>,
}

/// What decides the endpoints of a client set.
#[derive(Debug)]
struct Endpoints {
    region: String,
    /// A profile's `endpoint_url` as the SDK loaded it.
    configured: Option<String>,
    /// eksgate's own endpoint ([`AwsOptions::endpoint_url`]).
    given: Option<String>,
}

impl Clients {
    /// The STS client of this set.
    pub fn sts(&self) -> &aws_sdk_sts::Client {
        self.sts
            .client
            .get_or_init(|| aws_sdk_sts::Client::from_conf(self.sts.config.clone().build()))
    }

    /// The region these clients call.
    pub fn region(&self) -> &str {
        &self.endpoints.region
    }

    /// Where `service` of these clients' region is reached.
    pub fn endpoint(&self, service: &str) -> Endpoint {
        let e = &self.endpoints;
        endpoint_of(
            service,
            &e.region,
            e.configured.as_deref(),
            e.given.as_deref(),
        )
    }

    pub fn ended(&self) -> std::sync::MutexGuard<'_, HashSet<(String, String)>> {
        // Held only for an insert or a lookup, never across an await.
        self.ended
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whose credentials, where: what a client set is built for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) struct Credentials {
    pub role_arn: Option<String>,
    pub region: String,
}

/// A value computed once per set of credentials, shared by concurrent
/// askers.
pub(super) type PerCredentials<T> = Mutex<HashMap<Credentials, Arc<OnceCell<T>>>>;

/// The client sets, built on first use.
pub(super) struct ClientSets {
    base: SdkConfig,
    sets: PerCredentials<Clients>,
    /// The credentials of each role, shared by its client sets in every
    /// region (see the module docs).
    roles: Mutex<HashMap<String, Arc<OnceCell<SharedCredentialsProvider>>>>,
    rule_quota: u32,
    /// Where the base credentials come from, for error messages.
    source: String,
    /// eksgate's own endpoint ([`AwsOptions::endpoint_url`]).
    given_endpoint: Option<String>,
    /// The profile chosen (`--profile`).
    profile: Option<String>,
    /// The access key id the base credentials resolved to, once asked.
    base_key: OnceCell<Option<String>>,
}

impl ClientSets {
    pub async fn new(opts: AwsOptions) -> ClientSets {
        // A throttle is usually over within milliseconds; the SDK's 1 s
        // initial backoff would make every throttled call wait seconds, so
        // retries start from a shorter backoff (still exponential with full
        // jitter), and stop growing at 2 s (see the module docs).
        let retry = RetryConfig::standard()
            .with_max_attempts(opts.max_attempts.unwrap_or(20))
            .with_initial_backoff(RETRY_INITIAL_BACKOFF)
            .with_max_backoff(RETRY_MAX_BACKOFF);
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .build(),
            )
            .http_client(shared_https_client());
        if let Some(p) = &opts.profile {
            loader = loader.profile_name(p);
        }
        if let Some(r) = &opts.region {
            loader = loader.region(Region::new(r.clone()));
        }
        if let Some(url) = &opts.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some((key, secret)) = &opts.static_credentials {
            loader = loader.credentials_provider(aws_sdk_eks::config::Credentials::new(
                key.clone(),
                secret.clone(),
                None,
                None,
                "eksgate-static",
            ));
        }
        ClientSets {
            base: without_empty_endpoint(loader.load().await),
            sets: Mutex::new(HashMap::new()),
            roles: Mutex::new(HashMap::new()),
            rule_quota: opts.sg_rule_quota.unwrap_or(DEFAULT_SG_RULE_QUOTA),
            source: credentials_source(&opts),
            given_endpoint: opts.endpoint_url.clone(),
            profile: opts.profile.clone(),
            base_key: OnceCell::new(),
        }
    }

    /// The access key id of the base credentials, resolved once (`None`
    /// when they cannot be loaded).
    pub async fn base_key_id(&self) -> Option<String> {
        use aws_sdk_eks::config::ProvideCredentials as _;
        self.base_key
            .get_or_init(|| async {
                let provider = self.base.credentials_provider()?;
                let creds = provider.provide_credentials().await.ok()?;
                Some(creds.access_key_id().to_string())
            })
            .await
            .clone()
    }

    /// Loads the base credentials: their access key id, or why they
    /// cannot be loaded.
    pub async fn load_base_credentials(&self) -> Result<String, super::ProviderError> {
        use aws_sdk_eks::config::ProvideCredentials as _;
        let Some(provider) = self.base.credentials_provider() else {
            return Err(super::ProviderError::Local {
                operation: "loading credentials".into(),
                failure: Box::new(super::failure::Failure::NoCredentials),
            });
        };
        match provider.provide_credentials().await {
            Ok(c) => Ok(c.access_key_id().to_string()),
            Err(e) => {
                let region = self
                    .base
                    .region()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                let configured = self.base.endpoint_url().map(str::to_string);
                let given = self.given_endpoint.clone();
                let failure = super::failure::classify(&e, |svc| {
                    endpoint_of(
                        svc.unwrap_or("sts"),
                        &region,
                        configured.as_deref(),
                        given.as_deref(),
                    )
                })
                .unwrap_or(super::failure::Failure::Credentials {
                    detail: super::failure::chain(&e).join(": "),
                });
                Err(super::ProviderError::Local {
                    operation: "loading credentials".into(),
                    failure: Box::new(failure),
                })
            }
        }
    }

    /// The region the base configuration names (`--region`, `AWS_REGION`,
    /// the profile's `region`), if any.
    pub fn configured_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    /// The profile chosen (`--profile`), if any.
    pub fn profile(&self) -> Option<&str> {
        self.profile.as_deref()
    }

    /// Where the base credentials come from, in words.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The credentials a call of `scope` uses: its own role, or the base
    /// credentials when it has none.
    pub fn credentials(scope: &Scope) -> Credentials {
        Credentials {
            role_arn: scope.role_arn.clone(),
            region: scope.region.clone(),
        }
    }

    /// The client set for `scope`'s credentials, built on first use.
    pub async fn get(&self, scope: &Scope) -> Clients {
        let creds = Self::credentials(scope);
        let cell = {
            let mut map = self.sets.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(creds.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.build(&creds)).await.clone()
    }

    async fn build(&self, creds: &Credentials) -> Clients {
        let region = Region::new(creds.region.clone());
        let mut config = self.base.to_builder().region(region.clone());
        if let Some(role) = &creds.role_arn {
            config = config.credentials_provider(self.role_credentials(role, &region).await);
        }
        let config = config.build();
        // Each `build` makes a new rate limiter; clients are built once per
        // (credentials, region), so each (credentials, region, service) has
        // one.
        let partition = |service: &str| {
            RetryPartition::custom(format!(
                "eksgate-{service}-{}-{}",
                creds.role_arn.as_deref().unwrap_or("default"),
                creds.region
            ))
            .token_bucket(TokenBucket::unlimited())
            .build()
        };
        // Each client is paced on its own (see `pace`): AWS limits each
        // service of an account and region on its own.
        let http = config.http_client();
        let (eks_http, eks_pace) = paced(&http);
        let (ec2_http, ec2_pace) = paced(&http);
        let (sts_http, sts_pace) = paced(&http);
        let mut eks = aws_sdk_eks::config::Builder::from(&config)
            .retry_partition(partition("eks"))
            .retry_classifier(ConnectionBudget::default())
            .retry_classifier(eks_pace);
        eks.set_http_client(eks_http);
        let mut ec2 = aws_sdk_ec2::config::Builder::from(&config)
            .retry_partition(partition("ec2"))
            .retry_classifier(ConnectionBudget::default())
            .retry_classifier(ec2_pace);
        ec2.set_http_client(ec2_http);
        let mut sts = aws_sdk_sts::config::Builder::from(&config)
            .retry_partition(partition("sts"))
            .retry_classifier(ConnectionBudget::default())
            .retry_classifier(sts_pace);
        sts.set_http_client(sts_http);
        Clients {
            eks: aws_sdk_eks::Client::from_conf(eks.build()),
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            sts: Arc::new(LazySts {
                config: sts,
                client: std::sync::OnceLock::new(),
            }),
            ended: Arc::default(),
            rule_quota: self.rule_quota,
            endpoints: Arc::new(Endpoints {
                region: creds.region.clone(),
                configured: self.base.endpoint_url().map(str::to_string),
                given: self.given_endpoint.clone(),
            }),
        }
    }
}

/// An endpoint URL that is empty (`AWS_ENDPOINT_URL=`, `endpoint_url =` in
/// a profile, or the same for one service: `AWS_ENDPOINT_URL_EKS=`, a
/// profile's `services` section) is taken as none, as if it were not set:
/// the SDK would stop on it at the first call with a panic ("URL was
/// unset").
fn without_empty_endpoint(config: SdkConfig) -> SdkConfig {
    let mut builder = config.to_builder();
    if config.endpoint_url().is_some_and(|u| u.trim().is_empty()) {
        builder.set_endpoint_url(None);
    }
    if config.service_config().is_some() {
        builder.set_service_config(Some(NonEmptyEndpoints(config)));
    }
    builder.build()
}

/// The per-service settings of an SDK config, with an empty endpoint URL
/// taken as unset (see [`without_empty_endpoint`]).
#[derive(Debug)]
struct NonEmptyEndpoints(SdkConfig);

impl aws_types::service_config::LoadServiceConfig for NonEmptyEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let endpoint = key.profile() == "endpoint_url";
        self.0
            .service_config()?
            .load_config(key)
            .filter(|v| !(endpoint && v.trim().is_empty()))
    }
}

/// A pacer of its own for one SDK client: the HTTP client its attempts go
/// through (the shared one, behind the pacer) and the classifier that
/// tells the pacer of each answer.
fn paced(http: &Option<SharedHttpClient>) -> (Option<SharedHttpClient>, PaceClassifier) {
    let pacer = Arc::new(Pacer::default());
    (
        http.clone()
            .map(|h| PacedHttpClient::shared(h, pacer.clone())),
        PaceClassifier::new(pacer),
    )
}

/// Stops retrying connection errors once [`CONNECTION_RETRIES`] in a row
/// have failed on one client; an answer from AWS (any answer) or an error
/// of another kind starts the count again. Throttling and server errors are
/// left to the SDK's own classifiers.
#[derive(Clone, Debug, Default)]
struct ConnectionBudget {
    failures: Arc<AtomicU32>,
}

impl ClassifyRetry for ConnectionBudget {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let connection = match ctx.output_or_error() {
            None => return RetryAction::NoActionIndicated,
            Some(Ok(_)) => false,
            Some(Err(e)) => {
                e.is_timeout_error()
                    || e.as_connector_error()
                        .is_some_and(|c| c.is_io() || c.is_timeout())
            }
        };
        if !connection {
            self.failures.store(0, Ordering::Relaxed);
            return RetryAction::NoActionIndicated;
        }
        if self.failures.fetch_add(1, Ordering::Relaxed) >= CONNECTION_RETRIES {
            RetryAction::RetryForbidden
        } else {
            RetryAction::NoActionIndicated
        }
    }

    fn name(&self) -> &'static str {
        "eksgate connection budget"
    }
}

impl ClientSets {
    /// The credentials of `role`, assumed through STS in `region` (the
    /// region of the first client set that needs them) and shared by the
    /// role's client sets in every region.
    async fn role_credentials(&self, role: &str, region: &Region) -> SharedCredentialsProvider {
        let cell = {
            let mut map = self.roles.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(role.to_string()).or_default().clone()
        };
        cell.get_or_init(|| async {
            // A role that cannot be assumed will not be on the twentieth
            // try either: STS gets a few attempts of its own.
            let sts_config = self
                .base
                .to_builder()
                .retry_config(
                    RetryConfig::standard()
                        .with_max_attempts(ASSUME_ROLE_ATTEMPTS)
                        .with_initial_backoff(RETRY_INITIAL_BACKOFF)
                        .with_max_backoff(RETRY_MAX_BACKOFF),
                )
                .build();
            let provider = aws_config::sts::AssumeRoleProvider::builder(role.to_string())
                .session_name("eksgate")
                .region(region.clone())
                .configure(&sts_config)
                .build()
                .await;
            SharedCredentialsProvider::new(EarlyCredentials::new(provider))
        })
        .await
        .clone()
    }
}

/// A role's credentials, asked for as soon as its first client set is
/// built: the set is built for a call, which would otherwise wait for the
/// `AssumeRole` round trip when it is sent. The first answer goes to the
/// first caller (the SDK's identity cache, which asks once for all the
/// role's clients and keeps the credentials until they expire); every
/// later call, a refresh or a retry after an error, asks STS again.
#[derive(Debug)]
struct EarlyCredentials {
    inner: Arc<aws_config::sts::AssumeRoleProvider>,
    first: Mutex<Option<tokio::task::JoinHandle<aws_credential_types::provider::Result>>>,
}

impl EarlyCredentials {
    fn new(provider: aws_config::sts::AssumeRoleProvider) -> EarlyCredentials {
        use aws_sdk_eks::config::ProvideCredentials as _;
        let inner = Arc::new(provider);
        // Outside a runtime (never in eksgate) nothing is asked early.
        let first = tokio::runtime::Handle::try_current().ok().map(|rt| {
            let inner = inner.clone();
            rt.spawn(async move { inner.provide_credentials().await })
        });
        EarlyCredentials {
            inner,
            first: Mutex::new(first),
        }
    }
}

impl aws_sdk_eks::config::ProvideCredentials for EarlyCredentials {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        aws_credential_types::provider::future::ProvideCredentials::new(async move {
            let early = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(task) = early {
                if let Ok(answer) = task.await {
                    return answer;
                }
            }
            self.inner.provide_credentials().await
        })
    }
}

/// The HTTPS client the SDK would give each client (rustls with aws-lc, the
/// proxy from the environment), built once so every client shares it (see
/// the module docs). The SDK caches one connector per set of timeouts, and
/// eksgate's clients all have the same.
fn shared_https_client() -> aws_sdk_eks::config::SharedHttpClient {
    use aws_smithy_http_client::proxy::ProxyConfig;
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    use aws_smithy_http_client::{Builder, ConnectorBuilder};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut conn =
            ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::AwsLc));
        conn.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            conn.set_sleep_impl(components.sleep_impl());
        }
        conn.set_proxy_config(Some(ProxyConfig::from_env()));
        conn.build()
    })
}

/// Where the default credential chain finds credentials, as far as eksgate
/// can tell without asking it: fixed ones, a profile, the environment, or
/// the rest of the chain.
fn credentials_source(opts: &AwsOptions) -> String {
    if opts.static_credentials.is_some() {
        return "the credentials eksgate was given".to_string();
    }
    if let Some(p) = &opts.profile {
        return format!("profile `{p}` of the AWS config files");
    }
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    if set("AWS_ACCESS_KEY_ID") {
        return "the environment (`AWS_ACCESS_KEY_ID`)".to_string();
    }
    if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        return "web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`)".to_string();
    }
    "the default credential chain (the `default` profile, SSO, or the instance or container role)"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_endpoint_url_is_no_endpoint() {
        let with = |url: &str| SdkConfig::builder().endpoint_url(url).build();
        assert_eq!(without_empty_endpoint(with("")).endpoint_url(), None);
        assert_eq!(without_empty_endpoint(with(" ")).endpoint_url(), None);
        let given = "http://127.0.0.1:4566";
        assert_eq!(
            without_empty_endpoint(with(given)).endpoint_url(),
            Some(given)
        );
    }

    /// `AWS_ENDPOINT_URL_EKS=` (empty) and `AWS_ENDPOINT_URL_EC2` set.
    #[derive(Debug)]
    struct PerService;

    impl aws_types::service_config::LoadServiceConfig for PerService {
        fn load_config(
            &self,
            key: aws_types::service_config::ServiceConfigKey<'_>,
        ) -> Option<String> {
            match key.service_id() {
                "EKS" => Some(String::new()),
                "EC2" => Some("http://127.0.0.1:9".into()),
                _ => None,
            }
        }
    }

    #[test]
    fn an_empty_endpoint_url_of_one_service_is_unset() {
        let config = SdkConfig::builder()
            .endpoint_url("http://127.0.0.1:4566")
            .service_config(PerService)
            .build();
        let config = without_empty_endpoint(config);
        let loads = |service_id: &str| {
            let key = aws_types::service_config::ServiceConfigKey::builder()
                .service_id(service_id)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .unwrap();
            config.service_config().unwrap().load_config(key)
        };
        assert_eq!(loads("EKS"), None);
        assert_eq!(loads("EC2").as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(loads("STS"), None);
        assert_eq!(config.endpoint_url(), Some("http://127.0.0.1:4566"));
    }
}
