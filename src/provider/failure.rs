//! Why a call never got an answer from AWS, in eksgate's own terms: no
//! credentials, an SSO login that is missing or expired, a credentials
//! setting that cannot work, or an endpoint that cannot be reached (its
//! name does not resolve, the connection is refused, TLS fails, it times
//! out). The SDK reports these as a chain of nested errors whose `Debug`
//! form is unreadable; this file walks that chain once, by type where the
//! type is public and by the words of its `Display` where it is not, and
//! keeps the chain's plain words for `-v`.
//!
//! It imports the SDK's error types but makes no call; the sentences the
//! user reads are written by `explain`, which never sees an SDK type.

use std::error::Error as StdError;

use aws_credential_types::provider::error::CredentialsError;

/// Why a call never reached AWS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// No source of the default credential chain had credentials.
    NoCredentials,
    /// The SSO login of the profile is missing or has expired.
    SsoLogin,
    /// A source of credentials was configured but could not give them (a
    /// profile that names a missing source, an unreadable token file, a
    /// role STS would not give, a timeout); `detail` is the SDK's reason.
    Credentials { detail: String },
    /// The endpoint could not be reached.
    Endpoint(Unreachable),
    /// AWS refused the credentials in a region an account must enable
    /// before use ([`OPT_IN_REGIONS`]): the region is likely not enabled.
    /// `detail` is AWS's code and message.
    Region { region: String, detail: String },
}

/// Regions an account must enable before use; in one that is not enabled,
/// AWS refuses every key as unknown (STS `InvalidClientTokenId`, EKS
/// `UnrecognizedClientException`, EC2 `AuthFailure`). AWS account
/// management guide, "Enable or disable AWS Regions in your account".
pub const OPT_IN_REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-south-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-west-1",
    "eu-central-2",
    "eu-south-1",
    "eu-south-2",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
];

/// Regions enabled in every account, with the opt-in ones the regions
/// eksgate knows; a name outside both whose endpoint does not resolve is
/// not a region (yet).
pub const DEFAULT_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-southeast-1",
    "ap-southeast-2",
    "us-gov-west-1",
    "us-gov-east-1",
    "cn-north-1",
    "cn-northwest-1",
];

/// Whether eksgate knows `region` as one of AWS's.
pub fn is_known_region(region: &str) -> bool {
    DEFAULT_REGIONS.contains(&region) || OPT_IN_REGIONS.contains(&region)
}

/// An endpoint that did not answer, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreachable {
    pub endpoint: Endpoint,
    pub cause: Cause,
}

/// Where a service of a region is reached, and what chose it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `eks`, `ec2` or `sts`.
    pub service: String,
    pub region: String,
    /// `host:port`.
    pub address: String,
    /// What set the endpoint when it is not AWS's own: `AWS_ENDPOINT_URL`,
    /// `AWS_ENDPOINT_URL_EKS`, a profile's `endpoint_url`.
    pub set_by: Option<String>,
}

/// How a connection failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    /// The host name does not resolve.
    Dns,
    /// Nothing listens on the port.
    Refused,
    /// The TLS handshake failed (a proxy, a certificate).
    Tls,
    /// No connection within the connect timeout, or no answer in time.
    Timeout,
    /// Anything else of the network (a reset, a closed connection).
    Network,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NoCredentials => write!(f, "no AWS credentials found"),
            Failure::SsoLogin => write!(f, "the SSO login is missing or has expired"),
            Failure::Credentials { detail } => write!(f, "cannot load credentials: {detail}"),
            Failure::Endpoint(u) => write!(
                f,
                "cannot reach `{}`: {}",
                u.endpoint.address,
                u.cause.words()
            ),
            Failure::Region { region, detail } => {
                write!(f, "AWS refused the credentials in `{region}`: {detail}")
            }
        }
    }
}

impl Cause {
    /// The cause in a few words.
    pub fn words(self) -> &'static str {
        match self {
            Cause::Dns => "the name does not resolve (DNS)",
            Cause::Refused => "the connection was refused",
            Cause::Tls => "the TLS handshake failed",
            Cause::Timeout => "no connection within the timeout",
            Cause::Network => "the connection failed",
        }
    }
}

/// What the chain of an SDK error says went wrong before AWS answered:
/// `None` when the chain is not one of the failures above. `endpoint` says
/// where a service is reached: the call's own service for `None`.
pub fn classify(
    err: &(dyn StdError + 'static),
    endpoint: impl Fn(Option<&str>) -> Endpoint,
) -> Option<Failure> {
    // The deepest credentials error is the cause: a role's provider wraps
    // the failure of the credentials it assumes the role with.
    let mut deepest = None;
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(ce) = e.downcast_ref::<CredentialsError>() {
            deepest = Some(ce);
        }
        cur = e.source();
    }
    if let Some(ce) = deepest {
        // A role's credentials come from STS: when STS cannot be reached,
        // that is the failure, not the credentials. (Not when no source had
        // credentials: the chain's report then quotes the instance
        // metadata service it could not reach, which is not the cause.)
        if let (CredentialsError::ProviderError(_), Some(inner)) = (ce, ce.source()) {
            let text = chain(inner).join(": ").to_ascii_lowercase();
            if let Some(cause) = network_cause(inner, &text) {
                return Some(Failure::Endpoint(Unreachable {
                    endpoint: endpoint(Some("sts")),
                    cause,
                }));
            }
        }
        let token_file = std::env::var("AWS_WEB_IDENTITY_TOKEN_FILE").ok();
        return Some(credentials_failure(ce, token_file.as_deref()));
    }
    let text = chain(err).join(": ").to_ascii_lowercase();
    if let Some(cause) = network_cause(err, &text) {
        return Some(Failure::Endpoint(Unreachable {
            endpoint: endpoint(None),
            cause,
        }));
    }
    None
}

/// The failure a credentials error stands for. `token_file` is
/// `AWS_WEB_IDENTITY_TOKEN_FILE`: the web identity provider reports a token
/// file it cannot read with the bare OS error ("No such file or
/// directory"), which names no file.
fn credentials_failure(ce: &CredentialsError, token_file: Option<&str>) -> Failure {
    let detail = chain(ce).into_iter().skip(1).collect::<Vec<_>>().join(": ");
    let lower = detail.to_ascii_lowercase();
    if let (CredentialsError::ProviderError(_), Some(file), Some(io)) = (
        ce,
        token_file.filter(|f| !f.is_empty()),
        ce.source().and_then(|e| e.downcast_ref::<std::io::Error>()),
    ) {
        return Failure::Credentials {
            detail: format!("cannot read the web identity token file `{file}` (`AWS_WEB_IDENTITY_TOKEN_FILE`): {io}"),
        };
    }
    match ce {
        // The chain lists each source; a profile that was asked for but is
        // broken is the one to name.
        CredentialsError::CredentialsNotLoaded(_) => match broken_profile(&detail) {
            Some(why) => Failure::Credentials { detail: why },
            None => Failure::NoCredentials,
        },
        _ if lower.contains("sso") => Failure::SsoLogin,
        CredentialsError::ProviderTimedOut(_) => Failure::Credentials {
            detail: ce.to_string(),
        },
        _ if detail.is_empty() => Failure::Credentials {
            detail: ce.to_string(),
        },
        _ => Failure::Credentials { detail },
    }
}

/// What the chain's `Profile:` line says when a profile is named but
/// cannot give credentials (it does not exist, or names a source that does
/// not), rather than simply not being configured.
fn broken_profile(detail: &str) -> Option<String> {
    let line = detail
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("Profile: "))?;
    let why = line
        .strip_prefix("the credential provider was not enabled: ")
        .unwrap_or(line);
    (why.contains("was not defined") || why.contains("could not find")).then(|| why.to_string())
}

/// The network cause of a failed connection, from the `std::io::Error`
/// in the chain when there is one, else from the chain's words (hyper's
/// and rustls' error types are not public to eksgate). Only a chain that
/// tried to send (the SDK's "dispatch failure" or a timeout) qualifies: an
/// unreadable token file is an `io::Error` too, but no network's fault.
fn network_cause(err: &(dyn StdError + 'static), text: &str) -> Option<Cause> {
    if !(text.contains("dispatch failure")
        || text.contains("timeout")
        || text.contains("connection"))
    {
        return None;
    }
    let mut cur = Some(err);
    let mut io_kind = None;
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            io_kind.get_or_insert(io.kind());
        }
        cur = e.source();
    }
    if text.contains("dns error")
        || text.contains("failed to lookup address")
        || text.contains("name or service not known")
        || text.contains("no such host")
    {
        return Some(Cause::Dns);
    }
    if io_kind == Some(std::io::ErrorKind::ConnectionRefused) || text.contains("connection refused")
    {
        return Some(Cause::Refused);
    }
    if text.contains("certificate") || text.contains("tls") || text.contains("handshake") {
        return Some(Cause::Tls);
    }
    if io_kind == Some(std::io::ErrorKind::TimedOut)
        || text.contains("timeout")
        || text.contains("timed out")
    {
        return Some(Cause::Timeout);
    }
    use std::io::ErrorKind as K;
    let network_kind = matches!(
        io_kind,
        Some(
            K::ConnectionReset
                | K::ConnectionAborted
                | K::NotConnected
                | K::BrokenPipe
                | K::UnexpectedEof
                | K::AddrNotAvailable
        )
    );
    if network_kind || text.contains("io error") || text.contains("connection closed") {
        return Some(Cause::Network);
    }
    None
}

/// The `Display` of every error of the chain, outermost first, without
/// repeats (the SDK often wraps an error in one that says the same).
pub fn chain(err: &(dyn StdError + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.iter().any(|o| o.contains(&s)) {
            out.push(s);
        }
        cur = e.source();
    }
    out
}

/// Where `service` of `region` is reached, as the SDK decides it:
/// `AWS_ENDPOINT_URL_<SERVICE>`, then `AWS_ENDPOINT_URL`, then a profile's
/// `endpoint_url` (`configured`, when eksgate was not given one itself),
/// then AWS's own name.
pub fn endpoint_of(
    service: &str,
    region: &str,
    configured: Option<&str>,
    given: Option<&str>,
) -> Endpoint {
    let var = format!("AWS_ENDPOINT_URL_{}", service.to_ascii_uppercase());
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let (url, set_by) = if let Some(u) = given {
        (u.to_string(), Some("eksgate's own emulator".to_string()))
    } else if let Some(u) = env(&var) {
        (u, Some(format!("`{var}`")))
    } else if let Some(u) = env("AWS_ENDPOINT_URL") {
        (u, Some("`AWS_ENDPOINT_URL`".to_string()))
    } else if let Some(u) = configured {
        (
            u.to_string(),
            Some("the profile's `endpoint_url`".to_string()),
        )
    } else {
        (format!("https://{service}.{region}.amazonaws.com"), None)
    };
    Endpoint {
        service: service.to_string(),
        region: region.to_string(),
        address: address_of(&url),
        set_by,
    }
}

/// The service an operation of eksgate's belongs to.
pub fn service_of(operation: &str) -> &'static str {
    match operation {
        "GetCallerIdentity" | "AssumeRole" => "sts",
        "DescribeCluster"
        | "ListClusters"
        | "ListUpdates"
        | "DescribeUpdate"
        | "UpdateClusterConfig" => "eks",
        _ => "ec2",
    }
}

/// `host:port` of a URL, the port filled in from the scheme.
fn address_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port_or_known_default()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => url.to_string(),
        },
        Err(_) => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreadable_token_file_is_named() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let ce = CredentialsError::provider_error(io);
        let f = credentials_failure(&ce, Some("/var/run/token"));
        let text = f.to_string();
        assert!(
            text.contains("web identity token file `/var/run/token`"),
            "{text}"
        );
        // Without the setting, the error stays the provider's own.
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let ce = CredentialsError::provider_error(io);
        assert!(!credentials_failure(&ce, None)
            .to_string()
            .contains("token file"));
    }

    #[derive(Debug)]
    struct Wrap(&'static str, Option<Box<dyn StdError + Send + Sync>>);
    impl std::fmt::Display for Wrap {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Wrap {
        fn source(&self) -> Option<&(dyn StdError + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    fn here(_service: Option<&str>) -> Endpoint {
        endpoint_of("eks", "eu-west-1", None, Some("http://127.0.0.1:9"))
    }

    #[test]
    fn each_network_cause_is_told_apart() {
        let cases: Vec<(Wrap, Cause)> = vec![
            (
                Wrap(
                    "dispatch failure",
                    Some(Box::new(Wrap(
                        "dns error",
                        Some(Box::new(std::io::Error::other(
                            "failed to lookup address information",
                        ))),
                    ))),
                ),
                Cause::Dns,
            ),
            (
                Wrap(
                    "io error",
                    Some(Box::new(std::io::Error::from(
                        std::io::ErrorKind::ConnectionRefused,
                    ))),
                ),
                Cause::Refused,
            ),
            (
                Wrap(
                    "dispatch failure",
                    Some(Box::new(Wrap(
                        "io error",
                        Some(Box::new(Wrap(
                            "invalid peer certificate: UnknownIssuer",
                            None,
                        ))),
                    ))),
                ),
                Cause::Tls,
            ),
            (
                Wrap(
                    "timeout",
                    Some(Box::new(Wrap(
                        "HTTP connect timeout occurred after 3s",
                        None,
                    ))),
                ),
                Cause::Timeout,
            ),
        ];
        for (err, want) in cases {
            match classify(&err, here) {
                Some(Failure::Endpoint(u)) => assert_eq!(u.cause, want, "{err}"),
                other => panic!("{err}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_named_profile_that_does_not_exist_is_named() {
        let err = Wrap(
            "dispatch failure",
            Some(Box::new(CredentialsError::not_loaded(
                "no credentials found in chain. Attempted:\n  Environment: the credential provider was not enabled: environment variable not set\n  Profile: the credential provider was not enabled: profile `nosuch` was not defined: could not find source profile nosuch referenced from the root profile",
            ))),
        );
        assert_eq!(
            classify(&err, here),
            Some(Failure::Credentials {
                detail: "profile `nosuch` was not defined: could not find source profile nosuch referenced from the root profile".into()
            })
        );
    }

    /// Regression: with no credentials anywhere, the chain's report says
    /// the instance metadata service refused the connection; that was
    /// taken for an unreachable STS.
    #[test]
    fn no_credentials_with_instance_metadata_refused_are_no_credentials() {
        let err = Wrap(
            "dispatch failure",
            Some(Box::new(CredentialsError::provider_error(CredentialsError::not_loaded(
                "no credentials found in chain. Attempted:\n  Ec2InstanceMetadata: the credential provider was not enabled: could not communicate with IMDS: dispatch failure: io error: client error (Connect): tcp connect error: Connection refused (os error 111)",
            )))),
        );
        assert_eq!(classify(&err, here), Some(Failure::NoCredentials));
    }

    #[test]
    fn an_unreadable_token_file_is_not_the_network() {
        let err = Wrap(
            "failed to read token file",
            Some(Box::new(std::io::Error::from(std::io::ErrorKind::NotFound))),
        );
        assert_eq!(classify(&err, here), None);
    }

    #[test]
    fn credentials_not_loaded_is_no_credentials() {
        let err = Wrap(
            "dispatch failure",
            Some(Box::new(CredentialsError::not_loaded(
                "no providers in chain provided credentials",
            ))),
        );
        assert_eq!(classify(&err, here), Some(Failure::NoCredentials));
        let sso = Wrap(
            "dispatch failure",
            Some(Box::new(CredentialsError::provider_error(Wrap(
                "the SSO token has expired and cannot be refreshed",
                None,
            )))),
        );
        assert_eq!(classify(&sso, here), Some(Failure::SsoLogin));
    }

    #[test]
    fn the_endpoint_says_what_set_it() {
        let e = endpoint_of("eks", "eu-west-1", None, None);
        if std::env::var_os("AWS_ENDPOINT_URL").is_none()
            && std::env::var_os("AWS_ENDPOINT_URL_EKS").is_none()
        {
            assert_eq!(e.address, "eks.eu-west-1.amazonaws.com:443");
            assert_eq!(e.set_by, None);
        }
        let p = endpoint_of(
            "ec2",
            "eu-west-1",
            Some("http://proxy.example.invalid:8080"),
            None,
        );
        if std::env::var_os("AWS_ENDPOINT_URL").is_none()
            && std::env::var_os("AWS_ENDPOINT_URL_EC2").is_none()
        {
            assert_eq!(p.address, "proxy.example.invalid:8080");
            assert_eq!(p.set_by.as_deref(), Some("the profile's `endpoint_url`"));
        }
    }
}
