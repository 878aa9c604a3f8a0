//! The one integration-test binary: the real `eksgate` binary and real AWS SDK
//! clients, driven against the emulator on a loopback port. Worlds and
//! manifests that tests share are files under `tests/fixtures/`, named with
//! [`fixture::fixture!`].

mod apply;
mod common;
mod fixture;
mod import;
mod invariants;
mod manifest;
mod plan;
mod rehearse;
mod reliability;
mod sim;
mod waves;
