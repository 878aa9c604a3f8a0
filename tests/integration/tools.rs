//! Programs eksgate did not write that some tests run: boto3, Graphviz and
//! jq. A test that needs one asks [`Tool::present`] and is skipped, with a
//! line saying so, where it is missing, unless CI set the tool's
//! `EKSGATE_REQUIRE_*` variable: then a missing tool fails the test.

use std::process::{Command, Stdio};

/// A program, how to see that it runs, and the variable that requires it.
pub struct Tool {
    /// As messages name it.
    name: &'static str,
    /// A command that succeeds only when the tool works.
    check: &'static [&'static str],
    require: &'static str,
}

/// boto3, the AWS CLI's library, imported by python3.
pub const BOTO3: Tool = Tool {
    name: "python3 with boto3",
    check: &["python3", "-c", "import boto3"],
    require: "EKSGATE_REQUIRE_BOTO3",
};

/// Graphviz's `dot`.
pub const GRAPHVIZ: Tool = Tool {
    name: "Graphviz (`dot`)",
    check: &["dot", "-V"],
    require: "EKSGATE_REQUIRE_GRAPHVIZ",
};

/// `jq`.
pub const JQ: Tool = Tool {
    name: "`jq`",
    check: &["jq", "--version"],
    require: "EKSGATE_REQUIRE_JQ",
};

impl Tool {
    /// Whether the tool runs; when it does not, says the test is skipped,
    /// or fails when its variable requires it.
    pub fn present(&self) -> bool {
        let have = Command::new(self.check[0])
            .args(&self.check[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !have {
            assert!(
                std::env::var_os(self.require).is_none(),
                "{} is set but {} does not run",
                self.require,
                self.name
            );
            eprintln!("skipped: {} is not installed", self.name);
        }
        have
    }
}
