//! The fleet benchmark's oracle (`benches/oracle.rs`, included here so its
//! own unit tests run with this binary) against the real engine: on small
//! fleets planned and applied through the binary against the emulator, with
//! a tight rate limit so waiting dominates, the oracle's time never exceeds
//! the measured one, and the engine makes at least the calls the oracle
//! counts in every account (which region a role's STS calls use is the
//! engine's choice). Nothing here asserts how fast the
//! engine is: the machine may be slow, the oracle may not be beaten.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use eksgate::sim::{Behaviour, Event};

use crate::common::quick;
use crate::test::Test;

#[path = "../../benches/oracle.rs"]
mod model;

const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-2"];

/// A small fleet: `n` clusters round-robin over `regions` and `accounts`
/// (each account's clusters read through its own role when `roles`), VPCs
/// shared by `per_vpc` clusters of one account and region, every cluster
/// public only with DNS on and its group open on 443 to `10.0.0.0/8`.
struct Small {
    n: usize,
    regions: usize,
    accounts: usize,
    roles: bool,
    per_vpc: usize,
}

impl Small {
    fn region(&self, i: usize) -> usize {
        i % self.regions
    }
    fn account(&self, i: usize) -> usize {
        (i / self.regions) % self.accounts
    }
    fn scope(&self, i: usize) -> usize {
        self.account(i) * self.regions + self.region(i)
    }
    fn vpc(&self, i: usize) -> usize {
        (i / (self.regions * self.accounts)) / self.per_vpc
    }
    fn account_id(&self, a: usize) -> String {
        if self.roles {
            format!("{}", 300_000_000_000u64 + a as u64)
        } else {
            "123456789012".to_string()
        }
    }
    fn role(&self, a: usize) -> String {
        format!("arn:aws:iam::{}:role/oracle", self.account_id(a))
    }

    fn world(&self) -> String {
        let mut w = String::new();
        if self.roles {
            w.push_str(
                "[[account]]\nid = \"100000000001\"\naccess_key_ids = [\"AKIDEKSGATETEST\"]\n\n",
            );
            for a in 0..self.accounts {
                let _ = writeln!(
                    w,
                    "[[account]]\nid = \"{}\"\nroles = [\"{}\"]\n",
                    self.account_id(a),
                    self.role(a)
                );
            }
        }
        let mut vpcs = std::collections::BTreeSet::new();
        for i in 0..self.n {
            let (r, a) = (REGIONS[self.region(i)], self.account_id(self.account(i)));
            let vpc = format!(
                "vpc-{}{}{:04}",
                self.region(i),
                self.account(i),
                self.vpc(i)
            );
            if vpcs.insert(vpc.clone()) {
                let _ = writeln!(
                    w,
                    "[[vpc]]\nid = \"{vpc}\"\nregion = \"{r}\"\naccount = \"{a}\"\ndns_hostnames = true\n"
                );
            }
            let _ = writeln!(
                w,
                "[[security_group]]\nid = \"sg-{i:017x}\"\nregion = \"{r}\"\naccount = \"{a}\"\nvpc_id = \"{vpc}\"\nhttps_ingress = [\"10.0.0.0/8\"]\n\n[[cluster]]\nname = \"c{i:03}\"\nregion = \"{r}\"\naccount = \"{a}\"\nvpc_id = \"{vpc}\"\nsecurity_group = \"sg-{i:017x}\"\npublic_access = true\nprivate_access = false\n"
            );
        }
        w
    }

    fn manifest(&self) -> String {
        let mut m = String::new();
        for i in 0..self.n {
            let role = if self.roles {
                format!("role_arn = \"{}\"\n", self.role(self.account(i)))
            } else {
                String::new()
            };
            let _ = writeln!(
                m,
                "[[cluster]]\nname = \"c{i:03}\"\nregion = \"{}\"\n{role}public_access = false\nprivate_access = true\nprivate_access_from = [\"10.0.0.0/8\"]\n",
                REGIONS[self.region(i)]
            );
        }
        m
    }

    fn model(&self, updates: u32) -> model::Model {
        let scopes = self.accounts * self.regions;
        let mut m = model::Model {
            clusters: (0..self.n)
                .map(|i| model::Cluster {
                    scope: self.scope(i),
                    vpc: self.vpc(i) * scopes + self.scope(i),
                    sg: i,
                })
                .collect(),
            scope_role: vec![None; scopes],
            roles: Vec::new(),
            buckets: scopes,
            private: true,
            // Private access from `10.0.0.0/8`, outside each VPC's block.
            routes: true,
            updates,
        };
        if self.roles {
            m.buckets = scopes + self.regions;
            for a in 0..self.accounts {
                m.roles.push(scopes);
                for r in 0..self.regions {
                    m.scope_role[a * self.regions + r] = Some(a);
                }
            }
        }
        m
    }

    /// The bucket of a request: its (account, region) as the model numbers
    /// them (the base account's after the scopes).
    fn bucket(&self, account: &str, region: &str) -> usize {
        let r = REGIONS
            .iter()
            .position(|x| *x == region)
            .expect("a region of the fleet");
        match (0..self.accounts).find(|&a| self.account_id(a) == account) {
            Some(a) => a * self.regions + r,
            None => self.accounts * self.regions + r,
        }
    }
}

fn behaviour(latency_ms: u64, rate: f64, update_ms: u64) -> Behaviour {
    Behaviour {
        latency: Duration::from_millis(latency_ms),
        rate_limit: Some(rate),
        update_duration: Duration::from_millis(update_ms),
        ..quick()
    }
}

fn rules(b: &Behaviour) -> model::Rules {
    model::Rules {
        latency: b.latency.as_secs_f64(),
        rate: b.rate_limit,
        update: b.update_duration.as_secs_f64(),
    }
}

/// Runs `args` on `fleet` and checks the oracle against the run: not
/// slower than it, and no account with fewer answered calls than it counts.
async fn check(fleet: &Small, b: Behaviour, updates: u32, args: &[&str]) {
    let model = fleet.model(updates);
    let predicted = model::run(&rules(&b), &model);
    let began = Instant::now();
    let run = Test::new()
        .world(&fleet.world())
        .behaviour(b)
        .manifest(&fleet.manifest())
        .args(args)
        .run()
        .await;
    let measured = began.elapsed().as_secs_f64();
    let run = run.success();
    let mut answered = vec![0usize; model.buckets];
    for e in run.history() {
        if let Event::Request {
            account,
            region,
            outcome,
            ..
        } = e.event
        {
            if outcome == "ok" {
                answered[fleet.bucket(&account, &region)] += 1;
            }
        }
    }
    eprintln!(
        "{args:?}: measured {measured:.2}s, oracle {:.2}s; calls {answered:?}, oracle's {:?}",
        predicted.wall, predicted.calls
    );
    assert!(
        predicted.wall <= measured,
        "the oracle ({:.3}s) is slower than the engine ({measured:.3}s)",
        predicted.wall
    );
    // Buckets are numbered account by account, `regions` each.
    let per_account = |calls: &[usize]| -> Vec<usize> {
        calls
            .chunks(fleet.regions)
            .map(|c| c.iter().sum())
            .collect()
    };
    let short: BTreeMap<usize, (usize, usize)> = per_account(&answered)
        .into_iter()
        .zip(per_account(&predicted.calls))
        .enumerate()
        .filter(|(_, (a, p))| a < p)
        .collect();
    assert!(
        short.is_empty(),
        "accounts with fewer calls than the oracle's: {short:?}"
    );
}

#[tokio::test]
async fn the_oracle_never_exceeds_a_measured_plan() {
    let fleet = Small {
        n: 24,
        regions: 2,
        accounts: 1,
        roles: false,
        per_vpc: 4,
    };
    // 21 calls per region at 5 a second after a burst of 5: about 3.2s.
    check(&fleet, behaviour(30, 5.0, 1000), 0, &["plan", "prod.toml"]).await;
}

#[tokio::test]
async fn the_oracle_never_exceeds_a_measured_plan_through_roles() {
    let fleet = Small {
        n: 12,
        regions: 2,
        accounts: 2,
        roles: true,
        per_vpc: 2,
    };
    check(&fleet, behaviour(30, 4.0, 1000), 0, &["plan", "prod.toml"]).await;
}

#[tokio::test]
async fn the_oracle_never_exceeds_a_measured_apply() {
    let fleet = Small {
        n: 6,
        regions: 2,
        accounts: 1,
        roles: false,
        per_vpc: 3,
    };
    let args = [
        "apply",
        "prod.toml",
        "--auto-approve",
        "--poll-interval",
        "50ms",
        "--poll-max-interval",
        "200ms",
    ];
    check(&fleet, behaviour(30, 5.0, 800), 2, &args).await;
}
