//! The emulator, driven through `aws-sdk-eks`, `aws-sdk-ec2` and `aws-sdk-sts`
//! exactly as eksgate (or any other SDK user) would drive AWS: every
//! operation, every documented error with its code, HTTP status and message,
//! the update lifecycle and its timing, region separation, paging, faults.

use std::time::Duration;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, IpPermission, IpRange, UserIdGroupPair, VpcAttributeName,
};
use aws_sdk_eks::types::{
    ClusterStatus, LogSetup, LogType, Logging, UpdateStatus, VpcConfigRequest,
};
use eksgate::sim::{Behaviour, Event};

use crate::common::*;
use crate::fixture::fixture;

const WORLD: &str = fixture!("worlds/sdk-tour.toml");

fn endpoint(
    public: Option<bool>,
    private: Option<bool>,
    cidrs: Option<&[&str]>,
) -> VpcConfigRequest {
    VpcConfigRequest::builder()
        .set_endpoint_public_access(public)
        .set_endpoint_private_access(private)
        .set_public_access_cidrs(cidrs.map(|c| c.iter().map(|s| s.to_string()).collect()))
        .build()
}

#[tokio::test]
async fn describe_cluster_shows_what_an_sdk_user_sees() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    let c = eks.describe_cluster().name("ledger").send().await.unwrap();
    let c = c.cluster().unwrap();
    assert_eq!(c.name(), Some("ledger"));
    assert_eq!(
        c.arn(),
        Some("arn:aws:eks:us-east-1:123456789012:cluster/ledger")
    );
    assert_eq!(c.status(), Some(&ClusterStatus::Active));
    assert!(c.endpoint().unwrap().starts_with("https://"));
    assert!(c
        .endpoint()
        .unwrap()
        .ends_with(".gr7.us-east-1.eks.amazonaws.com"));
    let vpc = c.resources_vpc_config().unwrap();
    assert_eq!(vpc.vpc_id(), Some("vpc-0a1b2c3d"));
    assert!(vpc.endpoint_public_access());
    assert!(vpc.endpoint_private_access());
    // Host bits cleared and in EKS's own order, not the order given.
    assert_eq!(
        vpc.public_access_cidrs(),
        ["198.51.100.7/32", "203.0.113.0/24"]
    );

    let p = eks
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    let vpc = p.cluster().unwrap().resources_vpc_config().unwrap();
    assert_eq!(vpc.cluster_security_group_id(), Some("sg-0cluster1"));
    assert_eq!(vpc.public_access_cidrs(), ["0.0.0.0/0"]);

    let b = eks.describe_cluster().name("batch").send().await.unwrap();
    assert_eq!(
        b.cluster().unwrap().status(),
        Some(&ClusterStatus::Creating)
    );
    assert_eq!(b.cluster().unwrap().endpoint(), None);
}

#[tokio::test]
async fn list_clusters_pages_with_max_results_and_next_token() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    let first = eks.list_clusters().max_results(3).send().await.unwrap();
    assert_eq!(first.clusters(), ["batch", "ledger", "payments"]);
    let token = first.next_token().expect("a next token after a full page");
    let second = eks
        .list_clusters()
        .max_results(3)
        .next_token(token)
        .send()
        .await
        .unwrap();
    assert_eq!(second.clusters(), ["search"]);
    assert_eq!(second.next_token(), None);

    // The SDK's own paginator walks the same pages.
    let all: Vec<String> = eks
        .list_clusters()
        .max_results(1)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .unwrap();
    assert_eq!(all, ["batch", "ledger", "payments", "search"]);

    let err = eks
        .list_clusters()
        .max_results(101)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InvalidParameterException");
    let err = eks
        .list_clusters()
        .next_token("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidParameterException".into(),
            400,
            "The nextToken provided is invalid.".into()
        )
    );
}

#[tokio::test]
async fn regions_are_separate_and_come_from_the_credential_scope() {
    let sim = start(WORLD, quick()).await;
    let us = eks(&sim, "us-east-1").await;
    let eu = eks(&sim, "eu-west-1").await;
    let ap = eks(&sim, "ap-south-1").await;
    assert_eq!(
        eu.list_clusters().send().await.unwrap().clusters(),
        ["payments"]
    );
    assert!(ap
        .list_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
        .is_empty());
    let us_p = us.describe_cluster().name("payments").send().await.unwrap();
    let eu_p = eu.describe_cluster().name("payments").send().await.unwrap();
    assert_ne!(us_p.cluster().unwrap().arn(), eu_p.cluster().unwrap().arn());
    let err = eu
        .describe_cluster()
        .name("ledger")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "ResourceNotFoundException".into(),
            404,
            "No cluster found for name: ledger.".into()
        )
    );
    let ec2_eu = ec2(&sim, "eu-west-1").await;
    let err = ec2_eu
        .describe_vpc_attribute()
        .vpc_id("vpc-0a1b2c3d")
        .attribute(VpcAttributeName::EnableDnsSupport)
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InvalidVpcID.NotFound");
}

#[tokio::test]
async fn an_endpoint_update_runs_for_its_duration_then_takes_effect() {
    let sim = start(
        WORLD,
        Behaviour {
            update_duration: Duration::from_millis(600),
            // `UPDATING` at once; the lag has its own test (`sim_aws_edges`).
            status_lag: Duration::ZERO,
            ..Behaviour::default()
        },
    )
    .await;
    let eks = eks(&sim, "us-east-1").await;
    let out = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(None, Some(true), None))
        .send()
        .await
        .unwrap();
    let update = out.update().unwrap().clone();
    assert_eq!(update.status(), Some(&UpdateStatus::InProgress));
    assert_eq!(
        update.r#type().map(|t| t.as_str()),
        Some("EndpointAccessUpdate")
    );
    assert!(update.errors().is_empty());
    assert!(update.created_at().is_some());
    let params: Vec<(String, String)> = update
        .params()
        .iter()
        .map(|p| {
            (
                p.r#type().unwrap().as_str().to_string(),
                p.value().unwrap().to_string(),
            )
        })
        .collect();
    // Only what the request sent, as AWS lists it.
    assert_eq!(
        params,
        [("EndpointPrivateAccess".to_string(), "true".to_string())]
    );
    let id = update.id().unwrap().to_string();

    let c = eks
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    assert_eq!(
        c.cluster().unwrap().status(),
        Some(&ClusterStatus::Updating)
    );
    // Settings change only when the update succeeds.
    assert!(!c
        .cluster()
        .unwrap()
        .resources_vpc_config()
        .unwrap()
        .endpoint_private_access());

    let listed = eks.list_updates().name("payments").send().await.unwrap();
    assert_eq!(listed.update_ids(), std::slice::from_ref(&id));

    let mut polls = 0;
    let done = loop {
        polls += 1;
        assert!(polls < 200, "update never finished");
        let d = eks
            .describe_update()
            .name("payments")
            .update_id(&id)
            .send()
            .await
            .unwrap();
        let u = d.update().unwrap().clone();
        if u.status() != Some(&UpdateStatus::InProgress) {
            break u;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(done.status(), Some(&UpdateStatus::Successful));
    let c = eks
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    let c = c.cluster().unwrap();
    assert_eq!(c.status(), Some(&ClusterStatus::Active));
    assert!(c.resources_vpc_config().unwrap().endpoint_private_access());

    // The history has the update start and end, 600 ms apart.
    let h = sim.history();
    let times: Vec<(f64, String)> = h
        .iter()
        .filter_map(|e| match &e.event {
            Event::UpdateStatus {
                update_id, status, ..
            } if *update_id == id => Some((e.t_ms, status.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(times.len(), 2, "{times:?}");
    assert_eq!(times[0].1, "InProgress");
    assert_eq!(times[1].1, "Successful");
    let took = times[1].0 - times[0].0;
    assert!((599.0..=601.0).contains(&took), "update took {took} ms");
}

#[tokio::test]
async fn update_errors_carry_aws_types_statuses_and_messages() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    let call = |name: &str, cfg: VpcConfigRequest| {
        eks.update_cluster_config()
            .name(name)
            .resources_vpc_config(cfg)
            .send()
    };
    let cases: Vec<(&str, VpcConfigRequest, (&str, u16, &str))> = vec![
        (
            "payments",
            endpoint(Some(true), Some(false), Some(&["0.0.0.0/0"])),
            (
                "InvalidParameterException",
                400,
                "Cluster is already at the desired configuration with endpointPrivateAccess: false , endpointPublicAccess: true, and Public Endpoint Restrictions: [0.0.0.0/0]",
            ),
        ),
        (
            "payments",
            endpoint(Some(false), None, None),
            (
                "InvalidParameterException",
                400,
                "Both private and public endpoint access cannot be false",
            ),
        ),
        (
            "payments",
            endpoint(None, None, Some(&["10.0.0.0/8", "not-a-cidr", "300.1.1.1/32"])),
            (
                "InvalidParameterException",
                400,
                "The following CIDRs are invalid in publicAccessCidrs: [not-a-cidr,300.1.1.1/32]",
            ),
        ),
        (
            "nope",
            endpoint(Some(true), None, None),
            ("ResourceNotFoundException", 404, "No cluster found for name: nope."),
        ),
        (
            "batch",
            endpoint(None, Some(true), None),
            (
                "ResourceInUseException",
                409,
                "Cannot EndpointAccessUpdate because cluster batch is in CREATING state",
            ),
        ),
    ];
    for (name, cfg, want) in cases {
        let err = call(name, cfg.clone()).await.unwrap_err();
        let got = err_parts(&err);
        assert_eq!(
            (got.0.as_str(), got.1, got.2.as_str()),
            want,
            "for {name} {cfg:?}"
        );
    }

    let many: Vec<String> = (0..41).map(|i| format!("10.{i}.0.0/16")).collect();
    let err = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_public_access_cidrs(Some(many))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    let (code, status, msg) = err_parts(&err);
    assert_eq!((code.as_str(), status), ("InvalidParameterException", 400));
    assert!(msg.contains("at most 40"), "{msg}");
    let forty: Vec<String> = (0..40).map(|i| format!("10.{i}.0.0/16")).collect();
    eks.update_cluster_config()
        .name("ledger")
        .resources_vpc_config(
            VpcConfigRequest::builder()
                .set_public_access_cidrs(Some(forty))
                .build(),
        )
        .send()
        .await
        .expect("40 CIDRs are allowed");

    let err = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(None, Some(true), None))
        .logging(
            Logging::builder()
                .cluster_logging(
                    LogSetup::builder()
                        .types(LogType::Api)
                        .enabled(true)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidParameterException".into(),
            400,
            "Only one type of update can be allowed.".into()
        )
    );

    let err = eks
        .describe_update()
        .name("payments")
        .update_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "ResourceNotFoundException".into(),
            404,
            "No update found for ID: 00000000-0000-0000-0000-000000000000.".into()
        )
    );
    let err = eks.list_updates().name("nope").send().await.unwrap_err();
    assert_eq!(err_parts(&err).1, 404);
    // Nothing above changed the cluster.
    let c = eks
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    assert!(c
        .cluster()
        .unwrap()
        .resources_vpc_config()
        .unwrap()
        .endpoint_public_access());
    assert_eq!(c.cluster().unwrap().status(), Some(&ClusterStatus::Active));
}

#[tokio::test]
async fn one_update_at_a_time_names_the_running_update() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    let first = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(None, Some(true), None))
        .send()
        .await
        .unwrap();
    let id = first.update().unwrap().id().unwrap().to_string();
    let err = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(None, None, Some(&["10.0.0.0/8"])))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "ResourceInUseException".into(),
            409,
            format!("Cannot EndpointAccessUpdate because cluster payments currently has update {id} in progress")
        )
    );
}

#[tokio::test]
async fn an_aws_started_update_blocks_while_the_cluster_still_says_active() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "eu-west-1").await;
    let c = eks
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    assert_eq!(c.cluster().unwrap().status(), Some(&ClusterStatus::Active));
    let ids = eks.list_updates().name("payments").send().await.unwrap();
    assert_eq!(ids.update_ids().len(), 1);
    let u = eks
        .describe_update()
        .name("payments")
        .update_id(&ids.update_ids()[0])
        .send()
        .await
        .unwrap();
    assert_eq!(
        u.update().unwrap().status(),
        Some(&UpdateStatus::InProgress)
    );
    let err = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(Some(false), None, None))
        .send()
        .await
        .unwrap_err();
    let (code, status, msg) = err_parts(&err);
    assert_eq!((code.as_str(), status), ("ResourceInUseException", 409));
    assert!(msg.contains(&ids.update_ids()[0]), "{msg}");
}

#[tokio::test]
async fn failed_updates_report_error_details_and_change_nothing() {
    let world = format!(
        "{WORLD}\n[[faults.failed_update]]\ncluster = \"payments\"\nregion = \"us-east-1\"\nerror_code = \"AccessDenied\"\nerror_message = \"missing route53:AssociateVPCWithHostedZone\"\n"
    );
    let sim = start(&world, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    let out = eks
        .update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(None, Some(true), None))
        .send()
        .await
        .unwrap();
    let id = out.update().unwrap().id().unwrap().to_string();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let u = eks
        .describe_update()
        .name("payments")
        .update_id(&id)
        .send()
        .await
        .unwrap();
    let u = u.update().unwrap();
    assert_eq!(u.status(), Some(&UpdateStatus::Failed));
    let e = &u.errors()[0];
    assert_eq!(e.error_code().map(|c| c.as_str()), Some("AccessDenied"));
    assert_eq!(
        e.error_message(),
        Some("missing route53:AssociateVPCWithHostedZone")
    );
    assert_eq!(e.resource_ids(), ["payments"]);
    let c = eks
        .describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    let c = c.cluster().unwrap();
    assert_eq!(c.status(), Some(&ClusterStatus::Active));
    assert!(!c.resources_vpc_config().unwrap().endpoint_private_access());
    // Only the first update was named: the second one succeeds.
    eks.update_cluster_config()
        .name("payments")
        .resources_vpc_config(endpoint(None, Some(true), None))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn vpc_attributes_one_per_call_support_before_hostnames() {
    let sim = start(WORLD, quick()).await;
    let ec2 = ec2(&sim, "us-east-1").await;
    let get = |vpc: &'static str, attr: VpcAttributeName| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_vpc_attribute()
                .vpc_id(vpc)
                .attribute(attr.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(out.vpc_id(), Some(vpc));
            match attr {
                VpcAttributeName::EnableDnsSupport => out.enable_dns_support().unwrap().value(),
                _ => out.enable_dns_hostnames().unwrap().value(),
            }
        }
    };
    assert_eq!(
        get("vpc-0a1b2c3d", VpcAttributeName::EnableDnsSupport).await,
        Some(true)
    );
    assert_eq!(
        get("vpc-0a1b2c3d", VpcAttributeName::EnableDnsHostnames).await,
        Some(false)
    );
    let on = || AttributeBooleanValue::builder().value(true).build();

    let err = ec2
        .modify_vpc_attribute()
        .vpc_id("vpc-0a1b2c3d")
        .enable_dns_support(on())
        .enable_dns_hostnames(on())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidParameterCombination".into(),
            400,
            "Fields for multiple attribute types specified: enableDnsHostnames, enableDnsSupport"
                .into()
        )
    );

    let err = ec2
        .modify_vpc_attribute()
        .vpc_id("vpc-0nodns")
        .enable_dns_hostnames(on())
        .send()
        .await
        .unwrap_err();
    let (code, status, _) = err_parts(&err);
    assert_eq!((code.as_str(), status), ("InvalidParameterValue", 400));
    assert_eq!(
        get("vpc-0nodns", VpcAttributeName::EnableDnsHostnames).await,
        Some(false)
    );

    ec2.modify_vpc_attribute()
        .vpc_id("vpc-0nodns")
        .enable_dns_support(on())
        .send()
        .await
        .unwrap();
    ec2.modify_vpc_attribute()
        .vpc_id("vpc-0nodns")
        .enable_dns_hostnames(on())
        .send()
        .await
        .unwrap();
    assert_eq!(
        get("vpc-0nodns", VpcAttributeName::EnableDnsSupport).await,
        Some(true)
    );
    assert_eq!(
        get("vpc-0nodns", VpcAttributeName::EnableDnsHostnames).await,
        Some(true)
    );

    let err = ec2
        .modify_vpc_attribute()
        .vpc_id("vpc-0missing")
        .enable_dns_support(on())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidVpcID.NotFound".into(),
            400,
            "The vpc ID 'vpc-0missing' does not exist".into()
        )
    );
}

#[tokio::test]
async fn vpcs_and_dhcp_options_show_the_name_servers() {
    let sim = start(WORLD, quick()).await;
    let ec2 = ec2(&sim, "us-east-1").await;
    let vpcs = ec2
        .describe_vpcs()
        .vpc_ids("vpc-0a1b2c3d")
        .send()
        .await
        .unwrap();
    let vpc = &vpcs.vpcs()[0];
    assert_eq!(vpc.vpc_id(), Some("vpc-0a1b2c3d"));
    assert_eq!(vpc.dhcp_options_id(), Some("dopt-0custom1"));
    let servers = |out: &aws_sdk_ec2::operation::describe_dhcp_options::DescribeDhcpOptionsOutput| -> Vec<String> {
        out.dhcp_options()[0]
            .dhcp_configurations()
            .iter()
            .filter(|c| c.key() == Some("domain-name-servers"))
            .flat_map(|c| c.values().iter().filter_map(|v| v.value().map(str::to_string)))
            .collect()
    };
    let custom = ec2
        .describe_dhcp_options()
        .dhcp_options_ids("dopt-0custom1")
        .send()
        .await
        .unwrap();
    assert_eq!(servers(&custom), ["10.0.0.2"]);

    // A VPC without named options gets the region's default set.
    let other = ec2
        .describe_vpcs()
        .vpc_ids("vpc-0nodns")
        .send()
        .await
        .unwrap();
    let default_id = other.vpcs()[0].dhcp_options_id().unwrap().to_string();
    let default = ec2
        .describe_dhcp_options()
        .dhcp_options_ids(&default_id)
        .send()
        .await
        .unwrap();
    assert_eq!(servers(&default), ["AmazonProvidedDNS"]);

    let err = ec2
        .describe_vpcs()
        .vpc_ids("vpc-0missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InvalidVpcID.NotFound");
    let err = ec2
        .describe_dhcp_options()
        .dhcp_options_ids("dopt-0missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidDhcpOptionID.NotFound".into(),
            400,
            "The dhcpOption ID 'dopt-0missing' does not exist".into()
        )
    );
}

#[tokio::test]
async fn security_group_ingress_is_added_once_and_duplicates_are_refused() {
    let sim = start(WORLD, quick()).await;
    let ec2 = ec2(&sim, "us-east-1").await;
    let perm = |cidr: Option<&str>, group: Option<&str>| {
        let mut p = IpPermission::builder()
            .ip_protocol("tcp")
            .from_port(443)
            .to_port(443);
        if let Some(c) = cidr {
            p = p.ip_ranges(IpRange::builder().cidr_ip(c).build());
        }
        if let Some(g) = group {
            p = p.user_id_group_pairs(UserIdGroupPair::builder().group_id(g).build());
        }
        p.build()
    };
    let out = ec2
        .authorize_security_group_ingress()
        .group_id("sg-0cluster1")
        .ip_permissions(perm(Some("10.20.0.0/16"), Some("sg-0bastion")))
        .send()
        .await
        .unwrap();
    assert_eq!(out.r#return(), Some(true));
    assert_eq!(out.security_group_rules().len(), 2);

    let groups = ec2
        .describe_security_groups()
        .group_ids("sg-0cluster1")
        .send()
        .await
        .unwrap();
    let g = &groups.security_groups()[0];
    assert_eq!(g.vpc_id(), Some("vpc-0a1b2c3d"));
    let p = &g.ip_permissions()[0];
    assert_eq!(
        (p.ip_protocol(), p.from_port(), p.to_port()),
        (Some("tcp"), Some(443), Some(443))
    );
    assert_eq!(p.ip_ranges()[0].cidr_ip(), Some("10.20.0.0/16"));
    assert_eq!(p.user_id_group_pairs()[0].group_id(), Some("sg-0bastion"));

    let err = ec2
        .authorize_security_group_ingress()
        .group_id("sg-0cluster1")
        .ip_permissions(perm(Some("10.20.0.0/16"), None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidPermission.Duplicate".into(),
            400,
            "the specified rule \"peer: 10.20.0.0/16, TCP, from port: 443, to port: 443, ALLOW\" already exists".into()
        )
    );
    let err = ec2
        .authorize_security_group_ingress()
        .group_id("sg-0missing")
        .ip_permissions(perm(Some("10.0.0.0/8"), None))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err_parts(&err),
        (
            "InvalidGroup.NotFound".into(),
            400,
            "The security group 'sg-0missing' does not exist".into()
        )
    );
    let err = ec2
        .describe_security_groups()
        .group_ids("sg-0missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InvalidGroup.NotFound");
}

#[tokio::test]
async fn throttling_is_a_real_throttling_error_that_the_sdk_retries() {
    let sim = start(
        WORLD,
        Behaviour {
            throttle_rate: 0.5,
            seed: 7,
            ..quick()
        },
    )
    .await;
    // Without retries the error surfaces with AWS's code and status.
    let bare = eks(&sim, "us-east-1").await;
    let mut throttled = None;
    for _ in 0..50 {
        if let Err(e) = bare.describe_cluster().name("payments").send().await {
            throttled = Some(err_parts(&e));
            break;
        }
    }
    assert_eq!(
        throttled,
        Some(("ThrottlingException".into(), 429, "Rate exceeded".into()))
    );

    // With the SDK's standard retry policy every call gets through. The retry
    // quota is process-wide per partition, so this client gets its own, as
    // eksgate's clients do.
    // At 50% a run of a dozen throttles is not rare; 25 attempts make a
    // surfaced error a one-in-thirty-million event per call.
    let cfg = sdk_config(&sim, "us-east-1", fast_retry(25)).await;
    let partition = aws_sdk_eks::config::retry::RetryPartition::custom("sim-throttling-test")
        .token_bucket(aws_sdk_eks::config::retry::TokenBucket::unlimited())
        .build();
    let eks = aws_sdk_eks::Client::from_conf(
        aws_sdk_eks::config::Builder::from(&cfg)
            .retry_partition(partition.clone())
            .build(),
    );
    let ec2 = aws_sdk_ec2::Client::from_conf(
        aws_sdk_ec2::config::Builder::from(&cfg)
            .retry_partition(partition)
            .build(),
    );
    for _ in 0..20 {
        eks.describe_cluster()
            .name("payments")
            .send()
            .await
            .unwrap();
        ec2.describe_vpcs().send().await.unwrap();
    }
    let h = sim.history();
    let outcomes = |svc: &str| -> (usize, usize) {
        let reqs: Vec<_> = h
            .iter()
            .filter_map(|e| match &e.event {
                Event::Request {
                    service, outcome, ..
                } if service == svc => Some(outcome.clone()),
                _ => None,
            })
            .collect();
        (
            reqs.iter().filter(|o| o.as_str() == "ok").count(),
            reqs.iter().filter(|o| o.as_str() != "ok").count(),
        )
    };
    let (eks_ok, eks_throttled) = outcomes("eks");
    let (ec2_ok, ec2_throttled) = outcomes("ec2");
    assert!(eks_ok >= 20 && ec2_ok == 20, "{eks_ok} {ec2_ok}");
    assert!(
        eks_throttled > 5 && ec2_throttled > 5,
        "{eks_throttled} {ec2_throttled}"
    );
}

#[tokio::test]
async fn the_rate_limit_is_per_region_and_ec2_says_request_limit_exceeded() {
    let sim = start(
        WORLD,
        Behaviour {
            rate_limit: Some(5.0),
            ..quick()
        },
    )
    .await;
    let us = ec2(&sim, "us-east-1").await;
    let eu = ec2(&sim, "eu-west-1").await;
    let mut first_err = None;
    for _ in 0..10 {
        if let Err(e) = us.describe_vpcs().send().await {
            first_err = Some(err_parts(&e));
            break;
        }
    }
    assert_eq!(
        first_err,
        Some((
            "RequestLimitExceeded".into(),
            503,
            "Request limit exceeded.".into()
        ))
    );
    // Another region has its own bucket.
    eu.describe_vpcs().send().await.unwrap();
}

#[tokio::test]
async fn server_errors_are_500s_of_the_right_type() {
    let sim = start(
        WORLD,
        Behaviour {
            error_rate: 1.0,
            ..quick()
        },
    )
    .await;
    let err = eks(&sim, "us-east-1")
        .await
        .list_clusters()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "ServerException");
    assert_eq!(err_parts(&err).1, 500);
    let err = ec2(&sim, "us-east-1")
        .await
        .describe_vpcs()
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "InternalError");
    assert_eq!(err_parts(&err).1, 500);
}

#[tokio::test]
async fn sts_reports_the_account_and_assumes_roles_into_others() {
    let world = format!(
        "{WORLD}\n[[account]]\nid = \"111122223333\"\naccess_key_ids = [\"AKIDPROD\"]\n\n[[account]]\nid = \"444455556666\"\nroles = [\"arn:aws:iam::444455556666:role/eksgate\"]\n\n[[vpc]]\nid = \"vpc-0other\"\nregion = \"us-east-1\"\naccount = \"444455556666\"\n\n[[cluster]]\nname = \"elsewhere\"\nregion = \"us-east-1\"\naccount = \"444455556666\"\nvpc_id = \"vpc-0other\"\npublic_access = true\nprivate_access = false\n"
    );
    let sim = start(&world, quick()).await;
    let cfg = sdk_config_as(&sim, "us-east-1", no_retry(), "AKIDPROD").await;
    let sts = aws_sdk_sts::Client::new(&cfg);
    let me = sts.get_caller_identity().send().await.unwrap();
    assert_eq!(me.account(), Some("111122223333"));
    let err = sts
        .assume_role()
        .role_arn("arn:aws:iam::999999999999:role/nope")
        .role_session_name("t")
        .send()
        .await
        .unwrap_err();
    assert_eq!(err_parts(&err).0, "AccessDenied");
    let creds = sts
        .assume_role()
        .role_arn("arn:aws:iam::444455556666:role/eksgate")
        .role_session_name("eksgate")
        .send()
        .await
        .unwrap();
    let c = creds.credentials().unwrap();
    let other = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(sim.url())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eks::config::Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_string()),
            None,
            "assumed",
        ))
        .load()
        .await;
    let who = aws_sdk_sts::Client::new(&other)
        .get_caller_identity()
        .send()
        .await
        .unwrap();
    assert_eq!(who.account(), Some("444455556666"));
    assert_eq!(
        who.arn(),
        Some("arn:aws:sts::444455556666:assumed-role/eksgate/eksgate")
    );
    let eks_other = aws_sdk_eks::Client::new(&other);
    assert_eq!(
        eks_other.list_clusters().send().await.unwrap().clusters(),
        ["elsewhere"]
    );
    // The first account does not see the other account's cluster.
    let eks_prod = aws_sdk_eks::Client::new(&cfg);
    assert!(!eks_prod
        .list_clusters()
        .send()
        .await
        .unwrap()
        .clusters()
        .contains(&"elsewhere".to_string()));
}

#[tokio::test]
async fn introspection_pages_show_state_and_history() {
    let sim = start(WORLD, quick()).await;
    let eks = eks(&sim, "us-east-1").await;
    eks.describe_cluster()
        .name("payments")
        .send()
        .await
        .unwrap();
    let _ = eks.describe_cluster().name("ghost").send().await;
    let (status, body) = http_get(sim.addr(), "/_sim/history").await;
    assert_eq!(status, 200);
    let h: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reqs: Vec<_> = h
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "request")
        .collect();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0]["operation"], "DescribeCluster");
    assert_eq!(reqs[0]["region"], "us-east-1");
    assert_eq!(reqs[0]["target"], "payments");
    assert_eq!(reqs[0]["outcome"], "ok");
    assert_eq!(reqs[1]["outcome"], "ResourceNotFoundException");
    assert_eq!(reqs[1]["http_status"], 404);
    assert!(reqs[1]["t_ms"].as_f64().unwrap() >= reqs[0]["t_ms"].as_f64().unwrap());

    let (status, body) = http_get(sim.addr(), "/_sim/state").await;
    assert_eq!(status, 200);
    let s: serde_json::Value = serde_json::from_str(&body).unwrap();
    let us = s["regions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["region"] == "us-east-1")
        .unwrap();
    let payments = us["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "payments")
        .unwrap();
    assert_eq!(payments["public_access"], true);
    assert_eq!(payments["status"], "ACTIVE");
}

#[tokio::test]
async fn requests_without_credentials_are_refused() {
    let sim = start(WORLD, quick()).await;
    let (status, body) = http_get(sim.addr(), "/clusters").await;
    assert_eq!(status, 403);
    assert!(body.contains("Missing Authentication Token"), "{body}");
}

/// `eksgate sim serve` as a user runs it: the first stdout line names the
/// address, an SDK client works against it, SIGTERM stops it cleanly.
#[tokio::test]
async fn sim_serve_prints_its_address_and_stops_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let world_path = dir.path().join("world.toml");
    std::fs::write(&world_path, WORLD).unwrap();
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin!("eksgate"))
        .args([
            "sim",
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--update-duration",
            "1s",
            "--world",
        ])
        .arg(&world_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let url = first
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line was {first:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let cfg = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&url)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_eks::config::Credentials::new(
            "AKIDCLI", "s", None, None, "t",
        ))
        .load()
        .await;
    let names = aws_sdk_eks::Client::new(&cfg)
        .list_clusters()
        .send()
        .await
        .unwrap();
    assert_eq!(names.clusters(), ["batch", "ledger", "payments", "search"]);
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "sim serve did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_bad_world_file_is_reported_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("world.toml"),
        "[[cluster]]\nname = \"a\"\nregion = \"us-east-1\"\nvpc_id = \"vpc-1\"\npublic_access = \"yes\"\nprivate_access = false\n",
    )
    .unwrap();
    let out = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("eksgate"))
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .args(["sim", "serve", "--world", "world.toml"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: invalid type: string \"yes\", expected a boolean\n --> world.toml:5:17\n"
        ),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

/// A client eksgate did not write: boto3 (the AWS CLI's library) against the
/// emulator. CI installs boto3 and sets `EKSGATE_REQUIRE_BOTO3=1`; elsewhere
/// the test says it was skipped when boto3 is missing.
#[tokio::test]
async fn boto3_drives_the_emulator_like_aws() {
    if !crate::tools::BOTO3.present() {
        return;
    }
    let sim = start(WORLD, quick()).await;
    let script = r#"
import boto3, botocore, json, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="AKIDBOTO", aws_secret_access_key="s")
eks = boto3.client("eks", **kw)
ec2 = boto3.client("ec2", **kw)
out = {}
out["clusters"] = eks.list_clusters()["clusters"]
c = eks.describe_cluster(name="ledger")["cluster"]
out["cidrs"] = c["resourcesVpcConfig"]["publicAccessCidrs"]
u = eks.update_cluster_config(name="payments", resourcesVpcConfig={"endpointPrivateAccess": True})["update"]
out["update_status"] = u["status"]
try:
    eks.update_cluster_config(name="payments", resourcesVpcConfig={"publicAccessCidrs": ["10.0.0.0/8"]})
except botocore.exceptions.ClientError as e:
    out["conflict"] = [e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]]
try:
    eks.describe_cluster(name="ghost")
except eks.exceptions.ResourceNotFoundException as e:
    out["missing"] = e.response["Error"]["Message"]
a = ec2.describe_vpc_attribute(VpcId="vpc-0a1b2c3d", Attribute="enableDnsHostnames")
out["hostnames"] = a["EnableDnsHostnames"]["Value"]
try:
    ec2.modify_vpc_attribute(VpcId="vpc-0a1b2c3d", EnableDnsSupport={"Value": True}, EnableDnsHostnames={"Value": True})
except botocore.exceptions.ClientError as e:
    out["both"] = e.response["Error"]["Code"]
d = ec2.describe_dhcp_options(DhcpOptionsIds=["dopt-0custom1"])["DhcpOptions"][0]
out["dns"] = [v["Value"] for c in d["DhcpConfigurations"] for v in c["Values"]]
print(json.dumps(out))
"#;
    let out = tokio::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(sim.url())
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["clusters"],
        serde_json::json!(["batch", "ledger", "payments", "search"])
    );
    assert_eq!(
        v["cidrs"],
        serde_json::json!(["198.51.100.7/32", "203.0.113.0/24"])
    );
    assert_eq!(v["update_status"], "InProgress");
    assert_eq!(
        v["conflict"],
        serde_json::json!(["ResourceInUseException", 409])
    );
    assert_eq!(v["missing"], "No cluster found for name: ghost.");
    assert_eq!(v["hostnames"], false);
    assert_eq!(v["both"], "InvalidParameterCombination");
    assert_eq!(v["dns"], serde_json::json!(["10.0.0.2"]));
}

/// Regression: under `sim serve` the history grew without bound. With a
/// limit it keeps the most recent entries, and both the in-process handle and
/// `GET /_sim/history` say how many were dropped.
#[tokio::test]
async fn the_history_keeps_the_most_recent_entries_and_counts_the_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = start(
        WORLD,
        Behaviour {
            history_limit: Some(3),
            ..quick()
        },
    )
    .await;
    let eks = eks(&sim, "us-east-1").await;
    for name in ["c1", "c2", "c3", "c4", "c5"] {
        let _ = eks.describe_cluster().name(name).send().await;
    }
    let targets = |h: &[eksgate::sim::HistoryEntry]| -> Vec<String> {
        h.iter()
            .map(|e| match &e.event {
                Event::Request { target, .. } => target.clone().unwrap_or_default(),
                other => panic!("only requests were made: {other:?}"),
            })
            .collect()
    };
    assert_eq!(targets(&sim.history()), ["c3", "c4", "c5"]);
    assert_eq!(sim.history_dropped(), 2);

    let mut s = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    s.write_all(b"GET /_sim/history HTTP/1.0\r\nHost: emulator\r\n\r\n")
        .await
        .unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut raw))
        .await
        .expect("emulator answered in time")
        .unwrap();
    let raw = String::from_utf8(raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.0 200"), "{head}");
    assert!(
        head.lines()
            .any(|l| l.eq_ignore_ascii_case("x-sim-history-dropped: 2")),
        "{head}"
    );
    let h: serde_json::Value = serde_json::from_str(body).unwrap();
    let h = h.as_array().unwrap();
    let seen: Vec<_> = h
        .iter()
        .map(|e| (e["seq"].as_u64().unwrap(), e["target"].as_str().unwrap()))
        .collect();
    assert_eq!(seen, [(2, "c3"), (3, "c4"), (4, "c5")]);
    assert_eq!(h[0]["kind"], "request");
    assert_eq!(h[0]["operation"], "DescribeCluster");
    assert_eq!(h[0]["outcome"], "ResourceNotFoundException");
}

#[test]
fn sim_serve_refuses_a_history_limit_of_zero() {
    let out = assert_cmd::Command::new(assert_cmd::cargo::cargo_bin!("eksgate"))
        .env("NO_COLOR", "1")
        .args([
            "sim",
            "serve",
            "--world",
            "world.toml",
            "--history-limit",
            "0",
        ])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with(
            "error: invalid value '0' for '--history-limit <HISTORY_LIMIT>': the history keeps at least one entry\n"
        ),
        "{stderr}"
    );
}
