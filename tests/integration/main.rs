//! The one integration-test binary: the real `eksgate` binary and real AWS SDK
//! clients, driven against the emulator on a loopback port.
//!
//! A CLI test starts from [`test::Test`] (world, manifest, arguments → one
//! run of the binary), takes shared worlds and manifests from
//! `tests/fixtures/` with [`fixture::fixture!`], and pins output with
//! [`snapshot::eksgate_snapshot!`].

mod access;
mod allowlist;
mod apply;
mod common;
mod doctor;
mod doctor_needed;
mod fixture;
mod harsh;
mod import;
mod invariants;
mod manifest;
mod network;
mod oracle;
mod owners;
mod pictures;
mod plan;
mod plan_schema;
mod rehearse;
mod reliability;
mod sim;
mod sim_access;
mod sim_aws_edges;
mod snapshot;
mod test;
mod tools;
mod waves;
