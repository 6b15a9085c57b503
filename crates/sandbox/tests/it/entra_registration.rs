//! `creationOptions` and `POST .../fido2Methods`: every check with a passing and a
//! failing case, the documented shapes, and the whole provisioning path through the
//! `graph` client with a virtual YubiKey.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::entra_common::*;
use authenticator::KeyProgrammer as _;
use graph::ApiVersion;
use reqwest::Method;
use serde_json::{Value, json};

#[tokio::test]
async fn a_virtual_key_registers_and_the_answer_has_the_documented_shape() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(20160)).await;
    let mut key = new_key();
    let reg = register_json(&mut key, &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!(s, 201, "{v}");
    assert_same_shape(&graph_fixture("fido2_post_201_v1.json"), &v, "201");
    assert_eq!(v["aaGuid"], "a25342c0-3cdc-4414-8e46-f4807fca511c");
    assert_eq!(v["model"], "YubiKey 5 Series with NFC");
    assert_eq!(v["attestationLevel"], "attested");
    assert_eq!(v["passkeyType"], "deviceBound");
    assert_eq!(v["displayName"], "YubiKey 5 NFC 12345678");
    assert_eq!(v["attestationCertificates"].as_array().unwrap().len(), 2);

    // It lists (in the list shape), reads and deletes (204).
    let g = sb.graph();
    let listed = g.list_fido2_methods(ApiVersion::V1, ADELE).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, v["id"]);
    let t = sb.graph_token().await;
    let (s, list) = sb
        .call(
            Method::GET,
            &format!("/v1.0/users/{ADELE}/authentication/fido2Methods"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_same_shape(&graph_fixture("fido2_list.json"), &list, "list");
    g.delete_fido2_method(ApiVersion::Beta, ADELE, listed[0].id.as_str())
        .await
        .unwrap();
    assert!(
        g.list_fido2_methods(ApiVersion::V1, ADELE)
            .await
            .unwrap()
            .is_empty()
    );
    let e = g
        .delete_fido2_method(ApiVersion::Beta, ADELE, listed[0].id.as_str())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
}

#[tokio::test]
async fn creation_options_have_the_real_shape() {
    let sb = start().await;
    let t = sb.graph_token().await;
    let (s, v) = sb
        .call(
            Method::GET,
            &format!("/beta/users/{ADELE}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=60)"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let fixture = graph_fixture("creation_options_beta.json");
    let mut f = fixture.clone();
    // Our user has no credentials yet: compare the descriptor shape after registering.
    f["publicKey"]["excludeCredentials"] = json!([]);
    assert_same_shape(&f, &v, "creationOptions");
    let pk = &v["publicKey"];
    assert_eq!(
        pk["rp"],
        json!({"id": "login.microsoft.com", "name": "Microsoft"})
    );
    assert_eq!(
        pk["pubKeyCredParams"],
        fixture["publicKey"]["pubKeyCredParams"]
    );
    assert_eq!(
        pk["authenticatorSelection"],
        fixture["publicKey"]["authenticatorSelection"]
    );
    assert_eq!(pk["extensions"], fixture["publicKey"]["extensions"]);
    assert_eq!(pk["attestation"], "direct");
    assert!(v.get("value").is_none(), "not wrapped in value");
    let uid = webauthn::b64::decode("user.id", pk["user"]["id"].as_str().unwrap()).unwrap();
    assert_eq!(uid.len(), 51);
    assert!(uid.starts_with(b"OF:"));
    assert_eq!(pk["user"]["name"], ADELE);
    assert_eq!(pk["user"]["displayName"], "Adele Vance");

    // After a registration, the beta list of ids uses the .NET padding-digit form and
    // the v1.0 one base64url; the authenticator's client reads both.
    let opts = sb.options(ADELE, Some(60)).await;
    let mut key = new_key();
    let reg = register_json(&mut key, &opts);
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
    let beta = sb.options(ADELE, Some(60)).await;
    let v1 = sb.options(ADELE, None).await;
    let b = &beta.public_key.exclude_credentials[0];
    assert!(b.id.ends_with(['0', '1', '2']), "{}", b.id);
    assert!(b.matches(&reg.id));
    assert!(v1.public_key.exclude_credentials[0].matches(&reg.id));
    let (_, raw) = sb
        .call(
            Method::GET,
            &format!("/beta/users/{ADELE}/authentication/fido2Methods/creationOptions(challengeTimeoutInMinutes=60)"),
            Some(&t),
            None,
        )
        .await;
    assert_same_shape(&fixture, &raw, "creationOptions");
    assert_eq!(
        raw["publicKey"]["excludeCredentials"][0]["transports"],
        json!([])
    );
    // The same key refuses to register twice for the user (excludeCredentials works).
    let again = authenticator::client::make_credential(
        &mut key,
        &serde_json::to_string(&beta).unwrap(),
        graph::ENTRA_ORIGIN,
        Some(&authenticator::Pin::new(PIN)),
    );
    assert!(again.is_err());
}

#[tokio::test]
async fn challenge_timeouts_follow_the_version_rules() {
    let sb = start().await;
    let t = sb.graph_token().await;
    let path = |v: &str, f: &str| format!("/{v}/users/{ADELE}/authentication/fido2Methods/{f}");
    let now = sb.entra.clock().now();
    let expiry = |v: &Value| v["challengeTimeoutDateTime"].as_str().unwrap().to_owned();
    // v1.0: fixed 5 minutes.
    let (s, v) = sb
        .call(
            Method::GET,
            &path("v1.0", "creationOptions"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let five = sandbox_rfc3339(now + 300);
    let five_plus = sandbox_rfc3339(now + 301);
    assert!(
        expiry(&v) == five || expiry(&v) == five_plus,
        "{}",
        expiry(&v)
    );
    // beta: 5..=43200.
    for ok in [5, 60, 43200] {
        let (s, v) = sb
            .call(
                Method::GET,
                &path(
                    "beta",
                    &format!("creationOptions(challengeTimeoutInMinutes={ok})"),
                ),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(s, 200, "{ok}: {v}");
    }
    for bad in [0, 4, 43201] {
        let (s, v) = sb
            .call(
                Method::GET,
                &path(
                    "beta",
                    &format!("creationOptions(challengeTimeoutInMinutes={bad})"),
                ),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
        assert_eq!(reason(&v), "invalidChallengeTimeout");
    }
    // v1.0 takes no custom timeout, in either form.
    for form in [
        "creationOptions(challengeTimeoutInMinutes=60)",
        "creationOptions?challengeTimeoutInMinutes=60",
    ] {
        let (s, v) = sb
            .call(Method::GET, &path("v1.0", form), Some(&t), None)
            .await;
        assert_eq!(s, 400, "{form}: {v}");
        assert_eq!(reason(&v), "customTimeoutNotSupported");
    }
    // The query form is answered like the function-call form (issue 15).
    let (s, v) = sb
        .call(
            Method::GET,
            &path("beta", "creationOptions?challengeTimeoutInMinutes=60"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let sixty = sandbox_rfc3339(now + 3600);
    let sixty_plus = sandbox_rfc3339(now + 3601);
    assert!(
        expiry(&v) == sixty || expiry(&v) == sixty_plus,
        "{}",
        expiry(&v)
    );
    assert!(v["publicKey"]["challenge"].is_string(), "{v}");
    for bad in ["4", "43201", "sixty"] {
        let (s, v) = sb
            .call(
                Method::GET,
                &path(
                    "beta",
                    &format!("creationOptions?challengeTimeoutInMinutes={bad}"),
                ),
                Some(&t),
                None,
            )
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    // Both forms at once is ambiguous.
    let (s, v) = sb
        .call(
            Method::GET,
            &path(
                "beta",
                "creationOptions(challengeTimeoutInMinutes=60)?challengeTimeoutInMinutes=60",
            ),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 400, "{v}");
    // A method the URL does not support still answers Graph's 405 shape.
    let (s, v) = sb
        .call(
            Method::PUT,
            &path("beta", "creationOptions"),
            Some(&t),
            None,
        )
        .await;
    assert_eq!(s, 405, "{v}");
    assert_same_shape(
        &graph_fixture("error_405_method_not_allowed.json"),
        &v,
        "405",
    );
}

fn sandbox_rfc3339(secs: u64) -> String {
    // Same civil-time arithmetic as the sandbox; checked on known instants there.
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    format!(
        "{:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        if m <= 2 { y + 1 } else { y },
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

#[tokio::test]
async fn an_expired_challenge_is_refused_and_a_fresh_one_accepted() {
    let sb = start().await;
    // v1.0: five minutes. Six minutes later it is expired.
    let opts = sb.options(ADELE, None).await;
    let mut key = new_key();
    let reg = register_json(&mut key, &opts);
    sb.advance_minutes(6).await;
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(reason(&v), "challengeExpired");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("fetch new creationOptions")
    );
    // Beta, 60 minutes: six minutes later it still works.
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut key, &opts);
    sb.advance_minutes(6).await;
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
    // Thirty days is the longest.
    let opts = sb.options(ALEX, Some(43200)).await;
    let reg = register_json(&mut new_key(), &opts);
    sb.advance_minutes(43199).await;
    assert_eq!(sb.post_method(ALEX, &body_for(&reg)).await.0, 201);
}

#[tokio::test]
async fn a_challenge_registers_one_credential_only() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(60)).await;
    let first = register_json(&mut new_key(), &opts);
    let second = register_json(&mut new_key(), &opts);
    assert_eq!(sb.post_method(ADELE, &body_for(&first)).await.0, 201);
    let (s, v) = sb.post_method(ADELE, &body_for(&second)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(reason(&v), "challengeAlreadyUsed");
    // The same body again is refused too.
    let (s, v) = sb.post_method(ADELE, &body_for(&first)).await;
    assert_eq!((s, reason(&v)), (400, "challengeAlreadyUsed"));
}

#[tokio::test]
async fn a_challenge_for_another_user_is_refused() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ALEX, &body_for(&reg)).await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(reason(&v), "challengeUserMismatch");
    // By object id as well as by UPN, for the right user it works.
    let adele_id = sb
        .entra
        .seed()
        .users
        .iter()
        .find(|u| u.user.user_principal_name.as_deref() == Some(ADELE))
        .unwrap()
        .user
        .id
        .clone();
    assert_eq!(sb.post_method(&adele_id, &body_for(&reg)).await.0, 201);
}

#[tokio::test]
async fn a_challenge_not_issued_here_is_refused() {
    let sb = start().await;
    let mut opts = sb.options(ADELE, Some(60)).await;
    opts.public_key.challenge = webauthn::b64::encode([7u8; 77]);
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "challengeNotIssued"), "{v}");
}

#[tokio::test]
async fn only_the_login_microsoft_com_origin_is_accepted() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(60)).await;
    let mut key = new_key();
    // A sub-domain origin: the browser allows it for rp.id login.microsoft.com, Entra not.
    let reg = authenticator::client::make_credential(
        &mut key,
        &serde_json::to_string(&opts).unwrap(),
        "https://evil.login.microsoft.com",
        Some(&authenticator::Pin::new(PIN)),
    )
    .unwrap();
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "invalidOrigin"), "{v}");
    let reg = register_json(&mut key, &opts);
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
}

#[tokio::test]
async fn client_data_type_must_be_webauthn_create() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(60)).await;
    let mut key = new_key();
    let cd = webauthn::ClientData::get(opts.public_key.challenge.clone(), graph::ENTRA_ORIGIN)
        .to_json_bytes();
    let reg = register_raw(&mut key, &opts, "login.microsoft.com", &cd, true);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "invalidClientDataType"), "{v}");
    let cd = webauthn::ClientData::create(opts.public_key.challenge.clone(), graph::ENTRA_ORIGIN)
        .to_json_bytes();
    let reg = register_raw(&mut key, &opts, "login.microsoft.com", &cd, true);
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
}

#[tokio::test]
async fn the_rp_id_hash_must_be_login_microsoft_com() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(60)).await;
    let mut key = new_key();
    let cd = webauthn::ClientData::create(opts.public_key.challenge.clone(), graph::ENTRA_ORIGIN)
        .to_json_bytes();
    let reg = register_raw(&mut key, &opts, "login.microsoftonline.com", &cd, true);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "rpIdHashMismatch"), "{v}");
    let reg = register_raw(&mut key, &opts, "login.microsoft.com", &cd, true);
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
}

#[tokio::test]
async fn user_verification_is_required() {
    let sb = start().await;
    let opts = sb.options(ADELE, Some(60)).await;
    // A key without a PIN makes a credential without UV.
    let mut key = authenticator::VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.7.1".parse().unwrap(),
        None,
    )
    .unwrap();
    let cd = webauthn::ClientData::create(opts.public_key.challenge.clone(), graph::ENTRA_ORIGIN)
        .to_json_bytes();
    let reg = register_raw(&mut key, &opts, "login.microsoft.com", &cd, false);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "userVerificationRequired"), "{v}");
    // With a PIN set and given, the same key verifies the user.
    key.set_pin(&authenticator::Pin::new(PIN)).unwrap();
    let reg = register_raw(&mut key, &opts, "login.microsoft.com", &cd, true);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!(s, 201, "{v}");
}

/// Flips one bit of the packed statement's signature, in place: after the CBOR text key
/// "sig" comes a byte string (0x58 len), whose last byte is flipped.
fn break_signature(reg: &mut webauthn::options::RegistrationResponse) {
    let ao = &mut reg.response.attestation_object;
    let at = ao
        .windows(5)
        .position(|w| w[..4] == [0x63, b's', b'i', b'g'] && w[4] == 0x58)
        .expect("a packed statement with a sig");
    let len = usize::from(ao[at + 5]);
    ao[at + 5 + len] ^= 1;
}

#[tokio::test]
async fn a_bad_attestation_signature_is_refused_even_without_enforcement() {
    let sb = start().await;
    for enforced in [true, false] {
        sb.edit_policy(|p| p["isAttestationEnforced"] = json!(enforced))
            .await;
        let opts = sb.options(ADELE, Some(60)).await;
        let mut key = new_key();
        let mut reg = register_json(&mut key, &opts);
        break_signature(&mut reg);
        let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
        assert_eq!(
            (s, reason(&v)),
            (400, "invalidAttestationSignature"),
            "enforced {enforced}: {v}"
        );
    }
}

#[tokio::test]
async fn key_restrictions_allow_only_listed_aaguids() {
    let sb = start().await;
    // Allow only the 5.4 AAGUID: a 5.7 key is refused.
    sb.edit_policy(|p| {
        p["keyRestrictions"]["aaGuids"] = json!(["2fc0579f-8113-47ea-b116-bb5a8db9202a"])
    })
    .await;
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "aaguidNotAllowed"), "{v}");
    // A 5.4 key passes.
    let mut old = authenticator::VirtualYubiKey::new(
        "YubiKey 5 NFC".parse().unwrap(),
        "5.4.3".parse().unwrap(),
        None,
    )
    .unwrap();
    old.set_pin(&authenticator::Pin::new(PIN)).unwrap();
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut old, &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["aaGuid"], "2fc0579f-8113-47ea-b116-bb5a8db9202a");
    // A block list refuses what it names.
    sb.edit_policy(|p| {
        p["keyRestrictions"]["enforcementType"] = json!("block");
        p["keyRestrictions"]["aaGuids"] = json!(["a25342c0-3cdc-4414-8e46-f4807fca511c"]);
    })
    .await;
    let opts = sb.options(ALEX, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ALEX, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "aaguidNotAllowed"), "{v}");
}

#[tokio::test]
async fn enforced_attestation_refuses_fmt_none_and_accepts_it_when_off() {
    let sb = start().await;
    let mut opts = sb.options(ADELE, Some(60)).await;
    // Asking the client for attestation "none" makes it send fmt none, AAGUID zeroed.
    opts.public_key.attestation = Some("none".into());
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "attestationNotTrusted"), "{v}");
    // Off (and key restrictions off, since the AAGUID is zero): accepted, notAttested.
    sb.edit_policy(|p| {
        p["isAttestationEnforced"] = json!(false);
        p["keyRestrictions"]["isEnforced"] = json!(false);
    })
    .await;
    let mut opts = sb.options(ADELE, Some(60)).await;
    opts.public_key.attestation = Some("none".into());
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["attestationLevel"], "notAttested");
    assert_eq!(v["aaGuid"], "00000000-0000-0000-0000-000000000000");
    assert!(v["model"].is_null());
}

#[tokio::test]
async fn attestation_must_chain_to_a_configured_root() {
    let sb = start().await;
    // Trust some other root only: the virtual key's chain no longer verifies.
    let other = authenticator::generate_sandbox_ca().unwrap();
    sb.edit_policy(|p| p["attestationRootsPem"] = json!([other.root_pem]))
        .await;
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "attestationNotTrusted"), "{v}");
    sb.edit_policy(|p| {
        p["attestationRootsPem"] = json!([
            other.root_pem,
            authenticator::sandbox_attestation_root_pem()
        ])
    })
    .await;
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
}

#[tokio::test]
async fn provisioning_needs_the_passkey_permission() {
    let mut seed = sandbox::entra::TenantSeed::default();
    let mut reader = seed.apps[1].clone();
    reader.display_name = "Directory reader".into();
    reader.client_id = "0f2d1c3b-4a59-4e68-9d7c-8b6a5f4e3d21".into();
    reader.object_id = "1f2d1c3b-4a59-4e68-9d7c-8b6a5f4e3d21".into();
    reader.client_secret = "reader-secret".into();
    reader.graph_permissions = vec![
        "User.Read.All".into(),
        "UserAuthenticationMethod.Read.All".into(),
    ];
    reader.api_permissions = vec![];
    seed.apps.push(reader.clone());
    let passkey_only = sandbox::entra::seed::SeedApp {
        display_name: "Least privilege".into(),
        client_id: "2f2d1c3b-4a59-4e68-9d7c-8b6a5f4e3d21".into(),
        object_id: "3f2d1c3b-4a59-4e68-9d7c-8b6a5f4e3d21".into(),
        client_secret: "least-secret".into(),
        graph_permissions: vec!["UserAuthMethod-Passkey.ReadWrite.All".into()],
        ..reader.clone()
    };
    seed.apps.push(passkey_only.clone());
    let sb = start_with(seed).await;

    let g = sb.graph_as(&reader.client_id, "reader-secret");
    // Reading users and listing methods works; creation options and POST do not.
    g.get_user(ApiVersion::V1, ADELE, &[]).await.unwrap();
    g.list_fido2_methods(ApiVersion::V1, ADELE).await.unwrap();
    let e = g
        .creation_options(ApiVersion::Beta, ADELE, Some(60))
        .await
        .unwrap_err();
    assert_eq!(
        (e.status(), e.graph_code()),
        (Some(403), Some("accessDenied")),
        "{e}"
    );
    assert!(
        e.to_string()
            .contains("UserAuthenticationMethod.ReadWrite.All")
    );
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    let body: graph::NewFido2Method = serde_json::from_value(body_for(&reg)).unwrap();
    let e = g
        .register_fido2_method(ApiVersion::Beta, ADELE, &body)
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    // The test client has no Graph permissions at all.
    let tc = sb.graph_as(&sb.client_id, &sb.client_secret);
    assert_eq!(
        tc.get_user(ApiVersion::V1, ADELE, &[])
            .await
            .unwrap_err()
            .graph_code(),
        Some("Authorization_RequestDenied")
    );
    // The least-privileged passkey permission is enough to provision.
    let lp = sb.graph_as(&passkey_only.client_id, "least-secret");
    lp.register_fido2_method(ApiVersion::Beta, ADELE, &body)
        .await
        .unwrap();
}

#[tokio::test]
async fn provisioning_needs_self_service_setup_an_enabled_policy_and_a_member() {
    let sb = start().await;
    let g = sb.graph();
    let opts = sb.options(ADELE, Some(60)).await;
    let reg = register_json(&mut new_key(), &opts);
    sb.edit_policy(|p| p["isSelfServiceRegistrationAllowed"] = json!(false))
        .await;
    let e = g
        .creation_options(ApiVersion::Beta, ADELE, Some(60))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(400));
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "selfServiceSetupNotAllowed"), "{v}");
    sb.edit_policy(|p| {
        p["isSelfServiceRegistrationAllowed"] = json!(true);
        p["state"] = json!("disabled");
    })
    .await;
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "fido2MethodDisabled"), "{v}");
    sb.edit_policy(|p| p["state"] = json!("enabled")).await;
    assert_eq!(sb.post_method(ADELE, &body_for(&reg)).await.0, 201);
    // Guests cannot register.
    let e = g
        .creation_options(ApiVersion::Beta, GUEST, Some(60))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("guest"), "{e}");
    // Policy targeted at one group: members only.
    let fido_group = sb.entra.seed().groups[0].id.clone();
    sb.edit_policy(|p| p["includeTargets"] = json!([fido_group]))
        .await;
    g.creation_options(ApiVersion::Beta, ALEX, Some(60))
        .await
        .unwrap();
    let e = g
        .creation_options(ApiVersion::Beta, MEGAN, Some(60))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not in a group"), "{e}");
}

#[tokio::test]
async fn malformed_bodies_get_graph_errors() {
    let sb = start().await;
    // A JSON string instead of an object (the SDK >= 2.26 double-serialisation bug).
    let (s, v) = sb
        .post_method(ADELE, &json!("{\"publicKeyCredential\":{}}"))
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        v["error"]["message"],
        "The request is missing a fido2AuthenticationMethod entity"
    );
    let (s, v) = sb
        .post_method(ADELE, &graph_fixture("fido2_post_request_v1.json"))
        .await;
    assert_eq!((s, reason(&v)), (400, "invalidEncoding"), "{v}");
    let (s, v) = sb
        .post_method(
            "nobody@contoso.onmicrosoft.com",
            &graph_fixture("fido2_post_request_v1.json"),
        )
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (404, Some("Request_ResourceNotFound"))
    );
    // A body id that is not the credential's.
    let opts = sb.options(ADELE, Some(60)).await;
    let mut reg = register_json(&mut new_key(), &opts);
    reg.id = vec![1, 2, 3];
    let (s, v) = sb.post_method(ADELE, &body_for(&reg)).await;
    assert_eq!((s, reason(&v)), (400, "credentialIdMismatch"), "{v}");
}

#[tokio::test]
async fn yl_and_dsi_body_shapes_register_too() {
    let sb = start().await;
    for (user, style) in [(ADELE, "yl"), (ALEX, "dsi")] {
        let opts = sb.options(user, Some(60)).await;
        let reg = register_json(&mut new_key(), &opts);
        let id = webauthn::b64::encode(&reg.id);
        let cd = webauthn::b64::encode(&reg.response.client_data_json);
        let ao = webauthn::b64::encode(&reg.response.attestation_object);
        let body = if style == "yl" {
            json!({"publicKeyCredential":{"id":id,"response":{"attestationObject":ao,"clientDataJSON":cd},"clientExtensionResults":{"credProtect":1,"hmac-secret":true}},"displayName":"Serial: 12345678 2026-11-29"})
        } else {
            json!({"displayName":"YubiKey 5 Nano","publicKeyCredential":{"id":id,"response":{"clientDataJSON":cd,"attestationObject":ao},"clientExtensionResults":{"hmacCreateSecret":true,"credentialProtectionPolicy":"userVerificationOptional"}}})
        };
        let (s, v) = sb.post_method(user, &body).await;
        assert_eq!(s, 201, "{style}: {v}");
    }
}

#[tokio::test]
async fn injected_throttling_uses_graphs_429_shape_and_the_client_rides_it_out() {
    let sb = start().await;
    let (s, _) = sb
        .call(
            Method::PUT,
            "/sandbox/v1/faults",
            None,
            Some(&json!({"rate_limit_rate": 1.0, "retry_after_secs": 0})),
        )
        .await;
    assert_eq!(s, 200);
    let t = sb.graph_token().await;
    let r = sb
        .http
        .get(format!("{}/v1.0/users/{ADELE}", sb.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 429);
    assert_eq!(r.headers()["retry-after"], "0");
    let v: Value = r.json().await.unwrap();
    assert_same_shape(
        &graph_fixture("error_429_too_many_requests.json"),
        &v,
        "429",
    );
    // The token service and sandbox routes are not throttled.
    assert_eq!(
        sb.call(Method::GET, "/sandbox/v1/clock", None, None)
            .await
            .0,
        200
    );
    let e = sb
        .graph()
        .get_user(ApiVersion::V1, ADELE, &[])
        .await
        .unwrap_err();
    assert_eq!(e.graph_code(), Some("TooManyRequests"));
    sb.call(Method::PUT, "/sandbox/v1/faults", None, Some(&json!({})))
        .await;
    sb.graph()
        .get_user(ApiVersion::V1, ADELE, &[])
        .await
        .unwrap();
}
