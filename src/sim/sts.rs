//! The STS Query-protocol operations eksgate uses: GetCallerIdentity (to check
//! a manifest's `account`) and AssumeRole (for `role_arn`). Credentials from
//! AssumeRole act in the role's account.

use quick_xml::escape::escape;

use super::protocol::AwsError;
use super::state::State;

const XMLNS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

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
            state.arns.insert(key_id.clone(), arn.clone());
            let expires = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
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
