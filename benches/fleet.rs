//! The fleet benchmark: `cargo bench --bench fleet [-- OPTIONS]`.
//!
//! It measures the real `eksgate` binary (the release build `cargo bench`
//! makes beside this benchmark's binary; built with `cargo build --release
//! --bin eksgate` if it is missing) against the emulator running as a
//! separate process (`eksgate sim serve`), on fleets generated in a temporary
//! directory, and compares each wall time with the oracle (`oracle.rs`): the
//! shortest wall time of a perfect engine under the emulator's own rules,
//! printed with the plain arithmetic bounds it respects. Every figure comes
//! from a measurement of this run: wall clocks, `/proc/PID/status` and
//! `/proc/PID/stat` (peak RSS, CPU time) and the emulator's `GET
//! /_sim/history`, which must hold every entry of the run (the emulator is
//! started with a history limit no run reaches, and a history that dropped
//! entries is an error).
//!
//! It is a `harness = false` benchmark, so it parses its own options; `cargo
//! bench` passes `--bench` after them. Run without `--bench` (as `cargo test
//! --benches` does) it measures nothing and says how to run it.
//!
//! Runs, each against a fresh emulator:
//! - plan: `eksgate plan` on N clusters over R regions of one account
//!   (public only today, the manifests want private only), with per-call
//!   latency and a rate limit per account and region.
//! - large: the same on 10,000 clusters over 16 regions and 5 accounts, each
//!   account's clusters read through its own role (assumed with STS), and
//!   on fleets of 100 and 1,000 of that shape for the growth table.
//! - apply: `eksgate apply --auto-approve` on the apply fleet: a staged
//!   public-only → private-only move, two updates per cluster.
//! - speedup: the same 20-cluster apply twice, once with `--parallelism 1
//!   --max-updates 1` (one update at a time, as eksctl-style tools work) and
//!   once as configured.
//! - validate: `eksgate validate` on one generated 10,000-cluster manifest.
//!
//! From the apply's history: `polls_per_update` is `DescribeUpdate` requests
//! (throttled ones included) per update started; `detect_lag_pct` is the
//! median, over updates, of the time from the update's completion to the
//! emulator receiving eksgate's next step for that cluster, as a percentage
//! of the update duration. The next step is the next `UpdateClusterConfig`
//! for the cluster; for a cluster's last update it is the `DescribeUpdate`
//! that first saw it finished (nothing else follows it).
//!
//! Only loopback is used; every wait has a time limit and every loop a bound.
//! Credentials are fake and the AWS config files are `/dev/null`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde_json::Value;

mod oracle;

const REGIONS: [&str; 16] = [
    "us-east-1",
    "eu-west-1",
    "ap-southeast-2",
    "us-west-2",
    "eu-central-1",
    "ap-northeast-1",
    "sa-east-1",
    "ca-central-1",
    "eu-north-1",
    "ap-south-1",
    "us-east-2",
    "eu-west-2",
    "ap-southeast-1",
    "us-west-1",
    "eu-west-3",
    "ap-northeast-2",
];

/// The defaults are the target settings.
#[derive(Debug, Parser)]
#[command(name = "fleet", about = "eksgate fleet benchmark")]
struct Opts {
    /// Clusters of the plan fleet (and of the peak RSS measurement).
    #[arg(long, default_value_t = 1000)]
    plan_clusters: usize,
    /// Clusters of the apply fleet.
    #[arg(long, default_value_t = 200)]
    apply_clusters: usize,
    /// Clusters of the sequential-versus-parallel comparison.
    #[arg(long, default_value_t = 20)]
    speedup_clusters: usize,
    /// Clusters of the generated manifest `eksgate validate` checks.
    #[arg(long, default_value_t = 10_000)]
    validate_clusters: usize,
    /// Regions the clusters are spread over (at most 16).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(1..=16))]
    regions: u8,
    /// Clusters that share one VPC.
    #[arg(long, default_value_t = 10)]
    clusters_per_vpc: usize,
    /// Emulator: latency of every call, in milliseconds.
    #[arg(long, default_value_t = 20)]
    latency_ms: u64,
    /// Emulator: requests per second per account and region.
    #[arg(long, default_value_t = 50.0)]
    rate_limit: f64,
    /// Emulator: how long an endpoint update runs, in milliseconds.
    #[arg(long, default_value_t = 3000)]
    update_ms: u64,
    /// `--parallelism` for eksgate's parallel runs (eksgate's default if unset).
    #[arg(long)]
    parallelism: Option<u16>,
    /// `--poll-interval` for eksgate's applies, e.g. `300ms` (eksgate's default if unset).
    #[arg(long)]
    poll_interval: Option<String>,
    /// Clusters of the large plan fleet (`plan_10k_ratio`, `plan_10k_rss_mb`).
    #[arg(long, default_value_t = 10_000)]
    large_clusters: usize,
    /// Regions of the large plan fleet (at most 16).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u8).range(1..=16))]
    large_regions: u8,
    /// Accounts of the large plan fleet, each read through its own role.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u8).range(1..=99))]
    large_accounts: u8,
    /// Smaller fleets of the large fleet's shape planned for the growth
    /// table (the large fleet is its last row).
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    growth: Vec<usize>,
    /// Which parts to run (comma-separated: plan,apply,speedup,validate,large).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "plan,apply,speedup,validate,large"
    )]
    only: Vec<String>,
    /// The eksgate binary (default: the release `eksgate` beside this benchmark).
    #[arg(long)]
    eksgate: Option<PathBuf>,
    /// Time limit of each eksgate run, in seconds.
    #[arg(long, default_value_t = 600)]
    timeout_s: u64,
    /// Keep the generated files (their directory is printed).
    #[arg(long)]
    keep: bool,
    /// Given by `cargo bench`; without it nothing is measured.
    #[arg(long, hide = true)]
    bench: bool,
}

/// The emulator's `--history-limit`: far above what any run records (one
/// entry per request or state change), so the history holds the whole run.
const HISTORY_LIMIT: &str = "100000000";

fn main() {
    let opts = Opts::parse();
    if !opts.bench {
        eprintln!("fleet: measures nothing without `--bench`; run `cargo bench --bench fleet`");
        return;
    }
    if let Err(e) = run(&opts) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, String>;

/// One generated fleet: its world file and manifests.
#[derive(Clone, Copy)]
struct Fleet {
    clusters: usize,
    regions: usize,
    per_vpc: usize,
    /// Accounts the clusters are spread over; with `roles`, each account's
    /// clusters are read and changed through its own role, assumed with the
    /// base credentials of an account of their own.
    accounts: usize,
    roles: bool,
}

/// The account of the base credentials when the fleet has roles.
const BASE_ACCOUNT: &str = "100000000000";
/// The benchmark's access key id.
const ACCESS_KEY: &str = "AKIDBENCHMARK";

impl Fleet {
    /// A fleet in one account, read with the base credentials.
    fn simple(clusters: usize, regions: usize, per_vpc: usize) -> Fleet {
        Fleet {
            clusters,
            regions,
            per_vpc,
            accounts: 1,
            roles: false,
        }
    }

    /// Region name of cluster `i`: round-robin, so regions are even.
    fn region(&self, i: usize) -> &'static str {
        REGIONS[i % self.regions]
    }

    /// Account index of cluster `i`: round-robin within each region.
    fn account_of(&self, i: usize) -> usize {
        (i / self.regions) % self.accounts.max(1)
    }

    /// The oracle's scope (account, region) of cluster `i`.
    fn scope_of(&self, i: usize) -> usize {
        self.account_of(i) * self.regions + i % self.regions
    }

    fn scopes(&self) -> usize {
        self.accounts.max(1) * self.regions
    }

    fn account_id(&self, a: usize) -> String {
        if self.accounts <= 1 && !self.roles {
            sim_default_account()
        } else {
            format!("{}", 200_000_000_000u64 + a as u64)
        }
    }

    fn role_arn(&self, a: usize) -> String {
        format!("arn:aws:iam::{}:role/eksgate", self.account_id(a))
    }

    /// The VPC of cluster `i`: the clusters of one (account, region),
    /// grouped `per_vpc` at a time.
    fn vpc_index(&self, i: usize) -> usize {
        let k = i / self.scopes();
        k / self.per_vpc.max(1)
    }

    fn vpc(&self, i: usize) -> String {
        format!(
            "vpc-{:02}{:01}{:05}",
            i % self.regions,
            self.account_of(i),
            self.vpc_index(i)
        )
    }

    /// `account = "..."` for a world table, when the fleet has accounts.
    fn account_line(&self, i: usize) -> String {
        if self.accounts <= 1 && !self.roles {
            String::new()
        } else {
            format!("account = \"{}\"\n", self.account_id(self.account_of(i)))
        }
    }

    /// The world: every cluster public only, in a VPC with DNS on, its
    /// security group already open on 443 to `10.0.0.0/8`, so the move to
    /// private only is exactly two endpoint updates. With roles, the base
    /// credentials' account and each account with its role.
    fn world(&self) -> String {
        let mut w = String::with_capacity(self.clusters * 300);
        if self.accounts > 1 || self.roles {
            let _ = writeln!(
                w,
                "[[account]]\nid = \"{BASE_ACCOUNT}\"\naccess_key_ids = [\"{ACCESS_KEY}\"]\n"
            );
            for a in 0..self.accounts {
                let _ = writeln!(
                    w,
                    "[[account]]\nid = \"{}\"\nroles = [\"{}\"]\n",
                    self.account_id(a),
                    self.role_arn(a)
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..self.clusters {
            let vpc = self.vpc(i);
            if seen.insert(vpc.clone()) {
                let _ = writeln!(
                    w,
                    "[[vpc]]\nid = \"{vpc}\"\nregion = \"{}\"\n{}dns_support = true\ndns_hostnames = true\n",
                    self.region(i),
                    self.account_line(i)
                );
            }
        }
        for i in 0..self.clusters {
            let _ = writeln!(
                w,
                "[[security_group]]\nid = \"sg-{i:017x}\"\nregion = \"{}\"\n{}vpc_id = \"{}\"\nhttps_ingress = [\"10.0.0.0/8\"]\n",
                self.region(i),
                self.account_line(i),
                self.vpc(i)
            );
        }
        for i in 0..self.clusters {
            let _ = writeln!(
                w,
                "[[cluster]]\nname = \"c{i:05}\"\nregion = \"{}\"\n{}vpc_id = \"{}\"\nsecurity_group = \"sg-{i:017x}\"\npublic_access = true\nprivate_access = false\n",
                self.region(i),
                self.account_line(i),
                self.vpc(i)
            );
        }
        w
    }

    /// One manifest per (account, region) (as `eksgate import --region`
    /// writes them), every cluster wanting private only; with roles, the
    /// file's defaults name its account's role.
    fn write_manifests(&self, dir: &Path) -> Res<()> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        for a in 0..self.accounts.max(1) {
            for (r, region) in REGIONS.iter().enumerate().take(self.regions) {
                let mut m = format!("[defaults]\nregion = \"{region}\"\n");
                if self.roles {
                    let _ = writeln!(m, "role_arn = \"{}\"", self.role_arn(a));
                }
                m.push('\n');
                for i in (r..self.clusters)
                    .step_by(self.regions)
                    .filter(|&i| self.account_of(i) == a)
                {
                    let _ = writeln!(
                        m,
                        "[[cluster]]\nname = \"c{i:05}\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"10.0.0.0/8\"]\n"
                    );
                }
                let name = if self.accounts > 1 {
                    format!("{}-{region}.toml", self.account_id(a))
                } else {
                    format!("{region}.toml")
                };
                write(&dir.join(name), &m)?;
            }
        }
        Ok(())
    }

    /// Writes the fleet's manifests and world under `dir` and starts an
    /// emulator on that world; returns the manifests' directory as an
    /// argument for `eksgate`.
    fn set_up(&self, dir: &Path, bin: &Path, o: &Opts) -> Res<(String, Emulator)> {
        let manifests = dir.join("manifests");
        self.write_manifests(&manifests)?;
        write(&dir.join("world.toml"), &self.world())?;
        let emu = Emulator::start(bin, &dir.join("world.toml"), o)?;
        Ok((manifests.display().to_string(), emu))
    }

    /// Sets the fleet up in `dir` and runs `eksgate -q COMMAND MANIFESTS
    /// TAIL...` against its emulator; an error the run surfaced is noted in
    /// `errors` under `label`. The emulator is returned for its history.
    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        dir: &Path,
        bin: &Path,
        o: &Opts,
        command: &str,
        tail: impl IntoIterator<Item = String>,
        label: &str,
        errors: &mut Vec<String>,
    ) -> Res<(RunOut, Emulator)> {
        let (manifests, emu) = self.set_up(dir, bin, o)?;
        let mut args = vec!["-q".to_string(), command.to_string(), manifests];
        args.extend(tail);
        let emu_cpu = emu.cpu_s();
        let mut r = eksgate(
            bin,
            &args,
            Some(&emu.url()),
            &dir.join(format!("{command}.out")),
            Duration::from_secs(o.timeout_s),
        )?;
        r.emulator_cpu_s = emu.cpu_s() - emu_cpu;
        if let Some(e) = r.surfaced_error() {
            errors.push(format!("{label}: {e}"));
        }
        Ok((r, emu))
    }

    /// The fleet as the oracle sees it: its plan (reading what private
    /// access needs) and `updates` endpoint updates per cluster.
    fn model(&self, updates: u32) -> oracle::Model {
        let scopes = self.scopes();
        let mut m = oracle::Model {
            clusters: (0..self.clusters)
                .map(|i| oracle::Cluster {
                    scope: self.scope_of(i),
                    // Unique in the fleet: the scope's VPCs apart.
                    vpc: self.vpc_index(i) * scopes + self.scope_of(i),
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
            // The base account's buckets follow the scopes' (one per
            // region); each role is assumed in its first region.
            m.buckets = scopes + self.regions;
            for a in 0..self.accounts.max(1) {
                m.roles.push(scopes);
                for r in 0..self.regions {
                    m.scope_role[a * self.regions + r] = Some(a);
                }
            }
        }
        m
    }
}

/// The account the emulator gives credentials no `[[account]]` claims.
fn sim_default_account() -> String {
    "123456789012".to_string()
}

fn write(path: &Path, text: &str) -> Res<()> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The emulator as a child process; killed on drop.
struct Emulator {
    child: Child,
    addr: String,
}

impl Emulator {
    fn start(bin: &Path, world: &Path, o: &Opts) -> Res<Emulator> {
        let mut child = Command::new(bin)
            .args(["sim", "serve", "--world"])
            .arg(world)
            .args(["--listen", "127.0.0.1:0"])
            .arg("--latency")
            .arg(format!("{}ms", o.latency_ms))
            .arg("--rate-limit")
            .arg(o.rate_limit.to_string())
            .arg("--update-duration")
            .arg(format!("{}ms", o.update_ms))
            .args(["--history-limit", HISTORY_LIMIT])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start the emulator `{}`: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no emulator stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let mut emu = Emulator {
            child,
            addr: String::new(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .map_err(|_| "the emulator did not say where it listens within 60s".to_string())?;
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .ok_or_else(|| format!("unexpected first line from the emulator: {line:?}"))?;
        if !addr.starts_with("127.0.0.1:") {
            return Err(format!("the emulator is not on loopback: {addr}"));
        }
        emu.addr = addr.to_string();
        Ok(emu)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The CPU seconds the emulator has used so far.
    fn cpu_s(&self) -> f64 {
        proc_stat(self.child.id()).map_or(0.0, |(_, cpu)| cpu)
    }

    /// `GET /_sim/history` over a plain HTTP/1.0 connection; an error if the
    /// emulator dropped any entry, since every figure needs the whole run.
    fn history(&self) -> Res<Vec<Value>> {
        let mut s = TcpStream::connect(&self.addr).map_err(|e| format!("history: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(60)))
            .map_err(|e| e.to_string())?;
        write!(
            s,
            "GET /_sim/history HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .map_err(|e| format!("history: {e}"))?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)
            .map_err(|e| format!("history: {e}"))?;
        let split = raw
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or("history: no HTTP header end")?;
        let head = String::from_utf8_lossy(&raw[..split]);
        let dropped = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("x-sim-history-dropped")
                    .then(|| value.trim().to_string())
            })
            .ok_or("history: no `x-sim-history-dropped` header")?;
        if dropped != "0" {
            return Err(format!(
                "history: the emulator dropped {dropped} entries; the figures need all of them"
            ));
        }
        serde_json::from_slice(&raw[split + 4..]).map_err(|e| format!("history: {e}"))
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How one eksgate run went.
struct RunOut {
    wall: Duration,
    code: Option<i32>,
    stderr: String,
    peak_rss_kb: u64,
    /// CPU seconds (user and system) eksgate used.
    cpu_s: f64,
    /// CPU seconds the emulator used meanwhile.
    emulator_cpu_s: f64,
}

impl RunOut {
    fn rss_mb(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }
}

/// A process's state letter and CPU seconds (user and system) from
/// `/proc/PID/stat`; `None` once it is gone. Linux counts them in clock
/// ticks of 1/100 s.
fn proc_stat(pid: u32) -> Option<(char, f64)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; the fields follow its `)`.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let state = f.first()?.chars().next()?;
    let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some((state, ticks / 100.0))
}

impl RunOut {
    /// An error the user would see: a failing exit code or anything on
    /// stderr (runs use `-q`, so stderr holds only errors).
    fn surfaced_error(&self) -> Option<String> {
        if self.code != Some(0) {
            return Some(format!(
                "exit {:?}: {}",
                self.code,
                self.stderr.lines().take(5).collect::<Vec<_>>().join(" | ")
            ));
        }
        let s = self.stderr.trim();
        (!s.is_empty()).then(|| s.lines().take(5).collect::<Vec<_>>().join(" | "))
    }
}

/// Runs eksgate with fake credentials pointed at `endpoint`, polling its
/// peak RSS, within `timeout`.
fn eksgate(
    bin: &Path,
    args: &[String],
    endpoint: Option<&str>,
    out: &Path,
    timeout: Duration,
) -> Res<RunOut> {
    let stdout = std::fs::File::create(out).map_err(|e| e.to_string())?;
    let err_path = out.with_extension("stderr");
    let stderr = std::fs::File::create(&err_path).map_err(|e| e.to_string())?;
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_ACCESS_KEY_ID", "AKIDBENCHMARK")
        .env("AWS_SECRET_ACCESS_KEY", "benchmark-secret")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_REGION", "us-east-1")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    if let Some(url) = endpoint {
        cmd.env("AWS_ENDPOINT_URL", url);
    }
    let start = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{}`: {e}", bin.display()))?;
    let pid = child.id();
    let status_path = format!("/proc/{pid}/status");
    let mut peak = 0u64;
    let mut cpu = 0.0;
    // Until the process is a zombie: then its CPU time is final and still
    // readable (it is not reaped before `wait`).
    loop {
        if let Ok(s) = std::fs::read_to_string(&status_path) {
            if let Some(kb) = s
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            {
                peak = peak.max(kb);
            }
        }
        match proc_stat(pid) {
            Some(('Z', c)) => {
                cpu = c;
                break;
            }
            Some((_, c)) => cpu = c,
            None => break,
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`eksgate {}` ran over {timeout:?}", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let wall = start.elapsed();
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok(RunOut {
        wall,
        code: status.code(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        peak_rss_kb: peak,
        cpu_s: cpu,
        emulator_cpu_s: 0.0,
    })
}

/// The release `eksgate` beside this benchmark (`target/release/`, this
/// binary being in `target/release/deps/`), built on demand.
fn find_eksgate(o: &Opts) -> Res<PathBuf> {
    if let Some(p) = &o.eksgate {
        return Ok(p.clone());
    }
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("cannot locate the target directory")?;
    let bin = dir.join("eksgate");
    if !bin.exists() {
        eprintln!("building the release eksgate binary (cargo build --release --bin eksgate)");
        let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .args(["build", "--release", "--bin", "eksgate"])
            .status()
            .map_err(|e| format!("cargo: {e}"))?;
        if !status.success() || !bin.exists() {
            return Err(format!("no eksgate binary at {}", bin.display()));
        }
    }
    Ok(bin)
}

fn str_of<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn t_of(v: &Value) -> f64 {
    v.get("t_ms").and_then(Value::as_f64).unwrap_or(0.0)
}

/// Requests of the history per (region, operation, outcome).
fn count_requests(h: &[Value]) -> BTreeMap<(String, String, bool), usize> {
    let mut m = BTreeMap::new();
    for e in h.iter().filter(|e| str_of(e, "kind") == "request") {
        let ok = str_of(e, "outcome") == "ok";
        *m.entry((
            str_of(e, "region").to_string(),
            str_of(e, "operation").to_string(),
            ok,
        ))
        .or_insert(0) += 1;
    }
    m
}

struct ApplyFigures {
    updates: usize,
    polls: usize,
    polls_ok: usize,
    lag_median_ms: f64,
    /// Median time from an update's end to the poll that saw it ended.
    seen_median_ms: f64,
    throttled: usize,
}

/// Polls per update and the detection lag, from an apply's history.
fn apply_figures(h: &[Value]) -> ApplyFigures {
    let reqs: Vec<&Value> = h
        .iter()
        .filter(|e| str_of(e, "kind") == "request")
        .collect();
    let updates = reqs
        .iter()
        .filter(|e| str_of(e, "operation") == "UpdateClusterConfig" && str_of(e, "outcome") == "ok")
        .count();
    let polls = reqs
        .iter()
        .filter(|e| str_of(e, "operation") == "DescribeUpdate")
        .count();
    let polls_ok = reqs
        .iter()
        .filter(|e| str_of(e, "operation") == "DescribeUpdate" && str_of(e, "outcome") == "ok")
        .count();
    let throttled = reqs.iter().filter(|e| str_of(e, "outcome") != "ok").count();
    let (mut lags, mut seen_lags) = (Vec::new(), Vec::new());
    for done in h.iter().filter(|e| {
        str_of(e, "kind") == "update_status"
            && str_of(e, "status") == "Successful"
            && str_of(e, "update_type") == "EndpointAccessUpdate"
    }) {
        let (t, region, cluster) = (t_of(done), str_of(done, "region"), str_of(done, "cluster"));
        let mine = |e: &&&Value| {
            t_of(e) >= t && str_of(e, "region") == region && str_of(e, "target") == cluster
        };
        let next_update = reqs
            .iter()
            .filter(mine)
            .find(|e| str_of(e, "operation") == "UpdateClusterConfig");
        let seen = reqs
            .iter()
            .filter(mine)
            .find(|e| str_of(e, "operation") == "DescribeUpdate" && str_of(e, "outcome") == "ok");
        if let Some(e) = next_update.or(seen) {
            lags.push(t_of(e) - t);
        }
        if let Some(e) = seen {
            seen_lags.push(t_of(e) - t);
        }
    }
    ApplyFigures {
        updates,
        polls,
        polls_ok,
        lag_median_ms: median(&mut lags),
        seen_median_ms: median(&mut seen_lags),
        throttled,
    }
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

struct Row {
    name: String,
    measured: String,
    oracle: String,
    bound: String,
    figure: String,
}

/// What the oracle says of `fleet` with `updates` updates per cluster, in
/// the emulator's settings, as a row's oracle and bounds columns.
fn oracle_of(o: &Opts, fleet: &Fleet, updates: u32) -> (oracle::Outcome, String) {
    let rules = oracle::Rules {
        latency: o.latency_ms as f64 / 1000.0,
        rate: Some(o.rate_limit),
        update: o.update_ms as f64 / 1000.0,
    };
    let model = fleet.model(updates);
    let out = oracle::run(&rules, &model);
    let (chain, rate) = oracle::arithmetic(&rules, &model, &out.calls);
    assert!(
        out.wall + 1e-9 >= chain.max(rate),
        "the oracle is below its own arithmetic bounds"
    );
    let bounds = format!(
        "{} x D = {chain:.2}s, calls/rate - burst = {rate:.2}s ({} calls in the busiest account-region)",
        updates,
        out.max_calls()
    );
    (out, bounds)
}

/// With `--keep`, the emulator's history of a run beside its files, for
/// looking at where the time went.
fn keep_history(o: &Opts, dir: &Path, h: &[Value]) -> Res<()> {
    if !o.keep {
        return Ok(());
    }
    let text = serde_json::to_string(h).map_err(|e| e.to_string())?;
    write(&dir.join("history.json"), &text)
}

/// One plan of `fleet`: the run, its oracle and its row.
fn plan_run(
    o: &Opts,
    fleet: &Fleet,
    dir: &Path,
    bin: &Path,
    label: &str,
    par_args: &[String],
    errors: &mut Vec<String>,
) -> Res<(RunOut, oracle::Outcome, Row)> {
    let (r, emu) = fleet.run(dir, bin, o, "plan", par_args.iter().cloned(), label, errors)?;
    let h = emu.history()?;
    keep_history(o, dir, &h)?;
    let throttled: usize = count_requests(&h)
        .iter()
        .filter(|((_, _, ok), _)| !ok)
        .map(|(_, n)| n)
        .sum();
    let calls = h.iter().filter(|e| str_of(e, "kind") == "request").count();
    let (out, bounds) = oracle_of(o, fleet, 0);
    let needed: usize = out.calls.iter().sum();
    let ratio = r.wall.as_secs_f64() / out.wall;
    let row = Row {
        name: format!(
            "{label} N={} R={} A={}",
            fleet.clusters, fleet.regions, fleet.accounts
        ),
        measured: format!(
            "{:.2}s cpu {:.2}s+{:.2}s",
            r.wall.as_secs_f64(),
            r.cpu_s,
            r.emulator_cpu_s
        ),
        oracle: format!("{:.2}s", out.wall),
        bound: format!("{bounds}; {calls} calls made, {needed} needed, {throttled} throttled"),
        figure: format!("ratio={ratio:.2}"),
    };
    Ok((r, out, row))
}

fn run(o: &Opts) -> Res<()> {
    let bin = find_eksgate(o)?;
    let tmp = tempfile::Builder::new()
        .prefix("eksgate-fleet-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    let root = tmp.path().to_path_buf();
    if o.keep {
        eprintln!("files in {}", root.display());
    }
    let timeout = Duration::from_secs(o.timeout_s);
    let regions = usize::from(o.regions);
    let d = o.update_ms as f64 / 1000.0;
    let mut par_args: Vec<String> = Vec::new();
    if let Some(p) = o.parallelism {
        par_args.extend(["--parallelism".into(), p.to_string()]);
    }
    let mut poll_args: Vec<String> = Vec::new();
    if let Some(p) = &o.poll_interval {
        poll_args.extend(["--poll-interval".into(), p.clone()]);
    }
    let wants = |part: &str| o.only.iter().any(|p| p == part);
    let mut rows: Vec<Row> = Vec::new();
    let mut growth: Vec<String> = Vec::new();
    let mut bench: BTreeMap<&str, String> = BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();

    eprintln!(
        "eksgate: {}\nemulator: latency {}ms, {} req/s per account and region, updates {}ms; parallelism {}, poll interval {}",
        bin.display(),
        o.latency_ms,
        o.rate_limit,
        o.update_ms,
        o.parallelism
            .map_or("eksgate's default".to_string(), |p| p.to_string()),
        o.poll_interval.as_deref().unwrap_or("eksgate's default")
    );

    if wants("plan") {
        let fleet = Fleet::simple(o.plan_clusters, regions, o.clusters_per_vpc);
        eprintln!("plan: {} clusters over {regions} regions", fleet.clusters);
        let (r, out, row) = plan_run(
            o,
            &fleet,
            &root.join("plan"),
            &bin,
            "plan",
            &par_args,
            &mut errors,
        )?;
        let ratio = r.wall.as_secs_f64() / out.wall;
        rows.push(Row {
            figure: format!("plan_ratio={ratio:.2}"),
            ..row
        });
        rows.push(Row {
            name: format!("peak RSS, plan N={}", fleet.clusters),
            measured: format!("{:.1} MB", r.rss_mb()),
            oracle: "-".into(),
            bound: "-".into(),
            figure: format!("peak_rss_mb={:.1}", r.rss_mb()),
        });
        bench.insert("plan_ratio", format!("{ratio:.2}"));
        bench.insert("peak_rss_mb", format!("{:.1}", r.rss_mb()));
    }

    if wants("large") {
        let shape = |clusters: usize| Fleet {
            clusters,
            regions: usize::from(o.large_regions),
            per_vpc: o.clusters_per_vpc,
            accounts: usize::from(o.large_accounts),
            roles: true,
        };
        let mut sizes: Vec<usize> = o
            .growth
            .iter()
            .copied()
            .filter(|&n| n < o.large_clusters)
            .collect();
        sizes.push(o.large_clusters);
        for n in sizes {
            let fleet = shape(n);
            eprintln!(
                "plan: {n} clusters over {} regions and {} accounts, each through its role",
                fleet.regions, fleet.accounts
            );
            let (r, out, row) = plan_run(
                o,
                &fleet,
                &root.join(format!("large-{n}")),
                &bin,
                "plan",
                &par_args,
                &mut errors,
            )?;
            let ratio = r.wall.as_secs_f64() / out.wall;
            growth.push(format!(
                "| {n:>8} | {:>7.2} s | {:>7.2} s | {ratio:>5.2} | {:>9.2} s | {:>7.1} MB | {:>8.1} KB |",
                r.wall.as_secs_f64(),
                out.wall,
                r.cpu_s,
                r.rss_mb(),
                r.peak_rss_kb as f64 / n.max(1) as f64,
            ));
            if n == o.large_clusters {
                rows.push(Row {
                    figure: format!("plan_10k_ratio={ratio:.2}"),
                    ..row
                });
                rows.push(Row {
                    name: format!("peak RSS, plan N={n}"),
                    measured: format!("{:.1} MB", r.rss_mb()),
                    oracle: "-".into(),
                    bound: "-".into(),
                    figure: format!("plan_10k_rss_mb={:.1}", r.rss_mb()),
                });
                bench.insert("plan_10k_ratio", format!("{ratio:.2}"));
                bench.insert("plan_10k_rss_mb", format!("{:.1}", r.rss_mb()));
            } else {
                rows.push(row);
            }
        }
    }

    if wants("apply") {
        let fleet = Fleet::simple(o.apply_clusters, regions, o.clusters_per_vpc);
        eprintln!("apply: {} clusters, 2 updates each", fleet.clusters);
        let tail = std::iter::once("--auto-approve".to_string())
            .chain(par_args.iter().cloned())
            .chain(poll_args.iter().cloned());
        let (r, emu) = fleet.run(
            &root.join("apply"),
            &bin,
            o,
            "apply",
            tail,
            "apply",
            &mut errors,
        )?;
        let h = emu.history()?;
        keep_history(o, &root.join("apply"), &h)?;
        let f = apply_figures(&h);
        let calls = h.iter().filter(|e| str_of(e, "kind") == "request").count();
        let (out, bounds) = oracle_of(o, &fleet, 2);
        let needed: usize = out.calls.iter().sum();
        let ratio = r.wall.as_secs_f64() / out.wall;
        let ppu = f.polls as f64 / f.updates.max(1) as f64;
        let lag_pct = f.lag_median_ms / o.update_ms as f64 * 100.0;
        if f.updates != 2 * fleet.clusters {
            errors.push(format!(
                "apply: {} updates started, {} expected",
                f.updates,
                2 * fleet.clusters
            ));
        }
        rows.push(Row {
            name: format!("apply N={} (2 updates each)", fleet.clusters),
            measured: format!(
                "{:.2}s cpu {:.2}s+{:.2}s",
                r.wall.as_secs_f64(),
                r.cpu_s,
                r.emulator_cpu_s
            ),
            oracle: format!("{:.2}s", out.wall),
            bound: format!(
                "{bounds}; plan {:.2}s; {calls} calls made, {needed} needed, {} throttled",
                out.plan_done, f.throttled
            ),
            figure: format!("apply_ratio={ratio:.2}"),
        });
        rows.push(Row {
            name: "DescribeUpdate per update".into(),
            measured: format!(
                "{ppu:.2} ({} polls, {} answered ok, {} updates)",
                f.polls, f.polls_ok, f.updates
            ),
            oracle: "1".into(),
            bound: "-".into(),
            figure: format!("polls_per_update={ppu:.2}"),
        });
        rows.push(Row {
            name: "detection lag (median)".into(),
            measured: format!("{:.0}ms", f.lag_median_ms),
            oracle: format!("{}ms", 2 * o.latency_ms),
            bound: format!("of {}ms", o.update_ms),
            figure: format!("detect_lag_pct={lag_pct:.1}"),
        });
        rows.push(Row {
            name: "  of which: end to the poll seeing it".into(),
            measured: format!("{:.0}ms", f.seen_median_ms),
            oracle: "0ms".into(),
            bound: format!("of {}ms", o.update_ms),
            figure: "-".into(),
        });
        bench.insert("apply_ratio", format!("{ratio:.2}"));
        bench.insert("polls_per_update", format!("{ppu:.2}"));
        bench.insert("detect_lag_pct", format!("{lag_pct:.1}"));
    }

    if wants("speedup") {
        let fleet = Fleet::simple(o.speedup_clusters, regions, o.clusters_per_vpc);
        let (out, _) = oracle_of(o, &fleet, 2);
        let mut walls = Vec::new();
        for (label, extra) in [
            (
                "sequential",
                ["--parallelism", "1", "--max-updates", "1"]
                    .map(String::from)
                    .to_vec(),
            ),
            ("parallel", par_args.clone()),
        ] {
            eprintln!("speedup: {label} apply of {} clusters", fleet.clusters);
            let tail = std::iter::once("--auto-approve".to_string())
                .chain(extra)
                .chain(poll_args.iter().cloned());
            let (r, _emu) = fleet.run(
                &root.join(format!("speedup-{label}")),
                &bin,
                o,
                "apply",
                tail,
                &format!("{label} apply"),
                &mut errors,
            )?;
            rows.push(Row {
                name: format!("apply N={} {label}", fleet.clusters),
                measured: format!("{:.2}s", r.wall.as_secs_f64()),
                oracle: format!("{:.2}s", out.wall),
                bound: format!("2 x D = {:.2}s", 2.0 * d),
                figure: String::new(),
            });
            walls.push(r.wall.as_secs_f64());
        }
        let speedup = walls[0] / walls[1];
        if let Some(last) = rows.last_mut() {
            last.figure = format!("speedup_vs_sequential={speedup:.1}");
        }
        bench.insert("speedup_vs_sequential", format!("{speedup:.1}"));
    }

    if wants("validate") {
        let fleet = Fleet::simple(o.validate_clusters, regions, o.clusters_per_vpc);
        // One file of every cluster: the 10k manifest.
        let mut one = String::new();
        for i in 0..fleet.clusters {
            let _ = writeln!(
                one,
                "[[cluster]]\nname = \"c{i:05}\"\nregion = \"{}\"\npublic_access = false\nprivate_access = true\nprivate_access_from = [\"10.0.0.0/8\", \"sg-{i:017x}\"]\n",
                fleet.region(i)
            );
        }
        let one_dir = root.join("validate-one");
        std::fs::create_dir_all(&one_dir).map_err(|e| e.to_string())?;
        write(&one_dir.join("fleet.toml"), &one)?;
        let args = vec![
            "-q".to_string(),
            "validate".into(),
            one_dir.join("fleet.toml").display().to_string(),
        ];
        let mut times = Vec::new();
        for _ in 0..3 {
            let r = eksgate(&bin, &args, None, &root.join("validate.out"), timeout)?;
            if let Some(e) = r.surfaced_error() {
                errors.push(format!("validate: {e}"));
            }
            times.push(r.wall.as_secs_f64() * 1000.0);
        }
        let ms = median(&mut times);
        rows.push(Row {
            name: format!("validate {} clusters (median of 3)", fleet.clusters),
            measured: format!("{ms:.0}ms"),
            oracle: "-".into(),
            bound: "-".into(),
            figure: format!("validate_10k_ms={ms:.0}"),
        });
        bench.insert("validate_10k_ms", format!("{ms:.0}"));
    }

    println!(
        "{:<30} {:>28} {:>8}  {:<100} figure",
        "run", "measured (cpu eksgate+emulator)", "oracle", "arithmetic bounds"
    );
    for r in &rows {
        println!(
            "{:<30} {:>28} {:>8}  {:<100} {}",
            r.name, r.measured, r.oracle, r.bound, r.figure
        );
    }
    if !growth.is_empty() {
        println!();
        println!(
            "| clusters | plan wall | oracle    | ratio | eksgate CPU | peak RSS   | RSS/cluster |"
        );
        println!(
            "|---------:|----------:|----------:|------:|------------:|-----------:|------------:|"
        );
        for g in &growth {
            println!("{g}");
        }
        println!();
    }
    if errors.is_empty() {
        println!("errors surfaced to the user: 0");
    } else {
        println!("errors surfaced to the user: {}", errors.len());
        for e in &errors {
            println!("  {e}");
        }
    }
    if o.keep {
        let kept = tmp.keep();
        eprintln!("kept {}", kept.display());
    }
    let order = [
        "plan_ratio",
        "apply_ratio",
        "polls_per_update",
        "detect_lag_pct",
        "speedup_vs_sequential",
        "peak_rss_mb",
        "validate_10k_ms",
        "plan_10k_ratio",
        "plan_10k_rss_mb",
    ];
    let line: Vec<String> = order
        .iter()
        .map(|k| format!("{k}={}", bench.get(k).map_or("NA", String::as_str)))
        .collect();
    println!("BENCH {}", line.join(" "));
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} errors surfaced to the user", errors.len()))
    }
}
