//! The builder a CLI test starts from, as just's `Test`: an emulator world,
//! files in a temporary directory, arguments and environment, then one run of
//! the real `eksgate` binary against the emulator on a loopback port.
//!
//! ```ignore
//! let run = Test::new()
//!     .world(fixture!("worlds/two-regions-dns-off.toml"))
//!     .manifest(fixture!("manifests/web-public.toml"))
//!     .args(["apply", "prod.toml", "--auto-approve"])
//!     .run()
//!     .await
//!     .success();
//! eksgate_snapshot!(run, @"...");
//! let again = run.again().args(["plan", "prod.toml"]).run().await.success();
//! ```
//!
//! A [`Run`] keeps the emulator and the directory alive: a test looks at the
//! emulator's history and state through it, or runs the binary again against
//! the same account with [`Run::again`].
//!
//! The binary must reach nothing but the emulator: its environment is
//! cleared and holds fake credentials, no shared AWS config files, no
//! instance metadata and `NO_COLOR`. The builder checks nothing on its own:
//! a test asks for the exit code and whole streams ([`Run::success`],
//! [`Run::stdout_is`]) or pins them with a snapshot.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use eksgate::sim::{Behaviour, Event, HistoryEntry, SimHandle};

use crate::common::{eksgate_cmd, quick, start};

/// The manifest [`Test::manifest`] writes, as the tests' arguments name it.
pub const MANIFEST: &str = "prod.toml";

/// Polling fast enough for the emulator's short updates: add to `apply`.
pub const FAST_POLLS: [&str; 4] = ["--poll-interval", "50ms", "--poll-max-interval", "200ms"];

/// No extra arguments, for [`Test::apply`].
pub const NO_ARGS: [&str; 0] = [];

/// A run's emulator and working directory, shared by every run of a test.
struct Session {
    sim: SimHandle,
    dir: tempfile::TempDir,
}

/// One run of `eksgate` to be: what the emulator holds, the files, the
/// arguments and the environment.
#[must_use]
pub struct Test {
    world: String,
    behaviour: Behaviour,
    files: Vec<(String, String)>,
    folders: Vec<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    /// Variables of the harness's environment this run goes without.
    removed: Vec<String>,
    /// `HOME` is the folder `home/` of the working directory.
    home: bool,
    session: Option<Arc<Session>>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    /// An empty world whose updates take 300ms, an empty directory, no
    /// arguments.
    pub fn new() -> Test {
        Test {
            world: String::new(),
            behaviour: quick(),
            files: Vec::new(),
            folders: Vec::new(),
            args: Vec::new(),
            env: Vec::new(),
            removed: Vec::new(),
            home: false,
            session: None,
        }
    }

    /// Adds `text` to the emulator's world file; worlds are arrays of
    /// tables, so parts join (a fixture, then a fault of this test).
    pub fn world(mut self, text: &str) -> Test {
        assert!(
            self.session.is_none(),
            "the emulator is already running: set the world before the first run"
        );
        self.world.push_str(text);
        self.world.push('\n');
        self
    }

    /// How the emulator behaves (update duration, faults, latency).
    pub fn behaviour(mut self, behaviour: Behaviour) -> Test {
        self.behaviour = behaviour;
        self
    }

    /// How long the emulator's endpoint updates take.
    pub fn update_duration(mut self, d: Duration) -> Test {
        self.behaviour.update_duration = d;
        self
    }

    /// Adds `text` to the manifest `prod.toml` in the working directory.
    pub fn manifest(self, text: &str) -> Test {
        self.append(MANIFEST, text)
    }

    /// Writes `text` to `name` in the working directory (folders are made),
    /// replacing what a previous run left there.
    pub fn file(mut self, name: &str, text: &str) -> Test {
        self.files.retain(|(n, _)| n != name);
        self.files.push((name.to_string(), text.to_string()));
        self
    }

    /// Makes the folder `name` (and its parents) in the working directory.
    pub fn folder(mut self, name: &str) -> Test {
        self.folders.push(name.to_string());
        self
    }

    fn append(mut self, name: &str, text: &str) -> Test {
        match self.files.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => {
                t.push('\n');
                t.push_str(text);
            }
            None => self.files.push((name.to_string(), text.to_string())),
        }
        self
    }

    pub fn arg(mut self, arg: &str) -> Test {
        self.args.push(arg.to_string());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// `apply prod.toml --auto-approve` with fast polls, then `extra`.
    pub fn apply<I, S>(self, extra: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        self.args(["apply", MANIFEST, "--auto-approve"])
            .args(FAST_POLLS)
            .args(extra)
    }

    /// Sets a variable of the binary's environment, over the harness's.
    pub fn env(mut self, key: &str, value: &str) -> Test {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Removes a variable of the harness's environment (its fake
    /// credentials, for a test of the credential chain).
    pub fn env_remove(mut self, key: &str) -> Test {
        self.removed.push(key.to_string());
        self
    }

    /// Makes `HOME` the folder `home/` of the working directory, empty
    /// unless the test writes files there (`.file("home/.aws/config", ..)`).
    pub fn home(mut self) -> Test {
        self.home = true;
        self.folder("home")
    }

    /// Starts the emulator (once per test) and writes the files.
    async fn session(&mut self) -> Arc<Session> {
        let session = match &self.session {
            Some(s) => s.clone(),
            None => {
                let sim = start(&self.world, self.behaviour.clone()).await;
                let dir = tempfile::tempdir().expect("a temporary directory");
                let s = Arc::new(Session { sim, dir });
                self.session = Some(s.clone());
                s
            }
        };
        for name in &self.folders {
            std::fs::create_dir_all(session.dir.path().join(name))
                .expect("a folder in the temporary directory");
        }
        for (name, text) in &self.files {
            let path = session.dir.path().join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).expect("a folder in the temporary directory");
            }
            std::fs::write(&path, text).expect("a file in the temporary directory");
        }
        session
    }

    fn command(&self, session: &Session) -> tokio::process::Command {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut cmd = eksgate_cmd(&session.sim, session.dir.path(), &args);
        for k in &self.removed {
            cmd.env_remove(k);
        }
        if self.home {
            cmd.env("HOME", session.dir.path().join("home"));
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs the binary to its end (at most five minutes).
    pub async fn run(mut self) -> Run {
        let session = self.session().await;
        let output =
            tokio::time::timeout(Duration::from_secs(300), self.command(&session).output())
                .await
                .expect("eksgate finished within 5 minutes")
                .expect("eksgate ran");
        Run::new(session, self.args, output)
    }

    /// Starts the binary and returns at once, for tests that signal it
    /// while it runs. Its output goes to files, not pipes: nobody reads a
    /// pipe until the process ends, and a full one would stall it.
    pub async fn spawn(mut self) -> Running {
        let session = self.session().await;
        let dir = session.dir.path();
        let child = self
            .command(&session)
            .stdout(std::fs::File::create(dir.join(".stdout")).expect("a stdout file"))
            .stderr(std::fs::File::create(dir.join(".stderr")).expect("a stderr file"))
            .spawn()
            .expect("eksgate starts");
        Running {
            session,
            args: self.args,
            child,
        }
    }
}

/// The binary, started by [`Test::spawn`] and still running.
pub struct Running {
    session: Arc<Session>,
    args: Vec<String>,
    child: tokio::process::Child,
}

impl Running {
    pub fn sim(&self) -> &SimHandle {
        &self.session.sim
    }

    /// Sends `signal` (`-INT`, `-KILL`) to the process.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("the child is running").to_string();
        let status = std::process::Command::new("kill")
            .args([signal, &pid])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Polls the emulator's history every 20ms until `f` holds for it (at
    /// most a minute).
    pub async fn until(&self, what: &str, f: impl Fn(&[HistoryEntry]) -> bool) {
        for _ in 0..3_000 {
            if f(&self.session.sim.history()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("not within a minute: {what}");
    }

    /// Waits for the process to end (at most a minute).
    pub async fn wait(mut self) -> Run {
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("eksgate ended within a minute")
            .expect("eksgate ran");
        let dir = self.session.dir.path();
        let output = std::process::Output {
            status,
            stdout: std::fs::read(dir.join(".stdout")).unwrap_or_default(),
            stderr: std::fs::read(dir.join(".stderr")).unwrap_or_default(),
        };
        Run::new(self.session, self.args, output)
    }
}

/// What one run printed and how it exited, with the emulator it ran
/// against.
pub struct Run {
    session: Arc<Session>,
    args: Vec<String>,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn new(session: Arc<Session>, args: Vec<String>, output: std::process::Output) -> Run {
        Run {
            session,
            args,
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// The next run of the same test: the same emulator and directory, no
    /// arguments yet.
    pub fn again(&self) -> Test {
        Test {
            session: Some(self.session.clone()),
            ..Test::new()
        }
    }

    pub fn code(&self) -> Option<i32> {
        self.code
    }

    pub fn stdout(&self) -> &str {
        &self.stdout
    }

    pub fn stderr(&self) -> &str {
        &self.stderr
    }

    pub fn sim(&self) -> &SimHandle {
        &self.session.sim
    }

    pub fn dir(&self) -> &Path {
        self.session.dir.path()
    }

    /// A file the run left in its directory.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir().join(name))
            .unwrap_or_else(|e| panic!("cannot read `{name}`: {e}"))
    }

    /// Asserts the exit code, showing both streams when it differs.
    #[track_caller]
    pub fn exit(self, code: i32) -> Run {
        assert_eq!(
            self.code,
            Some(code),
            "`eksgate {}` exited {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.args.join(" "),
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn success(self) -> Run {
        self.exit(0)
    }

    #[track_caller]
    pub fn failure(self) -> Run {
        self.exit(1)
    }

    /// Asserts the whole stdout.
    #[track_caller]
    pub fn stdout_is(self, want: &str) -> Run {
        assert_eq!(
            self.stdout,
            want,
            "stdout of `eksgate {}`",
            self.args.join(" ")
        );
        self
    }

    /// Asserts the whole stderr.
    #[track_caller]
    pub fn stderr_is(self, want: &str) -> Run {
        assert_eq!(
            self.stderr,
            want,
            "stderr of `eksgate {}`",
            self.args.join(" ")
        );
        self
    }

    /// Every entry of the emulator's history so far (of every run).
    pub fn history(&self) -> Vec<HistoryEntry> {
        self.session.sim.history()
    }

    /// The emulator's world now, as `/_sim/state` shows it.
    pub fn state(&self) -> serde_json::Value {
        self.session.sim.snapshot()
    }

    /// Requests so far, as (service, operation, target, outcome).
    pub fn requests(&self) -> Vec<(String, String, Option<String>, String)> {
        crate::common::requests(&self.session.sim)
    }

    /// Requests that may change something: all but `Describe*`, `List*`
    /// and `GetCallerIdentity`, as `operation target: outcome`.
    pub fn writes(&self) -> Vec<String> {
        writes(&self.history())
    }
}

/// The requests of `history` that may change something (see
/// [`Run::writes`]).
pub fn writes(history: &[HistoryEntry]) -> Vec<String> {
    history
        .iter()
        .filter_map(|e| match &e.event {
            Event::Request {
                operation,
                target,
                outcome,
                ..
            } if !operation.starts_with("Describe")
                && !operation.starts_with("List")
                && operation != "GetCallerIdentity" =>
            {
                Some(format!(
                    "{operation} {}: {outcome}",
                    target.as_deref().unwrap_or("-")
                ))
            }
            _ => None,
        })
        .collect()
}
