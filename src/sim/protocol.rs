//! What every emulated operation shares: the parsed request, the error shape,
//! and the SigV4 credential scope that says which region and account a call
//! is for.

/// An AWS error, rendered by the protocol of the service that raised it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AwsError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The `clusterName` member EKS puts in the error body of a call on a
    /// cluster (the shapes that have it in the `eks` service model).
    pub cluster_name: Option<String>,
}

impl AwsError {
    pub fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        AwsError {
            status,
            code: code.to_string(),
            message: message.into(),
            cluster_name: None,
        }
    }

    /// The same error, naming the cluster the call was on.
    pub fn on_cluster(mut self, name: &str) -> Self {
        self.cluster_name = Some(name.to_string());
        self
    }
}

/// The credential scope of a SigV4 `Authorization` header:
/// `AWS4-HMAC-SHA256 Credential=AKID/DATE/REGION/SERVICE/aws4_request, ...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

pub fn parse_scope(authorization: &str) -> Option<Scope> {
    let rest = authorization.strip_prefix("AWS4-HMAC-SHA256")?;
    let cred = rest
        .split(',')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("Credential="))?;
    let mut parts = cred.split('/');
    let access_key = parts.next()?.to_string();
    let _date = parts.next()?;
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    if parts.next()? != "aws4_request" || access_key.is_empty() || region.is_empty() {
        return None;
    }
    Some(Scope {
        access_key,
        region,
        service,
    })
}

/// A successful answer's body and content type.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_credential_scope() {
        let h = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261128/eu-west-1/eks/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc";
        assert_eq!(
            parse_scope(h),
            Some(Scope {
                access_key: "AKIDEXAMPLE".into(),
                region: "eu-west-1".into(),
                service: "eks".into()
            })
        );
        assert_eq!(parse_scope("Basic abc"), None);
        assert_eq!(
            parse_scope("AWS4-HMAC-SHA256 Credential=AK/2026/us-east-1"),
            None
        );
    }
}
