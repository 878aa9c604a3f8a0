//! A first real run: each way credentials, the network or permissions can
//! stop eksgate is one plain error with its fix, within seconds and without
//! the SDK's logs; `eksgate doctor` finds them all before a plan; the
//! emulator denies what a world says and answers EC2's `DryRun` as AWS
//! does.
//!
//! Nothing here leaves loopback: credential-chain tests run with an empty
//! `HOME` and no instance metadata (the harness sets
//! `AWS_EC2_METADATA_DISABLED`), an unreachable endpoint is a closed
//! loopback port or a name under `.invalid`.

use std::time::{Duration, Instant};

use eksgate::sim::Behaviour;

use crate::common::{
    eksgate_env, err_parts, manifest_dir, no_retry, quick, sdk_config_as, start, stderr,
};
use crate::snapshot::eksgate_snapshot;
use crate::test::{Run, Test};

/// Account `111122223333`: the test key, a role that may do everything and
/// one denied `DescribeCluster` and ingress changes, `ap-east-1` not
/// enabled, and one cluster in `us-east-1` with two past updates.
const WORLD: &str = r#"
[[account]]
id = "111122223333"
access_keys = [{ id = "AKIDEKSGATETEST", secret = "eksgate-test-secret" }]
roles = ["arn:aws:iam::111122223333:role/deployer", "arn:aws:iam::111122223333:role/reader"]
deny = [{ principal = "arn:aws:iam::111122223333:role/reader", actions = ["eks:DescribeCluster", "ec2:AuthorizeSecurityGroupIngress"] }]
disabled_regions = ["ap-east-1"]

[[vpc]]
id = "vpc-0d"
region = "us-east-1"
account = "111122223333"

[[security_group]]
id = "sg-0d"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"

[[cluster]]
name = "payments"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"
security_group = "sg-0d"
public_access = true
private_access = false
past_updates = 2
"#;

/// `payments`, read with role `ROLE`.
fn manifest(role: &str) -> String {
    format!(
        "[defaults]\naccount = \"111122223333\"\nrole_arn = \"arn:aws:iam::111122223333:role/{role}\"\n\n[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = false\n"
    )
}

/// `test` without the harness's access key and credentials file, so the
/// credentials come only from what the test sets up.
fn without_keys(test: Test) -> Test {
    test.env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SHARED_CREDENTIALS_FILE")
}

/// The same cluster without a role.
const PLAIN: &str = "[[cluster]]\nname = \"payments\"\nregion = \"us-east-1\"\npublic_access = true\nprivate_access = false\n";

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

/// Runs `test`, checks it ended within 10 seconds and that stderr holds no
/// log line and no `Debug` structure.
async fn quickly(test: Test) -> Run {
    let began = Instant::now();
    let run = test.run().await;
    let took = began.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let err = run.stderr();
    for sign in [" WARN ", " INFO ", " DEBUG ", "{ ", "Error {", "Some("] {
        assert!(!err.contains(sign), "`{sign}` in:\n{err}");
    }
    run
}

#[tokio::test]
async fn no_credentials_say_where_eksgate_looked() {
    let run = quickly(
        without_keys(Test::new().world(WORLD).manifest(PLAIN))
            .env_remove("AWS_CONFIG_FILE")
            .home()
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: no AWS credentials found
    note: eksgate looked in the environment (`AWS_ACCESS_KEY_ID`), profile `default` of `~/.aws/config` and `~/.aws/credentials`, SSO, web identity (`AWS_WEB_IDENTITY_TOKEN_FILE`), the container credentials endpoint and the instance metadata service
    hint: run `aws configure` to store an access key, or `aws sso login --profile NAME` and pass `--profile NAME` (or set `AWS_PROFILE`)
    ");
    assert!(run.history().is_empty(), "no call reached AWS");
}

/// A web identity token file that cannot be read is named with the OS
/// error, not the OS error alone.
#[tokio::test]
async fn an_unreadable_web_identity_token_file_is_named() {
    let run = quickly(
        without_keys(Test::new().world(WORLD).manifest(PLAIN))
            .env_remove("AWS_CONFIG_FILE")
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/eksgate/token")
            .env("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/ci")
            .home()
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    let err = run.stderr();
    assert!(
        err.contains(
            "cannot read the web identity token file `/nonexistent/eksgate/token` (`AWS_WEB_IDENTITY_TOKEN_FILE`): "
        ),
        "{err}"
    );
    assert!(run.history().is_empty(), "no call reached AWS");
}

/// A profile that is asked for but cannot give credentials is named, with
/// what is wrong with it, rather than "no credentials".
#[tokio::test]
async fn a_profile_that_names_a_missing_source_is_named() {
    let run = quickly(
        without_keys(Test::new().world(WORLD).manifest(PLAIN))
            .home()
            .file(
                "home/.aws/config",
                "[profile dev]\nrole_arn = arn:aws:iam::111122223333:role/deployer\nsource_profile = missing\n",
            )
            .env("AWS_CONFIG_FILE", "home/.aws/config")
            .args(["plan", "prod.toml", "--profile", "dev"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot load the credentials of profile `dev`: profile `missing` was not defined: could not find source profile missing referenced from dev
    hint: check the profile's settings (`aws configure list --profile NAME` shows where each comes from)
    ");
    assert!(run.history().is_empty(), "no call reached AWS");
}

#[tokio::test]
async fn an_expired_sso_login_names_the_login_command() {
    // `sso-session` profiles keep their token in
    // `~/.aws/sso/cache/SHA1(session name).json`; this one expired an hour
    // ago and has no refresh token, so no call can renew it.
    let run = quickly(
        without_keys(Test::new().world(WORLD).manifest(PLAIN))
            .home()
            .file(
                "home/.aws/config",
                "[profile dev]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Admin\nregion = us-east-1\n\n[sso-session corp]\nsso_start_url = https://corp.awsapps.invalid/start\nsso_region = us-east-1\n",
            )
            .file(
                "home/.aws/sso/cache/ee0bfd2552fbd840c02cc48b6e823320543c450f.json",
                r#"{"accessToken": "expired-token", "expiresAt": "2020-01-01T00:00:00Z", "region": "us-east-1", "startUrl": "https://corp.awsapps.invalid/start"}"#,
            )
            .env("AWS_CONFIG_FILE", "home/.aws/config")
            .args(["plan", "prod.toml", "--profile", "dev"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: the SSO login of profile `dev` is missing or has expired
    hint: run `aws sso login --profile dev`, then run eksgate again
    ");
    assert!(run.history().is_empty(), "no call reached AWS");
}

#[tokio::test]
async fn refused_credentials_name_the_key_and_where_it_came_from() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(PLAIN)
            .env("AWS_ACCESS_KEY_ID", "AKIDNOBODYKNOWS")
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: AWS refused the access key ending `NOWS` from the environment (`AWS_ACCESS_KEY_ID`): DescribeCluster failed: UnrecognizedClientException: The security token included in the request is invalid.
    hint: check that the access key id and its secret belong together and the key is active (`aws iam list-access-keys`); eksgate asked no further with them
    ");
}

#[tokio::test]
async fn a_denied_read_names_the_action_the_resource_and_the_principal() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(&manifest("reader"))
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: AWS denied `eks:DescribeCluster` on `arn:aws:eks:us-east-1:111122223333:cluster/payments` to `arn:aws:sts::111122223333:assumed-role/reader/eksgate` (DescribeCluster: AccessDeniedException)
    hint: allow `eks:DescribeCluster` in that principal's IAM policy; `plan` needs `eks:DescribeCluster`, `eks:ListUpdates`, `eks:DescribeUpdate`, `ec2:DescribeVpcs`, `ec2:DescribeVpcAttribute`, `ec2:DescribeDhcpOptions`, `ec2:DescribeSecurityGroups`, `ec2:DescribeNatGateways`, `ec2:DescribeRouteTables`, `ec2:DescribeVpcPeeringConnections`, `eks:ListAccessEntries`, `eks:DescribeAccessEntry`, `eks:ListAssociatedAccessPolicies`, `ec2:DescribeManagedPrefixLists`, `ec2:GetManagedPrefixListEntries`; `apply` also `eks:UpdateClusterConfig`, `ec2:ModifyVpcAttribute`, `ec2:AuthorizeSecurityGroupIngress`, `ec2:DescribeSecurityGroupRules`, `ec2:RevokeSecurityGroupIngress`, `route53:AssociateVPCWithHostedZone` (`eksgate doctor` checks them)
    ");
}

#[tokio::test]
async fn a_refused_connection_names_the_address_and_what_set_it() {
    let port = closed_port();
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(PLAIN)
            .env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"))
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot reach the EKS endpoint of `us-east-1` at `127.0.0.1:[PORT]`: the connection was refused
    note: `AWS_ENDPOINT_URL` sets this endpoint
    hint: check `AWS_ENDPOINT_URL`: nothing listens at that address
    ");
}

#[tokio::test]
async fn a_name_that_does_not_resolve_is_a_dns_failure() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(PLAIN)
            .env("AWS_ENDPOINT_URL_EKS", "http://eks.eksgate.invalid:8443")
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: cannot reach the EKS endpoint of `us-east-1` at `eks.eksgate.invalid:8443`: the name does not resolve (DNS)
    note: `AWS_ENDPOINT_URL_EKS` sets this endpoint
    hint: check `AWS_ENDPOINT_URL_EKS`: its host name does not resolve
    ");
}

#[tokio::test]
async fn a_region_the_account_has_not_enabled_says_so() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(
                "[[cluster]]\nname = \"payments\"\nregion = \"ap-east-1\"\npublic_access = true\nprivate_access = false\n",
            )
            .args(["plan", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----

    ----- stderr -----
    error: AWS refused the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`) in `ap-east-1`, a region each account must enable before use
    note: AWS said: UnrecognizedClientException: The security token included in the request is invalid.
    hint: enable `ap-east-1` for the account (`aws account enable-region --region-name ap-east-1`, or the console's account settings), or use a region the account has
    ");
}

/// Session credentials whose time is up (here from `AssumeRole`, capped at
/// a millisecond, and handed to eksgate as `AWS_SESSION_TOKEN` would be by
/// a login tool): the refresh, not the key, is what to check.
#[tokio::test]
async fn an_expired_session_says_how_to_renew_it() {
    let sim = start(
        WORLD,
        Behaviour {
            session_duration: Some(Duration::from_millis(1)),
            ..quick()
        },
    )
    .await;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sim.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sts::config::Credentials::new(
            "AKIDEKSGATETEST",
            "eksgate-test-secret",
            None,
            None,
            "test",
        ))
        .retry_config(no_retry())
        .load()
        .await;
    let out = aws_sdk_sts::Client::new(&config)
        .assume_role()
        .role_arn("arn:aws:iam::111122223333:role/deployer")
        .role_session_name("login")
        .send()
        .await
        .expect("the role is assumed");
    let creds = out.credentials().expect("credentials");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let dir = manifest_dir(PLAIN);
    let began = Instant::now();
    let run = eksgate_env(
        &sim,
        dir.path(),
        &["plan", "prod.toml"],
        &[
            ("AWS_ACCESS_KEY_ID", creds.access_key_id()),
            ("AWS_SECRET_ACCESS_KEY", creds.secret_access_key()),
            ("AWS_SESSION_TOKEN", creds.session_token()),
        ],
    )
    .await;
    assert!(began.elapsed() < Duration::from_secs(10));
    assert_eq!(run.status.code(), Some(1));
    let key = creds.access_key_id();
    let err = stderr(&run).replace(&key[key.len() - 4..], "[KEY]");
    eksgate_snapshot!(err, @"
    error: the session of the access key ending `[KEY]` from the environment (`AWS_ACCESS_KEY_ID`) has expired
    note: AWS said: DescribeCluster failed: ExpiredTokenException: The security token included in the request is expired
    hint: renew it: `aws sso login --profile default` for an SSO profile, otherwise get new temporary credentials from where these came from
    ");
}

/// `-v` shows what the SDK said, in its words, never its `Debug` form.
#[tokio::test]
async fn verbose_shows_the_chain_of_a_failure() {
    let port = closed_port();
    let run = Test::new()
        .world(WORLD)
        .manifest(PLAIN)
        .env("AWS_ENDPOINT_URL", &format!("http://127.0.0.1:{port}"))
        .args(["plan", "prod.toml", "-v"])
        .run()
        .await
        .failure();
    let err = run.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains(" INFO ") && l.contains("DescribeCluster failed: dispatch failure")),
        "{err}"
    );
    assert!(
        !err.contains("DispatchFailure") && !err.contains("{ "),
        "{err}"
    );
}

#[tokio::test]
async fn doctor_passes_every_check_on_a_good_world() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(&manifest("deployer"))
            .args(["doctor", "prod.toml"]),
    )
    .await
    .success();
    eksgate_snapshot!(run, @"
    success: true
    exit_code: 0
    ----- stdout -----
    CHECK                               SCOPE                                    RESULT
    credentials                         environment                              ok: the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)
    sts:GetCallerIdentity               us-east-1                                ok: acts as `arn:aws:iam::111122223333:user/eksgate-sim` in account `111122223333`
    sts:AssumeRole                      arn:aws:iam::111122223333:role/deployer  ok: acts as `arn:aws:sts::111122223333:assumed-role/deployer/eksgate`
    account                             account 111122223333                     ok: the credentials act in `111122223333`
    endpoint                            us-east-1 EKS                            ok: answers
    endpoint                            us-east-1 EC2                            ok: answers
    eks:DescribeCluster                 us-east-1/payments as deployer           ok: cluster `payments` read
    eks:ListUpdates                     us-east-1/payments as deployer           ok: listed
    eks:DescribeUpdate                  us-east-1/payments as deployer           ok: update `[UPDATE_ID]` read
    ec2:DescribeVpcs                    us-east-1/payments as deployer           ok: `vpc-0d` read
    ec2:DescribeVpcAttribute            us-east-1/payments as deployer           ok: `vpc-0d` read
    ec2:DescribeDhcpOptions             us-east-1/payments as deployer           ok: read
    ec2:DescribeSecurityGroups          us-east-1/payments as deployer           ok: `sg-0d` read
    ec2:AuthorizeSecurityGroupIngress   us-east-1/payments as deployer           ok: dry run on `sg-0d`
    ec2:DescribeNatGateways             us-east-1/payments as deployer           ok: listed
    ec2:DescribeRouteTables             us-east-1/payments as deployer           not checked: not needed by these manifests
    ec2:DescribeVpcPeeringConnections   us-east-1/payments as deployer           not checked: not needed by these manifests
    eks:ListAccessEntries               us-east-1/payments as deployer           not checked: not needed by these manifests
    eks:DescribeAccessEntry             us-east-1/payments as deployer           not checked: not needed by these manifests
    eks:ListAssociatedAccessPolicies    us-east-1/payments as deployer           not checked: not needed by these manifests
    ec2:DescribeManagedPrefixLists      us-east-1/payments as deployer           not checked: not needed by these manifests
    ec2:GetManagedPrefixListEntries     us-east-1/payments as deployer           not checked: not needed by these manifests
    ec2:DescribeSecurityGroupRules      us-east-1/payments as deployer           not checked: not needed by these manifests
    ec2:RevokeSecurityGroupIngress      us-east-1/payments as deployer           not checked: not needed by these manifests
    eks:UpdateClusterConfig             us-east-1/payments as deployer           not checked: EKS writes have no dry run: apply is the first call to know
    ec2:ModifyVpcAttribute              us-east-1/payments as deployer           not checked: the call has no dry run: apply is the first call to know
    route53:AssociateVPCWithHostedZone  us-east-1/payments as deployer           not checked: turning private access on needs it besides the EKS permission; it has no dry run: apply is the first call to know

    27 checks: 15 ok, 0 failed, 12 not checked

    ----- stderr -----
    ");
    assert_eq!(
        run.state()["regions"][0]["security_groups"][0]["ingress"],
        serde_json::json!([]),
        "the dry run changed nothing"
    );
    let json = run
        .again()
        .args(["doctor", "prod.toml", "--format", "json"])
        .run()
        .await
        .success();
    let v: serde_json::Value = serde_json::from_str(json.stdout()).expect("JSON");
    assert_eq!(v["failed"], 0, "{v}");
    assert_eq!(v["ok"], 15, "{v}");
    assert_eq!(v["checks"][0]["check"], "credentials");
    assert_eq!(v["checks"][0]["outcome"], "ok");
}

#[tokio::test]
async fn doctor_fails_a_role_that_cannot_be_assumed() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(&manifest("nobody"))
            .args(["doctor", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----
    CHECK                  SCOPE                                  RESULT
    credentials            environment                            ok: the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)
    sts:GetCallerIdentity  us-east-1                              ok: acts as `arn:aws:iam::111122223333:user/eksgate-sim` in account `111122223333`
    sts:AssumeRole         arn:aws:iam::111122223333:role/nobody  FAILED: cannot assume the role: AWS denied `sts:AssumeRole` on `arn:aws:iam::111122223333:role/nobody` to `arn:aws:iam::111122223333:user/eksgate-sim` (AccessDenied)
                                                                  hint: the role's trust policy must name that principal, and the principal's policy must allow `sts:AssumeRole` on the role; check `role_arn`
    account                account 111122223333                   not checked: the identity is not known
    reads                  us-east-1/payments                     not checked: the role could not be assumed

    5 checks: 2 ok, 1 failed, 2 not checked

    ----- stderr -----
    ");
}

#[tokio::test]
async fn doctor_fails_a_region_whose_endpoint_is_unreachable() {
    let port = closed_port();
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(PLAIN)
            .env("AWS_ENDPOINT_URL_EKS", &format!("http://127.0.0.1:{port}"))
            .args(["doctor", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----
    CHECK                               SCOPE               RESULT
    credentials                         environment         ok: the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)
    sts:GetCallerIdentity               us-east-1           ok: acts as `arn:aws:iam::111122223333:user/eksgate-sim` in account `111122223333`
    endpoint                            us-east-1 EKS       FAILED: cannot reach the EKS endpoint of `us-east-1` at `127.0.0.1:[PORT]`: the connection was refused; `AWS_ENDPOINT_URL_EKS` sets this endpoint
                                                            hint: check `AWS_ENDPOINT_URL_EKS`: nothing listens at that address
    endpoint                            us-east-1 EC2       ok: answers
    eks:DescribeCluster                 us-east-1/payments  not checked: the endpoint does not answer
    eks:ListUpdates                     us-east-1/payments  not checked: the endpoint does not answer
    eks:DescribeUpdate                  us-east-1/payments  not checked: the endpoint does not answer
    ec2:DescribeVpcs                    us-east-1/payments  ok: `vpc-0d` read
    ec2:DescribeVpcAttribute            us-east-1/payments  ok: `vpc-0d` read
    ec2:DescribeDhcpOptions             us-east-1/payments  ok: read
    ec2:DescribeSecurityGroups          us-east-1/payments  ok: `sg-0d` read
    ec2:AuthorizeSecurityGroupIngress   us-east-1/payments  ok: dry run on `sg-0d`
    ec2:DescribeNatGateways             us-east-1/payments  ok: listed
    ec2:DescribeRouteTables             us-east-1/payments  not checked: not needed by these manifests
    ec2:DescribeVpcPeeringConnections   us-east-1/payments  not checked: not needed by these manifests
    eks:ListAccessEntries               us-east-1/payments  not checked: not needed by these manifests
    eks:DescribeAccessEntry             us-east-1/payments  not checked: not needed by these manifests
    eks:ListAssociatedAccessPolicies    us-east-1/payments  not checked: not needed by these manifests
    ec2:DescribeManagedPrefixLists      us-east-1/payments  not checked: not needed by these manifests
    ec2:GetManagedPrefixListEntries     us-east-1/payments  not checked: not needed by these manifests
    ec2:DescribeSecurityGroupRules      us-east-1/payments  not checked: not needed by these manifests
    ec2:RevokeSecurityGroupIngress      us-east-1/payments  not checked: not needed by these manifests
    eks:UpdateClusterConfig             us-east-1/payments  not checked: EKS writes have no dry run: apply is the first call to know
    ec2:ModifyVpcAttribute              us-east-1/payments  not checked: the call has no dry run: apply is the first call to know
    route53:AssociateVPCWithHostedZone  us-east-1/payments  not checked: turning private access on needs it besides the EKS permission; it has no dry run: apply is the first call to know

    25 checks: 9 ok, 1 failed, 15 not checked

    ----- stderr -----
    ");
}

#[tokio::test]
async fn doctor_fails_a_denied_read_with_its_hint() {
    let run = quickly(
        Test::new()
            .world(WORLD)
            .manifest(&manifest("reader"))
            .args(["doctor", "prod.toml"]),
    )
    .await
    .failure();
    eksgate_snapshot!(run, @"
    success: false
    exit_code: 1
    ----- stdout -----
    CHECK                               SCOPE                                  RESULT
    credentials                         environment                            ok: the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)
    sts:GetCallerIdentity               us-east-1                              ok: acts as `arn:aws:iam::111122223333:user/eksgate-sim` in account `111122223333`
    sts:AssumeRole                      arn:aws:iam::111122223333:role/reader  ok: acts as `arn:aws:sts::111122223333:assumed-role/reader/eksgate`
    account                             account 111122223333                   ok: the credentials act in `111122223333`
    endpoint                            us-east-1 EKS                          ok: answers
    endpoint                            us-east-1 EC2                          ok: answers
    eks:DescribeCluster                 us-east-1/payments as reader           FAILED: AWS denied `eks:DescribeCluster` on `arn:aws:eks:us-east-1:111122223333:cluster/payments` to `arn:aws:sts::111122223333:assumed-role/reader/eksgate` (DescribeCluster: AccessDeniedException)
                                                                               hint: allow `eks:DescribeCluster` in that principal's IAM policy; `plan` needs `eks:DescribeCluster`, `eks:ListUpdates`, `eks:DescribeUpdate`, `ec2:DescribeVpcs`, `ec2:DescribeVpcAttribute`, `ec2:DescribeDhcpOptions`, `ec2:DescribeSecurityGroups`, `ec2:DescribeNatGateways`, `ec2:DescribeRouteTables`, `ec2:DescribeVpcPeeringConnections`, `eks:ListAccessEntries`, `eks:DescribeAccessEntry`, `eks:ListAssociatedAccessPolicies`, `ec2:DescribeManagedPrefixLists`, `ec2:GetManagedPrefixListEntries`; `apply` also `eks:UpdateClusterConfig`, `ec2:ModifyVpcAttribute`, `ec2:AuthorizeSecurityGroupIngress`, `ec2:DescribeSecurityGroupRules`, `ec2:RevokeSecurityGroupIngress`, `route53:AssociateVPCWithHostedZone` (`eksgate doctor` checks them)
    eks:ListUpdates                     us-east-1/payments as reader           ok: listed
    eks:DescribeUpdate                  us-east-1/payments as reader           ok: update `[UPDATE_ID]` read
    ec2:DescribeVpcs                    us-east-1/payments as reader           ok: `vpc-0d` read
    ec2:DescribeVpcAttribute            us-east-1/payments as reader           ok: `vpc-0d` read
    ec2:DescribeDhcpOptions             us-east-1/payments as reader           ok: read
    ec2:DescribeSecurityGroups          us-east-1/payments as reader           ok: `sg-0d` read
    ec2:AuthorizeSecurityGroupIngress   us-east-1/payments as reader           FAILED: AWS denied `ec2:AuthorizeSecurityGroupIngress` on `arn:aws:ec2:us-east-1:111122223333:security-group/sg-0d` to `arn:aws:sts::111122223333:assumed-role/reader/eksgate` (AuthorizeSecurityGroupIngress: UnauthorizedOperation)
                                                                               hint: allow `ec2:AuthorizeSecurityGroupIngress` in that principal's IAM policy; `plan` needs `eks:DescribeCluster`, `eks:ListUpdates`, `eks:DescribeUpdate`, `ec2:DescribeVpcs`, `ec2:DescribeVpcAttribute`, `ec2:DescribeDhcpOptions`, `ec2:DescribeSecurityGroups`, `ec2:DescribeNatGateways`, `ec2:DescribeRouteTables`, `ec2:DescribeVpcPeeringConnections`, `eks:ListAccessEntries`, `eks:DescribeAccessEntry`, `eks:ListAssociatedAccessPolicies`, `ec2:DescribeManagedPrefixLists`, `ec2:GetManagedPrefixListEntries`; `apply` also `eks:UpdateClusterConfig`, `ec2:ModifyVpcAttribute`, `ec2:AuthorizeSecurityGroupIngress`, `ec2:DescribeSecurityGroupRules`, `ec2:RevokeSecurityGroupIngress`, `route53:AssociateVPCWithHostedZone` (`eksgate doctor` checks them)
    ec2:DescribeNatGateways             us-east-1/payments as reader           ok: listed
    ec2:DescribeRouteTables             us-east-1/payments as reader           not checked: not needed by these manifests
    ec2:DescribeVpcPeeringConnections   us-east-1/payments as reader           not checked: not needed by these manifests
    eks:ListAccessEntries               us-east-1/payments as reader           not checked: not needed by these manifests
    eks:DescribeAccessEntry             us-east-1/payments as reader           not checked: not needed by these manifests
    eks:ListAssociatedAccessPolicies    us-east-1/payments as reader           not checked: not needed by these manifests
    ec2:DescribeManagedPrefixLists      us-east-1/payments as reader           not checked: not needed by these manifests
    ec2:GetManagedPrefixListEntries     us-east-1/payments as reader           not checked: not needed by these manifests
    ec2:DescribeSecurityGroupRules      us-east-1/payments as reader           not checked: not needed by these manifests
    ec2:RevokeSecurityGroupIngress      us-east-1/payments as reader           not checked: not needed by these manifests
    eks:UpdateClusterConfig             us-east-1/payments as reader           not checked: EKS writes have no dry run: apply is the first call to know
    ec2:ModifyVpcAttribute              us-east-1/payments as reader           not checked: the call has no dry run: apply is the first call to know
    route53:AssociateVPCWithHostedZone  us-east-1/payments as reader           not checked: turning private access on needs it besides the EKS permission; it has no dry run: apply is the first call to know

    27 checks: 13 ok, 2 failed, 12 not checked

    ----- stderr -----
    ");
}

#[tokio::test]
async fn doctor_without_manifests_checks_the_environment() {
    let run = quickly(Test::new().world(WORLD).args(["doctor"]))
        .await
        .success();
    eksgate_snapshot!(run, @"
    success: true
    exit_code: 0
    ----- stdout -----
    CHECK                  SCOPE        RESULT
    credentials            environment  ok: the access key ending `TEST` from the environment (`AWS_ACCESS_KEY_ID`)
    sts:GetCallerIdentity  us-east-1    ok: acts as `arn:aws:iam::111122223333:user/eksgate-sim` in account `111122223333`

    2 checks: 2 ok, 0 failed, 0 not checked

    ----- stderr -----
    ");
}

/// `DryRun=true` asks only whether the call is allowed: `DryRunOperation`
/// (412) when it is, `UnauthorizedOperation` (403) when a policy denies it,
/// and no rule is added either way (`DryRun` member of the `ec2` service
/// model).
#[tokio::test]
async fn the_emulator_answers_a_dry_run_as_aws_does() {
    let world = r#"
[[account]]
id = "111122223333"
access_key_ids = ["AKIDALLOWED", "AKIDDENIED"]
deny = [{ principal = "AKIDDENIED", actions = ["ec2:Authorize*"] }]

[[vpc]]
id = "vpc-0d"
region = "us-east-1"
account = "111122223333"

[[security_group]]
id = "sg-0d"
region = "us-east-1"
account = "111122223333"
vpc_id = "vpc-0d"
"#;
    let sim = start(world, quick()).await;
    let call = |key: &'static str, dry: bool| {
        let sim = &sim;
        async move {
            let ec2 =
                aws_sdk_ec2::Client::new(&sdk_config_as(sim, "us-east-1", no_retry(), key).await);
            ec2.authorize_security_group_ingress()
                .group_id("sg-0d")
                .ip_permissions(
                    aws_sdk_ec2::types::IpPermission::builder()
                        .ip_protocol("tcp")
                        .from_port(443)
                        .to_port(443)
                        .ip_ranges(
                            aws_sdk_ec2::types::IpRange::builder()
                                .cidr_ip("192.0.2.1/32")
                                .build(),
                        )
                        .build(),
                )
                .dry_run(dry)
                .send()
                .await
        }
    };
    let allowed = call("AKIDALLOWED", true)
        .await
        .expect_err("a dry run always errs");
    assert_eq!(
        err_parts(&allowed),
        (
            "DryRunOperation".into(),
            412,
            "Request would have succeeded, but DryRun flag is set.".into()
        )
    );
    let denied = call("AKIDDENIED", true).await.expect_err("denied");
    let (code, status, message) = err_parts(&denied);
    assert_eq!((code.as_str(), status), ("UnauthorizedOperation", 403));
    assert!(
        message.starts_with("You are not authorized to perform this operation. User: arn:aws:iam::111122223333:user/eksgate-sim is not authorized to perform: ec2:AuthorizeSecurityGroupIngress on resource: arn:aws:ec2:us-east-1:111122223333:security-group/sg-0d with an explicit deny in an identity-based policy. Encoded authorization failure message: "),
        "{message}"
    );
    let denied_for_real = call("AKIDDENIED", false).await.expect_err("denied");
    assert_eq!(err_parts(&denied_for_real).0, "UnauthorizedOperation");
    assert_eq!(
        sim.snapshot()["regions"][0]["security_groups"][0]["ingress"],
        serde_json::json!([]),
        "nothing was added"
    );
    call("AKIDALLOWED", false).await.expect("allowed for real");
    assert_eq!(
        sim.snapshot()["regions"][0]["security_groups"][0]["ingress"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}
