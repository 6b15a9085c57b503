//! `fido2Methods`: list, read, delete, `creationOptions` and registration.
//!
//! Registration checks, in order: permission; the user exists and is a member (not a
//! guest) in the policy's targets; the policy is enabled with self-service setup
//! allowed; the body is a fido2AuthenticationMethod; the challenge was issued here for
//! registration, for this user, has not expired (sandbox clock) and was not used; then
//! the `webauthn` crate's `verify_registration` (type, origin `https://login.microsoft.com`,
//! rpIdHash, UP/UV, packed attestation to the trust roots when attestation is enforced,
//! the AAGUID allow-list); the key restrictions' block list; the credential id is the
//! body's `id` and is not registered yet.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use graph::fido2::{FIDO2_METHOD_TYPE, NewFido2Method};
use graph::{ApiVersion, Fido2AuthenticationMethod};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use uuid::Uuid;
use webauthn::options::{
    AuthenticatorSelection, CreationExtensions, CredentialDescriptor, PubKeyCredParam,
    PublicKeyCredentialCreationOptions, RelyingParty, User,
};
use webauthn::{AttestationPolicy, RegistrationExpectations, TrustRoots};

use super::challenge::Purpose;
use super::directory::require;
use super::seed::SeedUser;
use super::tokens::Caller;
use super::{Entra, GraphFailure, StoredMethod};

const METHOD_READ: &[&str] = &[
    "UserAuthenticationMethod.Read.All",
    "UserAuthenticationMethod.ReadWrite.All",
    "UserAuthMethod-Passkey.Read.All",
    "UserAuthMethod-Passkey.ReadWrite.All",
];
const METHOD_WRITE: &[&str] = &graph::PASSKEY_WRITE_PERMISSIONS;
/// v1.0 and the beta default.
const DEFAULT_TIMEOUT_MINUTES: u64 = 5;

fn method_json(m: &StoredMethod, with_type: bool) -> Fido2AuthenticationMethod {
    Fido2AuthenticationMethod {
        odata_type: with_type.then(|| FIDO2_METHOD_TYPE.to_owned()),
        id: m.id.clone(),
        display_name: m.display_name.clone(),
        created_date_time: Some(crate::time::rfc3339(m.created)),
        aa_guid: Some(m.aaguid.to_string()),
        model: m.model.clone(),
        attestation_certificates: Some(m.thumbprints.clone()),
        attestation_level: Some(
            if m.attested {
                "attested"
            } else {
                "notAttested"
            }
            .to_owned(),
        ),
        passkey_type: Some("deviceBound".to_owned()),
        other: Map::new(),
    }
}

fn user_or_404(entra: &Entra, key: &str) -> Result<SeedUser, GraphFailure> {
    entra
        .find_user(key)
        .ok_or_else(|| GraphFailure::user_not_found(key))
}

/// `GET .../fido2Methods`.
pub(crate) async fn list(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
) -> Result<Json<Value>, GraphFailure> {
    require(&caller, METHOD_READ, "accessDenied")?;
    let u = user_or_404(&entra, &key)?;
    let value: Vec<Fido2AuthenticationMethod> = entra
        .methods()
        .list
        .iter()
        .filter(|m| m.user_id == u.user.id)
        .map(|m| method_json(m, false))
        .collect();
    Ok(Json(json!({
        "@odata.context": format!("{}/{}/$metadata#users('{}')/authentication/fido2Methods", entra.base_url(), v.as_str(), u.user.id),
        "value": value,
    })))
}

/// `GET .../fido2Methods/{id}`, and the `creationOptions` function in both its forms.
pub(crate) async fn get_method(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path((key, method)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, GraphFailure> {
    if method == "creationOptions" || method.starts_with("creationOptions(") {
        return creation_options(&entra, v, &caller, &key, &method, &q)
            .map(IntoResponse::into_response);
    }
    require(&caller, METHOD_READ, "accessDenied")?;
    let u = user_or_404(&entra, &key)?;
    let methods = entra.methods();
    let m = methods
        .list
        .iter()
        .find(|m| m.user_id == u.user.id && m.id == method)
        .ok_or_else(|| {
            GraphFailure::new(
                StatusCode::NOT_FOUND,
                "itemNotFound",
                format!("The FIDO2 method '{method}' was not found for this user."),
            )
        })?;
    let mut body = serde_json::to_value(method_json(m, false)).unwrap_or(Value::Null);
    if let Some(o) = body.as_object_mut() {
        o.insert(
            "@odata.context".into(),
            format!(
                "{}/{}/$metadata#users('{}')/authentication/fido2Methods/$entity",
                entra.base_url(),
                v.as_str(),
                u.user.id
            )
            .into(),
        );
    }
    Ok(Json(body).into_response())
}

/// `DELETE .../fido2Methods/{id}`: 204.
pub(crate) async fn delete(
    State(entra): State<Entra>,
    Extension(caller): Extension<Caller>,
    Path((key, method)): Path<(String, String)>,
) -> Result<StatusCode, GraphFailure> {
    require(&caller, METHOD_WRITE, "accessDenied")?;
    let u = user_or_404(&entra, &key)?;
    let mut methods = entra.methods();
    let before = methods.list.len();
    methods
        .list
        .retain(|m| !(m.user_id == u.user.id && m.id == method));
    if methods.list.len() == before {
        return Err(GraphFailure::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            format!("The FIDO2 method '{method}' was not found for this user."),
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Whether the policy lets this user register passkeys at all.
fn check_policy(entra: &Entra, u: &SeedUser) -> Result<(), GraphFailure> {
    if u.user.user_type.as_deref() == Some("Guest") {
        return Err(GraphFailure::invalid(
            "guestUserNotSupported",
            format!(
                "User {} is a guest; guest and B2B users can't register FIDO2 passkeys.",
                u.user.id
            ),
        ));
    }
    let seed = entra.seed();
    let p = &seed.fido2_policy;
    if p.state != "enabled" {
        return Err(GraphFailure::invalid(
            "fido2MethodDisabled",
            "The Passkey (FIDO2) authentication method is disabled in this tenant's authentication methods policy; enable it.",
        ));
    }
    if !p.is_self_service_registration_allowed {
        return Err(GraphFailure::invalid(
            "selfServiceSetupNotAllowed",
            "The Passkey (FIDO2) policy does not allow self-service set up. Provisioning passkeys through the API needs 'Allow self-service set up' = Yes.",
        ));
    }
    let targeted = p.include_targets.iter().any(|t| {
        t == "all_users"
            || seed.groups.iter().any(|g| {
                g.id.eq_ignore_ascii_case(t)
                    && g.members.iter().any(|m| {
                        m.eq_ignore_ascii_case(&u.user.id)
                            || u.user
                                .user_principal_name
                                .as_deref()
                                .is_some_and(|p| p.eq_ignore_ascii_case(m))
                    })
            })
    });
    if !targeted {
        return Err(GraphFailure::invalid(
            "userNotTargeted",
            format!(
                "User {} is not in a group the Passkey (FIDO2) policy targets.",
                u.user.id
            ),
        ));
    }
    Ok(())
}

fn creation_options(
    entra: &Entra,
    v: ApiVersion,
    caller: &Caller,
    key: &str,
    function: &str,
    q: &HashMap<String, String>,
) -> Result<Json<Value>, GraphFailure> {
    // The query form `creationOptions?challengeTimeoutInMinutes=N` (what YubicoLabs' and
    // DSInternals' tools send) is answered like the documented function-call form
    // `creationOptions(challengeTimeoutInMinutes=N)`. It got 405 in 2024-2025 (DSI #13,
    // #33) until the maintainer reported it "resolved in the latest release" (entra.md §1).
    let query_minutes = q.get("challengeTimeoutInMinutes");
    let args = match (function.strip_prefix("creationOptions"), query_minutes) {
        (Some(""), None) => None,
        (Some(""), Some(n)) => Some(n.trim().to_owned()),
        (Some(args), None) => Some(
            args.strip_prefix("(challengeTimeoutInMinutes=")
                .and_then(|r| r.strip_suffix(')'))
                .map(|n| n.trim().to_owned())
                .ok_or_else(|| {
                    GraphFailure::new(
                        StatusCode::BAD_REQUEST,
                        "BadRequest",
                        format!("Resource not found for the segment '{function}'."),
                    )
                })?,
        ),
        (Some(_), Some(_)) => {
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "challengeTimeoutInMinutes was given twice (in creationOptions(...) and in the query); give it once.",
            ));
        }
        (None, _) => {
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                "Resource not found.",
            ));
        }
    };
    let minutes = match args {
        None => DEFAULT_TIMEOUT_MINUTES,
        Some(n) => {
            if v == ApiVersion::V1 {
                return Err(GraphFailure::invalid(
                    "customTimeoutNotSupported",
                    "Custom challenge timeout values are not supported in v1.0; use beta.",
                ));
            }
            let n = n.parse::<u64>().map_err(|_| {
                GraphFailure::new(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    format!("challengeTimeoutInMinutes {n:?} is not a whole number of minutes."),
                )
            })?;
            if !(5..=43200).contains(&n) {
                return Err(GraphFailure::invalid(
                    "invalidChallengeTimeout",
                    format!(
                        "challengeTimeoutInMinutes {n} is out of range: it must be between 5 and 43200 minutes."
                    ),
                ));
            }
            n
        }
    };
    require(caller, METHOD_WRITE, "accessDenied")?;
    let u = user_or_404(entra, key)?;
    check_policy(entra, &u)?;
    let oid = Uuid::parse_str(&u.user.id).map_err(|_| GraphFailure::user_not_found(key))?;
    let expires = entra.clock().now() + minutes * 60;
    let challenge = entra
        .0
        .challenges
        .issue(Purpose::Register, oid, expires)
        .map_err(|e| GraphFailure::new(StatusCode::INTERNAL_SERVER_ERROR, "generalException", e))?;
    let (exclude, transports): (Vec<CredentialDescriptor>, Vec<Vec<String>>) = entra
        .methods()
        .list
        .iter()
        .filter(|m| m.user_id == u.user.id)
        .map(|m| {
            (
                CredentialDescriptor {
                    typ: "public-key".into(),
                    id: exclude_id(v, &m.credential_id),
                    transports: vec![],
                },
                m.transports.clone(),
            )
        })
        .unzip();
    let upn = u.user.user_principal_name.clone().unwrap_or_default();
    let options = graph::CreationOptions {
        odata_context: Some(format!(
            "{}/{}/$metadata#microsoft.graph.webauthnCredentialCreationOptions",
            entra.base_url(),
            v.as_str()
        )),
        challenge_timeout_date_time: Some(crate::time::rfc3339(expires)),
        public_key: PublicKeyCredentialCreationOptions {
            rp: RelyingParty {
                id: Some(graph::ENTRA_RP_ID.to_owned()),
                name: "Microsoft".to_owned(),
            },
            user: User {
                id: entra.0.challenges.user_handle(&entra.tenant_id(), oid),
                name: upn,
                display_name: u.user.display_name.clone().unwrap_or_default(),
            },
            challenge,
            pub_key_cred_params: vec![
                PubKeyCredParam {
                    typ: "public-key".into(),
                    alg: -7,
                },
                PubKeyCredParam {
                    typ: "public-key".into(),
                    alg: -257,
                },
            ],
            timeout: Some(60_000),
            exclude_credentials: exclude,
            authenticator_selection: Some(AuthenticatorSelection {
                authenticator_attachment: Some("cross-platform".into()),
                require_resident_key: Some(true),
                resident_key: None,
                user_verification: Some("required".into()),
            }),
            attestation: Some("direct".into()),
            extensions: Some(CreationExtensions {
                hmac_create_secret: Some(true),
                enforce_credential_protection_policy: Some(true),
                credential_protection_policy: Some("userVerificationOptional".into()),
                cred_props: None,
                other: Map::new(),
            }),
        },
    };
    // Graph writes `transports` on every descriptor, `[]` when unknown.
    let mut body = serde_json::to_value(options).unwrap_or(Value::Null);
    if let Some(list) = body["publicKey"]["excludeCredentials"].as_array_mut() {
        for (d, t) in list.iter_mut().zip(transports) {
            d["transports"] = json!(t);
        }
    }
    Ok(Json(body))
}

/// Credential ids as Graph writes them in `excludeCredentials`: beta in the .NET
/// `UrlTokenEncode` form (base64url with a padding-count digit, entra.md §1), v1.0 in
/// base64url without padding.
fn exclude_id(v: ApiVersion, id: &[u8]) -> String {
    let plain = webauthn::b64::encode(id);
    match v {
        ApiVersion::V1 => plain,
        ApiVersion::Beta => {
            let pad = (4 - plain.len() % 4) % 4;
            format!("{plain}{pad}")
        }
    }
}

/// The trust roots of the policy (the virtual key's sandbox root by default).
fn trust_roots(policy: &super::Fido2Policy) -> Result<TrustRoots, GraphFailure> {
    let internal = |e: webauthn::Error| {
        GraphFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "generalException",
            format!("attestation roots: {e}"),
        )
    };
    match &policy.attestation_roots_pem {
        None => {
            TrustRoots::from_pem(authenticator::sandbox_attestation_root_pem()).map_err(internal)
        }
        Some(pems) => {
            let mut roots = TrustRoots::default();
            for p in pems {
                roots.extend(TrustRoots::from_pem(p).map_err(internal)?);
            }
            Ok(roots)
        }
    }
}

/// `innerError.code` for each verification failure.
fn reason_for(e: &webauthn::Error) -> &'static str {
    use webauthn::Error as E;
    match e {
        E::ClientDataType { .. } => "invalidClientDataType",
        E::ChallengeMismatch => "challengeMismatch",
        E::OriginMismatch { .. } | E::CrossOrigin => "invalidOrigin",
        E::RpIdHashMismatch => "rpIdHashMismatch",
        E::UserPresenceRequired => "userPresenceRequired",
        E::UserVerificationRequired => "userVerificationRequired",
        E::AttestationRequired(_) | E::UntrustedChain => "attestationNotTrusted",
        E::AttestationSignature | E::AttestationAlgMismatch { .. } => "invalidAttestationSignature",
        E::AaguidNotAllowed(_) => "aaguidNotAllowed",
        E::UnsupportedFormat(_) => "unsupportedAttestationFormat",
        E::UnsupportedAlgorithm(_) => "unsupportedAlgorithm",
        _ => "invalidCredential",
    }
}

/// `POST .../fido2Methods`: 201 with the new method.
pub(crate) async fn register(
    State(entra): State<Entra>,
    Extension(v): Extension<ApiVersion>,
    Extension(caller): Extension<Caller>,
    Path(key): Path<String>,
    body: Bytes,
) -> Result<Response, GraphFailure> {
    require(&caller, METHOD_WRITE, "accessDenied")?;
    let u = user_or_404(&entra, &key)?;
    check_policy(&entra, &u)?;
    let missing = || {
        GraphFailure::new(
            StatusCode::BAD_REQUEST,
            "invalidRequest",
            "The request is missing a fido2AuthenticationMethod entity",
        )
    };
    let value: Value = serde_json::from_slice(&body).map_err(|_| missing())?;
    if !value.is_object() || value.get("publicKeyCredential").is_none() {
        return Err(missing());
    }
    let req: NewFido2Method = serde_json::from_value(value).map_err(|e| {
        GraphFailure::invalid(
            "invalidBody",
            format!("The fido2AuthenticationMethod entity is malformed: {e}"),
        )
    })?;
    if let Some(name) = &req.display_name
        && (name.is_empty() || name.chars().count() > 256)
    {
        return Err(GraphFailure::invalid(
            "invalidDisplayName",
            "displayName must be 1 to 256 characters.",
        ));
    }
    let cred = req.public_key_credential.decode().map_err(|e| {
        GraphFailure::invalid(
            "invalidEncoding",
            format!("{e}; encode binary members as base64url without padding"),
        )
    })?;
    let client_data = webauthn::ClientData::parse(&cred.client_data_json)
        .map_err(|e| GraphFailure::invalid("invalidClientData", e.to_string()))?;

    // The challenge: ours, for registration, for this user, fresh and unused.
    let opened = entra
        .0
        .challenges
        .open(&client_data.challenge)
        .ok_or_else(|| GraphFailure::invalid("challengeNotIssued", "The challenge in clientDataJSON was not issued by this tenant (or was altered); get new creationOptions."))?;
    if opened.purpose != Purpose::Register {
        return Err(GraphFailure::invalid(
            "challengeNotIssued",
            "The challenge in clientDataJSON was issued for sign-in, not for registration.",
        ));
    }
    if !u.user.id.eq_ignore_ascii_case(&opened.user.to_string()) {
        return Err(GraphFailure::invalid(
            "challengeUserMismatch",
            format!(
                "The challenge was issued for another user ({}), not for {}; register each credential for the user its creationOptions were fetched for.",
                opened.user, u.user.id
            ),
        ));
    }
    let now = entra.clock().now();
    if now > opened.expires {
        return Err(GraphFailure::invalid(
            "challengeExpired",
            format!(
                "The challenge expired at {}; fetch new creationOptions (a longer challengeTimeoutInMinutes on beta allows up to 30 days).",
                crate::time::rfc3339(opened.expires)
            ),
        ));
    }
    if entra.methods().used.iter().any(|(n, _)| *n == opened.nonce) {
        return Err(GraphFailure::invalid(
            "challengeAlreadyUsed",
            "The challenge was already used to register a credential; each creationOptions challenge registers one credential.",
        ));
    }

    // The WebAuthn ceremony.
    let (policy, enforced, restrictions) = {
        let seed = entra.seed();
        let p = &seed.fido2_policy;
        (
            p.clone(),
            p.is_attestation_enforced,
            p.key_restrictions.clone(),
        )
    };
    let roots = trust_roots(&policy)?;
    let att_policy = if enforced {
        AttestationPolicy::Required(roots)
    } else {
        AttestationPolicy::Optional(roots)
    };
    let mut exp = RegistrationExpectations::new(
        graph::ENTRA_RP_ID,
        client_data.challenge.clone(),
        att_policy,
    );
    exp.origins = vec![graph::ENTRA_ORIGIN.to_owned()];
    exp.require_uv = true;
    exp.allowed_algorithms = vec![-7, -257];
    exp.now = Some(now);
    if restrictions.is_enforced && restrictions.enforcement_type == "allow" {
        exp.allowed_aaguids = Some(restrictions.aa_guids.clone());
    }
    let verified =
        webauthn::verify_registration(&exp, &cred.client_data_json, &cred.attestation_object)
            .map_err(|e| {
                GraphFailure::invalid(
                    reason_for(&e),
                    format!("The passkey could not be registered: {e}"),
                )
            })?;
    if restrictions.is_enforced
        && restrictions.enforcement_type == "block"
        && restrictions.aa_guids.contains(&verified.aaguid)
    {
        return Err(GraphFailure::invalid(
            "aaguidNotAllowed",
            format!(
                "AAGUID {} is blocked by the tenant's key restrictions.",
                verified.aaguid
            ),
        ));
    }
    if verified.credential_id != cred.id {
        return Err(GraphFailure::invalid(
            "credentialIdMismatch",
            "publicKeyCredential.id is not the credential id in the attestation object.",
        ));
    }

    let thumbprints = verified
        .attestation_chain
        .iter()
        .map(|der| {
            let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, der);
            d.as_ref()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        })
        .collect();
    let stored = StoredMethod {
        id: webauthn::b64::encode(&verified.credential_id),
        user_id: u.user.id.clone(),
        display_name: req.display_name.clone(),
        created: now,
        aaguid: verified.aaguid,
        model: super::model_for(&verified.aaguid).map(str::to_owned),
        attested: verified.attested,
        thumbprints,
        credential_id: verified.credential_id.clone(),
        public_key_cose: verified.public_key_cose.clone(),
        sign_count: verified.sign_count,
        transports: req
            .public_key_credential
            .response
            .other
            .get("transports")
            .and_then(Value::as_array)
            .map(|t| {
                t.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default(),
    };
    {
        let mut methods = entra.methods();
        if methods.used.iter().any(|(n, _)| *n == opened.nonce) {
            return Err(GraphFailure::invalid(
                "challengeAlreadyUsed",
                "The challenge was already used to register a credential.",
            ));
        }
        if methods
            .list
            .iter()
            .any(|m| m.credential_id == stored.credential_id)
        {
            return Err(GraphFailure::new(
                StatusCode::CONFLICT,
                "conflict",
                "This credential is already registered.",
            ));
        }
        methods.used.retain(|(_, until)| *until >= now);
        methods.used.push((opened.nonce, opened.expires));
        methods.list.push(stored.clone());
    }
    tracing::info!(user = %u.user.id, aaguid = %stored.aaguid, attested = stored.attested, "passkey registered");
    let location = format!(
        "{}/{}/users/{}/authentication/fido2Methods/{}",
        entra.base_url(),
        v.as_str(),
        u.user.id,
        stored.id
    );
    let mut resp = (StatusCode::CREATED, Json(method_json(&stored, true))).into_response();
    if let Ok(l) = location.parse() {
        resp.headers_mut().insert(header::LOCATION, l);
    }
    Ok(resp)
}
