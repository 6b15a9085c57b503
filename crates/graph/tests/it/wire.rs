//! The JSON examples of shared/spec/entra.md (copied to tests/fixtures) parse with the
//! wire types and keep their members when written back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use graph::fido2::NewFido2Method;
use graph::{
    Collection, CreationOptions, Fido2AuthenticationMethod, GraphErrorBody, TokenError,
    TokenResponse, User,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Parses `name` as `T`, writes it back, and checks that every member of the fixture
/// survives the round trip with the same value.
fn round_trip<T: DeserializeOwned + Serialize>(name: &str) -> T {
    let text = fixture(name);
    let parsed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
    let original: Value = serde_json::from_str(&text).unwrap();
    let written = serde_json::to_value(&parsed).unwrap();
    contains(&original, &written, name);
    parsed
}

fn contains(want: &Value, got: &Value, at: &str) {
    match (want, got) {
        (Value::Object(w), Value::Object(g)) => {
            for (k, v) in w {
                // Empty arrays may be dropped on output when they carry no meaning.
                if v.as_array().is_some_and(Vec::is_empty) && !g.contains_key(k) {
                    continue;
                }
                let gv = g
                    .get(k)
                    .unwrap_or_else(|| panic!("{at}.{k} lost on round trip"));
                contains(v, gv, &format!("{at}.{k}"));
            }
        }
        (Value::Array(w), Value::Array(g)) => {
            assert_eq!(w.len(), g.len(), "{at}: array length");
            for (i, (a, b)) in w.iter().zip(g).enumerate() {
                contains(a, b, &format!("{at}[{i}]"));
            }
        }
        _ => assert_eq!(want, got, "{at}"),
    }
}

#[test]
fn beta_creation_options_parse_unwrapped_with_every_quirk() {
    let o: CreationOptions = serde_json::from_str(&fixture("creation_options_beta.json")).unwrap();
    assert_eq!(
        o.challenge_timeout_date_time.as_deref(),
        Some("2024-06-13T11:26:35Z")
    );
    let pk = &o.public_key;
    assert_eq!(pk.rp_id(), Some("login.microsoft.com"));
    assert_eq!(pk.user.id.len(), 51);
    assert!(pk.user.id.starts_with(b"OF:"));
    assert_eq!(
        pk.pub_key_cred_params
            .iter()
            .map(|p| p.alg)
            .collect::<Vec<_>>(),
        [-7, -257]
    );
    assert!(pk.requires_uv());
    assert_eq!(pk.attestation.as_deref(), Some("direct"));
    // excludeCredentials ids in standard base64 with padding stay readable.
    assert_eq!(pk.exclude_credentials[0].id_candidates()[0].len(), 32);
    assert_eq!(pk.exclude_credentials[1].id_candidates()[0].len(), 16);
    let ext = pk.extensions.as_ref().unwrap();
    assert_eq!(ext.cred_protect_level(), Some(1));
    assert_eq!(ext.enforce_credential_protection_policy, Some(true));
    assert_eq!(ext.hmac_create_secret, Some(true));
    let sel = pk.authenticator_selection.as_ref().unwrap();
    assert_eq!(sel.require_resident_key, Some(true));
    assert_eq!(
        sel.authenticator_attachment.as_deref(),
        Some("cross-platform")
    );
}

#[test]
fn creation_options_round_trip() {
    round_trip::<CreationOptions>("creation_options_beta.json");
}

#[test]
fn documented_post_body_parses_with_placeholders_kept_as_text() {
    let b: NewFido2Method = round_trip("fido2_post_request_v1.json");
    assert_eq!(b.display_name.as_deref(), Some("My security key"));
    assert_eq!(b.public_key_credential.id, "<base64url credentialId>");
    // The placeholders are not base64url: decoding says which member is wrong.
    let e = b.public_key_credential.decode().unwrap_err();
    assert!(e.to_string().contains("publicKeyCredential.id"), "{e}");
}

#[test]
fn yl_and_dsi_post_bodies_parse_and_decode() {
    for name in ["fido2_post_request_yl.json", "fido2_post_request_dsi.json"] {
        let b: NewFido2Method = round_trip(name);
        assert!(b.odata_type.is_none());
        let d = b.public_key_credential.decode().unwrap();
        assert_eq!(d.id, (0u8..16).collect::<Vec<_>>());
        assert!(d.client_data_json.starts_with(b"{\"type\""));
    }
}

#[test]
fn created_method_parses() {
    let m: Fido2AuthenticationMethod = round_trip("fido2_post_201_v1.json");
    assert_eq!(m.id, "73e4b2c6-8a2f-4d3e-9b1a-5c7d8e9f0a1b");
    assert_eq!(
        m.aa_guid.as_deref(),
        Some("de1e552d-db1d-4423-a619-566b625cdc84")
    );
    assert_eq!(m.attestation_level.as_deref(), Some("attested"));
    assert_eq!(m.passkey_type.as_deref(), Some("deviceBound"));
    assert_eq!(m.attestation_certificates, Some(vec![]));
}

#[test]
fn method_list_parses() {
    let l: Collection<Fido2AuthenticationMethod> = round_trip("fido2_list.json");
    assert_eq!(l.value.len(), 1);
    assert!(l.next_link.is_none());
    assert_eq!(l.value[0].id, "-2_GRUg2-HYz6_1YG4YRAQ2");
}

#[test]
fn selected_user_parses_with_address_members() {
    let u: User = round_trip("user_select.json");
    assert_eq!(u.display_name.as_deref(), Some("Adele Vance"));
    assert_eq!(u.other_mails, Some(vec![]));
    assert_eq!(u.business_phones.as_ref().unwrap()[0], "+1 425 555 0100");
    assert_eq!(u.postal_code.as_deref(), Some("98052"));
    assert_eq!(u.country.as_deref(), Some("United States"));
}

#[test]
fn graph_error_bodies_parse() {
    let e: GraphErrorBody = round_trip("error_405_method_not_allowed.json");
    assert_eq!(e.error.code, "methodNotAllowed");
    let inner = e.error.inner_error.unwrap();
    assert_eq!(inner.request_id.as_deref(), Some("b809…"));
    assert_eq!(inner.client_request_id.as_deref(), Some("99dd…"));

    let e: GraphErrorBody = round_trip("error_429_too_many_requests.json");
    assert_eq!(e.error.code, "TooManyRequests");
    let inner = e.error.inner_error.unwrap();
    assert_eq!(inner.code.as_deref(), Some("429"));
    assert_eq!(inner.other["status"], "429");

    let e: GraphErrorBody = round_trip("error_404_manager.json");
    assert_eq!(e.error.code, "Request_ResourceNotFound");
}

#[test]
fn token_bodies_parse() {
    let t: TokenResponse = round_trip("token_success.json");
    assert_eq!(t.token_type, "Bearer");
    assert_eq!(t.expires_in, 3599);
    assert!(
        !format!("{t:?}").contains("eyJ0eX"),
        "Debug must not show the token"
    );
    let e: TokenError = round_trip("token_error_invalid_scope.json");
    assert_eq!(e.error, "invalid_scope");
    assert_eq!(e.error_codes, vec![70011]);
    assert!(e.error_description.starts_with("AADSTS70011:"));
}

#[test]
fn registration_output_becomes_the_documented_body() {
    let reg = webauthn::options::RegistrationResponse {
        id: vec![1, 2, 3],
        raw_id: Some(vec![1, 2, 3]),
        typ: Some("public-key".into()),
        authenticator_attachment: Some("cross-platform".into()),
        response: webauthn::options::AttestationResponse {
            client_data_json: b"{}".to_vec(),
            attestation_object: vec![0xa0],
            transports: vec![],
        },
        client_extension_results: serde_json::Map::new(),
    };
    let body = NewFido2Method::from_registration(Some("YubiKey 5 NFC 12345678".into()), &reg);
    let v = serde_json::to_value(&body).unwrap();
    let doc: Value = serde_json::from_str(&fixture("fido2_post_request_v1.json")).unwrap();
    // Same members as the documented body, annotations included.
    fn keys(v: &Value, out: &mut Vec<String>, at: &str) {
        if let Value::Object(m) = v {
            for (k, x) in m {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                keys(x, out, &p);
            }
        }
    }
    let (mut a, mut b) = (vec![], vec![]);
    keys(&v, &mut a, "");
    keys(&doc, &mut b, "");
    a.sort();
    b.sort();
    assert_eq!(a, b);
    assert_eq!(v["publicKeyCredential"]["id"], "AQID");
    assert_eq!(
        v["publicKeyCredential"]["response"]["clientDataJSON"],
        "e30"
    );
}
