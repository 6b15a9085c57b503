//! `fido2Methods` (entra.md §1-3): the creation options Graph hands out, the body that
//! registers a credential, and the method Graph returns.
//!
//! Binary members of the POST body stay text here (base64url as sent): the wire type
//! must hold whatever a client sent, and [`WebauthnPublicKeyCredential::decode`] turns
//! it into bytes with the lenient decoder of the `webauthn` crate.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use webauthn::options::{PublicKeyCredentialCreationOptions, RegistrationResponse};

/// `@odata.type` of a FIDO2 method.
pub const FIDO2_METHOD_TYPE: &str = "#microsoft.graph.fido2AuthenticationMethod";
/// `@odata.type` of `publicKeyCredential`.
pub const PUBLIC_KEY_CREDENTIAL_TYPE: &str = "#microsoft.graph.webauthnPublicKeyCredential";
/// `@odata.type` of `publicKeyCredential.response`.
pub const ATTESTATION_RESPONSE_TYPE: &str =
    "#microsoft.graph.webauthnAuthenticatorAttestationResponse";
/// `@odata.type` of `publicKeyCredential.clientExtensionResults`.
pub const EXTENSION_OUTPUTS_TYPE: &str =
    "#microsoft.graph.webauthnAuthenticationExtensionsClientOutputs";

/// `GET .../fido2Methods/creationOptions`: not wrapped in `value` (entra.md §1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreationOptions {
    #[serde(
        rename = "@odata.context",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_context: Option<String>,
    /// When the challenge stops being accepted, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge_timeout_date_time: Option<String>,
    /// The options to hand to the authenticator's client, challenge verbatim.
    pub public_key: PublicKeyCredentialCreationOptions,
}

/// A registered FIDO2 method (the 201 body, and each item of the list).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fido2AuthenticationMethod {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// The method id (what DELETE takes).
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date_time: Option<String>,
    /// The authenticator's AAGUID (note Graph's spelling `aaGuid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Thumbprints (beta) of the attestation certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_certificates: Option<Vec<String>>,
    /// `attested` or `notAttested`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation_level: Option<String>,
    /// `deviceBound` (v1.0; the other value is presumably `synced`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passkey_type: Option<String>,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The `POST .../fido2Methods` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewFido2Method {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// Optional in v1.0; the tools put the key's serial here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    pub public_key_credential: WebauthnPublicKeyCredential,
}

/// `publicKeyCredential`: the client's registration output, binary members base64url.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebauthnPublicKeyCredential {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// The credential id, base64url without padding.
    pub id: String,
    pub response: WebauthnAttestationResponse,
    /// Client extension outputs; YubiKey tools send the authData extensions here.
    #[serde(default)]
    pub client_extension_results: Map<String, Value>,
    /// Members DSI and YL leave out (`type`, `rawId`, ...), kept as sent.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// `publicKeyCredential.response`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebauthnAttestationResponse {
    #[serde(
        rename = "@odata.type",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub odata_type: Option<String>,
    /// base64url clientDataJSON.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// base64url CBOR attestation object.
    #[serde(rename = "attestationObject")]
    pub attestation_object: String,
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

/// The decoded bytes of a [`WebauthnPublicKeyCredential`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCredential {
    pub id: Vec<u8>,
    pub client_data_json: Vec<u8>,
    pub attestation_object: Vec<u8>,
}

impl WebauthnPublicKeyCredential {
    /// Decodes the binary members (base64url or base64, padded or not).
    pub fn decode(&self) -> Result<DecodedCredential, webauthn::Error> {
        Ok(DecodedCredential {
            id: webauthn::b64::decode("publicKeyCredential.id", &self.id)?,
            client_data_json: webauthn::b64::decode(
                "publicKeyCredential.response.clientDataJSON",
                &self.response.client_data_json,
            )?,
            attestation_object: webauthn::b64::decode(
                "publicKeyCredential.response.attestationObject",
                &self.response.attestation_object,
            )?,
        })
    }
}

impl NewFido2Method {
    /// The documented v1.0 body (entra.md §2) for a client's registration output, with
    /// every `@odata.type` annotation and binary members base64url without padding.
    pub fn from_registration(display_name: Option<String>, reg: &RegistrationResponse) -> Self {
        let mut results = Map::new();
        results.insert("@odata.type".into(), EXTENSION_OUTPUTS_TYPE.into());
        results.extend(reg.client_extension_results.clone());
        Self {
            odata_type: Some(FIDO2_METHOD_TYPE.to_owned()),
            display_name,
            public_key_credential: WebauthnPublicKeyCredential {
                odata_type: Some(PUBLIC_KEY_CREDENTIAL_TYPE.to_owned()),
                id: webauthn::b64::encode(&reg.id),
                response: WebauthnAttestationResponse {
                    odata_type: Some(ATTESTATION_RESPONSE_TYPE.to_owned()),
                    client_data_json: webauthn::b64::encode(&reg.response.client_data_json),
                    attestation_object: webauthn::b64::encode(&reg.response.attestation_object),
                    other: Map::new(),
                },
                client_extension_results: results,
                other: Map::new(),
            },
        }
    }
}
