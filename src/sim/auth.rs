//! Checked credentials, for worlds that declare `[[account]]` tables: a key
//! id the world does not know is refused, a key with a secret has its SigV4
//! signature verified, and a session from `AssumeRole` expires. A world
//! without `[[account]]` accepts any key, as it always did.
//!
//! The signature is recomputed from the request as AWS does for EKS, EC2 and
//! STS (Signature Version 4, the signed headers the client chose, the path
//! encoded twice, the query sorted, the payload's SHA-256) and compared with
//! the one the client sent.

use axum::http::HeaderMap;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::state::State;

/// Why a request's credentials were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The key id is not one the world knows (or its session token is wrong).
    Unknown,
    /// The key is known and has a secret, and the signature does not match.
    BadSignature,
    /// A session from `AssumeRole` whose time is up.
    Expired,
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorization {
    pub access_key: String,
    /// `DATE/REGION/SERVICE/aws4_request`
    pub scope: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

pub fn parse_authorization(header: &str) -> Option<Authorization> {
    let rest = header.strip_prefix("AWS4-HMAC-SHA256")?;
    let mut cred = None;
    let mut signed = None;
    let mut signature = None;
    for part in rest.split(',').map(str::trim) {
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (access_key, scope) = cred?.split_once('/')?;
    let mut parts = scope.split('/');
    let date = parts.next()?.to_string();
    let region = parts.next()?.to_string();
    let service = parts.next()?.to_string();
    Some(Authorization {
        access_key: access_key.to_string(),
        scope: scope.to_string(),
        date,
        region,
        service,
        signed_headers: signed?.split(';').map(|h| h.to_ascii_lowercase()).collect(),
        signature: signature?.to_string(),
    })
}

/// Checks the credentials of one request against the state: `Ok` when the
/// world does not check credentials or the request passes.
pub fn check(
    state: &State,
    authorization: &str,
    request: &Request<'_>,
    now: Instant,
) -> Result<(), Refusal> {
    if !state.credentials_checked {
        return Ok(());
    }
    let Some(auth) = parse_authorization(authorization) else {
        return Err(Refusal::Unknown);
    };
    if !state.access_keys.contains_key(&auth.access_key) {
        return Err(Refusal::Unknown);
    }
    if let Some(session) = state.sessions.get(&auth.access_key) {
        let token = request
            .headers
            .get("x-amz-security-token")
            .and_then(|v| v.to_str().ok());
        if token != Some(session.token.as_str()) {
            return Err(Refusal::Unknown);
        }
    }
    if let Some(secret) = state.secrets.get(&auth.access_key) {
        if signature(secret, &auth, request) != Some(auth.signature.clone()) {
            return Err(Refusal::BadSignature);
        }
    }
    if let Some(session) = state.sessions.get(&auth.access_key) {
        if now >= session.expires {
            return Err(Refusal::Expired);
        }
    }
    Ok(())
}

/// What a signature covers.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent (percent-encoded once).
    pub path: &'a str,
    /// The query string as sent, without `?`.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The signature AWS would compute for this request with `secret`; `None`
/// when a signed header is missing or not text.
pub fn signature(secret: &str, auth: &Authorization, req: &Request<'_>) -> Option<String> {
    let amz_date = req.headers.get("x-amz-date")?.to_str().ok()?;
    let mut canonical = String::new();
    canonical.push_str(req.method);
    canonical.push('\n');
    canonical.push_str(&canonical_path(req.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(req.query));
    canonical.push('\n');
    for name in &auth.signed_headers {
        let values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().map(collapse_spaces))
            .collect::<Result<_, _>>()
            .ok()?;
        if values.is_empty() {
            return None;
        }
        canonical.push_str(name);
        canonical.push(':');
        canonical.push_str(&values.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&auth.signed_headers.join(";"));
    canonical.push('\n');
    let payload = match req
        .headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    {
        Some(h) => h.to_string(),
        None => hex::encode(Sha256::digest(req.body)),
    };
    canonical.push_str(&payload);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{}\n{}",
        auth.scope,
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), auth.date.as_bytes());
    for part in [auth.region.as_str(), auth.service.as_str(), "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    Some(hex::encode(hmac(&key, string_to_sign.as_bytes())))
}

/// HMAC-SHA256 (RFC 2104).
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// SigV4's URI encoding: everything but unreserved characters (and `/` when
/// `keep_slash`) as `%XX`, upper-case hex.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Services other than S3 encode the already-encoded path once more.
fn canonical_path(raw: &str) -> String {
    if raw.is_empty() {
        return "/".to_string();
    }
    uri_encode(raw, true)
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `get-vanilla-query-order-key-case` case of AWS's SigV4 test suite.
    #[test]
    fn computes_the_signature_of_the_aws_test_suite() {
        let mut headers = HeaderMap::new();
        headers.insert("host", "example.amazonaws.com".parse().unwrap());
        headers.insert("x-amz-date", "20150830T123600Z".parse().unwrap());
        let auth = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        )
        .unwrap();
        let req = Request {
            method: "GET",
            path: "/",
            query: "Param2=value2&Param1=value1",
            headers: &headers,
            body: b"",
        };
        assert_eq!(
            signature("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &auth, &req).as_deref(),
            Some(auth.signature.as_str())
        );
        let wrong = signature("another-secret", &auth, &req);
        assert_ne!(wrong.as_deref(), Some(auth.signature.as_str()));
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            hex::encode(hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn the_path_is_encoded_twice_and_the_query_sorted() {
        assert_eq!(canonical_path("/clusters/a%20b"), "/clusters/a%2520b");
        assert_eq!(canonical_query("b=2&a=x%2Fy&a=1"), "a=1&a=x%2Fy&b=2");
    }
}
