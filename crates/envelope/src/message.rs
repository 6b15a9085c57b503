//! The four message types of profile v1 and their JSON form. Each message is a JSON
//! object whose `typ` names its type; the structs here hold everything but `typ`, which
//! the [`Request`]/[`Response`] enums add and check.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use crate::error::{Error, Result, clip};
use crate::jwk::{KeyUse, PublicJwk};

/// `typ` of a credential request.
pub const CREDENTIAL_REQUEST_TYP: &str = "fido-prereg/credential-request+v1";
/// `typ` of a PIN request.
pub const PIN_REQUEST_TYP: &str = "fido-prereg/pin-request+v1";
/// `typ` of a credential response.
pub const CREDENTIAL_RESPONSE_TYP: &str = "fido-prereg/credential-response+v1";
/// `typ` of a PIN response.
pub const PIN_RESPONSE_TYP: &str = "fido-prereg/pin-response+v1";

/// Shortest and longest PIN the profile carries (CTAP 2.1 bounds, in characters).
pub const PIN_LEN: std::ops::RangeInclusive<usize> = 4..=63;

/// A request, as the fulfiller opens it.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Register one relying party's credential on the key.
    Credential(CredentialRequest),
    /// Set the key's PIN.
    Pin(PinRequest),
}

/// A response, as the requester opens it.
#[derive(Debug, Clone, PartialEq)]
pub enum Response {
    /// The credential made on the key.
    Credential(CredentialResponse),
    /// The PIN set on the key.
    Pin(PinResponse),
}

/// Credential request (one per relying party to register on the key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialRequest {
    /// The requester's response key (public half, `use: enc`); its `kid` is the `keyId`.
    pub response_key: PublicJwk,
    /// The WebAuthn origin to put in `clientDataJSON`.
    pub origin: String,
    /// WebAuthn `PublicKeyCredentialCreationOptions`, JSON form, exactly as the IdP
    /// returned it (owned by the webauthn crate).
    pub public_key: Value,
}

/// PIN request (one per key).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinRequest {
    /// The requester's response key (public half, `use: enc`).
    pub response_key: PublicJwk,
    /// How the PIN is chosen.
    pub pin: PinChoice,
    /// The minimum PIN length to set on the key.
    pub min_pin_length: u8,
    /// Whether the key must demand a PIN change on first use.
    pub force_pin_change: bool,
}

/// How the fulfiller chooses the PIN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", try_from = "PinChoiceWire")]
pub enum PinChoice {
    /// A random PIN of `length` decimal digits (4 to 63).
    Generate {
        /// Number of digits.
        length: u8,
    },
    /// This PIN (4 to 63 characters).
    Static {
        /// The PIN.
        value: Pin,
    },
    /// Set no PIN.
    None,
}

/// The JSON form of [`PinChoice`], read strictly: serde's internally tagged enums ignore
/// extra members on unit variants (`{"type":"none","value":..}` would pass), so the
/// members are checked against the `type` here.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PinChoiceWire {
    #[serde(rename = "type")]
    kind: String,
    length: Option<u8>,
    value: Option<Pin>,
}

impl TryFrom<PinChoiceWire> for PinChoice {
    type Error = String;

    fn try_from(w: PinChoiceWire) -> Result<Self, String> {
        match (w.kind.as_str(), w.length, w.value) {
            ("generate", Some(length), None) => Ok(PinChoice::Generate { length }),
            ("static", None, Some(value)) => Ok(PinChoice::Static { value }),
            ("none", None, None) => Ok(PinChoice::None),
            ("generate" | "static" | "none", _, _) => {
                Err("pin: generate takes only length, static only value, none nothing".to_owned())
            }
            _ => Err("pin.type must be generate, static or none".to_owned()),
        }
    }
}

/// Credential response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialResponse {
    /// [`crate::request_hash`] of the request JWE this answers.
    pub request_hash: String,
    /// The key's serial number.
    pub serial: String,
    /// The key's firmware version, e.g. `5.7.1`.
    pub firmware_version: String,
    /// The key's AAGUID.
    pub aaguid: String,
    /// WebAuthn `PublicKeyCredential` (registration), JSON form (owned by the webauthn
    /// crate).
    pub credential: Value,
    /// When the fulfiller made the response (seconds since the Unix epoch).
    pub iat: u64,
}

/// PIN response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinResponse {
    /// [`crate::request_hash`] of the request JWE this answers.
    pub request_hash: String,
    /// The key's serial number.
    pub serial: String,
    /// The PIN set on the key.
    pub pin: Pin,
    /// Whether the key demands a PIN change on first use.
    pub force_pin_change: bool,
    /// When the fulfiller made the response (seconds since the Unix epoch).
    pub iat: u64,
}

/// A PIN: zeroized on drop, `Debug` prints `[redacted]`. Serializes as a plain string.
#[derive(Clone, PartialEq, Eq)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Wraps a PIN.
    pub fn new(pin: impl Into<String>) -> Self {
        Self(Zeroizing::new(pin.into()))
    }

    /// The PIN text. Keep it out of logs.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

impl Serialize for Pin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Pin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Pin::new)
    }
}

impl Request {
    /// The message type (`typ`).
    pub fn typ(&self) -> &'static str {
        match self {
            Request::Credential(_) => CREDENTIAL_REQUEST_TYP,
            Request::Pin(_) => PIN_REQUEST_TYP,
        }
    }

    /// The requester's response key, to seal the response to.
    pub fn response_key(&self) -> &PublicJwk {
        match self {
            Request::Credential(r) => &r.response_key,
            Request::Pin(r) => &r.response_key,
        }
    }

    /// Checks the rules serde cannot express (key use, PIN lengths).
    pub fn validate(&self) -> Result<()> {
        match self {
            Request::Credential(r) => r.validate(),
            Request::Pin(r) => r.validate(),
        }
    }

    /// The message as UTF-8 JSON with `typ` first (zeroized on drop: a static PIN may be
    /// inside).
    pub fn to_json_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Request::Credential(r) => tagged(self.typ(), r),
            Request::Pin(r) => tagged(self.typ(), r),
        }
    }

    /// The message as a JSON value (members in alphabetical order).
    pub fn to_value(&self) -> Result<Value> {
        to_value(&self.to_json_bytes()?)
    }

    /// Parses and validates a request from its JSON form.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        let (typ, body) = untag(bytes, "request")?;
        let request = match typ.as_str() {
            CREDENTIAL_REQUEST_TYP => Request::Credential(body_as(body, "credential request")?),
            PIN_REQUEST_TYP => Request::Pin(body_as(body, "PIN request")?),
            _ => {
                return Err(Error::WrongMessageType {
                    expected: "a credential or PIN request",
                    found: clip(&typ),
                });
            }
        };
        request.validate()?;
        Ok(request)
    }
}

impl Response {
    /// The message type (`typ`).
    pub fn typ(&self) -> &'static str {
        match self {
            Response::Credential(_) => CREDENTIAL_RESPONSE_TYP,
            Response::Pin(_) => PIN_RESPONSE_TYP,
        }
    }

    /// The `request_hash` it carries.
    pub fn request_hash(&self) -> &str {
        match self {
            Response::Credential(r) => &r.request_hash,
            Response::Pin(r) => &r.request_hash,
        }
    }

    /// The key serial it names.
    pub fn serial(&self) -> &str {
        match self {
            Response::Credential(r) => &r.serial,
            Response::Pin(r) => &r.serial,
        }
    }

    pub(crate) fn request_hash_mut(&mut self) -> &mut String {
        match self {
            Response::Credential(r) => &mut r.request_hash,
            Response::Pin(r) => &mut r.request_hash,
        }
    }

    /// Checks the rules serde cannot express (non-empty serial, PIN length).
    pub fn validate(&self) -> Result<()> {
        match self {
            Response::Credential(r) => {
                non_empty(&r.serial, "serial")?;
                if !is_uuid(&r.aaguid) {
                    return Err(Error::Payload(
                        "aaguid must be a UUID (8-4-4-4-12 hex digits)".into(),
                    ));
                }
                if !r.credential.is_object() {
                    return Err(Error::Payload("credential must be a JSON object".into()));
                }
            }
            Response::Pin(r) => {
                non_empty(&r.serial, "serial")?;
                pin_text(r.pin.expose(), "pin", "pin")?;
            }
        }
        Ok(())
    }

    /// The message as UTF-8 JSON with `typ` first (zeroized on drop: a PIN may be inside).
    pub fn to_json_bytes(&self) -> Result<Zeroizing<Vec<u8>>> {
        match self {
            Response::Credential(r) => tagged(self.typ(), r),
            Response::Pin(r) => tagged(self.typ(), r),
        }
    }

    /// The message as a JSON value (members in alphabetical order).
    pub fn to_value(&self) -> Result<Value> {
        to_value(&self.to_json_bytes()?)
    }

    /// Parses and validates a response from its JSON form.
    pub fn from_json_bytes(bytes: &[u8]) -> Result<Self> {
        let (typ, body) = untag(bytes, "response")?;
        let response = match typ.as_str() {
            CREDENTIAL_RESPONSE_TYP => Response::Credential(body_as(body, "credential response")?),
            PIN_RESPONSE_TYP => Response::Pin(body_as(body, "PIN response")?),
            _ => {
                return Err(Error::WrongMessageType {
                    expected: "a credential or PIN response",
                    found: clip(&typ),
                });
            }
        };
        response.validate()?;
        Ok(response)
    }
}

impl CredentialRequest {
    fn validate(&self) -> Result<()> {
        self.response_key.require_use(KeyUse::Enc)?;
        non_empty(&self.origin, "origin")?;
        if !self.public_key.is_object() {
            return Err(Error::Payload("public_key must be a JSON object".into()));
        }
        Ok(())
    }
}

impl PinRequest {
    fn validate(&self) -> Result<()> {
        self.response_key.require_use(KeyUse::Enc)?;
        pin_length(usize::from(self.min_pin_length), "min_pin_length")?;
        // A PIN shorter than min_pin_length is the fulfiller's to refuse (it names both
        // numbers); the envelope only keeps PINs a key could take at all.
        match &self.pin {
            PinChoice::Generate { length } => pin_length(usize::from(*length), "pin.length"),
            PinChoice::Static { value } => {
                pin_text(value.expose(), "pin.value length", "pin.value")
            }
            PinChoice::None => Ok(()),
        }
    }
}

fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn non_empty(s: &str, name: &str) -> Result<()> {
    if s.is_empty() {
        Err(Error::Payload(format!("{name} must not be empty")))
    } else {
        Ok(())
    }
}

/// A PIN as text: 4 to 63 code points (the profile's range, CTAP's minimum counts code
/// points), and at most 63 bytes of UTF-8 (CTAP 2.1 §6.5.5.5 pads the PIN to 64 bytes and
/// refuses longer ones, so `"ü"` counts twice there).
fn pin_text(pin: &str, length_name: &str, name: &str) -> Result<()> {
    pin_length(pin.chars().count(), length_name)?;
    if pin.len() > MAX_PIN_BYTES {
        return Err(Error::Payload(format!(
            "{name} is {} bytes in UTF-8; a FIDO2 key takes at most {MAX_PIN_BYTES}",
            pin.len()
        )));
    }
    Ok(())
}

/// CTAP's limit on a PIN's UTF-8 encoding.
const MAX_PIN_BYTES: usize = 63;

fn pin_length(n: usize, name: &str) -> Result<()> {
    if PIN_LEN.contains(&n) {
        Ok(())
    } else {
        Err(Error::Payload(format!(
            "{name} must be between {} and {}",
            PIN_LEN.start(),
            PIN_LEN.end()
        )))
    }
}

#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    typ: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

fn tagged<T: Serialize>(typ: &str, body: &T) -> Result<Zeroizing<Vec<u8>>> {
    serde_json::to_vec(&Tagged { typ, body })
        .map(Zeroizing::new)
        .map_err(|_| Error::Payload("message could not be encoded as JSON".into()))
}

fn to_value(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes)
        .map_err(|_| Error::Payload("message could not be encoded as JSON".into()))
}

/// Parses a message, refusing duplicate members, and splits off its `typ`.
fn untag(bytes: &[u8], what: &'static str) -> Result<(String, Map<String, Value>)> {
    let value = crate::json::parse_strict(bytes, what).map_err(|_| {
        Error::Payload(format!(
            "{what} is not a JSON object without duplicate members"
        ))
    })?;
    let Value::Object(mut map) = value else {
        return Err(Error::Payload(format!("{what} is not a JSON object")));
    };
    match map.remove("typ") {
        Some(Value::String(typ)) => Ok((typ, map)),
        _ => Err(Error::Payload(format!("{what} has no string typ"))),
    }
}

/// Deserializes a message body, reporting missing/unknown fields by name but never
/// quoting a value (serde's "invalid type" messages may contain payload text).
fn body_as<T: serde::de::DeserializeOwned>(body: Map<String, Value>, what: &str) -> Result<T> {
    serde_json::from_value(Value::Object(body)).map_err(|e| {
        let text = e.to_string();
        let safe = [
            "missing field",
            "unknown field",
            "duplicate field",
            "unknown variant",
        ]
        .iter()
        .any(|p| text.starts_with(p));
        if safe {
            let first = text.split(", expected").next().unwrap_or_default();
            Error::Payload(format!("{what}: {}", clip(first)))
        } else {
            crate::error::json_error(what, &e)
        }
    })
}
