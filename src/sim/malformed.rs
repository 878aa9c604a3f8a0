//! The malformed-response fault: with `Behaviour::malformed_rate`, some calls
//! that succeeded are answered with a body a client cannot trust, to check
//! that clients fail with a clear error instead of panicking or acting on
//! garbage. The state change of the call has happened (as when AWS answers
//! and the connection then breaks); only the answer is damaged.
//!
//! The kind is drawn from the emulator's seeded generator, so a seed repeats
//! the same faults for the same order of requests. Each kind, for EKS (JSON)
//! and EC2/STS (XML) answers:
//!
//! - `truncated`: the body is cut in half (both protocols).
//! - `wrong_type`: JSON: the first string or boolean leaf becomes a value of
//!   another type (a string becomes the number `12345`, a boolean the string
//!   `"yes"`); XML: the first `true`/`false` text becomes `maybe`, and an
//!   answer without one is truncated instead.
//! - `unknown_enum`: JSON: every `status` and `type` member becomes
//!   `QUANTUM_FLUX`, a value no service model lists; an answer without one
//!   (or an XML answer) gets `wrong_type` instead.
//! - `missing_fields`: JSON: the answer's top-level member is emptied
//!   (`{"cluster": {}}`); XML: the response element keeps only its
//!   `requestId`.

use rand::Rng;
use serde_json::Value;

/// How an answer is damaged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    Truncated,
    WrongType,
    UnknownEnum,
    MissingFields,
}

impl Malformed {
    pub const ALL: [Malformed; 4] = [
        Malformed::Truncated,
        Malformed::WrongType,
        Malformed::UnknownEnum,
        Malformed::MissingFields,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Malformed::Truncated => "truncated",
            Malformed::WrongType => "wrong_type",
            Malformed::UnknownEnum => "unknown_enum",
            Malformed::MissingFields => "missing_fields",
        }
    }

    pub fn pick(rng: &mut impl Rng) -> Malformed {
        Malformed::ALL[rng.random_range(0..Malformed::ALL.len())]
    }
}

/// The damaged body, and the kind actually applied (a kind that does not fit
/// the answer falls back to another, as the module docs say).
pub fn damage(kind: Malformed, body: &str, json: bool) -> (String, Malformed) {
    if json {
        damage_json(kind, body)
    } else {
        damage_xml(kind, body)
    }
}

fn truncate(body: &str) -> String {
    let mut cut = body.len() / 2;
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    body[..cut].to_string()
}

fn damage_json(kind: Malformed, body: &str) -> (String, Malformed) {
    let Ok(mut v) = serde_json::from_str::<Value>(body) else {
        return (truncate(body), Malformed::Truncated);
    };
    match kind {
        Malformed::Truncated => (truncate(body), Malformed::Truncated),
        Malformed::WrongType => {
            if retype_first_leaf(&mut v) {
                (v.to_string(), Malformed::WrongType)
            } else {
                (truncate(body), Malformed::Truncated)
            }
        }
        Malformed::UnknownEnum => {
            if unknown_enums(&mut v) {
                (v.to_string(), Malformed::UnknownEnum)
            } else {
                damage_json(Malformed::WrongType, body)
            }
        }
        Malformed::MissingFields => {
            if let Value::Object(top) = &mut v {
                for (_, member) in top.iter_mut() {
                    *member = match member {
                        Value::Array(_) => Value::Array(Vec::new()),
                        _ => Value::Object(serde_json::Map::new()),
                    };
                }
            }
            (v.to_string(), Malformed::MissingFields)
        }
    }
}

fn retype_first_leaf(v: &mut Value) -> bool {
    match v {
        Value::String(_) => {
            *v = Value::from(12345);
            true
        }
        Value::Bool(_) => {
            *v = Value::from("yes");
            true
        }
        Value::Array(items) => items.iter_mut().any(retype_first_leaf),
        Value::Object(map) => map.values_mut().any(retype_first_leaf),
        _ => false,
    }
}

fn unknown_enums(v: &mut Value) -> bool {
    let mut changed = false;
    match v {
        Value::Object(map) => {
            for (k, member) in map.iter_mut() {
                if (k == "status" || k == "type") && member.is_string() {
                    *member = Value::from("QUANTUM_FLUX");
                    changed = true;
                } else {
                    changed |= unknown_enums(member);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                changed |= unknown_enums(item);
            }
        }
        _ => {}
    }
    changed
}

fn damage_xml(kind: Malformed, body: &str) -> (String, Malformed) {
    match kind {
        Malformed::Truncated => (truncate(body), Malformed::Truncated),
        Malformed::WrongType | Malformed::UnknownEnum => {
            for b in [">true<", ">false<"] {
                if let Some(i) = body.find(b) {
                    let mut out = body.to_string();
                    out.replace_range(i..i + b.len(), ">maybe<");
                    return (out, Malformed::WrongType);
                }
            }
            (truncate(body), Malformed::Truncated)
        }
        Malformed::MissingFields => match strip_children(body) {
            Some(out) => (out, Malformed::MissingFields),
            None => (truncate(body), Malformed::Truncated),
        },
    }
}

/// The root element with only its `requestId` (or `RequestId`) child.
fn strip_children(body: &str) -> Option<String> {
    let start = body
        .find("<?xml")
        .map_or(0, |i| body[i..].find("?>").map_or(0, |j| i + j + 2));
    let rest = &body[start..];
    let open_start = rest.find('<')?;
    let open_end = open_start + rest[open_start..].find('>')? + 1;
    let open = &rest[open_start..open_end];
    let name = open[1..open.len() - 1]
        .split_whitespace()
        .next()?
        .to_string();
    let request_id = ["requestId", "RequestId"].iter().find_map(|tag| {
        let a = body.find(&format!("<{tag}>"))?;
        let b = body[a..].find(&format!("</{tag}>"))? + a + tag.len() + 3;
        Some(body[a..b].to_string())
    });
    Some(format!(
        "{}{open}{}</{name}>",
        &body[..start],
        request_id.unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_damages_json_as_documented() {
        let body = r#"{"cluster":{"name":"a","status":"ACTIVE","resourcesVpcConfig":{"endpointPublicAccess":true}}}"#;
        let (t, k) = damage(Malformed::Truncated, body, true);
        assert_eq!(k, Malformed::Truncated);
        assert!(serde_json::from_str::<Value>(&t).is_err());
        let (w, k) = damage(Malformed::WrongType, body, true);
        assert_eq!(k, Malformed::WrongType);
        assert!(w.contains("\"name\":12345"), "{w}");
        let (u, k) = damage(Malformed::UnknownEnum, body, true);
        assert_eq!(k, Malformed::UnknownEnum);
        assert!(u.contains("\"status\":\"QUANTUM_FLUX\""), "{u}");
        let (m, k) = damage(Malformed::MissingFields, body, true);
        assert_eq!(
            (m.as_str(), k),
            (r#"{"cluster":{}}"#, Malformed::MissingFields)
        );
        // No enum member: falls back to a wrong type.
        let (_, k) = damage(Malformed::UnknownEnum, r#"{"clusters":["a"]}"#, true);
        assert_eq!(k, Malformed::WrongType);
    }

    #[test]
    fn each_kind_damages_xml_as_documented() {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeVpcAttributeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r-1</requestId><vpcId>vpc-1</vpcId><enableDnsSupport><value>true</value></enableDnsSupport></DescribeVpcAttributeResponse>";
        let (w, k) = damage(Malformed::WrongType, body, false);
        assert_eq!(k, Malformed::WrongType);
        assert!(w.contains("<value>maybe</value>"), "{w}");
        let (m, k) = damage(Malformed::MissingFields, body, false);
        assert_eq!(k, Malformed::MissingFields);
        assert!(m.ends_with("<DescribeVpcAttributeResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><requestId>r-1</requestId></DescribeVpcAttributeResponse>"), "{m}");
        let (t, k) = damage(Malformed::Truncated, body, false);
        assert_eq!(k, Malformed::Truncated);
        assert!(t.len() < body.len());
    }
}
