//! The one integration-test binary: the real `eksgate` binary and real AWS SDK
//! clients, driven against the emulator on a loopback port.

mod apply;
mod common;
mod harsh;
mod import;
mod invariants;
mod manifest;
mod plan;
mod rehearse;
mod reliability;
mod sim;
mod sim_aws_edges;
mod waves;
