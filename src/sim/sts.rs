//! The STS Query-protocol operations eksgate uses: GetCallerIdentity (to check
//! a manifest's `account`) and AssumeRole (for `role_arn`). Credentials from
//! AssumeRole act in the role's account and expire after `DurationSeconds`
//! (900 to 43200, default 3600), or sooner under `--session-duration`.

use std::time::Duration;

use quick_xml::escape::escape;
use tokio::time::Instant;

use super::protocol::AwsError;
use super::state::{Session, State};

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// A role's `MaxSessionDuration` unless raised: one hour.
pub const MAX_SESSION_SECONDS: u64 = 3600;

pub const ACTIONS: &[&str] = &["GetCallerIdentity", "AssumeRole"];

/// STS's error document.
pub fn error_xml(err: &AwsError, request_id: &str) -> String {
    let kind = if err.status >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    format!(
        "<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>",
        escape(err.code.as_str()),
        escape(err.message.as_str())
    )
}

fn wrap(action: &str, request_id: &str, inner: &str) -> String {
    format!(
        "<{action}Response xmlns=\"{XMLNS}\"><{action}Result>{inner}</{action}Result><ResponseMetadata><RequestId>{request_id}</RequestId></ResponseMetadata></{action}Response>"
    )
}

pub fn handle(
    state: &mut State,
    access_key: &str,
    action: &str,
    params: &[(String, String)],
    request_id: &str,
    now: Instant,
) -> Result<String, AwsError> {
    let get = |k: &str| params.iter().find(|(q, _)| q == k).map(|(_, v)| v.as_str());
    let account = state.account_for(access_key);
    match action {
        "GetCallerIdentity" => {
            let arn = state.caller_arn(access_key);
            Ok(wrap(
                action,
                request_id,
                &format!(
                    "<Arn>{}</Arn><UserId>AIDASIMULATEDUSER0001</UserId><Account>{account}</Account>",
                    escape(arn.as_str())
                ),
            ))
        }
        "AssumeRole" => {
            let role = get("RoleArn").ok_or_else(|| {
                AwsError::new(
                    400,
                    "MissingParameter",
                    "The request must contain the parameter RoleArn",
                )
            })?;
            let session = get("RoleSessionName").unwrap_or("eksgate");
            let asked = match get("DurationSeconds") {
                None => 3600,
                Some(v) => match v.parse::<u64>() {
                    Ok(n) if (900..=MAX_SESSION_SECONDS).contains(&n) => n,
                    Ok(n) if (900..=43200).contains(&n) => {
                        return Err(AwsError::new(
                            400,
                            "ValidationError",
                            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
                        ))
                    }
                    Ok(n) if n > 43200 => {
                        return Err(AwsError::new(
                            400,
                            "ValidationError",
                            format!("1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200"),
                        ))
                    }
                    _ => {
                        return Err(AwsError::new(
                            400,
                            "ValidationError",
                            format!("1 validation error detected: Value '{v}' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900"),
                        ))
                    }
                },
            };
            let mut lasts = Duration::from_secs(asked);
            if let Some(cap) = state.behaviour.session_duration {
                lasts = lasts.min(cap);
            }
            let Some(role_account) = state.roles.get(role).cloned() else {
                return Err(AwsError::new(
                    403,
                    "AccessDenied",
                    format!(
                        "User: arn:aws:iam::{account}:user/eksgate-sim is not authorized to perform: sts:AssumeRole on resource: {role}"
                    ),
                ));
            };
            let id = state.uuid().replace('-', "").to_uppercase();
            let key_id = format!("ASIA{}", &id[..16]);
            let role_name = role.rsplit('/').next().unwrap_or(role);
            let arn = format!("arn:aws:sts::{role_account}:assumed-role/{role_name}/{session}");
            state.access_keys.insert(key_id.clone(), role_account);
            state.policy.session_of(&key_id, role);
            state.arns.insert(key_id.clone(), arn.clone());
            state
                .secrets
                .insert(key_id.clone(), format!("simsecret{id}"));
            state.sessions.insert(
                key_id.clone(),
                Session {
                    token: format!("simsession{id}"),
                    expires: now + lasts,
                },
            );
            let expires = time::OffsetDateTime::now_utc()
                + time::Duration::try_from(lasts).unwrap_or(time::Duration::HOUR);
            let expires = expires
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            Ok(wrap(
                action,
                request_id,
                &format!(
                    "<Credentials><AccessKeyId>{key_id}</AccessKeyId><SecretAccessKey>simsecret{id}</SecretAccessKey><SessionToken>simsession{id}</SessionToken><Expiration>{expires}</Expiration></Credentials><AssumedRoleUser><AssumedRoleId>AROASIMULATED:{}</AssumedRoleId><Arn>{}</Arn></AssumedRoleUser>",
                    escape(session),
                    escape(arn.as_str())
                ),
            ))
        }
        other => Err(AwsError::new(
            400,
            "InvalidAction",
            format!("Could not find operation {other} for version 2011-06-15"),
        )),
    }
}
