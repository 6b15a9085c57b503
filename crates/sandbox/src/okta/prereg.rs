//! `/webauthn-registration/api/v1/`: Okta's side of FIDO pre-registration.
//!
//! `enroll` makes, per RP id, a factor (`fwf…`) with its own P-384 response key pair
//! (`keyId`) and creation options (origin `https://<rp id>`), seals one PIN request
//! (generate 6 digits, force a change) and the credential requests to the given
//! transport key, and records the factors `PENDING_ACTIVATION`. `activate` opens the
//! responses with the given signing keys (each must also be trusted by the org), checks
//! `request_hash`, serial and firmware consistency and the attestation (sandbox root),
//! and makes the factors `ACTIVE`; the PIN stays inside the fulfiller's sealed PIN
//! response until `send-pin` reopens it to mail it. `send-pin` is refused after the
//! user's first sign-in with the key.

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use envelope::{
    CredentialRequest, Jwks, KeyUse, PinChoice, PinRequest as EnvPinRequest, PrivateJwk, PublicJwk,
    Request,
};
use okta::error::codes;
use okta::{
    EnrollmentActivationRequest, EnrollmentActivationResponse, EnrollmentInitializationRequest,
    EnrollmentInitializationResponse, FulfillmentRequest, PinRequest, WebAuthnCredRequest,
};
use serde_json::{Value, json};

use super::{Failure, Okta, hooks, parse_body, random_id};

/// Factor status after `enroll`.
pub const PENDING: &str = "PENDING_ACTIVATION";
/// After `activate`.
pub const ACTIVE: &str = "ACTIVE";
/// After `mark-error`.
pub const ERRORED: &str = "FULFILLMENT_ERRORED";
/// Generated PIN length.
pub const PIN_LENGTH: u8 = 6;
/// How long the enrollment challenge is meant to live (the fulfiller takes days), ms.
pub const ENROLL_TIMEOUT_MS: u64 = 30 * 24 * 3600 * 1000;

/// A pre-registered WebAuthn factor.
pub(crate) struct Factor {
    pub(crate) id: String,
    pub(crate) user_id: String,
    pub(crate) status: &'static str,
    pub(crate) created: u64,
    pub(crate) last_updated: u64,
    pub(crate) rp_id: String,
    pub(crate) origin: String,
    pub(crate) options: Value,
    pub(crate) key_id: String,
    pub(crate) response_key: PrivateJwk,
    pub(crate) cred_request_jwe: String,
    pub(crate) pin_request: String,
    pub(crate) activated: Option<Activated>,
}

/// What activation stored.
pub(crate) struct Activated {
    pub(crate) credential_id: Vec<u8>,
    pub(crate) public_key_cose: Vec<u8>,
    pub(crate) sign_count: u32,
    pub(crate) aaguid: String,
    pub(crate) serial: String,
    pub(crate) version: String,
    pub(crate) signed_in: bool,
}

/// One PIN request per `enroll`; the PIN response stays sealed.
pub(crate) struct PinRequestRecord {
    pub(crate) id: String,
    pub(crate) key: PrivateJwk,
    pub(crate) jwe: String,
    /// `pinResponseJwe` and the signing keys it verified with.
    pub(crate) sealed_response: Option<(String, Jwks)>,
}

pub(super) fn routes() -> Router<Okta> {
    const BASE: &str = "/webauthn-registration/api/v1";
    Router::new()
        .route(
            &format!("{BASE}/initiate-fulfillment-request"),
            post(initiate),
        )
        .route(&format!("{BASE}/enroll"), post(enroll))
        .route(&format!("{BASE}/activate"), post(activate))
        .route(&format!("{BASE}/send-pin"), post(send_pin))
        .route(&format!("{BASE}/users/{{user}}/enrollments"), get(list))
        .route(
            &format!("{BASE}/users/{{user}}/enrollments/{{id}}"),
            delete(remove),
        )
        .route(
            &format!("{BASE}/users/{{user}}/enrollments/{{id}}/mark-error"),
            post(mark_error),
        )
}

fn check_provider(p: &str) -> Result<(), Failure> {
    if p == okta::FULFILLMENT_PROVIDER {
        Ok(())
    } else {
        Err(Failure::validation(
            "fulfillmentProvider",
            format!("fulfillmentProvider must be \"yubico\", not {p:?}"),
        ))
    }
}

/// `POST .../initiate-fulfillment-request` (204): emits the preregistration event.
async fn initiate(State(okta): State<Okta>, body: Bytes) -> Result<StatusCode, Failure> {
    let req: FulfillmentRequest = parse_body(&body, "fulfillmentRequest")?;
    check_provider(&req.fulfillment_provider)?;
    let user = okta
        .find_user(&req.user_id)
        .ok_or_else(|| Failure::not_found(&req.user_id))?;
    if req.fulfillment_data.is_empty() {
        return Err(Failure::validation(
            "fulfillmentData",
            "fulfillmentData needs at least one order line {productId, inventoryProductId, customizationId}",
        ));
    }
    hooks::emit(&okta, hooks::preregistration_event(&user, &req));
    Ok(StatusCode::NO_CONTENT)
}

fn is_host(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn internal(e: impl std::fmt::Display) -> Failure {
    Failure::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        codes::INTERNAL,
        "There was an unexpected internal error. Please try again.",
        vec![e.to_string()],
    )
}

/// `POST .../enroll`.
async fn enroll(
    State(okta): State<Okta>,
    body: Bytes,
) -> Result<Json<EnrollmentInitializationResponse>, Failure> {
    const WHAT: &str = "webAuthnPreregistrationPinRequest|webAuthnPreregistrationCredentialRequest";
    let req: EnrollmentInitializationRequest = parse_body(&body, WHAT)?;
    check_provider(&req.fulfillment_provider)?;
    let user = okta
        .find_user(&req.user_id)
        .ok_or_else(|| Failure::not_found(&req.user_id))?;
    if req.enrollment_rp_ids.is_empty() {
        return Err(Failure::validation(
            WHAT,
            "enrollmentRpIds needs at least one relying party host name",
        ));
    }
    if let Some(bad) = req.enrollment_rp_ids.iter().find(|r| !is_host(r)) {
        return Err(Failure::validation(
            WHAT,
            format!(
                "enrollmentRpIds entry {bad:?} is not a host name; send e.g. \"{}\" (no scheme, port or path)",
                okta.seed().domain
            ),
        ));
    }
    let transport_value = serde_json::to_value(&req.yubico_transport_key_jwk).map_err(internal)?;
    let transport = PublicJwk::from_value(&transport_value).map_err(|e| {
        Failure::validation(
            WHAT,
            format!("yubicoTransportKeyJWK is not a usable P-384 key: {e}"),
        )
    })?;
    if transport.key_use() != KeyUse::Enc {
        return Err(Failure::validation(
            WHAT,
            "yubicoTransportKeyJWK must have \"use\": \"enc\"",
        ));
    }
    let pin_key =
        PrivateJwk::generate(random_id("", 20).to_lowercase(), KeyUse::Enc).map_err(internal)?;
    let pin_request = Request::Pin(EnvPinRequest {
        response_key: pin_key.public().clone(),
        pin: PinChoice::Generate { length: PIN_LENGTH },
        min_pin_length: PIN_LENGTH,
        force_pin_change: true,
    });
    let pin_jwe = envelope::seal_request(&pin_request, &transport).map_err(internal)?;
    let pin_id = random_id("pin", 17);
    let now = crate::time::now();
    let mut factors = Vec::new();
    let mut cred_requests = Vec::new();
    for rp in &req.enrollment_rp_ids {
        let key_id = random_id("", 20).to_lowercase();
        let response_key = PrivateJwk::generate(key_id.clone(), KeyUse::Enc).map_err(internal)?;
        let challenge = webauthn::b64::encode(
            crate::rng::bytes::<32>().ok_or_else(|| internal("no randomness"))?,
        );
        let options = json!({
            "rp": {"id": rp, "name": okta.seed().domain},
            "user": {
                "id": webauthn::b64::encode(user.id.as_bytes()),
                "name": user.profile.login,
                "displayName": user.profile.display_name(),
            },
            "challenge": challenge,
            "pubKeyCredParams": [{"type": "public-key", "alg": -7}, {"type": "public-key", "alg": -257}],
            "timeout": ENROLL_TIMEOUT_MS,
            "excludeCredentials": [],
            "authenticatorSelection": {
                "authenticatorAttachment": "cross-platform",
                "residentKey": "required", "requireResidentKey": true,
                "userVerification": "required",
            },
            "attestation": "direct",
        });
        let origin = format!("https://{rp}");
        let jwe = envelope::seal_request(
            &Request::Credential(CredentialRequest {
                response_key: response_key.public().clone(),
                origin: origin.clone(),
                public_key: options.clone(),
            }),
            &transport,
        )
        .map_err(internal)?;
        let id = random_id("fwf", 17);
        cred_requests.push(WebAuthnCredRequest {
            authenticator_enrollment_id: id.clone(),
            cred_request_jwe: jwe.clone(),
            key_id: key_id.clone(),
        });
        factors.push(Factor {
            id,
            user_id: user.id.clone(),
            status: PENDING,
            created: now,
            last_updated: now,
            rp_id: rp.clone(),
            origin,
            options,
            key_id,
            response_key,
            cred_request_jwe: jwe,
            pin_request: pin_id.clone(),
            activated: None,
        });
    }
    {
        let mut org = okta.org();
        org.factors.extend(factors);
        org.pin_requests.push(PinRequestRecord {
            id: pin_id,
            key: pin_key,
            jwe: pin_jwe.clone(),
            sealed_response: None,
        });
    }
    tracing::info!(user = %user.id, count = cred_requests.len(), "Okta sandbox: enrolled pre-registration factors");
    Ok(Json(EnrollmentInitializationResponse {
        cred_requests,
        fulfillment_provider: okta::FULFILLMENT_PROVIDER.into(),
        pin_request_jwe: pin_jwe,
        user_id: user.id,
    }))
}

/// `POST .../activate`.
async fn activate(
    State(okta): State<Okta>,
    body: Bytes,
) -> Result<Json<EnrollmentActivationResponse>, Failure> {
    const WHAT: &str = "pinResponseJwe|webAuthnCredResponse";
    let req: EnrollmentActivationRequest = parse_body(&body, WHAT)?;
    check_provider(&req.fulfillment_provider)?;
    let user = okta
        .find_user(&req.user_id)
        .ok_or_else(|| Failure::not_found(&req.user_id))?;
    if req.cred_responses.is_empty() {
        return Err(Failure::validation(
            WHAT,
            "credResponses needs at least one credential response",
        ));
    }
    // The signing keys: as given, and each trusted by the org.
    let trusted = okta.trusted_signing();
    let mut given = Jwks::new();
    for k in &req.yubico_signing_jwks {
        let v = serde_json::to_value(k).map_err(internal)?;
        let key = PublicJwk::from_value(&v).map_err(|e| {
            Failure::validation(
                WHAT,
                format!(
                    "yubicoSigningJwks key {:?} is not a usable P-384 key: {e}",
                    k.kid
                ),
            )
        })?;
        if key.key_use() != KeyUse::Sig {
            return Err(Failure::validation(
                WHAT,
                format!(
                    "yubicoSigningJwks key {:?} must have \"use\": \"sig\"",
                    k.kid
                ),
            ));
        }
        if trusted.get(key.kid()) != Some(&key) {
            return Err(Failure::validation(
                WHAT,
                format!(
                    "yubicoSigningJwks key {:?} is not a signing key this org trusts; send the fulfiller's published signing keys (the org trusts: {})",
                    k.kid,
                    trusted
                        .keys()
                        .iter()
                        .map(|k| k.kid().to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        given
            .add(key)
            .map_err(|e| Failure::validation(WHAT, format!("yubicoSigningJwks: {e}")))?;
    }
    if given.is_empty() {
        return Err(Failure::validation(
            WHAT,
            "yubicoSigningJwks needs the fulfiller's signing keys",
        ));
    }
    let root = webauthn::TrustRoots::from_pem(authenticator::sandbox_attestation_root_pem())
        .map_err(internal)?;
    let mut org = okta.org();
    // Resolve the factors named.
    let mut idx = Vec::new();
    for r in &req.cred_responses {
        let i = org
            .factors
            .iter()
            .position(|f| f.id == r.authenticator_enrollment_id && f.user_id == user.id)
            .ok_or_else(|| Failure::not_found(&r.authenticator_enrollment_id))?;
        if org.factors[i].status != PENDING {
            return Err(Failure::validation(
                WHAT,
                format!(
                    "enrollment {} is {}, not {PENDING}",
                    r.authenticator_enrollment_id, org.factors[i].status
                ),
            ));
        }
        if idx.contains(&i) {
            return Err(Failure::validation(
                WHAT,
                format!(
                    "enrollment {} is listed twice",
                    r.authenticator_enrollment_id
                ),
            ));
        }
        idx.push(i);
    }
    let pin_id = org.factors[idx[0]].pin_request.clone();
    if idx.iter().any(|&i| org.factors[i].pin_request != pin_id) {
        return Err(Failure::validation(
            WHAT,
            "the credential responses come from different enroll calls; activate each enroll call's factors together",
        ));
    }
    let p = org
        .pin_requests
        .iter()
        .position(|p| p.id == pin_id)
        .ok_or_else(|| internal("the PIN request record is missing"))?;
    let pin = envelope::open_pin_response(
        &req.pin_response_jwe,
        std::slice::from_ref(&org.pin_requests[p].key),
        &given,
        &org.pin_requests[p].jwe,
    )
    .map_err(|e| Failure::validation(WHAT, format!("pinResponseJwe: {e}")))?;
    if pin.serial != req.serial {
        return Err(Failure::validation(
            WHAT,
            format!(
                "the PIN response names serial {}, the request says {}",
                pin.serial, req.serial
            ),
        ));
    }
    let mut done = Vec::new();
    for (r, &i) in req.cred_responses.iter().zip(&idx) {
        let f = &org.factors[i];
        let id = &r.authenticator_enrollment_id;
        let cred = envelope::open_credential_response(
            &r.cred_response_jwe,
            std::slice::from_ref(&f.response_key),
            &given,
            &f.cred_request_jwe,
        )
        .map_err(|e| {
            Failure::validation(WHAT, format!("credResponseJwe for enrollment {id}: {e}"))
        })?;
        envelope::check_same_serial(&cred, &pin)
            .map_err(|e| Failure::validation(WHAT, format!("enrollment {id}: {e}")))?;
        if cred.firmware_version != req.version {
            return Err(Failure::validation(
                WHAT,
                format!(
                    "enrollment {id}: the response names firmware {}, the request says {}",
                    cred.firmware_version, req.version
                ),
            ));
        }
        let reg: webauthn::options::RegistrationResponse =
            serde_json::from_value(cred.credential.clone()).map_err(|e| {
                Failure::validation(
                    WHAT,
                    format!(
                        "enrollment {id}: the credential is not WebAuthn registration JSON: {e}"
                    ),
                )
            })?;
        let opts: webauthn::options::PublicKeyCredentialCreationOptions =
            serde_json::from_value(f.options.clone()).map_err(internal)?;
        let mut exp = webauthn::RegistrationExpectations::from_options(
            &opts,
            webauthn::AttestationPolicy::Required(root.clone()),
        )
        .map_err(internal)?;
        exp.origins = vec![f.origin.clone()];
        exp.now = Some(crate::time::now());
        let out = webauthn::verify_registration(
            &exp,
            &reg.response.client_data_json,
            &reg.response.attestation_object,
        )
        .map_err(|e| {
            Failure::validation(
                WHAT,
                format!("enrollment {id}: the registration did not verify: {e}"),
            )
        })?;
        if out.credential_id != reg.id {
            return Err(Failure::validation(
                WHAT,
                format!("enrollment {id}: the credential id does not match the attested one"),
            ));
        }
        if out.aaguid.to_string() != cred.aaguid.to_lowercase() {
            return Err(Failure::validation(
                WHAT,
                format!("enrollment {id}: the response's aaguid is not the attested one"),
            ));
        }
        done.push((
            i,
            Activated {
                credential_id: out.credential_id,
                public_key_cose: out.public_key_cose,
                sign_count: out.sign_count,
                aaguid: out.aaguid.to_string(),
                serial: cred.serial.clone(),
                version: cred.firmware_version.clone(),
                signed_in: false,
            },
        ));
    }
    drop(pin);
    let now = crate::time::now();
    let mut ids = Vec::new();
    for (i, a) in done {
        let f = &mut org.factors[i];
        f.status = ACTIVE;
        f.last_updated = now;
        f.activated = Some(a);
        ids.push(f.id.clone());
    }
    org.pin_requests[p].sealed_response = Some((req.pin_response_jwe.clone(), given));
    drop(org);
    tracing::info!(user = %user.id, count = ids.len(), "Okta sandbox: activated pre-registered factors");
    Ok(Json(EnrollmentActivationResponse {
        authenticator_enrollment_ids: ids,
        fulfillment_provider: okta::FULFILLMENT_PROVIDER.into(),
        user_id: user.id,
    }))
}

/// `POST .../send-pin` (204).
async fn send_pin(State(okta): State<Okta>, body: Bytes) -> Result<StatusCode, Failure> {
    const WHAT: &str = "pinRequest";
    let req: PinRequest = parse_body(&body, WHAT)?;
    check_provider(&req.fulfillment_provider)?;
    let user = okta
        .find_user(&req.user_id)
        .ok_or_else(|| Failure::not_found(&req.user_id))?;
    let ids = req.authenticator_enrollment_id.ids();
    if ids.is_empty() {
        return Err(Failure::validation(
            WHAT,
            "authenticatorEnrollmentId names no enrollment",
        ));
    }
    let pin = {
        let org = okta.org();
        let mut pin_ids = Vec::new();
        for id in &ids {
            let f = org
                .factors
                .iter()
                .find(|f| &f.id == id && f.user_id == user.id)
                .ok_or_else(|| Failure::not_found(id))?;
            let Some(a) = &f.activated else {
                return Err(Failure::validation(
                    WHAT,
                    format!(
                        "enrollment {id} is {}; activate it before sending its PIN",
                        f.status
                    ),
                ));
            };
            if a.signed_in {
                return Err(Failure::forbidden(format!(
                    "The PIN is no longer available: {} has signed in with this key (enrollment {id}). The user keeps the PIN they set.",
                    user.profile.login
                )));
            }
            if !pin_ids.contains(&f.pin_request) {
                pin_ids.push(f.pin_request.clone());
            }
        }
        if pin_ids.len() != 1 {
            return Err(Failure::validation(
                WHAT,
                "these enrollments belong to different keys; send each key's PIN separately",
            ));
        }
        let p = org
            .pin_requests
            .iter()
            .find(|p| p.id == pin_ids[0])
            .ok_or_else(|| internal("the PIN request record is missing"))?;
        let (resp, jwks) = p
            .sealed_response
            .as_ref()
            .ok_or_else(|| internal("no sealed PIN response"))?;
        envelope::open_pin_response(resp, std::slice::from_ref(&p.key), jwks, &p.jwe)
            .map_err(internal)?
    };
    // The guide's FAQ: "The user receives an email with the randomly generated PIN code
    // to their primary and secondary email addresses listed in the Okta Universal
    // Directory", whatever the user's status; the primary first.
    let mut to = Vec::new();
    if let Some(e) = &user.profile.email {
        to.push(e.clone());
    }
    if let Some(e) = &user.profile.second_email
        && !to.iter().any(|t: &String| t.eq_ignore_ascii_case(e))
    {
        to.push(e.clone());
    }
    if to.is_empty() {
        return Err(Failure::validation(
            WHAT,
            format!(
                "{} has no email address to send the PIN to; set profile.email",
                user.profile.login
            ),
        ));
    }
    let body = format!(
        "Hello {},\n\nYour new security key (serial {}) is registered with {}.\nIts PIN is: {}\n\n{}Keep this PIN private. Nobody from IT will ask you for it.\n",
        user.profile
            .first_name
            .as_deref()
            .unwrap_or(&user.profile.login),
        pin.serial,
        okta.seed().domain,
        pin.pin.expose(),
        if pin.force_pin_change {
            "You will be asked to choose a new PIN the first time you use the key.\n"
        } else {
            ""
        },
    );
    drop(pin);
    crate::mail::send(&okta.0.smtp, &to, "Your security key PIN", body)
        .await
        .map_err(|e| {
            Failure::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                "The PIN could not be mailed.",
                vec![e.to_string()],
            )
        })?;
    tracing::info!(user = %user.id, recipients = to.len(), "Okta sandbox: PIN mailed");
    Ok(StatusCode::NO_CONTENT)
}

/// The list entry of a factor.
pub(crate) fn factor_json(okta: &Okta, f: &Factor) -> Value {
    let mut profile = serde_json::Map::new();
    profile.insert("rpId".into(), json!(f.rp_id));
    profile.insert("keyId".into(), json!(f.key_id));
    if let Some(a) = &f.activated {
        profile.insert(
            "credentialId".into(),
            json!(webauthn::b64::encode(&a.credential_id)),
        );
        profile.insert(
            "authenticatorName".into(),
            json!(format!("YubiKey (firmware {})", a.version)),
        );
        profile.insert("aaguid".into(), json!(a.aaguid));
        profile.insert("serial".into(), json!(a.serial));
    }
    profile.insert(
        "presetPinAvailable".into(),
        json!(f.activated.as_ref().is_some_and(|a| !a.signed_in)),
    );
    json!({
        "id": f.id,
        "factorType": "webauthn",
        "provider": "FIDO",
        "vendorName": "FIDO",
        "fulfillmentProvider": okta::FULFILLMENT_PROVIDER,
        "status": f.status,
        "created": iso(f.created),
        "lastUpdated": iso(f.last_updated),
        "profile": profile,
        "_links": {"self": {
            "href": format!("{}/webauthn-registration/api/v1/users/{}/enrollments/{}", okta.base_url(), f.user_id, f.id),
            "hints": {"allow": ["DELETE"]},
        }},
    })
}

fn iso(secs: u64) -> String {
    crate::time::rfc3339(secs).replace('Z', ".000Z")
}

/// `GET .../users/{userId}/enrollments`.
async fn list(State(okta): State<Okta>, Path(user): Path<String>) -> Result<Json<Value>, Failure> {
    let u = okta
        .find_user(&user)
        .ok_or_else(|| Failure::not_found(&user))?;
    let org = okta.org();
    Ok(Json(Value::Array(
        org.factors
            .iter()
            .filter(|f| f.user_id == u.id)
            .map(|f| factor_json(&okta, f))
            .collect(),
    )))
}

/// `DELETE .../users/{userId}/enrollments/{id}` (204).
async fn remove(
    State(okta): State<Okta>,
    Path((user, id)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    let u = okta
        .find_user(&user)
        .ok_or_else(|| Failure::not_found(&user))?;
    let mut org = okta.org();
    let before = org.factors.len();
    org.factors.retain(|f| !(f.id == id && f.user_id == u.id));
    if org.factors.len() == before {
        return Err(Failure::not_found(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../users/{userId}/enrollments/{id}/mark-error` (204, no body).
async fn mark_error(
    State(okta): State<Okta>,
    Path((user, id)): Path<(String, String)>,
) -> Result<StatusCode, Failure> {
    let u = okta
        .find_user(&user)
        .ok_or_else(|| Failure::not_found(&user))?;
    let mut org = okta.org();
    let f = org
        .factors
        .iter_mut()
        .find(|f| f.id == id && f.user_id == u.id)
        .ok_or_else(|| Failure::not_found(&id))?;
    if f.status == ACTIVE {
        return Err(Failure::validation(
            "authenticatorEnrollment",
            format!(
                "enrollment {id} is already ACTIVE; delete it instead of marking a fulfillment error"
            ),
        ));
    }
    f.status = ERRORED;
    f.last_updated = crate::time::now();
    Ok(StatusCode::NO_CONTENT)
}
