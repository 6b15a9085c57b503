//! JSON parsing helpers: reject duplicate member names anywhere in a document (RFC 7515
//! §5.2 allows rejecting them, and a parser that silently keeps the last one invites
//! parser-differential attacks between implementations).

use std::collections::HashSet;
use std::fmt;

use serde::Deserializer;
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::error::{Error, Result};

/// Parses `bytes` as JSON, refusing duplicate member names at any depth.
/// Inputs over [`crate::MAX_INPUT`] are refused unparsed.
pub(crate) fn parse_strict(bytes: &[u8], what: &'static str) -> Result<serde_json::Value> {
    if bytes.len() > crate::MAX_INPUT {
        return Err(Error::TooLarge {
            max: crate::MAX_INPUT,
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    NoDuplicates
        .deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(|e| {
            if e.is_data() {
                Error::Malformed {
                    what,
                    detail: "duplicate member name",
                }
            } else {
                Error::Malformed {
                    what,
                    detail: "not valid JSON",
                }
            }
        })?;
    serde_json::from_slice(bytes).map_err(|_| Error::Malformed {
        what,
        detail: "not valid JSON",
    })
}

/// A visitor that walks a document and fails on the first repeated key in an object.
#[derive(Clone, Copy)]
struct NoDuplicates;

impl<'de> DeserializeSeed<'de> for NoDuplicates {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for NoDuplicates {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(self)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = HashSet::new();
        while let Some(key) = map.next_key::<String>()? {
            if !seen.insert(key) {
                return Err(de::Error::custom("duplicate member name"));
            }
            map.next_value_seed(self)?;
        }
        Ok(())
    }
}
