//! EKS's updates of one cluster: which are still running (`ListUpdates`,
//! then `DescribeUpdate` on those not known to have ended), what the answer
//! to an `UpdateClusterConfig` means (started, refused because another one
//! runs, or nothing to do), and the idempotency token each such call sends.
//! Endpoint and access-config updates (`aws`, `access`) share them.

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};

use super::clients::Clients;
use super::paging;
use super::sdk_error::sdk_error;
use super::{ProviderError, UpdateStart, UpdateState, UpdateStatus};

/// The most updates of unknown status a re-read describes to find one
/// `InProgress`. `ListUpdates` answers in no order (DESIGN.md section 1b), so
/// the running update can be any of them: up to this many are each
/// described; past it none are, and an update already running is learnt from
/// the one `ResourceInUseException` the change then gets, which names it.
const DESCRIBE_BUDGET: usize = 20;

/// The update ids a listing reads at most: enough to decide (see
/// [`DESCRIBE_BUDGET`]).
const MAX_UPDATE_IDS: usize = 1000;
/// The pages a listing asks for at most, however few ids they hold.
const MAX_UPDATE_PAGES: usize = 1000;

/// How far [`in_progress_updates`] looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Search {
    /// Describe the updates of unknown status only when there are at most
    /// [`DESCRIBE_BUDGET`] of them.
    Budgeted,
    /// Describe every one (EKS said an update runs but not which).
    Exhaustive,
}

/// Ids of the cluster's updates still `InProgress`: every `ListUpdates`
/// page, then `DescribeUpdate` on each id not already seen finished, unless
/// there are more than [`DESCRIBE_BUDGET`] of them under [`Search::Budgeted`]
/// (then none is found here; see [`DESCRIBE_BUDGET`]). The ids come in no
/// order, so none is preferred for being listed last.
pub(super) async fn in_progress_updates(
    c: &Clients,
    name: &str,
    search: Search,
) -> Result<Vec<String>, ProviderError> {
    Ok(listed_updates(c, name, search).await?.running)
}

/// What [`listed_updates`] found.
pub(super) struct Listed {
    /// The updates `InProgress`.
    pub running: Vec<String>,
    /// Every other update listed was known to have ended before the list
    /// was asked for.
    pub settled: bool,
}

/// [`in_progress_updates`], and whether any update listed but not running
/// might have ended while the list was asked for.
pub(super) async fn listed_updates(
    c: &Clients,
    name: &str,
    search: Search,
) -> Result<Listed, ProviderError> {
    let mut ids = Vec::new();
    // The first ids are enough to decide; a token that never ends is an
    // error (see `paging`).
    let what = || format!("the updates of `{name}`");
    paging::follow(
        "ListUpdates",
        what,
        MAX_UPDATE_PAGES,
        |token| async move {
            c.eks
                .list_updates()
                .name(name)
                .set_next_token(token)
                .send()
                .await
                .map_err(|e| sdk_error(c, "ListUpdates", e))
        },
        |out| {
            ids.extend(out.update_ids().iter().cloned());
            Ok(out
                .next_token()
                .map(str::to_string)
                .filter(|_| ids.len() < MAX_UPDATE_IDS))
        },
    )
    .await?;
    let unknown: Vec<String> = {
        let ended = c.ended();
        ids.into_iter()
            .filter(|id| !ended.contains(&(name.to_string(), id.clone())))
            .collect()
    };
    if search == Search::Budgeted && unknown.len() > DESCRIBE_BUDGET {
        tracing::debug!(
            "`{name}` has {} updates of unknown status; an update already running is learnt from `ResourceInUseException`",
            unknown.len()
        );
        return Ok(Listed {
            running: Vec::new(),
            settled: false,
        });
    }
    let mut running = Vec::new();
    let mut settled = true;
    for id in unknown {
        let u = describe_update(c, name, &id).await?;
        if u.status == UpdateStatus::InProgress {
            running.push(id);
        } else {
            settled = false;
        }
    }
    Ok(Listed { running, settled })
}

pub(super) async fn describe_update(
    c: &Clients,
    name: &str,
    id: &str,
) -> Result<UpdateState, ProviderError> {
    // The next step of the cluster waits for this answer (see `pace`).
    let out = super::pace::urgent(c.eks.describe_update().name(name).update_id(id).send())
        .await
        .map_err(|e| sdk_error(c, "DescribeUpdate", e))?;
    let Some(u) = out.update() else {
        return Err(ProviderError::Transport {
            operation: "DescribeUpdate".into(),
            message: "the answer had no `update`".into(),
        });
    };
    let status = match u.status().map(|s| s.as_str()) {
        Some("InProgress") => UpdateStatus::InProgress,
        Some("Successful") => UpdateStatus::Successful,
        Some("Failed") => UpdateStatus::Failed,
        Some("Cancelled") => UpdateStatus::Cancelled,
        other => UpdateStatus::Other(other.unwrap_or("").to_string()),
    };
    if matches!(
        status,
        UpdateStatus::Successful | UpdateStatus::Failed | UpdateStatus::Cancelled
    ) {
        c.ended().insert((name.to_string(), id.to_string()));
    }
    Ok(UpdateState {
        id: id.to_string(),
        status,
        errors: u
            .errors()
            .iter()
            .map(|e| {
                (
                    e.error_code()
                        .map(|c| c.as_str().to_string())
                        .unwrap_or_default(),
                    e.error_message().unwrap_or_default().to_string(),
                )
            })
            .collect(),
    })
}

/// What the answer to one `UpdateClusterConfig` (endpoint or access config)
/// means for the engine: the update it started; the one already running
/// that refused it (named in AWS's message, else the first one listed); or
/// nothing to do, when AWS says the cluster is already so.
pub(super) async fn update_started<E, R>(
    c: &Clients,
    name: &str,
    sent: Result<Option<String>, SdkError<E, R>>,
) -> Result<UpdateStart, ProviderError>
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    let err = match sent {
        Ok(Some(id)) => return Ok(UpdateStart::Started(id)),
        Ok(None) => {
            return Err(ProviderError::Transport {
                operation: "UpdateClusterConfig".into(),
                message: "the answer named no update id".into(),
            })
        }
        Err(e) => sdk_error(c, "UpdateClusterConfig", e),
    };
    match &err {
        ProviderError::Aws { code, message, .. }
            if code == "InvalidParameterException"
                && message.starts_with("Cluster is already at the desired configuration") =>
        {
            Ok(UpdateStart::AlreadyConverged)
        }
        ProviderError::Aws { code, message, .. } if code == "ResourceInUseException" => {
            match running_update_id(message) {
                Some(id) => Ok(UpdateStart::InUse(id)),
                None => match in_progress_updates(c, name, Search::Exhaustive)
                    .await?
                    .into_iter()
                    .next()
                {
                    Some(id) => Ok(UpdateStart::InUse(id)),
                    None => Err(err),
                },
            }
        }
        _ => Err(err),
    }
}

/// A fresh idempotency token for one `UpdateClusterConfig` (the SDK's own
/// retries of that call resend it unchanged).
pub(super) fn request_token() -> String {
    use sha2::{Digest, Sha256};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let digest = Sha256::digest(format!("{nanos}/{}/{n}", std::process::id()));
    format!("eksgate-{}", hex::encode(&digest[..16]))
}

/// The update id in `... currently has update <id> in progress`.
fn running_update_id(message: &str) -> Option<String> {
    let rest = message.split("has update ").nth(1)?;
    let id = rest.split_whitespace().next()?;
    (!id.is_empty()).then(|| id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_running_update_in_aws_message() {
        assert_eq!(
            running_update_id("Cannot EndpointAccessUpdate because cluster x currently has update 1f2e-33 in progress"),
            Some("1f2e-33".to_string())
        );
        assert_eq!(running_update_id("Cluster is busy"), None);
    }
}
