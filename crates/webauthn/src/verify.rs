//! Relying-party ceremonies: registration (WebAuthn §7.1) and assertion (§7.2).

use uuid::Uuid;

use crate::attestation::{
    AttestationObject, AttestationPolicy, AttestationType, ChainOptions, verify_statement,
};
use crate::auth_data::{AuthenticatorData, AuthenticatorExtensions};
use crate::client_data::{self, ClientData, TYPE_CREATE, TYPE_GET};
use crate::cose::CoseKey;
use crate::options::{ALG_ES256, ALG_ES384, ALG_RS256};
use crate::{Error, MAX_INPUT};

/// What the RP expects of a registration.
#[derive(Debug, Clone)]
pub struct RegistrationExpectations {
    pub rp_id: String,
    /// Allowed clientData origins (exact match), e.g. `https://login.microsoft.com`.
    pub origins: Vec<String>,
    /// The challenge string as issued (compared verbatim with clientData).
    pub challenge: String,
    pub require_uv: bool,
    pub policy: AttestationPolicy,
    /// When set, the AAGUID must be one of these.
    pub allowed_aaguids: Option<Vec<Uuid>>,
    /// COSE algorithms the credential key may use (default ES256, ES384, RS256).
    pub allowed_algorithms: Vec<i64>,
    /// Seconds since the Unix epoch for certificate validity; `None` skips the check.
    pub now: Option<u64>,
}

impl RegistrationExpectations {
    /// Expectations with origin `https://<rp_id>`, UV not required, all supported
    /// algorithms, no AAGUID list and no validity check.
    pub fn new(
        rp_id: impl Into<String>,
        challenge: impl Into<String>,
        policy: AttestationPolicy,
    ) -> Self {
        let rp_id = rp_id.into();
        Self {
            origins: vec![format!("https://{rp_id}")],
            rp_id,
            challenge: challenge.into(),
            require_uv: false,
            policy,
            allowed_aaguids: None,
            allowed_algorithms: vec![ALG_ES256, ALG_ES384, ALG_RS256],
            now: None,
        }
    }
}

impl RegistrationExpectations {
    /// Expectations matching creation options the RP issued: `rp.id`, `challenge`,
    /// UV required when `userVerification` is `required`, and the algorithms of
    /// `pubKeyCredParams` (when non-empty). Origin defaults to `https://<rp.id>`.
    pub fn from_options(
        options: &crate::options::PublicKeyCredentialCreationOptions,
        policy: AttestationPolicy,
    ) -> Result<Self, Error> {
        let rp_id = options
            .rp_id()
            .ok_or_else(|| Error::OptionsJson("creation options have no rp.id".into()))?;
        let mut exp = Self::new(rp_id, options.challenge.clone(), policy);
        exp.require_uv = options.requires_uv();
        if !options.pub_key_cred_params.is_empty() {
            exp.allowed_algorithms = options.pub_key_cred_params.iter().map(|p| p.alg).collect();
        }
        Ok(exp)
    }
}

/// A verified registration: what an RP stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegisteredCredential {
    pub fmt: String,
    pub aaguid: Uuid,
    pub credential_id: Vec<u8>,
    /// COSE_Key bytes as in authData; store these for assertions.
    pub public_key_cose: Vec<u8>,
    pub sign_count: u32,
    /// True only when an x5c chain was verified to a configured root.
    pub attested: bool,
    pub attestation_type: AttestationType,
    /// The x5c chain (DER, leaf first) when present.
    pub attestation_chain: Vec<Vec<u8>>,
    pub uv: bool,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub extensions: Option<AuthenticatorExtensions>,
}

/// Verify a registration ceremony's output.
pub fn verify_registration(
    exp: &RegistrationExpectations,
    client_data_json: &[u8],
    attestation_object: &[u8],
) -> Result<RegisteredCredential, Error> {
    check_client_data(client_data_json, TYPE_CREATE, &exp.challenge, &exp.origins)?;
    let client_data_hash = client_data::hash_bytes(client_data_json);
    if attestation_object.len() > MAX_INPUT {
        return Err(Error::TooLarge {
            what: "attestation object",
            max: MAX_INPUT,
        });
    }
    let obj = AttestationObject::parse(attestation_object)?;
    let ad = &obj.auth_data;
    check_auth_data(ad, &exp.rp_id, exp.require_uv)?;
    let credential = ad
        .attested_credential
        .as_ref()
        .ok_or(Error::MissingCredentialData)?;
    let alg = credential.public_key.alg();
    if !exp.allowed_algorithms.contains(&alg) {
        return Err(Error::UnsupportedAlgorithm(alg));
    }
    let attestation_type = verify_statement(
        &obj,
        &client_data_hash,
        &exp.policy,
        ChainOptions { now: exp.now },
    )?;
    if let Some(allowed) = &exp.allowed_aaguids
        && !allowed.contains(&credential.aaguid)
    {
        return Err(Error::AaguidNotAllowed(credential.aaguid));
    }
    Ok(RegisteredCredential {
        fmt: obj.fmt.clone(),
        aaguid: credential.aaguid,
        credential_id: credential.credential_id.clone(),
        public_key_cose: credential.public_key_cose.clone(),
        sign_count: ad.sign_count,
        attested: attestation_type == AttestationType::Trusted,
        attestation_type,
        attestation_chain: obj.x5c(),
        uv: ad.flags.uv(),
        backup_eligible: ad.flags.be(),
        backup_state: ad.flags.bs(),
        extensions: ad.extensions.clone(),
    })
}

/// What the RP expects of an assertion.
#[derive(Debug, Clone)]
pub struct AssertionExpectations {
    pub rp_id: String,
    pub origins: Vec<String>,
    pub challenge: String,
    pub require_uv: bool,
    /// The stored credential public key (COSE_Key bytes).
    pub public_key_cose: Vec<u8>,
    /// The stored signature counter.
    pub sign_count: u32,
}

/// A verified assertion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssertionOutcome {
    /// The new counter to store.
    pub sign_count: u32,
    pub uv: bool,
    pub backup_state: bool,
    pub extensions: Option<AuthenticatorExtensions>,
}

/// Verify an assertion ceremony's output.
pub fn verify_assertion(
    exp: &AssertionExpectations,
    client_data_json: &[u8],
    authenticator_data: &[u8],
    signature: &[u8],
) -> Result<AssertionOutcome, Error> {
    let key = CoseKey::parse(&exp.public_key_cose)?;
    check_client_data(client_data_json, TYPE_GET, &exp.challenge, &exp.origins)?;
    let ad = AuthenticatorData::parse(authenticator_data)?;
    check_auth_data(&ad, &exp.rp_id, exp.require_uv)?;
    if ad.attested_credential.is_some() {
        return Err(Error::UnexpectedCredentialData);
    }
    if signature.len() > MAX_INPUT {
        return Err(Error::TooLarge {
            what: "signature",
            max: MAX_INPUT,
        });
    }
    let mut signed = Vec::with_capacity(authenticator_data.len() + 32);
    signed.extend_from_slice(authenticator_data);
    signed.extend_from_slice(&client_data::hash_bytes(client_data_json));
    key.verify(&signed, signature)?;
    if (ad.sign_count != 0 || exp.sign_count != 0) && ad.sign_count <= exp.sign_count {
        return Err(Error::SignCountNotIncreased {
            stored: exp.sign_count,
            received: ad.sign_count,
        });
    }
    Ok(AssertionOutcome {
        sign_count: ad.sign_count,
        uv: ad.flags.uv(),
        backup_state: ad.flags.bs(),
        extensions: ad.extensions,
    })
}

fn check_client_data(
    bytes: &[u8],
    typ: &'static str,
    challenge: &str,
    origins: &[String],
) -> Result<ClientData, Error> {
    let cd = ClientData::parse(bytes)?;
    if cd.typ != typ {
        return Err(Error::ClientDataType {
            expected: typ,
            found: cd.typ,
        });
    }
    if cd.challenge != challenge {
        return Err(Error::ChallengeMismatch);
    }
    if !origins.contains(&cd.origin) {
        return Err(Error::OriginMismatch { found: cd.origin });
    }
    if cd.cross_origin {
        return Err(Error::CrossOrigin);
    }
    Ok(cd)
}

fn check_auth_data(ad: &AuthenticatorData, rp_id: &str, require_uv: bool) -> Result<(), Error> {
    let want = client_data::sha256(rp_id.as_bytes());
    if ad.rp_id_hash != want {
        return Err(Error::RpIdHashMismatch);
    }
    if !ad.flags.up() {
        return Err(Error::UserPresenceRequired);
    }
    if require_uv && !ad.flags.uv() {
        return Err(Error::UserVerificationRequired);
    }
    Ok(())
}
