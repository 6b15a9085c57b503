//! Real keys over USB (cargo feature `usb`; docs/depot.md "Real keys over USB"): the
//! depot programs the one FIDO key plugged into its machine through
//! [`ctap_hid_fido2`] (CTAP 2.1 over HID, hidapi on hidraw).
//!
//! [`UsbKey`] is an [`authenticator::KeyProgrammer`], so a real key goes through exactly
//! the steps the virtual key does ([`crate::fulfiller::program_fido_key`]: refuse a key
//! that is not factory fresh, PIN, credentials built by the same platform half, PIN
//! policy); [`UsbKeys`] is the depot's [`KeyFactory`] around it. What differs:
//! - ctap-hid-fido2 hashes the clientDataJSON itself, so the requests carry it
//!   ([`MakeCredentialRequest::client_data_json`]) and it is checked against the hash;
//! - the key's serial number is not readable over CTAP: the desk gives it (the depot
//!   runs with `serial_from_desk`), and the AAGUID and attestation are the key's own;
//! - the "key state file" is a receipt (serial number, AAGUID, credential ids): the
//!   secrets stay on the key;
//! - the library offers no authenticatorReset: a key that is not fresh is refused, and
//!   resetting it is the operator's decision with the vendor's tool.
//!
//! Nothing here runs in the tests (no key is plugged into a test machine); the
//! conversions between this crate's types and the library's are unit tested with the
//! library's own parser.

use crate::fulfiller::{
    KeyFactory, KeySpec, MadeKey, ProgramError, program_fido_key, require_fresh,
};
use authenticator::cbor::ExtensionOutputs;
use authenticator::{
    AuthenticatorInfo, Error, GetAssertionRequest, GetAssertionResponse, KeyProgrammer,
    MakeCredentialRequest, MakeCredentialResponse, Pin, Result, User,
};
use ctap_hid_fido2::fidokey::credential_management::credential_management_params::CredentialProtectionPolicy;
use ctap_hid_fido2::fidokey::make_credential::{
    Attestation, CredentialSupportedKeyType, Extension as Mext, MakeCredentialArgsBuilder,
};
use ctap_hid_fido2::fidokey::{FidoKeyHid, GetAssertionArgsBuilder};
use ctap_hid_fido2::public_key_credential_user_entity::PublicKeyCredentialUserEntity;
use ctap_hid_fido2::{FidoKeyHidFactory, LibCfg};
use uuid::Uuid;

/// The format tag of the receipt a USB-programmed key's hand-over carries.
pub const RECEIPT_FORMAT: &str = "prereg-usb-key-receipt/1";

/// The one FIDO key plugged into this machine, over USB HID.
pub struct UsbKey {
    device: FidoKeyHid,
}

fn device(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Device(format!("{what}: {e}"))
}

impl UsbKey {
    /// Opens the one FIDO key plugged in; refuses none and several (which key would be
    /// programmed must never be a guess).
    pub fn open() -> Result<Self> {
        let mut cfg = LibCfg::init();
        // The library would print its "touch the key" line on stdout, where the depot
        // prints its ready line; the depot logs it instead.
        cfg.enable_keep_alive_msg = false;
        let device = FidoKeyHidFactory::create(&cfg).map_err(|e| {
            device(
                "opening the FIDO key over USB (exactly one must be plugged in, and this user needs access to its hidraw device)",
                e,
            )
        })?;
        Ok(Self { device })
    }
}

impl KeyProgrammer for UsbKey {
    fn get_info(&self) -> Result<AuthenticatorInfo> {
        let got = self
            .device
            .get_info()
            .map_err(|e| device("authenticatorGetInfo", e))?;
        // The library's `Info` sits in a private module: its members are copied out.
        let info = Info {
            versions: got.versions,
            extensions: got.extensions,
            aaguid: got.aaguid,
            options: got.options,
            pin_uv_auth_protocols: got.pin_uv_auth_protocols,
            transports: got.transports,
            algorithms: got.algorithms,
            min_pin_length: got.min_pin_length,
            force_pin_change: got.force_pin_change,
            firmware_version: got.firmware_version,
            remaining_discoverable_credentials: got.remaining_discoverable_credentials,
        };
        // Retries are asked only of a key with a PIN: a fresh key (the one the depot
        // wants) has none to count, and its answer is not needed.
        let pin_retries = if option(&info, "clientPin") == Some(true) {
            let n = self
                .device
                .get_pin_retries()
                .map_err(|e| device("clientPIN getPINRetries", e))?;
            u8::try_from(n).unwrap_or(0)
        } else {
            0
        };
        info_from(&info, pin_retries)
    }

    fn set_pin(&mut self, new_pin: &Pin) -> Result<()> {
        self.device
            .set_new_pin(new_pin.as_str())
            .map_err(|e| device("clientPIN setPIN", e))
    }

    fn change_pin(&mut self, current_pin: &Pin, new_pin: &Pin) -> Result<()> {
        self.device
            .change_pin(current_pin.as_str(), new_pin.as_str())
            .map_err(|e| device("clientPIN changePIN", e))
    }

    fn make_credential(
        &mut self,
        request: &MakeCredentialRequest,
        pin: Option<&Pin>,
    ) -> Result<MakeCredentialResponse> {
        let client_data = checked_client_data(
            request.client_data_json.as_deref(),
            &request.client_data_hash,
        )?;
        let key_types = key_types(&request.algorithms)?;
        let user = user_entity(&request.user);
        let extensions = extensions(request.cred_protect, request.hmac_secret);
        let mut args = MakeCredentialArgsBuilder::new(&request.rp.id, client_data);
        args = match pin {
            Some(p) => args.pin(p.as_str()),
            None => args.without_pin_and_uv(),
        };
        args = args.user_entity(&user);
        for t in key_types {
            args = args.key_type(t);
        }
        for id in &request.exclude_list {
            args = args.exclude_authenticator(id);
        }
        if request.resident_key {
            args = args.resident_key();
        }
        if !extensions.is_empty() {
            args = args.extensions(&extensions);
        }
        tracing::info!(rp = %request.rp.id, "touch the key to make the credential");
        let made = self
            .device
            .make_credential_with_args(&args.build())
            .map_err(|e| device("authenticatorMakeCredential", e))?;
        response_from(&made)
    }

    fn get_assertion(
        &mut self,
        request: &GetAssertionRequest,
        pin: Option<&Pin>,
    ) -> Result<GetAssertionResponse> {
        let client_data = checked_client_data(
            request.client_data_json.as_deref(),
            &request.client_data_hash,
        )?;
        let mut args = GetAssertionArgsBuilder::new(&request.rp_id, client_data);
        args = match pin {
            Some(p) => args.pin(p.as_str()),
            None => args.without_pin_and_uv(),
        };
        for id in &request.allow_list {
            args = args.add_credential_id(id);
        }
        tracing::info!(rp = %request.rp_id, "touch the key to sign in");
        let got = self
            .device
            .get_assertion_with_args(&args.build())
            .map_err(|e| device("authenticatorGetAssertion", e))?;
        let count = got.len();
        let first = got.into_iter().next().ok_or_else(|| {
            Error::Device("authenticatorGetAssertion answered no assertion".into())
        })?;
        Ok(GetAssertionResponse {
            credential_id: first.credential_id,
            auth_data: first.auth_data,
            signature: first.signature,
            user: (!first.user.id.is_empty()).then(|| User {
                id: first.user.id,
                name: non_empty(first.user.name),
                display_name: non_empty(first.user.display_name),
            }),
            number_of_credentials: count,
        })
    }

    fn set_min_pin_length(
        &mut self,
        pin: Option<&Pin>,
        new_min_pin_length: Option<u8>,
        force_change_pin: bool,
    ) -> Result<()> {
        let pin = pin.map(Pin::as_str);
        if let Some(len) = new_min_pin_length {
            self.device
                .set_min_pin_length(len, pin)
                .map_err(|e| device("authenticatorConfig setMinPINLength", e))?;
        }
        if force_change_pin {
            self.device
                .force_change_pin(pin)
                .map_err(|e| device("authenticatorConfig forcePINChange", e))?;
        }
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        Err(Error::Device(
            "prereg does not erase real keys: reset it with its vendor's tool (for a YubiKey, `ykman fido reset` right after plugging it in)".into(),
        ))
    }
}

/// The depot's [`KeyFactory`] for real keys: opens the plugged-in key, programs it with
/// the steps every key goes through, and hands over a receipt.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsbKeys;

impl KeyFactory for UsbKeys {
    fn ready(&self) -> std::result::Result<(), ProgramError> {
        let key = UsbKey::open().map_err(|e| ProgramError(e.to_string()))?;
        require_fresh(&key)
    }

    fn make_key(&self, spec: &KeySpec<'_>) -> std::result::Result<MadeKey, ProgramError> {
        let fail = |e: Error| ProgramError(e.to_string());
        let mut key = UsbKey::open().map_err(fail)?;
        let credentials = program_fido_key(&mut key, spec)?;
        let aaguid = key.get_info().map_err(fail)?.aaguid.to_string();
        let receipt = receipt(
            spec.serial,
            &spec.product.product_name,
            &aaguid,
            &credentials,
        );
        Ok(MadeKey {
            aaguid,
            credentials,
            key_state: receipt.to_string(),
        })
    }
}

/// What the desk gets for a USB-programmed key: which key it was and what is on it. No
/// secret: those stay on the key.
fn receipt(
    serial: u32,
    product_name: &str,
    aaguid: &str,
    credentials: &[serde_json::Value],
) -> serde_json::Value {
    serde_json::json!({
        "format": RECEIPT_FORMAT,
        "serial_number": serial.to_string(),
        "product_name": product_name,
        "aaguid": aaguid,
        "credential_ids": credentials.iter().map(|c| c["id"].clone()).collect::<Vec<_>>(),
    })
}

/// The clientDataJSON to give the library (which hashes it), after checking it is the
/// one the hash is of.
fn checked_client_data<'a>(json: Option<&'a [u8]>, hash: &[u8; 32]) -> Result<&'a [u8]> {
    let json = json.ok_or_else(|| {
        Error::Request("a key over USB needs the clientDataJSON itself, not only its hash".into())
    })?;
    if webauthn::client_data::hash_bytes(json) != *hash {
        return Err(Error::Request(
            "the clientDataJSON is not the one its hash is of".into(),
        ));
    }
    Ok(json)
}

/// The RP's algorithms the library can ask for (ES256 and EdDSA), in the RP's order.
fn key_types(algorithms: &[i64]) -> Result<Vec<CredentialSupportedKeyType>> {
    let types: Vec<_> = algorithms
        .iter()
        .filter_map(|a| match a {
            -7 => Some(CredentialSupportedKeyType::Ecdsa256),
            -8 => Some(CredentialSupportedKeyType::Ed25519),
            _ => None,
        })
        .collect();
    if types.is_empty() {
        return Err(Error::Request(format!(
            "the relying party accepts only COSE algorithms {algorithms:?}; a key over USB is asked for ES256 (-7) or EdDSA (-8)"
        )));
    }
    Ok(types)
}

fn user_entity(user: &User) -> PublicKeyCredentialUserEntity {
    PublicKeyCredentialUserEntity::new(
        Some(&user.id),
        user.name.as_deref(),
        user.display_name.as_deref(),
    )
}

fn extensions(cred_protect: Option<u8>, hmac_secret: bool) -> Vec<Mext> {
    let mut out = Vec::new();
    if let Some(level) = cred_protect {
        out.push(Mext::CredProtect(Some(CredentialProtectionPolicy::from(
            u32::from(level),
        ))));
    }
    if hmac_secret {
        out.push(Mext::HmacSecret(Some(true)));
    }
    out
}

/// This crate's makeCredential result from the library's: the attestation object is
/// put back together from the parts the library parsed (format, authData, statement).
fn response_from(made: &Attestation) -> Result<MakeCredentialResponse> {
    let attestation_object = authenticator::cbor::attestation_object(
        &made.fmt,
        i64::from(made.attstmt_alg),
        &made.attstmt_sig,
        &made.attstmt_x5c,
        &made.auth_data,
    )?;
    let mut extensions = ExtensionOutputs::default();
    for e in &made.extensions {
        match e {
            Mext::CredProtect(Some(p)) => {
                extensions.cred_protect = match p {
                    CredentialProtectionPolicy::UserVerificationOptional => Some(1),
                    CredentialProtectionPolicy::UserVerificationOptionalWithCredentialIdList => {
                        Some(2)
                    }
                    CredentialProtectionPolicy::UserVerificationRequired => Some(3),
                    CredentialProtectionPolicy::Unknown => None,
                };
            }
            Mext::HmacSecret(v) => extensions.hmac_secret = *v,
            _ => {}
        }
    }
    Ok(MakeCredentialResponse {
        credential_id: made.credential_descriptor.id.clone(),
        auth_data: made.auth_data.clone(),
        attestation_object,
        extensions,
    })
}

/// The names this crate's [`AuthenticatorInfo`] keeps (`&'static str`): the ones CTAP
/// 2.2 defines; a name a key reports beyond them is left out.
const OPTIONS: &[&str] = &[
    "plat",
    "rk",
    "clientPin",
    "up",
    "uv",
    "pinUvAuthToken",
    "noMcGaPermissionsWithClientPin",
    "largeBlobs",
    "ep",
    "bioEnroll",
    "userVerificationMgmtPreview",
    "uvBioEnroll",
    "authnrCfg",
    "uvAcfg",
    "credMgmt",
    "credentialMgmtPreview",
    "setMinPINLength",
    "makeCredUvNotRqd",
    "alwaysUv",
];
const VERSIONS: &[&str] = &["U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE", "FIDO_2_1", "FIDO_2_2"];
const EXTENSIONS: &[&str] = &[
    "credProtect",
    "hmac-secret",
    "largeBlobKey",
    "credBlob",
    "minPinLength",
    "thirdPartyPayment",
    "hmac-secret-mc",
];
const TRANSPORTS: &[&str] = &["usb", "nfc", "ble", "smart-card", "hybrid", "internal"];

/// The members of authenticatorGetInfo this crate reads, as the library reports them.
#[derive(Debug, Default)]
struct Info {
    versions: Vec<String>,
    extensions: Vec<String>,
    aaguid: Vec<u8>,
    options: Vec<(String, bool)>,
    pin_uv_auth_protocols: Vec<u32>,
    transports: Vec<String>,
    algorithms: Vec<(String, String)>,
    min_pin_length: u32,
    force_pin_change: bool,
    firmware_version: u32,
    remaining_discoverable_credentials: u32,
}

fn known(name: &str, table: &[&'static str]) -> Option<&'static str> {
    table.iter().copied().find(|k| *k == name)
}

fn option(info: &Info, name: &str) -> Option<bool> {
    info.options
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| *v)
}

fn info_from(info: &Info, pin_retries: u8) -> Result<AuthenticatorInfo> {
    let aaguid = Uuid::from_slice(&info.aaguid)
        .map_err(|e| Error::Device(format!("the key's AAGUID is not 16 bytes: {e}")))?;
    Ok(AuthenticatorInfo {
        versions: info
            .versions
            .iter()
            .filter_map(|v| known(v, VERSIONS))
            .collect(),
        extensions: info
            .extensions
            .iter()
            .filter_map(|v| known(v, EXTENSIONS))
            .collect(),
        aaguid,
        options: info
            .options
            .iter()
            .filter_map(|(k, v)| known(k, OPTIONS).map(|k| (k, *v)))
            .collect(),
        pin_uv_auth_protocols: info
            .pin_uv_auth_protocols
            .iter()
            .filter_map(|p| u8::try_from(*p).ok())
            .collect(),
        min_pin_length: u8::try_from(info.min_pin_length).unwrap_or(u8::MAX),
        force_pin_change: info.force_pin_change,
        firmware_version: info.firmware_version,
        remaining_discoverable_credentials: usize::try_from(
            info.remaining_discoverable_credentials,
        )
        .unwrap_or(usize::MAX),
        algorithms: info
            .algorithms
            .iter()
            .filter(|(k, _)| k == "alg")
            .filter_map(|(_, v)| v.parse().ok())
            .collect(),
        pin_retries,
        transports: info
            .transports
            .iter()
            .filter_map(|t| known(t, TRANSPORTS))
            .collect(),
    })
}

fn non_empty(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use authenticator::{Firmware, Model, RelyingParty, VirtualYubiKey};
    use ciborium::Value;
    use ctap_hid_fido2::fidokey::make_credential::make_credential_response::parse_cbor;

    fn virtual_key() -> VirtualYubiKey {
        let model: Model = "YubiKey 5 NFC".parse().unwrap();
        let firmware: Firmware = "5.7.1".parse().unwrap();
        VirtualYubiKey::new(model, firmware, Some(12_345_678)).unwrap()
    }

    /// The authenticatorMakeCredential response a key sends over CTAP (`{1: fmt,
    /// 2: authData, 3: attStmt}`) for a WebAuthn attestation object.
    fn ctap_response(attestation_object: &[u8]) -> Vec<u8> {
        let v: Value = ciborium::from_reader(attestation_object).unwrap();
        let m = v.as_map().unwrap();
        let get = |name: &str| {
            m.iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        let ctap = Value::Map(vec![
            (Value::from(1), get("fmt")),
            (Value::from(2), get("authData")),
            (Value::from(3), get("attStmt")),
        ]);
        let mut out = Vec::new();
        ciborium::into_writer(&ctap, &mut out).unwrap();
        out
    }

    #[test]
    fn a_keys_attestation_comes_back_whole_through_the_librarys_parser() {
        let mut key = virtual_key();
        let client_data = br#"{"type":"webauthn.create","challenge":"abc","origin":"https://login.microsoft.com","crossOrigin":false}"#;
        let made = key
            .make_credential(
                &MakeCredentialRequest {
                    client_data_hash: webauthn::client_data::hash_bytes(client_data),
                    client_data_json: Some(client_data.to_vec()),
                    rp: RelyingParty {
                        id: "login.microsoft.com".into(),
                        name: None,
                    },
                    user: User {
                        id: b"user-1".to_vec(),
                        name: Some("alex@contoso.com".into()),
                        display_name: None,
                    },
                    algorithms: vec![-7],
                    exclude_list: vec![],
                    resident_key: true,
                    user_verification: false,
                    cred_protect: Some(2),
                    hmac_secret: true,
                },
                None,
            )
            .unwrap();
        let parsed = parse_cbor(&ctap_response(&made.attestation_object)).unwrap();
        let back = response_from(&parsed).unwrap();
        assert_eq!(back.attestation_object, made.attestation_object);
        assert_eq!(back.credential_id, made.credential_id);
        assert_eq!(back.auth_data, made.auth_data);
        assert_eq!(back.extensions.cred_protect, Some(2));
        assert_eq!(back.extensions.hmac_secret, Some(true));
    }

    #[test]
    fn the_client_data_must_be_there_and_be_the_one_hashed() {
        let json = b"{\"type\":\"webauthn.create\"}";
        let hash = webauthn::client_data::hash_bytes(json);
        assert_eq!(checked_client_data(Some(json), &hash).unwrap(), json);
        let missing = checked_client_data(None, &hash).unwrap_err().to_string();
        assert!(missing.contains("needs the clientDataJSON"), "{missing}");
        let other = checked_client_data(Some(b"{}"), &hash)
            .unwrap_err()
            .to_string();
        assert!(other.contains("not the one its hash is of"), "{other}");
    }

    #[test]
    fn only_algorithms_the_library_can_ask_for_are_passed_on() {
        let t = key_types(&[-257, -7, -8]).unwrap();
        assert_eq!(
            t.iter().map(|t| *t as i64).collect::<Vec<_>>(),
            vec![-7, -8]
        );
        let err = key_types(&[-257]).unwrap_err().to_string();
        assert!(err.contains("[-257]"), "{err}");
    }

    #[test]
    fn get_info_keeps_the_names_ctap_defines() {
        let info = Info {
            versions: vec!["FIDO_2_1".into(), "FIDO_9".into()],
            extensions: vec!["credProtect".into(), "hmac-secret".into()],
            aaguid: Uuid::nil().as_bytes().to_vec(),
            options: vec![("clientPin".into(), true), ("vendorThing".into(), true)],
            pin_uv_auth_protocols: vec![2, 1],
            transports: vec!["usb".into(), "nfc".into()],
            algorithms: vec![
                ("alg".into(), "-7".into()),
                ("type".into(), "public-key".into()),
            ],
            min_pin_length: 6,
            remaining_discoverable_credentials: 100,
            ..Info::default()
        };
        let got = info_from(&info, 8).unwrap();
        assert_eq!(got.versions, vec!["FIDO_2_1"]);
        assert_eq!(got.options.get("clientPin"), Some(&true));
        assert_eq!(got.options.len(), 1);
        assert_eq!(got.algorithms, vec![-7]);
        assert_eq!(got.min_pin_length, 6);
        assert_eq!(got.pin_retries, 8);
        assert_eq!(got.transports, vec!["usb", "nfc"]);
    }

    #[test]
    fn the_receipt_names_the_key_and_holds_no_secret() {
        let creds = vec![serde_json::json!({"id": "cred-1", "response": {}})];
        let r = receipt(
            12_345_678,
            "YubiKey 5 NFC",
            "ee882879-721c-4913-9775-3dfcce97072a",
            &creds,
        );
        assert_eq!(r["format"], RECEIPT_FORMAT);
        assert_eq!(r["serial_number"], "12345678");
        assert_eq!(r["credential_ids"], serde_json::json!(["cred-1"]));
    }
}
