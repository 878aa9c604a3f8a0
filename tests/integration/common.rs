//! Shared harness: an in-process emulator on a loopback port and AWS SDK
//! clients pointed at it, with fake credentials that never leave the machine.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region};
use aws_sdk_eks::config::Credentials;
use eksgate::sim::world::{AccessKeyDef, AccountDef};
use eksgate::sim::{self, Behaviour, SimHandle, World};

pub const LOOPBACK: &str = "127.0.0.1:0";

/// The keys (and secrets) the tests sign with. A test world that declares no
/// `[[account]]` gets one for the default account holding these, so the
/// emulator checks every test's credentials, signatures included, as AWS
/// does; a world with its own `[[account]]` tables says who may call.
pub const TEST_KEYS: &[(&str, Option<&str>)] = &[
    ("AKIDSIMTEST0000001", Some("simulated-secret-key")),
    ("AKIDEKSGATETEST", Some("eksgate-test-secret")),
    ("AKIDPROPTEST", Some("proptest-secret")),
    ("AKIDMALFORMED", Some("malformed-secret")),
    ("AKIDLEAKCHECK0001", Some("SECRETLEAKCHECKxyz")),
    // boto3 scripts sign with secrets of their own.
    ("AKIDBOTO", None),
];

pub fn world(text: &str) -> World {
    let mut w =
        World::parse(&eksgate::diagnostic::Source::new("world.toml", text)).unwrap_or_else(|d| {
            panic!(
                "test world is invalid:\n{}",
                eksgate::diagnostic::render_all(&d, false)
            )
        });
    if w.account.is_empty() {
        w.account.push(AccountDef {
            id: eksgate::sim::world::DEFAULT_ACCOUNT.to_string(),
            access_key_ids: TEST_KEYS
                .iter()
                .filter(|(_, secret)| secret.is_none())
                .map(|(id, _)| id.to_string())
                .collect(),
            access_keys: TEST_KEYS
                .iter()
                .filter_map(|(id, secret)| {
                    secret.map(|s| AccessKeyDef {
                        id: id.to_string(),
                        secret: s.to_string(),
                    })
                })
                .collect(),
            roles: Vec::new(),
            deny: Vec::new(),
            disabled_regions: Vec::new(),
        });
    }
    w
}

pub async fn start(world_text: &str, behaviour: Behaviour) -> SimHandle {
    let addr: SocketAddr = LOOPBACK.parse().unwrap();
    sim::start(&world(world_text), behaviour, addr)
        .await
        .unwrap()
}

pub fn quick() -> Behaviour {
    Behaviour {
        update_duration: Duration::from_millis(300),
        ..Behaviour::default()
    }
}

/// An SDK config for one region, against the emulator, with fast retries.
pub async fn sdk_config(
    sim: &SimHandle,
    region: &str,
    retry: RetryConfig,
) -> aws_config::SdkConfig {
    sdk_config_as(sim, region, retry, "AKIDSIMTEST0000001").await
}

pub async fn sdk_config_as(
    sim: &SimHandle,
    region: &str,
    retry: RetryConfig,
    access_key: &str,
) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(sim.url())
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(
            access_key,
            "simulated-secret-key",
            None,
            None,
            "eksgate-tests",
        ))
        .retry_config(retry)
        .load()
        .await
}

pub fn no_retry() -> RetryConfig {
    RetryConfig::disabled()
}

pub fn fast_retry(attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(5))
        .with_max_backoff(Duration::from_millis(50))
}

pub async fn eks(sim: &SimHandle, region: &str) -> aws_sdk_eks::Client {
    aws_sdk_eks::Client::new(&sdk_config(sim, region, no_retry()).await)
}

pub async fn ec2(sim: &SimHandle, region: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(sim, region, no_retry()).await)
}

/// Code, HTTP status and message of an SDK error (EKS, EC2 and STS share
/// the same smithy error types).
pub fn err_parts<E>(
    err: &aws_sdk_eks::error::SdkError<E, aws_sdk_eks::config::http::HttpResponse>,
) -> (String, u16, String)
where
    E: aws_sdk_eks::error::ProvideErrorMetadata + std::fmt::Debug,
{
    match err {
        aws_sdk_eks::error::SdkError::ServiceError(se) => (
            se.err().code().unwrap_or("").to_string(),
            se.raw().status().as_u16(),
            se.err().message().unwrap_or("").to_string(),
        ),
        other => panic!("expected a service error, got {other:?}"),
    }
}

/// Plain HTTP GET on loopback, for the emulator's `/_sim/*` pages.
pub async fn http_get(addr: SocketAddr, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut buf))
        .await
        .expect("emulator answered in time")
        .unwrap();
    let text = String::from_utf8_lossy(&buf).to_string();
    let status = text[9..12].parse().unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Runs the real `eksgate` binary against the emulator, with fake credentials
/// and no shared config files, so nothing but the emulator can be reached.
pub async fn eksgate(
    sim: &SimHandle,
    dir: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    eksgate_env(sim, dir, args, &[]).await
}

pub async fn eksgate_env(
    sim: &SimHandle,
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = eksgate_cmd(sim, dir, args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("eksgate finished within 5 minutes")
        .expect("eksgate ran")
}

/// The `eksgate` command with the test environment, not yet started (for
/// tests that signal or kill it while it runs).
pub fn eksgate_cmd(
    sim: &SimHandle,
    dir: &std::path::Path,
    args: &[&str],
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(assert_cmd::cargo::cargo_bin!("eksgate"));
    cmd.current_dir(dir)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env("AWS_ENDPOINT_URL", sim.url())
        .env("AWS_ACCESS_KEY_ID", "AKIDEKSGATETEST")
        .env("AWS_SECRET_ACCESS_KEY", "eksgate-test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    cmd
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Requests in the emulator's history, as (service, operation, target, outcome).
pub fn requests(sim: &SimHandle) -> Vec<(String, String, Option<String>, String)> {
    sim.history()
        .into_iter()
        .filter_map(|e| match e.event {
            eksgate::sim::Event::Request {
                service,
                operation,
                target,
                outcome,
                ..
            } => Some((service, operation, target, outcome)),
            _ => None,
        })
        .collect()
}

/// A temporary directory holding `prod.toml` with `text`.
pub fn manifest_dir(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("prod.toml"), text).unwrap();
    dir
}

/// `apply prod.toml --auto-approve` with the test builder's fast polls, then
/// `extra`.
pub fn apply_args<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["apply", "prod.toml", "--auto-approve"];
    v.extend_from_slice(&crate::test::FAST_POLLS);
    v.extend_from_slice(extra);
    v
}
