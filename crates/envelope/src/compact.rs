//! Pieces shared by compact JWE and JWS: splitting a token, reading its protected
//! header, and checking header members against the profile's closed lists.

use serde_json::{Map, Value};

use crate::error::{Error, Result, clip};
use crate::{MAX_INPUT, b64};

/// Splits a compact token into exactly `N` dot-separated parts, after the size cap.
pub(crate) fn split<'a, const N: usize>(
    token: &'a str,
    what: &'static str,
) -> Result<[&'a str; N]> {
    if token.len() > MAX_INPUT {
        return Err(Error::TooLarge { max: MAX_INPUT });
    }
    let mut out = [""; N];
    let mut it = token.split('.');
    for slot in &mut out {
        *slot = it.next().ok_or(Error::Malformed {
            what,
            detail: if N == 5 {
                "a compact JWE has exactly 5 parts"
            } else {
                "a compact JWS has exactly 3 parts"
            },
        })?;
    }
    if it.next().is_some() {
        return Err(Error::Malformed {
            what,
            detail: if N == 5 {
                "a compact JWE has exactly 5 parts"
            } else {
                "a compact JWS has exactly 3 parts"
            },
        });
    }
    Ok(out)
}

/// Decodes and parses a protected header into a JSON object.
pub(crate) fn header_object(header_b64: &str, what: &'static str) -> Result<Map<String, Value>> {
    let bytes = b64::decode(header_b64, what)?;
    match crate::json::parse_strict(&bytes, what)? {
        Value::Object(m) => Ok(m),
        _ => Err(Error::Malformed {
            what,
            detail: "protected header is not a JSON object",
        }),
    }
}

/// Refuses header members outside `allowed`, naming the well-known dangerous ones.
pub(crate) fn check_members(header: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    for name in header.keys() {
        if allowed.contains(&name.as_str()) {
            continue;
        }
        return Err(match name.as_str() {
            "zip" => Error::UnsupportedAlgorithm {
                which: "zip",
                value: value_text(header.get("zip")),
                allowed: "no compression",
            },
            "crit" => Error::UnsupportedAlgorithm {
                which: "crit",
                value: value_text(header.get("crit")),
                allowed: "no critical extensions",
            },
            "jku" | "x5u" | "jwk" | "x5c" | "x5t" | "x5t#S256" => Error::Header(format!(
                "{name} is not accepted: keys come only from the caller's key sets"
            )),
            other => Error::Header(format!("unknown header parameter {:?}", clip(other))),
        });
    }
    Ok(())
}

/// A required string member of a header.
pub(crate) fn string_member<'a>(
    header: &'a Map<String, Value>,
    name: &'static str,
) -> Result<&'a str> {
    match header.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Error::Header(format!("{name} must be a string"))),
        None => Err(Error::Header(format!("{name} is missing"))),
    }
}

/// Checks that `name` is exactly `want`, else reports it as outside the profile.
pub(crate) fn require_alg(
    header: &Map<String, Value>,
    name: &'static str,
    want: &'static str,
) -> Result<()> {
    match header.get(name) {
        Some(Value::String(s)) if s == want => Ok(()),
        None => Err(Error::Header(format!("{name} is missing"))),
        other => Err(Error::UnsupportedAlgorithm {
            which: name,
            value: value_text(other),
            allowed: want,
        }),
    }
}

pub(crate) fn value_text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => clip(s),
        Some(other) => clip(&other.to_string()),
        None => String::new(),
    }
}
