//! The oracle of the fleet benchmark: the shortest wall time a perfect
//! engine could reach on a fleet, under the emulator's own rules, computed
//! by a small discrete-event simulation.
//!
//! The rules it follows are the emulator's (`src/sim/mod.rs`,
//! `src/sim/state.rs`):
//! - a call sent at `t` reaches the emulator at `t + latency`, where it
//!   takes a token of its (account, region) bucket or is throttled; its
//!   answer is back at once (the emulator answers under its lock);
//! - each bucket refills at `rate` tokens a second up to `max(rate, 1)`,
//!   and starts full when its first call arrives (the burst);
//! - an endpoint update ends `update` after the call that started it
//!   arrived, and a `DescribeUpdate` arriving at that instant sees it ended.
//!
//! The perfect engine makes the fewest calls the product's rules allow and
//! sends each as early as its dependencies and its bucket allow, never one
//! the emulator would throttle:
//! - plan: per role, one `AssumeRole` before that account is read (the
//!   pinned account is the one the role's ARN names, so no call checks
//!   it); one `DescribeCluster` per cluster; per VPC two
//!   `DescribeVpcAttribute`, as
//!   soon as a cluster in it was described; `DescribeVpcs` and
//!   `DescribeSecurityGroups` in batches of 100 as their ids come in;
//!   `DescribeDhcpOptions` once per scope after its first `DescribeVpcs`
//!   (every VPC of a scope uses the region's default set); with the route
//!   check, one `DescribeRouteTables` per batch of VPCs, sent with its
//!   `DescribeVpcs` (a lower bound: eksgate needs the VPCs' blocks first);
//! - apply: the whole plan first (it is shown and approved as a whole), then
//!   per endpoint update: a re-read (`DescribeCluster` and `ListUpdates` at
//!   once: the status alone does not show an update running, so both are
//!   needed not to send a call AWS rejects), the `UpdateClusterConfig`, and
//!   one `DescribeUpdate` arriving exactly when the update ends; a
//!   cluster's second update starts from that poll's answer.
//!
//! Calls are dispatched greedily: a bucket never leaves a token unused while
//! a call could take it. Which waiting call takes it is run both ways, first
//! come first served and clusters furthest along first (as eksgate's walker
//! prefers), and the quicker is the oracle: a list schedule, not a proven
//! optimum. It leaves
//! out everything but waiting: CPU time of eksgate and of the emulator,
//! connection set-up, reading manifests, planning and printing. Its result
//! always respects the plain arithmetic bounds: the busiest bucket's calls
//! beyond its burst at its rate, and the chain of update durations.
//!
//! It is plain `std` so both the benchmark and the integration tests
//! (which check it against runs of the real engine) include this file.

#![allow(dead_code)]

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

/// How many ids one batched EC2 `Describe*` call asks for.
pub const BATCH: usize = 100;

/// The emulator's parameters, in seconds and calls per second.
#[derive(Clone, Copy, Debug)]
pub struct Rules {
    pub latency: f64,
    /// Calls per second per (account, region); `None`: no limit.
    pub rate: Option<f64>,
    pub update: f64,
}

impl Rules {
    /// A bucket's burst: the calls it answers at once when full.
    pub fn burst(&self) -> f64 {
        self.rate.map_or(f64::INFINITY, |r| r.max(1.0))
    }
}

/// One cluster of the modelled fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cluster {
    /// Its (account, region): the bucket its calls draw from.
    pub scope: usize,
    /// Its VPC and cluster security group (ids unique in the fleet).
    pub vpc: usize,
    pub sg: usize,
}

/// A fleet as the oracle sees it.
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub clusters: Vec<Cluster>,
    /// Per scope: the role its calls are made with (`None`: the base
    /// credentials, no account pinned).
    pub scope_role: Vec<Option<usize>>,
    /// Per role: the bucket its `AssumeRole` draws from (the base
    /// account's). Its account is the one its ARN names: no call checks it.
    pub roles: Vec<usize>,
    /// Buckets: scopes first (bucket `s` is scope `s`), then any more the
    /// roles name.
    pub buckets: usize,
    /// Whether the plan reads what private access needs (VPCs, groups).
    pub private: bool,
    /// Whether it also reads the route tables of its VPCs (private access
    /// from a CIDR outside them: the route check), one
    /// `DescribeRouteTables` per batch of VPCs.
    pub routes: bool,
    /// Endpoint updates each cluster goes through in the apply (0: a plan).
    pub updates: u32,
}

/// What the oracle found.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The perfect engine's wall time, in seconds.
    pub wall: f64,
    /// When its plan had every answer (the apply starts then).
    pub plan_done: f64,
    /// Calls per bucket.
    pub calls: Vec<usize>,
}

impl Outcome {
    pub fn max_calls(&self) -> usize {
        self.calls.iter().copied().max().unwrap_or(0)
    }
}

/// The plain arithmetic bounds: `max(updates × duration, calls ÷ rate −
/// burst)` for the busiest bucket (both in seconds), each a bound on its
/// own.
pub fn arithmetic(rules: &Rules, model: &Model, calls: &[usize]) -> (f64, f64) {
    let chain = f64::from(model.updates) * rules.update;
    let rate = match rules.rate {
        Some(r) => calls
            .iter()
            .map(|&n| (n as f64 - rules.burst()).max(0.0) / r)
            .fold(0.0, f64::max),
        None => 0.0,
    };
    (chain, rate)
}

/// Which call, of what.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Call {
    AssumeRole(usize),
    DescribeCluster(usize),
    VpcAttribute(usize),
    DescribeVpcs(usize),
    DhcpOptions(usize),
    SecurityGroups(usize),
    RouteTables(usize),
    /// Cluster, update number: the two reads before an update.
    ReRead(usize, u32),
    Update(usize, u32),
    Poll(usize, u32),
}

impl Call {
    fn of_plan(self) -> bool {
        !matches!(self, Call::ReRead(..) | Call::Update(..) | Call::Poll(..))
    }
}

/// In which order a bucket serves the calls waiting for its tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// First come, first served.
    Fifo,
    /// The calls of clusters further along first (an update before the
    /// reads of another cluster's, a poll before both, a second update's
    /// calls before first ones), as eksgate's walker prefers clusters
    /// already under way.
    FurthestFirst,
}

impl Order {
    fn priority(self, call: Call) -> u32 {
        match (self, call) {
            (Order::Fifo, _) => 0,
            (_, Call::ReRead(_, u)) => 1 + 3 * u,
            (_, Call::Update(_, u)) => 2 + 3 * u,
            (_, Call::Poll(_, u)) => 3 + 3 * u,
            // The plan's calls all come before the apply's.
            _ => 0,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// A token may have come for the bucket's waiting calls.
    Token,
    /// An answer is back.
    Answer(Call),
    /// A call reaches the emulator.
    Arrive(Call),
}

#[derive(Debug)]
struct Ev {
    t: f64,
    seq: u64,
    kind: Kind,
    bucket: usize,
}

impl PartialEq for Ev {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ev {
    /// The earliest first (a max-heap, so reversed); at one instant in the
    /// order they were made.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

/// A call waiting for a token: the highest priority first, then the
/// earliest.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Waiting {
    priority: u32,
    seq: std::cmp::Reverse<u64>,
    call: Call,
}

/// One (account, region)'s token bucket, as the emulator keeps it, and the
/// calls that arrived and wait for its tokens.
#[derive(Debug, Default)]
struct Bucket {
    tokens: f64,
    last: f64,
    started: bool,
    waiting: BinaryHeap<Waiting>,
    /// A `Token` event is due.
    woken: bool,
}

/// Per scope, what its plan has learnt so far.
#[derive(Default)]
struct ScopeState {
    clusters: usize,
    described: usize,
    vpcs_pending: Vec<usize>,
    sgs_pending: Vec<usize>,
    dhcp_asked: bool,
}

/// Runs the discrete-event simulation of the perfect engine on `model`,
/// with each bucket serving its calls in each [`Order`] in turn, and keeps
/// the quicker.
pub fn run(rules: &Rules, model: &Model) -> Outcome {
    let fifo = run_in(rules, model, Order::Fifo);
    let furthest = run_in(rules, model, Order::FurthestFirst);
    if furthest.wall < fifo.wall {
        furthest
    } else {
        fifo
    }
}

/// The simulation with one order of service.
pub fn run_in(rules: &Rules, model: &Model, order: Order) -> Outcome {
    let mut sim = Sim {
        rules: *rules,
        order,
        model,
        heap: BinaryHeap::new(),
        seq: 0,
        buckets: (0..model.buckets).map(|_| Bucket::default()).collect(),
        calls: vec![0; model.buckets],
        scopes: Vec::new(),
        vpcs_seen: BTreeSet::new(),
        sgs_seen: BTreeSet::new(),
        reread_left: BTreeMap::new(),
        plan_calls_out: 0,
        plan_done: None,
        end: 0.0,
    };
    sim.start();
    sim.go();
    Outcome {
        wall: sim.end,
        plan_done: sim.plan_done.unwrap_or(sim.end),
        calls: sim.calls,
    }
}

struct Sim<'a> {
    rules: Rules,
    order: Order,
    model: &'a Model,
    heap: BinaryHeap<Ev>,
    seq: u64,
    buckets: Vec<Bucket>,
    calls: Vec<usize>,
    scopes: Vec<ScopeState>,
    vpcs_seen: BTreeSet<usize>,
    sgs_seen: BTreeSet<usize>,
    /// Per (cluster, update): reads of the re-read still unanswered.
    reread_left: BTreeMap<(usize, u32), u32>,
    /// Plan calls made and not yet answered.
    plan_calls_out: usize,
    plan_done: Option<f64>,
    end: f64,
}

impl Sim<'_> {
    fn push(&mut self, t: f64, kind: Kind, bucket: usize) {
        self.seq += 1;
        self.heap.push(Ev {
            t,
            seq: self.seq,
            kind,
            bucket,
        });
    }

    /// `call` may be sent at `t`: it arrives one latency later.
    fn ready(&mut self, t: f64, call: Call, bucket: usize) {
        if call.of_plan() {
            self.plan_calls_out += 1;
        }
        self.push(t + self.rules.latency, Kind::Arrive(call), bucket);
    }

    fn start(&mut self) {
        let m = self.model;
        let n_scopes = m.scope_role.len();
        self.scopes = (0..n_scopes).map(|_| ScopeState::default()).collect();
        for c in &m.clusters {
            self.scopes[c.scope].clusters += 1;
        }
        for (r, &sts) in m.roles.iter().enumerate() {
            self.ready(0.0, Call::AssumeRole(r), sts);
        }
        for (i, c) in m.clusters.iter().enumerate() {
            if m.scope_role[c.scope].is_none() {
                self.ready(0.0, Call::DescribeCluster(i), c.scope);
            }
        }
        if self.plan_calls_out == 0 {
            self.plan_finished(0.0);
        }
    }

    fn go(&mut self) {
        // Every call is made once and each event makes a bounded number of
        // others, so the heap empties.
        while let Some(ev) = self.heap.pop() {
            match ev.kind {
                Kind::Arrive(call) => {
                    let priority = self.order.priority(call);
                    self.seq += 1;
                    let seq = std::cmp::Reverse(self.seq);
                    self.buckets[ev.bucket].waiting.push(Waiting {
                        priority,
                        seq,
                        call,
                    });
                    self.serve(ev.bucket, ev.t);
                }
                Kind::Token => {
                    self.buckets[ev.bucket].woken = false;
                    self.serve(ev.bucket, ev.t);
                }
                Kind::Answer(call) => {
                    self.end = self.end.max(ev.t);
                    self.answered(ev.t, call, ev.bucket);
                }
            }
        }
    }

    /// Serves the bucket's waiting calls while it has tokens at `t`, and
    /// wakes it when the next token comes if calls still wait.
    fn serve(&mut self, k: usize, t: f64) {
        let rules = self.rules;
        let b = &mut self.buckets[k];
        let mut served = Vec::new();
        match rules.rate {
            None => served.extend(std::iter::from_fn(|| b.waiting.pop())),
            Some(rate) => {
                let cap = rules.burst();
                if !b.started {
                    // The emulator fills a bucket when its first call comes.
                    b.started = true;
                    b.tokens = rate.min(cap);
                    b.last = t;
                }
                b.tokens = (b.tokens + (t - b.last) * rate).min(cap);
                b.last = t;
                while b.tokens >= 1.0 - 1e-9 {
                    let Some(w) = b.waiting.pop() else { break };
                    b.tokens = (b.tokens - 1.0).max(0.0);
                    served.push(w);
                }
                if !b.waiting.is_empty() && !b.woken {
                    b.woken = true;
                    let at = t + (1.0 - b.tokens) / rate;
                    self.push(at, Kind::Token, k);
                }
            }
        }
        for w in served {
            self.calls[k] += 1;
            self.push(t, Kind::Answer(w.call), k);
        }
    }

    fn answered(&mut self, t: f64, call: Call, bucket: usize) {
        let m = self.model;
        match call {
            Call::AssumeRole(r) => {
                for (i, c) in m.clusters.iter().enumerate() {
                    if m.scope_role[c.scope] == Some(r) {
                        self.ready(t, Call::DescribeCluster(i), c.scope);
                    }
                }
            }
            Call::DescribeCluster(i) => {
                let c = &m.clusters[i];
                let s = c.scope;
                self.scopes[s].described += 1;
                if m.private {
                    if self.vpcs_seen.insert(c.vpc) {
                        self.ready(t, Call::VpcAttribute(c.vpc), s);
                        self.ready(t, Call::VpcAttribute(c.vpc), s);
                        self.scopes[s].vpcs_pending.push(c.vpc);
                    }
                    if self.sgs_seen.insert(c.sg) {
                        self.scopes[s].sgs_pending.push(c.sg);
                    }
                    let st = &mut self.scopes[s];
                    let last = st.described == st.clusters;
                    let vpc_batch =
                        st.vpcs_pending.len() == BATCH || (last && !st.vpcs_pending.is_empty());
                    let sg_batch =
                        st.sgs_pending.len() == BATCH || (last && !st.sgs_pending.is_empty());
                    if vpc_batch {
                        st.vpcs_pending.clear();
                    }
                    if sg_batch {
                        st.sgs_pending.clear();
                    }
                    if vpc_batch {
                        self.ready(t, Call::DescribeVpcs(s), s);
                        if m.routes {
                            self.ready(t, Call::RouteTables(s), s);
                        }
                    }
                    if sg_batch {
                        self.ready(t, Call::SecurityGroups(s), s);
                    }
                }
            }
            Call::DescribeVpcs(s) => {
                if !self.scopes[s].dhcp_asked {
                    self.scopes[s].dhcp_asked = true;
                    self.ready(t, Call::DhcpOptions(s), s);
                }
            }
            Call::VpcAttribute(_)
            | Call::DhcpOptions(_)
            | Call::SecurityGroups(_)
            | Call::RouteTables(_) => {}
            Call::ReRead(i, u) => {
                let left = self.reread_left.entry((i, u)).or_insert(2);
                *left -= 1;
                if *left == 0 {
                    self.ready(t, Call::Update(i, u), bucket);
                }
            }
            Call::Update(i, u) => {
                // Sent so that it arrives as the update ends.
                let at = t + self.rules.update - self.rules.latency;
                self.ready(at.max(t), Call::Poll(i, u), bucket);
            }
            Call::Poll(i, u) => {
                if u + 1 < m.updates {
                    self.ready(t, Call::ReRead(i, u + 1), bucket);
                    self.ready(t, Call::ReRead(i, u + 1), bucket);
                }
            }
        }
        if call.of_plan() {
            self.plan_calls_out -= 1;
            if self.plan_calls_out == 0 && self.plan_done.is_none() {
                self.plan_finished(t);
            }
        }
    }

    /// Every plan call answered: the apply starts.
    fn plan_finished(&mut self, t: f64) {
        self.plan_done = Some(t);
        if self.model.updates == 0 {
            return;
        }
        for (i, c) in self.model.clusters.iter().enumerate() {
            self.ready(t, Call::ReRead(i, 0), c.scope);
            self.ready(t, Call::ReRead(i, 0), c.scope);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` clusters in one scope, each in its own VPC and group.
    fn one_scope(n: usize, private: bool, updates: u32) -> Model {
        Model {
            clusters: (0..n)
                .map(|i| Cluster {
                    scope: 0,
                    vpc: i,
                    sg: i,
                })
                .collect(),
            scope_role: vec![None],
            roles: Vec::new(),
            buckets: 1,
            private,
            routes: private,
            updates,
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    #[test]
    fn a_plan_of_independent_reads_is_the_rate_bound_exactly() {
        // No latency, reads of clusters only: nothing but the bucket.
        for (n, rate) in [(50, 10.0), (1000, 50.0), (51, 50.0), (7, 1.0)] {
            let rules = Rules {
                latency: 0.0,
                rate: Some(rate),
                update: 3.0,
            };
            let model = one_scope(n, false, 0);
            let o = run(&rules, &model);
            let (_, rate_bound) = arithmetic(&rules, &model, &o.calls);
            assert_eq!(o.calls, vec![n]);
            assert!(
                close(o.wall, rate_bound),
                "{n} at {rate}/s: {} vs {rate_bound}",
                o.wall
            );
        }
    }

    #[test]
    fn within_the_burst_a_plan_takes_one_round_trip() {
        let rules = Rules {
            latency: 0.02,
            rate: Some(50.0),
            update: 3.0,
        };
        let o = run(&rules, &one_scope(50, false, 0));
        assert!(close(o.wall, 0.02), "{}", o.wall);
        // One more call waits a fiftieth of a second for its token.
        let o = run(&rules, &one_scope(51, false, 0));
        assert!(close(o.wall, 0.04), "{}", o.wall);
    }

    #[test]
    fn an_unthrottled_apply_is_the_chain_of_updates_exactly() {
        let rules = Rules {
            latency: 0.0,
            rate: None,
            update: 3.0,
        };
        for n in [1, 10, 500] {
            let model = one_scope(n, true, 2);
            let o = run(&rules, &model);
            let (chain, _) = arithmetic(&rules, &model, &o.calls);
            assert!(close(o.wall, chain), "{} vs {chain}", o.wall);
            assert!(close(chain, 6.0));
        }
    }

    #[test]
    fn an_apply_adds_the_round_trips_of_its_chain() {
        // One cluster, no VPC reads: describe (L), re-read (L), update (L),
        // poll at the end, re-read (L), update (L), poll at the end.
        let rules = Rules {
            latency: 0.02,
            rate: None,
            update: 3.0,
        };
        let o = run(&rules, &one_scope(1, false, 2));
        assert!(close(o.plan_done, 0.02));
        assert!(
            close(o.wall, 0.02 + 0.02 + 0.02 + 3.0 + 0.02 + 0.02 + 3.0),
            "{}",
            o.wall
        );
    }

    #[test]
    fn the_minimal_calls_are_counted() {
        // 250 clusters in 25 VPCs of one scope: 250 DescribeCluster, 50
        // attributes, one DescribeVpcs, one DescribeRouteTables, one
        // DescribeDhcpOptions, three batches of groups; then four calls per
        // update.
        let mut model = one_scope(250, true, 2);
        for (i, c) in model.clusters.iter_mut().enumerate() {
            c.vpc = i / 10;
        }
        let rules = Rules {
            latency: 0.02,
            rate: Some(50.0),
            update: 3.0,
        };
        let o = run(&rules, &model);
        assert_eq!(o.calls, vec![250 + 50 + 1 + 1 + 1 + 3 + 250 * 2 * 4]);
    }

    #[test]
    fn the_oracle_respects_the_arithmetic_bounds() {
        let mut seed = 7u64;
        let mut next = |m: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % m
        };
        for _ in 0..40 {
            let scopes = 1 + next(4) as usize;
            let n = 1 + next(300) as usize;
            let roles = next(2) == 0;
            let private = next(2) == 0;
            let routes = private && next(2) == 0;
            let mut model = Model {
                clusters: (0..n)
                    .map(|i| Cluster {
                        scope: i % scopes,
                        vpc: (i / scopes) / 10 * scopes + i % scopes,
                        sg: i,
                    })
                    .collect(),
                scope_role: (0..scopes).map(|s| roles.then_some(s)).collect(),
                roles: Vec::new(),
                buckets: scopes,
                private,
                routes,
                updates: next(3) as u32,
            };
            if roles {
                model.roles = (0..scopes).collect();
            }
            let rules = Rules {
                latency: next(50) as f64 / 1000.0,
                rate: Some(1.0 + next(100) as f64),
                update: 0.5 + next(40) as f64 / 10.0,
            };
            let o = run(&rules, &model);
            let (chain, rate) = arithmetic(&rules, &model, &o.calls);
            assert!(o.wall + 1e-9 >= chain.max(rate), "{o:?} {chain} {rate}");
            assert!(o.plan_done <= o.wall);
        }
    }

    #[test]
    fn a_role_is_assumed_before_its_clusters_are_read() {
        let mut model = one_scope(1, false, 0);
        model.scope_role = vec![Some(0)];
        model.roles = vec![1];
        model.buckets = 2;
        let rules = Rules {
            latency: 0.01,
            rate: Some(50.0),
            update: 3.0,
        };
        let o = run(&rules, &model);
        // `AssumeRole` in the base account, then the cluster's read.
        assert!(close(o.wall, 0.02), "{}", o.wall);
        assert_eq!(o.calls, vec![1, 1]);
    }
}
