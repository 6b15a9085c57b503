//! The okta.md examples parse into the wire types, and the quirks are handled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use okta::*;
use serde_json::json;

#[test]
fn spec_enroll_request_and_response_examples_parse() {
    let req: EnrollmentInitializationRequest = serde_json::from_value(json!({
        "enrollmentRpIds": ["myorg.okta.com"], "fulfillmentProvider": "yubico",
        "userId": "00us2hPODQncCkxef0g3",
        "yubicoTransportKeyJWK": { "crv": "P-384", "kid": "APCS-Ttrans-C19881-I009", "kty": "EC", "use": "enc",
          "x": "r6AzcX3OSiJk1yQaBVYiBOtzFS9gNSpMDPvnVvl0CAX7el1ZyzmPG_BZ7u8sqTmF",
          "y": "RxPyGH1Xg74E2f5AQGkkddzsvTNY1R3R7mXTEM5wQtr1Y7C4XHlvITNZfU6G" } }))
    .unwrap();
    assert_eq!(req.enrollment_rp_ids, ["myorg.okta.com"]);
    assert_eq!(req.yubico_transport_key_jwk.kid, "APCS-Ttrans-C19881-I009");
    let resp: EnrollmentInitializationResponse = serde_json::from_value(json!({
        "credRequests": [ { "authenticatorEnrollmentId": "fwf5ajzJEWqknX6lk0g4",
            "credRequestJwe": "eyJlcGsiOnsia3R5IjoiRUMiLCJ...", "keyId": "h2r91gconqiai1vs0psg" } ],
        "fulfillmentProvider": "yubico", "pinRequestJwe": "eyJlcGsa3R5IjoiRUMiLA...", "userId": "00us2hPODQncCkxef0g3" }))
    .unwrap();
    assert_eq!(resp.cred_requests[0].key_id, "h2r91gconqiai1vs0psg");
}

fn activate_example(field: &str) -> serde_json::Value {
    json!({ "credResponses": [ { "authenticatorEnrollmentId": "fwf5ajzJEWqknX6lk0g4", field: "eyJlcGsiOnsia3R5IjoiRUM..." } ],
      "fulfillmentProvider": "yubico", "pinResponseJwe": "eyJl5IjoiRUMiLCJjcnYcGsiOnsia3...",
      "serial": "3632071", "userId": "00us2hPODQncCkxef0g3", "version": "5.4.3",
      "yubicoSigningJwks": [ { "crv": "P-384", "kid": "APCS-Tsgnkey-C19881-H0027616953", "kty": "EC", "use": "sig",
          "x": "tJc-j5osUCP-75ihCOKsswTOj3XsekayG3x79K2ndyOIXu08gDMkvL8rks06tEAa",
          "y": "hfVGbQeG4l2orqenn-GATWwTm8tLqHFHuwfJp33CCNOMtYYsgkAEnW60ORzt4YV-" } ] })
}

#[test]
fn activate_reads_both_cred_response_spellings_and_writes_the_current_one() {
    for field in ["credResponseJwe", "credResponseJWE"] {
        let req: EnrollmentActivationRequest =
            serde_json::from_value(activate_example(field)).unwrap();
        assert_eq!(
            req.cred_responses[0].cred_response_jwe,
            "eyJlcGsiOnsia3R5IjoiRUM..."
        );
        assert_eq!(req.serial, "3632071");
        let out = serde_json::to_value(&req).unwrap();
        assert!(out["credResponses"][0].get("credResponseJwe").is_some());
    }
    let resp: EnrollmentActivationResponse = serde_json::from_value(json!({
        "authenticatorEnrollmentIds": ["fwf5ajzJEWqknX6lk0g4"], "fulfillmentProvider": "yubico",
        "userId": "00us2hPODQncCkxef0g3" }))
    .unwrap();
    assert_eq!(resp.authenticator_enrollment_ids.len(), 1);
}

#[test]
fn a_jwks_object_for_the_signing_keys_is_refused_with_a_message_saying_what_to_send() {
    let mut v = activate_example("credResponseJwe");
    let keys = v["yubicoSigningJwks"].clone();
    v["yubicoSigningJwks"] = json!({ "keys": keys });
    let err = serde_json::from_value::<EnrollmentActivationRequest>(v)
        .unwrap_err()
        .to_string();
    assert!(err.contains("bare array of JWKs"), "{err}");
    assert!(err.contains("\"keys\""), "{err}");
}

#[test]
fn send_pin_takes_a_string_or_an_array_enrollment_id() {
    let one: PinRequest =
        serde_json::from_value(json!({ "authenticatorEnrollmentId": "fwf5ajzJEWqknX6lk0g4",
        "fulfillmentProvider": "yubico", "userId": "00us2hPODQncCkxef0g3" }))
        .unwrap();
    let many: PinRequest = serde_json::from_value(
        json!({ "authenticatorEnrollmentId": ["fwf5ajzJEWqknX6lk0g4"],
        "fulfillmentProvider": "yubico", "userId": "00us2hPODQncCkxef0g3" }),
    )
    .unwrap();
    assert_eq!(
        one.authenticator_enrollment_id.ids(),
        many.authenticator_enrollment_id.ids()
    );
}

#[test]
fn spec_fulfillment_and_enrollment_list_examples_parse() {
    let f: FulfillmentRequest = serde_json::from_value(json!({ "userId": "00us2hPODQncCkxef0g3",
        "fulfillmentProvider": "yubico",
        "fulfillmentData": [ { "productId": "55", "customizationId": "RXJN83", "inventoryProductId": "106" } ] })).unwrap();
    assert_eq!(f.fulfillment_data[0].product_id.as_deref(), Some("55"));
    let list: Vec<WebAuthnPreregistrationFactor> = serde_json::from_value(json!([ { "id": "fwf23789dfs9asdf782", "factorType": "webauthn", "provider": "FIDO", "vendorName": "FIDO",
        "fulfillmentProvider": "yubico", "status": "ACTIVE",
        "created": "2018-05-24T20:43:19.000Z", "lastUpdated": "2018-05-24T21:43:32.000Z",
        "profile": { "credentialId": "l3Br0n-7H3g", "authenticatorName": "YubiKey 5C", "presetPinAvailable": true },
        "_links": { "self": { "href": "https://example.okta.com/webauthn-registration/api/v1/users/00u15s1KDETTQMQYABRL/enrollments/fwf23789dfs9asdf782",
                              "hints": { "allow": ["DELETE"] } } } } ])).unwrap();
    assert_eq!(list[0].profile["presetPinAvailable"], true);
}

#[test]
fn error_causes_read_as_an_array_or_the_examples_single_object() {
    let obj: ErrorBody = serde_json::from_value(json!({ "errorCode": "E0000001",
        "errorSummary": "Api validation failed: webAuthnPreregistrationPinRequest|webAuthnPreregistrationCredentialRequest",
        "errorLink": "E0000001", "errorId": "oaehk3rssXQmOWDRsaFfxe8A",
        "errorCauses": { "errorSummary": "There was an unexpected internal error. Please try again." } })).unwrap();
    assert_eq!(obj.error_causes.len(), 1);
    let arr: ErrorBody = serde_json::from_value(json!({ "errorCode": "E0000006",
        "errorSummary": "You do not have permission to perform the requested action",
        "errorLink": "E0000006", "errorId": "x", "errorCauses": [] }))
    .unwrap();
    assert!(arr.error_causes.is_empty());
}

#[test]
fn a_user_with_missing_shipping_fields_parses_and_keeps_other_attributes() {
    let u: User = serde_json::from_value(json!({ "id": "00u1", "status": "STAGED",
        "profile": { "login": "a@example.com", "email": "a@example.com", "firstName": "A", "lastName": null,
                     "nickName": "ay" } })).unwrap();
    assert_eq!(u.status, UserStatus::Staged);
    assert_eq!(u.profile.last_name, None);
    assert_eq!(u.profile.extra["nickName"], "ay");
    assert_eq!(u.profile.display_name(), "A");
}
