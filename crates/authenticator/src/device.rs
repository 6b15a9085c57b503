//! [`VirtualYubiKey`]: the software key, and the CTAP-level request and response types
//! that [`KeyProgrammer`] speaks.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::attestation::issue_leaf;
use crate::cbor::{
    self, AttestedCredential, COSE_ES256, ExtensionOutputs, FLAG_UP, FLAG_UV, auth_data,
};
use crate::crypto::P256Key;
use crate::error::{CtapError, Error, Result};
use crate::identity::{Firmware, Identity, Model};
use crate::pin::PinState;
use crate::secret::{Pin, SecretBytes, random_bytes};

/// The operations a pre-registration station runs on a FIDO2 key, whether the key is
/// [`VirtualYubiKey`] or (later) a real YubiKey over USB.
///
/// Every method that takes `pin: Option<&Pin>` performs user verification with a PIN
/// token when a PIN is given, exactly as a platform would (getPinUvAuthToken with the
/// permission the operation needs, then the operation).
pub trait KeyProgrammer {
    /// authenticatorGetInfo, plus the clientPIN retry counter.
    fn get_info(&self) -> Result<AuthenticatorInfo>;
    /// clientPIN setPIN: the first PIN on a key that has none.
    fn set_pin(&mut self, new_pin: &Pin) -> Result<()>;
    /// clientPIN changePIN.
    fn change_pin(&mut self, current_pin: &Pin, new_pin: &Pin) -> Result<()>;
    /// authenticatorMakeCredential with packed attestation.
    fn make_credential(
        &mut self,
        request: &MakeCredentialRequest,
        pin: Option<&Pin>,
    ) -> Result<MakeCredentialResponse>;
    /// authenticatorGetAssertion.
    fn get_assertion(
        &mut self,
        request: &GetAssertionRequest,
        pin: Option<&Pin>,
    ) -> Result<GetAssertionResponse>;
    /// authenticatorConfig setMinPINLength: raise the minimum PIN length and/or set
    /// forcePINChange. Needs the PIN when one is set.
    fn set_min_pin_length(
        &mut self,
        pin: Option<&Pin>,
        new_min_pin_length: Option<u8>,
        force_change_pin: bool,
    ) -> Result<()>;
    /// authenticatorReset: erases every credential and the PIN. Like a real key, only
    /// right after the key was inserted.
    fn reset(&mut self) -> Result<()>;
}

/// A relying party, as makeCredential takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingParty {
    /// RP ID (a domain), e.g. `login.microsoft.com`.
    pub id: String,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// A user account, as makeCredential takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The user handle (at most 64 bytes).
    #[serde(with = "crate::b64")]
    pub id: Vec<u8>,
    /// Account name, e.g. `john@contoso.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Display name.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        rename = "displayName"
    )]
    pub display_name: Option<String>,
}

/// authenticatorMakeCredential parameters.
#[derive(Debug, Clone)]
pub struct MakeCredentialRequest {
    /// SHA-256 of the clientDataJSON bytes.
    pub client_data_hash: [u8; 32],
    /// The clientDataJSON bytes themselves, when the caller has them (the platform half,
    /// [`crate::client`], always does). A key behind a library that hashes the
    /// clientDataJSON itself (the depot's USB keys) needs them; the virtual key uses
    /// only the hash.
    pub client_data_json: Option<Vec<u8>>,
    /// The relying party.
    pub rp: RelyingParty,
    /// The user.
    pub user: User,
    /// COSE algorithms the RP accepts, in its order of preference.
    pub algorithms: Vec<i64>,
    /// Credential IDs the RP already has for this user.
    pub exclude_list: Vec<Vec<u8>>,
    /// Store a discoverable (resident) credential.
    pub resident_key: bool,
    /// The RP requires user verification.
    pub user_verification: bool,
    /// credProtect level (1 userVerificationOptional, 2 ...WithCredentialIDList,
    /// 3 userVerificationRequired).
    pub cred_protect: Option<u8>,
    /// hmac-secret requested.
    pub hmac_secret: bool,
}

/// authenticatorMakeCredential result.
#[derive(Debug, Clone)]
pub struct MakeCredentialResponse {
    /// The new credential ID.
    pub credential_id: Vec<u8>,
    /// authenticatorData.
    pub auth_data: Vec<u8>,
    /// The WebAuthn attestation object (CBOR, fmt packed).
    pub attestation_object: Vec<u8>,
    /// Extension outputs reported in authData.
    pub extensions: ExtensionOutputs,
}

/// authenticatorGetAssertion parameters.
#[derive(Debug, Clone)]
pub struct GetAssertionRequest {
    /// RP ID.
    pub rp_id: String,
    /// SHA-256 of the clientDataJSON bytes.
    pub client_data_hash: [u8; 32],
    /// The clientDataJSON bytes, when the caller has them (as in
    /// [`MakeCredentialRequest::client_data_json`]).
    pub client_data_json: Option<Vec<u8>>,
    /// Credential IDs the RP allows; empty for discoverable credentials.
    pub allow_list: Vec<Vec<u8>>,
    /// The RP requires user verification.
    pub user_verification: bool,
}

/// authenticatorGetAssertion result (the first, most recent matching credential).
#[derive(Debug, Clone)]
pub struct GetAssertionResponse {
    /// The credential that signed.
    pub credential_id: Vec<u8>,
    /// authenticatorData.
    pub auth_data: Vec<u8>,
    /// ECDSA P-256 signature (DER) over authData || clientDataHash.
    pub signature: Vec<u8>,
    /// The user handle (discoverable credentials).
    pub user: Option<User>,
    /// How many credentials matched.
    pub number_of_credentials: usize,
}

/// authenticatorGetInfo (the members a YubiKey 5 reports) plus the PIN retry counter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticatorInfo {
    /// Supported protocol versions.
    pub versions: Vec<&'static str>,
    /// Supported extensions.
    pub extensions: Vec<&'static str>,
    /// AAGUID.
    pub aaguid: Uuid,
    /// Options (rk, up, clientPin, ...).
    pub options: BTreeMap<&'static str, bool>,
    /// PIN/UV auth protocols.
    pub pin_uv_auth_protocols: Vec<u8>,
    /// Current minimum PIN length.
    pub min_pin_length: u8,
    /// forcePINChange.
    pub force_pin_change: bool,
    /// Firmware version as 0xMMmmpp.
    pub firmware_version: u32,
    /// Free discoverable credential slots.
    pub remaining_discoverable_credentials: usize,
    /// Supported COSE algorithms.
    pub algorithms: Vec<i64>,
    /// clientPIN getPINRetries.
    pub pin_retries: u8,
    /// Transports (getInfo 0x09), e.g. `["nfc", "usb"]`.
    pub transports: Vec<&'static str>,
}

/// What `prereg key info` shows: identity, PIN status, credentials. No private material.
#[derive(Debug, Clone, Serialize)]
pub struct KeySummary {
    /// Model name.
    pub model: Model,
    /// Serial number.
    pub serial: u32,
    /// Firmware.
    pub firmware: Firmware,
    /// AAGUID.
    pub aaguid: Uuid,
    /// Whether a PIN is set.
    pub pin_set: bool,
    /// Attempts left (out of 8).
    pub pin_retries: u8,
    /// Wrong PINs since the last (re)insertion (3 needs a reinsert).
    pub pin_failures_since_insertion: u8,
    /// Whether the PIN is blocked (only a reset helps).
    pub pin_blocked: bool,
    /// forcePINChange pending.
    pub force_pin_change: bool,
    /// Minimum PIN length.
    pub min_pin_length: u8,
    /// Credentials, grouped by RP ID (newest last).
    pub credentials: BTreeMap<String, Vec<CredentialSummary>>,
}

impl KeySummary {
    /// How many credentials the key holds.
    pub fn credential_count(&self) -> usize {
        self.credentials.values().map(Vec::len).sum()
    }
}

/// One stored credential, as [`KeySummary`] lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CredentialSummary {
    /// Credential ID, base64url.
    pub credential_id: String,
    /// User handle, base64url.
    pub user_id: String,
    /// Account name.
    pub user_name: Option<String>,
    /// Display name.
    pub user_display_name: Option<String>,
    /// Discoverable.
    pub discoverable: bool,
    /// credProtect level.
    pub cred_protect: u8,
    /// hmac-secret enabled.
    pub hmac_secret: bool,
    /// Signature counter.
    pub sign_count: u32,
}

/// The format tag of the key file.
pub const KEY_FILE_FORMAT: &str = "prereg-virtual-key/1";

/// The warning written into every key file.
pub const SANDBOX_WARNING: &str = "SANDBOX ONLY: this file is a virtual security key. It holds \
     its private keys in plaintext (base64url) and its attestation chains to the prereg sandbox \
     CA, which no real relying party trusts. The PIN is stored only as a salted hash. Keep the \
     file as you would keep the key.";

/// A software CTAP 2.1 authenticator that behaves like a YubiKey 5 (PIN rules,
/// minimum PIN length, forcePINChange, resident keys, credProtect, hmac-secret, packed
/// attestation under the sandbox CA).
///
/// # The fulfiller path
///
/// ```no_run
/// # fn main() -> authenticator::Result<()> {
/// use authenticator::{KeyProgrammer, Pin, VirtualYubiKey, client};
/// let mut key = VirtualYubiKey::new("YubiKey 5 NFC".parse()?, "5.7.1".parse()?, None)?;
/// let pin = Pin::new("482915");
/// key.set_pin(&pin)?;
/// # let creation_options_json = "";
/// let reg = client::make_credential(&mut key, creation_options_json,
///     "https://login.microsoft.com", Some(&pin))?;   // WebAuthn registration JSON
/// key.set_min_pin_length(Some(&pin), Some(6), true)?; // the user must change the PIN
/// key.save("key.json".as_ref())?;                     // hand the file to the user
/// # Ok(()) }
/// ```
///
/// # State file
///
/// [`save`](Self::save) / [`to_json`](Self::to_json) write the whole key as JSON
/// (format [`KEY_FILE_FORMAT`]): identity, attestation key and chain, PIN hash and
/// counters, credentials. **Private keys are plaintext, and the file says so**
/// ([`SANDBOX_WARNING`]); this is a sandbox device that a user must be able to use with
/// `prereg key` without a second secret. The PIN is kept only as
/// `SHA-256(salt || LEFT(SHA-256(pin), 16))`.
pub struct VirtualYubiKey {
    state: KeyFile,
    /// The current pinUvAuthToken; lives for one power cycle, never saved.
    token: Option<PinToken>,
}

#[derive(Serialize, Deserialize)]
struct KeyFile {
    format: String,
    warning: String,
    identity: Identity,
    attestation: AttestationState,
    pin: PinState,
    /// No command other than getInfo since the key was (re)inserted: reset allowed.
    fresh_insertion: bool,
    credentials: Vec<StoredCredential>,
}

#[derive(Serialize, Deserialize)]
struct AttestationState {
    /// `[leaf, intermediate]`, DER, base64url.
    x5c: Vec<B64>,
    /// Leaf private scalar, base64url (sandbox only).
    #[serde(with = "crate::b64::secret")]
    private_key: SecretBytes,
}

#[derive(Clone, Serialize, Deserialize)]
struct B64(#[serde(with = "crate::b64")] Vec<u8>);

#[derive(Serialize, Deserialize)]
struct StoredCredential {
    #[serde(with = "crate::b64")]
    id: Vec<u8>,
    rp: RelyingParty,
    user: User,
    discoverable: bool,
    cred_protect: u8,
    /// hmac-secret CredRandomWithUV || CredRandomWithoutUV (sandbox only).
    #[serde(default, with = "opt_secret", skip_serializing_if = "Option::is_none")]
    hmac_secret: Option<SecretBytes>,
    sign_count: u32,
    /// Private scalar, base64url (sandbox only).
    #[serde(with = "crate::b64::secret")]
    private_key: SecretBytes,
}

mod opt_secret {
    use crate::secret::SecretBytes;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        v: &Option<SecretBytes>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => crate::b64::secret::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SecretBytes>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::b64::secret")] SecretBytes);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// pinUvAuthToken permissions (CTAP 2.1 §6.5.5.7).
const PERM_MC: u8 = 0x01;
const PERM_GA: u8 = 0x02;
const PERM_ACFG: u8 = 0x20;

/// A pinUvAuthToken: random, bound to permissions and (for mc/ga) an RP ID.
struct PinToken {
    _token: SecretBytes,
    permissions: u8,
    rp_id: Option<String>,
}

impl PinToken {
    fn check(&self, permission: u8, rp_id: Option<&str>) -> Result<(), CtapError> {
        if self.permissions & permission == 0 {
            return Err(CtapError::PinAuthInvalid);
        }
        if let (Some(bound), Some(rp)) = (&self.rp_id, rp_id)
            && bound != rp
        {
            return Err(CtapError::PinAuthInvalid);
        }
        Ok(())
    }
}

impl fmt::Debug for VirtualYubiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.state.identity;
        f.debug_struct("VirtualYubiKey")
            .field("model", &id.model)
            .field("firmware", &id.firmware)
            .field("serial", &id.serial)
            .field("aaguid", &id.aaguid)
            .field("pin_set", &self.state.pin.is_set())
            .field("credentials", &self.state.credentials.len())
            .field("secrets", &"[redacted]")
            .finish()
    }
}

impl VirtualYubiKey {
    /// A factory-fresh key: no PIN, no credentials, minimum PIN length 4, and an
    /// attestation certificate issued by the sandbox CA for this model's AAGUID.
    /// `serial: None` picks a random 8-digit serial.
    pub fn new(model: Model, firmware: Firmware, serial: Option<u32>) -> Result<Self> {
        let serial = match serial {
            Some(s) => s,
            None => crate::identity::random_serial()?,
        };
        let identity = Identity::new(model, firmware, serial)?;
        let (private_key, chain) = issue_leaf(&identity)?;
        Ok(Self {
            state: KeyFile {
                format: KEY_FILE_FORMAT.to_owned(),
                warning: SANDBOX_WARNING.to_owned(),
                identity,
                attestation: AttestationState {
                    x5c: chain.into_iter().map(B64).collect(),
                    private_key,
                },
                pin: PinState::default(),
                fresh_insertion: true,
                credentials: Vec::new(),
            },
            token: None,
        })
    }

    /// Model, firmware, serial, AAGUID.
    pub fn identity(&self) -> &Identity {
        &self.state.identity
    }

    /// The attestation chain `[leaf, intermediate]` (DER) this key puts in `x5c`.
    pub fn attestation_chain(&self) -> Vec<Vec<u8>> {
        self.state
            .attestation
            .x5c
            .iter()
            .map(|c| c.0.clone())
            .collect()
    }

    /// Remove and reinsert the key: the per-insertion PIN window starts over, PIN tokens
    /// are gone, and reset is allowed again until the next command.
    pub fn power_cycle(&mut self) {
        self.state.pin.power_cycle();
        self.token = None;
        self.state.fresh_insertion = true;
    }

    /// Identity, PIN status and credentials; never private material.
    pub fn summary(&self) -> KeySummary {
        let id = &self.state.identity;
        let pin = &self.state.pin;
        let mut credentials: BTreeMap<String, Vec<CredentialSummary>> = BTreeMap::new();
        for c in &self.state.credentials {
            credentials
                .entry(c.rp.id.clone())
                .or_default()
                .push(CredentialSummary {
                    credential_id: crate::b64::encode(&c.id),
                    user_id: crate::b64::encode(&c.user.id),
                    user_name: c.user.name.clone(),
                    user_display_name: c.user.display_name.clone(),
                    discoverable: c.discoverable,
                    cred_protect: c.cred_protect,
                    hmac_secret: c.hmac_secret.is_some(),
                    sign_count: c.sign_count,
                });
        }
        KeySummary {
            model: id.model,
            serial: id.serial,
            firmware: id.firmware,
            aaguid: id.aaguid,
            pin_set: pin.is_set(),
            pin_retries: pin.retries(),
            pin_failures_since_insertion: pin.failures_this_insertion(),
            pin_blocked: pin.is_set() && pin.retries() == 0,
            force_pin_change: pin.force_change(),
            min_pin_length: pin.min_length(),
            credentials,
        }
    }

    /// The key as JSON (see the type's docs for what it holds).
    pub fn to_json(&self) -> Result<Zeroizing<String>> {
        serde_json::to_string_pretty(&self.state)
            .map(Zeroizing::new)
            .map_err(|e| Error::State(e.to_string()))
    }

    /// A key from [`to_json`](Self::to_json) output. Loading is not a reinsert: the
    /// saved per-insertion PIN counter stays; call [`power_cycle`](Self::power_cycle)
    /// for that.
    pub fn from_json(json: &str) -> Result<Self> {
        let state: KeyFile = serde_json::from_str(json)
            .map_err(|e| Error::State(format!("not a virtual key file: {e}")))?;
        if state.format != KEY_FILE_FORMAT {
            return Err(Error::State(format!(
                "format {:?} is not {KEY_FILE_FORMAT:?}; this prereg cannot read it",
                state.format
            )));
        }
        // Catch corrupt or hand-edited key material now rather than at first use.
        P256Key::from_scalar(state.attestation.private_key.expose())
            .map_err(|_| Error::State("attestation private key is not a P-256 scalar".into()))?;
        if state.attestation.x5c.is_empty() {
            return Err(Error::State("attestation chain is empty".into()));
        }
        for c in &state.credentials {
            P256Key::from_scalar(c.private_key.expose()).map_err(|_| {
                Error::State(format!(
                    "credential {} for {} has a bad private key",
                    crate::b64::encode(&c.id),
                    c.rp.id
                ))
            })?;
        }
        let expected = state.identity.model.aaguid(state.identity.firmware)?;
        if expected != state.identity.aaguid {
            return Err(Error::State(format!(
                "AAGUID {} does not match {} firmware {} (expected {expected})",
                state.identity.aaguid, state.identity.model, state.identity.firmware
            )));
        }
        Ok(Self { state, token: None })
    }

    /// Writes the key file (mode 0600 on Unix), replacing it atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut json = self.to_json()?;
        json.push('\n');
        crate::write_private(path, json.as_bytes()).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })
    }

    /// Reads a key file written by [`save`](Self::save).
    pub fn load(path: &Path) -> Result<Self> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.display().to_string(),
            source,
        })?);
        Self::from_json(&text).map_err(|e| match e {
            Error::State(m) => Error::State(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    fn firmware(&self) -> Firmware {
        self.state.identity.firmware
    }

    /// getPinUvAuthTokenUsingPinWithPermissions. The PIN attempt counts whatever
    /// happens next.
    fn issue_token(&mut self, pin: &Pin, permissions: u8, rp_id: Option<&str>) -> Result<()> {
        self.token = None;
        self.state.pin.verify_for_token(pin)?;
        self.token = Some(PinToken {
            _token: SecretBytes::random(32)?,
            permissions,
            rp_id: rp_id.map(str::to_owned),
        });
        Ok(())
    }

    /// User verification for one operation: a PIN gives a token with `permission`.
    /// Returns whether the user was verified.
    fn verify_user(
        &mut self,
        pin: Option<&Pin>,
        permission: u8,
        rp_id: &str,
        uv_required: bool,
    ) -> Result<bool> {
        match pin {
            Some(pin) => {
                self.issue_token(pin, permission, Some(rp_id))?;
                if let Some(t) = &self.token {
                    t.check(permission, Some(rp_id))?;
                }
                Ok(true)
            }
            None if uv_required && self.state.pin.is_set() => Err(CtapError::PinRequired.into()),
            None if uv_required => Err(CtapError::PinNotSet.into()),
            None => Ok(false),
        }
    }

    fn attestation_key(&self) -> Result<P256Key> {
        P256Key::from_scalar(self.state.attestation.private_key.expose())
            .map_err(|_| Error::State("attestation private key is corrupt".into()))
    }

    fn discoverable_count(&self) -> usize {
        self.state
            .credentials
            .iter()
            .filter(|c| c.discoverable)
            .count()
    }
}

impl KeyProgrammer for VirtualYubiKey {
    fn get_info(&self) -> Result<AuthenticatorInfo> {
        let fw = self.firmware();
        let pin = &self.state.pin;
        let mut versions = vec!["U2F_V2", "FIDO_2_0", "FIDO_2_1_PRE"];
        let mut extensions = vec!["hmac-secret"];
        if fw.has_cred_protect() {
            extensions.insert(0, "credProtect");
        }
        let mut options = BTreeMap::from([
            ("rk", true),
            ("up", true),
            ("plat", false),
            ("clientPin", pin.is_set()),
            ("credMgmt", true),
        ]);
        if fw.has_authenticator_config() {
            versions.push("FIDO_2_1");
            extensions.push("minPinLength");
            options.extend([
                ("authnrCfg", true),
                ("setMinPINLength", true),
                ("makeCredUvNotRqd", true),
                // No `pinUvAuthToken`: it promises getPinUvAuthToken with permissions,
                // which needs a pinUvAuthProtocol, and this key speaks none (below).
                ("alwaysUv", false),
            ]);
        }
        Ok(AuthenticatorInfo {
            versions,
            extensions,
            aaguid: self.state.identity.aaguid,
            options,
            // The PIN reaches this key through `KeyProgrammer` in the clear, not over a
            // pinUvAuthProtocol (no ECDH key agreement, no encrypted PIN, no HMAC'd
            // pinUvAuthParam), so it advertises none rather than protocols it does not
            // speak.
            pin_uv_auth_protocols: Vec::new(),
            min_pin_length: pin.min_length(),
            force_pin_change: pin.force_change(),
            firmware_version: fw.as_ctap(),
            remaining_discoverable_credentials: fw
                .max_discoverable_credentials()
                .saturating_sub(self.discoverable_count()),
            algorithms: vec![COSE_ES256],
            pin_retries: pin.retries(),
            transports: self.state.identity.model.transports(),
        })
    }

    fn set_pin(&mut self, new_pin: &Pin) -> Result<()> {
        self.state.fresh_insertion = false;
        self.state.pin.set(new_pin)?;
        Ok(())
    }

    fn change_pin(&mut self, current_pin: &Pin, new_pin: &Pin) -> Result<()> {
        self.state.fresh_insertion = false;
        self.token = None;
        self.state.pin.change(current_pin, new_pin)?;
        Ok(())
    }

    fn make_credential(
        &mut self,
        req: &MakeCredentialRequest,
        pin: Option<&Pin>,
    ) -> Result<MakeCredentialResponse> {
        self.state.fresh_insertion = false;
        if req.rp.id.is_empty() {
            return Err(CtapError::MissingParameter.into());
        }
        if req.user.id.is_empty() || req.user.id.len() > 64 {
            return Err(CtapError::InvalidParameter.into());
        }
        if !req.algorithms.contains(&COSE_ES256) {
            return Err(CtapError::UnsupportedAlgorithm.into());
        }
        // A discoverable credential on a PIN-protected key always needs UV
        // (makeCredUvNotRqd covers non-discoverable credentials only).
        let uv_required = req.user_verification || (req.resident_key && self.state.pin.is_set());
        let uv = self.verify_user(pin, PERM_MC | PERM_GA, &req.rp.id, uv_required)?;

        // CTAP 2.1 §6.1.2 step 7: every excluded credential of this RP counts, each
        // under its own credProtect (a level-3 one only once the user is verified).
        if self.state.credentials.iter().any(|c| {
            c.rp.id == req.rp.id && req.exclude_list.contains(&c.id) && (uv || c.cred_protect < 3)
        }) {
            return Err(CtapError::CredentialExcluded.into());
        }

        let replaces = |c: &StoredCredential| {
            c.discoverable && c.rp.id == req.rp.id && c.user.id == req.user.id
        };
        if req.resident_key
            && !self.state.credentials.iter().any(replaces)
            && self.discoverable_count() >= self.firmware().max_discoverable_credentials()
        {
            return Err(CtapError::KeyStoreFull.into());
        }

        let fw = self.firmware();
        let cred_protect = match req.cred_protect {
            Some(level @ 1..=3) if fw.has_cred_protect() => Some(level),
            Some(1..=3) | None => None,
            Some(_) => return Err(CtapError::InvalidParameter.into()),
        };
        let extensions = ExtensionOutputs {
            cred_protect,
            hmac_secret: req.hmac_secret.then_some(true),
        };

        let cred_key = P256Key::generate()?;
        let credential_id = random_bytes(32)?;
        let cose = cbor::cose_key(cred_key.public_point())?;
        let flags = FLAG_UP | if uv { FLAG_UV } else { 0 };
        let auth_data = auth_data(
            &req.rp.id,
            flags,
            0,
            Some(&AttestedCredential {
                aaguid: self.state.identity.aaguid,
                credential_id: &credential_id,
                cose_key: &cose,
            }),
            &extensions,
        )?;
        let sig = self
            .attestation_key()?
            .sign(&auth_data, &req.client_data_hash)?;
        let attestation_object =
            cbor::packed_attestation_object(&auth_data, &sig, &self.attestation_chain())?;

        self.state
            .credentials
            .retain(|c| !(req.resident_key && replaces(c)));
        self.state.credentials.push(StoredCredential {
            id: credential_id.clone(),
            rp: req.rp.clone(),
            user: req.user.clone(),
            discoverable: req.resident_key,
            cred_protect: cred_protect.unwrap_or(1),
            hmac_secret: if req.hmac_secret {
                Some(SecretBytes::random(64)?)
            } else {
                None
            },
            sign_count: 0,
            private_key: cred_key.scalar()?,
        });
        Ok(MakeCredentialResponse {
            credential_id,
            auth_data,
            attestation_object,
            extensions,
        })
    }

    fn get_assertion(
        &mut self,
        req: &GetAssertionRequest,
        pin: Option<&Pin>,
    ) -> Result<GetAssertionResponse> {
        self.state.fresh_insertion = false;
        if req.rp_id.is_empty() {
            return Err(CtapError::MissingParameter.into());
        }
        let uv = self.verify_user(pin, PERM_GA, &req.rp_id, req.user_verification)?;
        let allow = !req.allow_list.is_empty();
        // Newest first, as a YubiKey returns discoverable credentials.
        let matching: Vec<usize> = (0..self.state.credentials.len())
            .rev()
            .filter(|&i| {
                let c = &self.state.credentials[i];
                c.rp.id == req.rp_id
                    && if allow {
                        req.allow_list.contains(&c.id)
                    } else {
                        c.discoverable
                    }
                    && match c.cred_protect {
                        3 => uv,
                        2 => uv || allow,
                        _ => true,
                    }
            })
            .collect();
        let Some(&first) = matching.first() else {
            return Err(CtapError::NoCredentials.into());
        };
        let cred = &mut self.state.credentials[first];
        cred.sign_count = cred.sign_count.saturating_add(1);
        let flags = FLAG_UP | if uv { FLAG_UV } else { 0 };
        let auth_data = auth_data(
            &req.rp_id,
            flags,
            cred.sign_count,
            None,
            &ExtensionOutputs::default(),
        )?;
        let key = P256Key::from_scalar(cred.private_key.expose())
            .map_err(|_| Error::State("credential private key is corrupt".into()))?;
        let signature = key.sign(&auth_data, &req.client_data_hash)?;
        Ok(GetAssertionResponse {
            credential_id: cred.id.clone(),
            auth_data,
            signature,
            user: cred.discoverable.then(|| cred.user.clone()),
            number_of_credentials: matching.len(),
        })
    }

    fn set_min_pin_length(
        &mut self,
        pin: Option<&Pin>,
        new_min_pin_length: Option<u8>,
        force_change_pin: bool,
    ) -> Result<()> {
        self.state.fresh_insertion = false;
        if !self.firmware().has_authenticator_config() {
            return Err(CtapError::InvalidCommand.into());
        }
        if self.state.pin.is_set() {
            let Some(pin) = pin else {
                return Err(CtapError::PinRequired.into());
            };
            self.issue_token(pin, PERM_ACFG, None)?;
            if let Some(t) = &self.token {
                t.check(PERM_ACFG, None)?;
            }
        }
        self.state
            .pin
            .set_min_length(new_min_pin_length, force_change_pin)?;
        Ok(())
    }

    fn reset(&mut self) -> Result<()> {
        if !self.state.fresh_insertion {
            return Err(CtapError::NotAllowed(
                "reset works only right after the key is inserted: remove and reinsert it, \
                 then reset before anything else",
            )
            .into());
        }
        self.state.fresh_insertion = false;
        self.token = None;
        self.state.pin = PinState::default();
        self.state.credentials.clear();
        Ok(())
    }
}
