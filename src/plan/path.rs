//! The endpoint updates from a cluster's live settings to the wanted ones:
//! which `UpdateClusterConfig` calls, in which order. Pure; shared by the
//! planner (which makes steps of them) and the network findings (which
//! check every state the path passes through).

use crate::desired::DesiredCluster;
use crate::endpoint::EndpointSettings;
use crate::live::LiveCluster;

/// The `UpdateClusterConfig` calls from the live endpoint to the desired one.
///
/// A move that turns one side on and the other off goes through "both on",
/// so the cluster stays reachable if the second call fails. CIDRs are sent
/// only when the manifest manages them and wants public access, and then
/// only when public access is being turned on (EKS kept the old list) or the
/// list differs. A call that changes nothing is never planned.
pub(crate) fn endpoint_path(
    live: &LiveCluster,
    want: &DesiredCluster,
) -> Vec<(EndpointSettings, EndpointSettings)> {
    let from = live.endpoint.mode();
    let to = want.endpoint.mode();
    // One side on and the other off, in a single move: stage it.
    let swap = (from == (true, false) && to == (false, true))
        || (from == (false, true) && to == (true, false));
    let mut stops = Vec::new();
    if swap {
        stops.push((true, true));
    }
    stops.push(to);

    let managed = want
        .endpoint
        .public_access_cidrs
        .as_ref()
        .filter(|_| want.endpoint.public_access);
    let mut cur = from;
    let mut cur_cidrs = live
        .endpoint
        .public_access_cidrs
        .clone()
        .unwrap_or_default();
    let mut out = Vec::new();
    for stop in stops {
        let send = managed.filter(|c| stop.0 && (!cur.0 || cur_cidrs != **c));
        if stop == cur && send.is_none() {
            continue;
        }
        let before =
            EndpointSettings::new(cur.0, cur.1).with_cidrs(send.map(|_| cur_cidrs.clone()));
        let after = EndpointSettings::new(stop.0, stop.1).with_cidrs(send.cloned());
        out.push((before, after));
        cur = stop;
        if let Some(c) = send {
            cur_cidrs = c.clone();
        }
    }
    out
}
