//! The whole chain with the real programmer (envelope + `VirtualYubiKey`) and a requester
//! built only from HTTP and independent tools (`interop/sandbox_e2e.py`: urllib, joserfc,
//! python-fido2): sealed requests in, a programmed key, signed responses out, attestation
//! verified by python-fido2, the PIN opens the shipped key, nothing secret left behind.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use authenticator::{KeyProgrammer, VirtualYubiKey};
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn sealed_requests_become_a_programmed_key_whose_responses_verify_independently() {
    let sb = start().await;
    let inp = e2e_input(
        &sb,
        "login.microsoft.com",
        json!({"type": "generate", "length": 8}),
        true,
    );
    let out = tokio::task::spawn_blocking(move || testkit::run_python("sandbox_e2e.py", &inp))
        .await
        .unwrap();
    let id = out["shipment_id"].as_str().unwrap();
    assert_eq!(out["state"], 103);
    assert_eq!(
        out["attestation_verified"], "packed",
        "python-fido2 verified the attestation"
    );
    assert_eq!(
        out["aaguid"], "a25342c0-3cdc-4414-8e46-f4807fca511c",
        "YubiKey 5 NFC 5.7"
    );
    assert_eq!(out["firmware_version"], "5.7.1");
    let pin = out["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 8);
    assert!(!sandbox::fulfiller::fulfil::is_trivial_pin(&pin));

    // The parcel: the shipped key, as the recipient holds it.
    let (s, parcel) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let mut key = VirtualYubiKey::from_json(&parcel.to_string()).unwrap();
    assert_eq!(
        key.identity().serial.to_string(),
        out["serial"].as_str().unwrap()
    );
    let summary = key.summary();
    assert_eq!(summary.credential_count(), 1);
    assert!(summary.credentials.contains_key("login.microsoft.com"));
    assert!(summary.pin_set);
    assert!(
        summary.force_pin_change,
        "forced change pending, as requested"
    );
    assert_eq!(summary.min_pin_length, 6);
    assert_eq!(summary.pin_failures_since_insertion, 0);
    let info = key.get_info().unwrap();
    assert!(info.force_pin_change);
    // The PIN from the response opens it (and the forced change can be made with it);
    // a wrong one does not.
    let wrong = authenticator::Pin::new("00000001");
    assert!(
        key.change_pin(&wrong, &authenticator::Pin::new("27182818"))
            .is_err()
    );
    key.change_pin(
        &authenticator::Pin::new(pin.as_str()),
        &authenticator::Pin::new("27182818"),
    )
    .unwrap();

    // Purge: nothing of the requests or the PIN in what the sandbox keeps.
    let dump = sb.call(Method::GET, "/sandbox/v1/state", None).await.1;
    let text = dump.to_string();
    assert!(dump["shipments"][0]["requests"].is_null());
    assert!(!text.contains(&pin));
    assert!(
        !text.contains("login.microsoft.com"),
        "no request plaintext: {text}"
    );
    // 104 keeps the responses available.
    sb.move_to(id, 104).await;
    assert!(
        sb.client
            .get_fpr_shipment(id)
            .await
            .unwrap()
            .product_data()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_refusing_the_options_errors_the_shipment() {
    let sb = start().await;
    // The origin does not match the RP id: a platform (and the virtual key's client)
    // refuses, so the fulfiller must not ship.
    let mut inp = e2e_input(
        &sb,
        "login.microsoft.com",
        json!({"type": "generate", "length": 6}),
        true,
    );
    inp["origin"] = json!("https://evil.example");
    inp["verify_attestation"] = json!(false);
    let base = sb.url.clone();
    let result = tokio::task::spawn_blocking(move || {
        std::panic::catch_unwind(|| testkit::run_python("sandbox_e2e.py", &inp))
    })
    .await
    .unwrap();
    assert!(result.is_err(), "the script must fail: no product data");
    let page = sb
        .client
        .list_shipments_exact(&Default::default())
        .await
        .unwrap();
    let s = &page.shipments[0];
    assert_eq!(s.shipment_state_id.id(), 8, "{base}");
    assert!(
        s.shipment_state_message.contains("credential request 0"),
        "{}",
        s.shipment_state_message
    );
}

fn options(rp: &str, uv: &str) -> serde_json::Value {
    json!({
        "rp": {"id": rp, "name": rp},
        "user": {"id": "dXNlci0x", "name": "jan@example.com", "displayName": "Jan"},
        "challenge": "Y2hhbGxlbmdlLWZvci0x",
        "pubKeyCredParams": [{"type": "public-key", "alg": -7}],
        "authenticatorSelection": {"residentKey": "required", "userVerification": uv},
        "attestation": "direct",
    })
}

#[tokio::test]
async fn several_credential_requests_give_responses_in_request_order_and_pin_none_sets_no_pin() {
    use envelope::{CredentialRequest, KeyUse, PinChoice, PinRequest, PrivateJwk, Request};
    let sb = start().await;
    let transport = sb.client.transport_keys().await.unwrap().keys()[1].clone();
    let signing = sb.client.signing_keys().await.unwrap();
    let rk = PrivateJwk::generate("rk-a", KeyUse::Enc).unwrap();
    let rps = ["login.microsoft.com", "example.okta.com"];
    let creds: Vec<String> = rps
        .iter()
        .map(|rp| {
            envelope::seal_request(
                &Request::Credential(CredentialRequest {
                    response_key: rk.public().clone(),
                    origin: format!("https://{rp}"),
                    public_key: options(rp, "preferred"),
                }),
                &transport,
            )
            .unwrap()
        })
        .collect();
    let pin_req = envelope::seal_request(
        &Request::Pin(PinRequest {
            response_key: rk.public().clone(),
            pin: PinChoice::None,
            min_pin_length: 4,
            force_pin_change: false,
        }),
        &transport,
    )
    .unwrap();
    let mut b = fpr_body();
    b.shipment_items[0].product_customizations[0].fido_pin_request = pin_req;
    b.shipment_items[0].product_customizations[0].fido_credential_requests = creds.clone();
    let s = sb.client.create_fpr_shipment(&b).await.unwrap();
    let id = s.shipment_id.as_str();
    sb.advance().await;
    sb.advance().await;
    let got = sb.client.get_fpr_shipment(id).await.unwrap();
    assert_eq!(
        got.shipment_state.shipment_state_id.id(),
        103,
        "{:?}",
        got.shipment_state
    );
    let pd = got.product_data().unwrap();
    assert_eq!(pd.fido_pin_response, "", "no PIN set, nothing to tell");
    assert_eq!(pd.fido_credential_responses.len(), 2);
    for (i, rp) in rps.iter().enumerate() {
        let r = envelope::open_credential_response(
            &pd.fido_credential_responses[i],
            std::slice::from_ref(&rk),
            &signing,
            &creds[i],
        )
        .unwrap();
        assert_eq!(r.serial, pd.serial_number);
        let cdj = r.credential["response"]["clientDataJSON"].as_str().unwrap();
        let cdj = String::from_utf8(authenticator::b64::decode(cdj).unwrap()).unwrap();
        assert!(
            cdj.contains(&format!("\"origin\":\"https://{rp}\"")),
            "{cdj}"
        );
    }
    let (_, parcel) = sb
        .call(
            Method::GET,
            &format!("/sandbox/v1/shipments/{id}/key"),
            None,
        )
        .await;
    let key = VirtualYubiKey::from_json(&parcel.to_string()).unwrap();
    let summary = key.summary();
    assert!(!summary.pin_set);
    assert_eq!(summary.credential_count(), 2);
}

#[tokio::test]
async fn user_verification_required_without_a_pin_is_refused_by_the_key() {
    use envelope::{CredentialRequest, KeyUse, PinChoice, PinRequest, PrivateJwk, Request};
    let sb = start().await;
    let transport = sb.client.transport_keys().await.unwrap().keys()[0].clone();
    let rk = PrivateJwk::generate("rk-b", KeyUse::Enc).unwrap();
    let seal = |r: Request| envelope::seal_request(&r, &transport).unwrap();
    let mut b = fpr_body();
    b.shipment_items[0].product_customizations[0].fido_pin_request =
        seal(Request::Pin(PinRequest {
            response_key: rk.public().clone(),
            pin: PinChoice::None,
            min_pin_length: 4,
            force_pin_change: false,
        }));
    b.shipment_items[0].product_customizations[0].fido_credential_requests =
        vec![seal(Request::Credential(CredentialRequest {
            response_key: rk.public().clone(),
            origin: "https://login.microsoft.com".to_owned(),
            public_key: options("login.microsoft.com", "required"),
        }))];
    let s = sb.client.create_fpr_shipment(&b).await.unwrap();
    sb.move_to(s.shipment_id.as_str(), 103).await;
    let got = sb
        .client
        .get_fpr_shipment(s.shipment_id.as_str())
        .await
        .unwrap();
    assert_eq!(got.shipment_state.shipment_state_id.id(), 8);
    assert!(
        got.shipment_state
            .shipment_state_message
            .contains("CTAP2_ERR_PIN_NOT_SET")
    );
}
