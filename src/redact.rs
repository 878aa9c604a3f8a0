//! Keeps credentials out of the logs. At `-vvv` / `RUST_LOG=trace` the AWS
//! SDK logs the resolved identity (with the access key id), endpoint
//! parameters and the requests it signs; every log line goes through
//! [`RedactingStderr`], which replaces the credentials of the environment and
//! anything that follows a credential field name with `** redacted **`.
//!
//! This module owns only the scrubbing of text; which lines are logged is
//! `init_logging`'s decision.

use std::io::Write;
use std::sync::Arc;

const REDACTED: &str = "** redacted **";

/// Text after one of these runs to the closing delimiter and is redacted.
const MARKERS: [(&str, char); 8] = [
    ("access_key_id: \"", '"'),
    ("secret_access_key: \"", '"'),
    ("session_token: \"", '"'),
    ("Credential=", '/'),
    ("x-amz-security-token\", \"", '"'),
    ("X-Amz-Security-Token=", '&'),
    ("AWS_SECRET_ACCESS_KEY=", ' '),
    ("AWS_SESSION_TOKEN=", ' '),
];

/// Replaces `secrets` and every marked value in `text`.
pub fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), REDACTED);
        }
    }
    for (marker, end) in MARKERS {
        let mut from = 0;
        while let Some(i) = out[from..].find(marker) {
            let start = from + i + marker.len();
            let stop = out[start..]
                .find([end, '\n'])
                .map_or(out.len(), |j| start + j);
            if out[start..stop] != *REDACTED {
                out.replace_range(start..stop, REDACTED);
            }
            from = start + REDACTED.len().min(out.len() - start);
        }
    }
    out
}

/// A `tracing` writer to stderr that redacts each event before writing it.
#[derive(Clone)]
pub struct RedactingStderr {
    secrets: Arc<Vec<String>>,
}

impl RedactingStderr {
    /// Redacts the credentials in the process environment, besides the
    /// marked fields.
    pub fn from_env() -> Self {
        let secrets = [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
        ]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        // Too short to be a credential, and would shred ordinary text.
        .filter(|v| v.len() >= 8)
        .collect();
        RedactingStderr {
            secrets: Arc::new(secrets),
        }
    }
}

/// One event's text, written to stderr when dropped (the fmt layer makes a
/// writer per event).
pub struct EventWriter {
    buf: Vec<u8>,
    secrets: Arc<Vec<String>>,
}

impl Write for EventWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buf);
        // Nowhere to report a failed log write; losing the line is the best
        // a logger can do.
        let _ = std::io::stderr().write_all(redact(&text, &self.secrets).as_bytes());
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = EventWriter;

    fn make_writer(&'a self) -> EventWriter {
        EventWriter {
            buf: Vec::new(),
            secrets: self.secrets.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_known_values_and_marked_fields() {
        let secrets = vec!["TOKENLEAKCHECK".to_string()];
        let cases = [
            (
                r#"Credentials { access_key_id: "AKIDX1", secret_access_key: "** redacted **" }"#,
                r#"Credentials { access_key_id: "** redacted **", secret_access_key: "** redacted **" }"#,
            ),
            (
                "Authorization: AWS4-HMAC-SHA256 Credential=AKIDX1/20240101/us-east-1/eks/aws4_request",
                "Authorization: AWS4-HMAC-SHA256 Credential=** redacted **/20240101/us-east-1/eks/aws4_request",
            ),
            (
                r#"("x-amz-security-token", "abc=="), ("host", "h")"#,
                r#"("x-amz-security-token", "** redacted **"), ("host", "h")"#,
            ),
            ("token TOKENLEAKCHECK here", "token ** redacted ** here"),
            ("nothing to see", "nothing to see"),
            ("access_key_id: \"unterminated", "access_key_id: \"** redacted **"),
        ];
        for (input, want) in cases {
            assert_eq!(redact(input, &secrets), want, "{input}");
        }
    }
}
