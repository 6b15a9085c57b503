//! `/webauthn-registration/api/v1/` bodies (okta.md §2). The spec marks no field
//! required; these types require what the flow cannot do without and default the rest.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// `ECKeyJWK`: a P-384 key (`use` `enc` for the transport key, `sig` for signing keys).
/// `x`/`y` are base64url; no `alg`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EcKeyJwk {
    pub kty: String,
    pub crv: String,
    pub kid: String,
    #[serde(rename = "use")]
    pub key_use: String,
    pub x: String,
    pub y: String,
}

/// `initiate-fulfillment-request` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentRequest {
    pub user_id: String,
    #[serde(default = "yubico")]
    pub fulfillment_provider: String,
    /// An array (the spec's `FulfillmentData`).
    #[serde(default, deserialize_with = "array_field")]
    pub fulfillment_data: Vec<FulfillmentData>,
}

/// One order line. The ids are strings here (integers at Yubico).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FulfillmentData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inventory_product_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customization_id: Option<String>,
}

/// `enroll` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentInitializationRequest {
    /// RP hostnames (no scheme), one credential each.
    #[serde(deserialize_with = "array_field")]
    pub enrollment_rp_ids: Vec<String>,
    #[serde(default = "yubico")]
    pub fulfillment_provider: String,
    pub user_id: String,
    /// One transport key (a JWK, not a JWKS).
    #[serde(rename = "yubicoTransportKeyJWK", deserialize_with = "single_jwk")]
    pub yubico_transport_key_jwk: EcKeyJwk,
}

/// `enroll` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentInitializationResponse {
    pub cred_requests: Vec<WebAuthnCredRequest>,
    pub fulfillment_provider: String,
    pub pin_request_jwe: String,
    pub user_id: String,
}

/// One credential request: the factor id, the JWE for the fulfiller, the response key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAuthnCredRequest {
    pub authenticator_enrollment_id: String,
    pub cred_request_jwe: String,
    pub key_id: String,
}

/// `activate` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentActivationRequest {
    #[serde(deserialize_with = "array_field")]
    pub cred_responses: Vec<WebAuthnCredResponse>,
    #[serde(default = "yubico")]
    pub fulfillment_provider: String,
    pub pin_response_jwe: String,
    /// The key's serial, as a string.
    pub serial: String,
    pub user_id: String,
    /// Firmware version, e.g. `5.4.3`.
    pub version: String,
    /// A bare array of JWKs; `{"keys":[...]}` is refused with a message saying so.
    #[serde(deserialize_with = "jwk_array")]
    pub yubico_signing_jwks: Vec<EcKeyJwk>,
}

/// One credential response. Reads `credResponseJwe` and the older `credResponseJWE`;
/// writes `credResponseJwe`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAuthnCredResponse {
    pub authenticator_enrollment_id: String,
    #[serde(alias = "credResponseJWE")]
    pub cred_response_jwe: String,
}

/// `activate` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrollmentActivationResponse {
    pub authenticator_enrollment_ids: Vec<String>,
    pub fulfillment_provider: String,
    pub user_id: String,
}

/// A string or an array of strings (YLABS sends `authenticatorEnrollmentId` as an array).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    /// Every id named.
    pub fn ids(&self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s.clone()],
            OneOrMany::Many(v) => v.clone(),
        }
    }
}

/// `send-pin` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PinRequest {
    pub authenticator_enrollment_id: OneOrMany,
    #[serde(default = "yubico")]
    pub fulfillment_provider: String,
    pub user_id: String,
}

/// An entry of `GET .../users/{userId}/enrollments`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebAuthnPreregistrationFactor {
    pub id: String,
    pub factor_type: String,
    pub provider: String,
    pub vendor_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment_provider: Option<String>,
    /// `PENDING_ACTIVATION`, `ACTIVE`, `FULFILLMENT_ERRORED`, ...
    pub status: String,
    pub created: String,
    pub last_updated: String,
    /// `credentialId`, `authenticatorName`, `presetPinAvailable`, ...
    #[serde(default)]
    pub profile: Map<String, Value>,
    #[serde(default, rename = "_links", skip_serializing_if = "Option::is_none")]
    pub links: Option<Value>,
}

fn yubico() -> String {
    crate::FULFILLMENT_PROVIDER.to_owned()
}

fn array_field<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = Value::deserialize(d)?;
    if !v.is_array() {
        return Err(serde::de::Error::custom(format!(
            "expected an array, found {}",
            kind(&v)
        )));
    }
    serde_json::from_value(v).map_err(serde::de::Error::custom)
}

fn jwk_array<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<EcKeyJwk>, D::Error> {
    let v = Value::deserialize(d)?;
    if let Some(o) = v.as_object()
        && o.contains_key("keys")
    {
        return Err(serde::de::Error::custom(
            "yubicoSigningJwks must be a bare array of JWKs, not a JWKS object {\"keys\":[...]}; send the JWKS's \"keys\" array",
        ));
    }
    if !v.is_array() {
        return Err(serde::de::Error::custom(format!(
            "yubicoSigningJwks must be an array of JWKs, found {}",
            kind(&v)
        )));
    }
    serde_json::from_value(v).map_err(serde::de::Error::custom)
}

fn single_jwk<'de, D: Deserializer<'de>>(d: D) -> Result<EcKeyJwk, D::Error> {
    let v = Value::deserialize(d)?;
    if v.as_object().is_some_and(|o| o.contains_key("keys")) || v.is_array() {
        return Err(serde::de::Error::custom(
            "yubicoTransportKeyJWK must be one JWK, not a JWKS or an array; pick one key from the transport JWKS",
        ));
    }
    serde_json::from_value(v).map_err(serde::de::Error::custom)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
