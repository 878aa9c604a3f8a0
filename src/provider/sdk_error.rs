//! How a failed SDK call is reported: AWS's code and message, or what kept
//! the call from AWS. Every module that calls AWS maps its errors here.

use aws_sdk_eks::error::{ProvideErrorMetadata, SdkError};

use super::clients::Clients;
use super::failure;
use super::ProviderError;

/// An SDK error as the provider reports it: AWS's code and message when
/// AWS answered, what kept the call from AWS when it did not (`failure`),
/// and otherwise the chain's own words, never its `Debug` form. The whole
/// chain is logged at `-v`.
pub(super) fn sdk_error<E, R>(c: &Clients, operation: &str, err: SdkError<E, R>) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + 'static,
{
    match &err {
        // An answer with no error code is one the SDK could not read (a
        // damaged or cut-off body): say so, with what the SDK saw, rather
        // than an error named `Unknown` with no message.
        SdkError::ServiceError(se) if se.err().code().is_none() => {
            let chain = failure::chain(&err).join(": ");
            tracing::info!("{operation} failed: {chain}");
            ProviderError::Transport {
                operation: operation.to_string(),
                message: format!("AWS's answer could not be read: {chain}"),
            }
        }
        SdkError::ServiceError(se) => {
            let code = se.err().code().unwrap_or("Unknown").to_string();
            let message = se.err().message().unwrap_or("").to_string();
            let region = c.region();
            if super::REFUSED_CREDENTIALS.contains(&code.as_str())
                && failure::OPT_IN_REGIONS.contains(&region)
                && !code.starts_with("Expired")
            {
                return ProviderError::Local {
                    operation: operation.to_string(),
                    failure: Box::new(failure::Failure::Region {
                        region: region.to_string(),
                        detail: format!("{code}: {message}"),
                    }),
                };
            }
            ProviderError::Aws {
                operation: operation.to_string(),
                code,
                message,
            }
        }
        _ => match refused_assume_role(&err) {
            Some(refused) => refused,
            None => {
                let chain = failure::chain(&err).join(": ");
                tracing::info!("{operation} failed: {chain}");
                let own = failure::service_of(operation);
                match failure::classify(&err, |svc| c.endpoint(svc.unwrap_or(own))) {
                    Some(failure) => ProviderError::Local {
                        operation: operation.to_string(),
                        failure: Box::new(failure),
                    },
                    None => ProviderError::Transport {
                        operation: operation.to_string(),
                        message: chain,
                    },
                }
            }
        },
    }
}

/// STS's answer when loading a role's credentials failed because AWS
/// refused the base credentials (or the role): the call never left, but
/// the reason is AWS's, with its code, not the transport's.
fn refused_assume_role(err: &(dyn std::error::Error + 'static)) -> Option<ProviderError> {
    type AssumeRoleFailure = SdkError<
        aws_sdk_sts::operation::assume_role::AssumeRoleError,
        aws_sdk_sts::config::http::HttpResponse,
    >;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(SdkError::ServiceError(se)) = e.downcast_ref::<AssumeRoleFailure>() {
            return Some(ProviderError::Aws {
                operation: "AssumeRole".to_string(),
                code: se.err().code().unwrap_or("Unknown").to_string(),
                message: se.err().message().unwrap_or("").to_string(),
            });
        }
        cur = e.source();
    }
    None
}

pub(super) fn code_of(e: &ProviderError) -> Option<&str> {
    match e {
        ProviderError::Aws { code, .. } => Some(code),
        _ => None,
    }
}
