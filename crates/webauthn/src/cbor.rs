//! Small helpers over `ciborium::Value` for the strict reads WebAuthn needs.

use ciborium::Value;

use crate::Error;

/// Nesting limit for any CBOR we read; WebAuthn structures are a few levels deep.
const RECURSION_LIMIT: usize = 16;

/// Decode one CBOR item from the front of `bytes`; returns it and how many bytes it
/// used, so callers can continue after it or refuse trailing bytes.
pub(crate) fn decode_prefix(what: &'static str, bytes: &[u8]) -> Result<(Value, usize), Error> {
    let mut rest = bytes;
    let value: Value = ciborium::de::from_reader_with_recursion_limit(&mut rest, RECURSION_LIMIT)
        .map_err(|e| match e {
        ciborium::de::Error::Io(_) => Error::Truncated { what },
        other => Error::Cbor {
            what,
            detail: other.to_string(),
        },
    })?;
    Ok((value, bytes.len() - rest.len()))
}

/// Decode exactly one CBOR item that fills `bytes`.
pub(crate) fn decode_exact(what: &'static str, bytes: &[u8]) -> Result<Value, Error> {
    let (value, used) = decode_prefix(what, bytes)?;
    if used != bytes.len() {
        return Err(Error::TrailingBytes {
            what,
            count: bytes.len() - used,
        });
    }
    Ok(value)
}

/// More entries than any WebAuthn map has (COSE keys, attStmt, extensions);
/// bounds the duplicate-key check.
const MAX_MAP_ENTRIES: usize = 64;

/// A CBOR map's entries, refusing duplicate keys and oversized maps.
pub(crate) fn map<'a>(what: &'static str, value: &'a Value) -> Result<&'a [(Value, Value)], Error> {
    let Value::Map(entries) = value else {
        return Err(cbor_err(what, "expected a map"));
    };
    if entries.len() > MAX_MAP_ENTRIES {
        return Err(cbor_err(what, "map has too many entries"));
    }
    for (i, (k, _)) in entries.iter().enumerate() {
        if entries.iter().skip(i + 1).any(|(other, _)| other == k) {
            return Err(cbor_err(what, "duplicate map key"));
        }
    }
    Ok(entries)
}

/// Look up an integer key in map entries.
pub(crate) fn get_int(entries: &[(Value, Value)], key: i64) -> Option<&Value> {
    entries
        .iter()
        .find(|(k, _)| as_int(k) == Some(i128::from(key)))
        .map(|(_, v)| v)
}

/// Look up a text key in map entries.
pub(crate) fn get_text<'a>(entries: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    entries
        .iter()
        .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
        .map(|(_, v)| v)
}

pub(crate) fn as_int(value: &Value) -> Option<i128> {
    match value {
        Value::Integer(i) => Some(i128::from(*i)),
        _ => None,
    }
}

pub(crate) fn cbor_err(what: &'static str, detail: &str) -> Error {
    Error::Cbor {
        what,
        detail: detail.to_owned(),
    }
}
