//! The fulfiller sandbox behaving as Yubico publishes (issue 15): the newer create body's
//! `reseller_organization_id` and `address_validation_bypass`, and signing keys published
//! with an `x5c` chain.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;
use base64::Engine as _;
use p384::ecdsa::signature::Verifier;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_cert::Certificate;
use x509_cert::der::{Decode, Encode};

fn fpr_json() -> Value {
    serde_json::to_value(fpr_body()).unwrap()
}

#[tokio::test]
async fn fpr_create_accepts_a_known_reseller_and_the_address_validation_bypass() {
    let sb = start().await;
    let mut body = fpr_json();
    body["reseller_organization_id"] = json!(sandbox::fulfiller::seed::DEFAULT_RESELLER);
    body["address_validation_bypass"] = json!(true);
    let (s, v) = sb.call(Method::POST, "/v1/fpr/shipments", Some(body)).await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["shipment_state"]["shipment_state_id"], 2, "{v}");

    // null is the same as absent.
    let mut body = fpr_json();
    body["reseller_organization_id"] = Value::Null;
    body["address_validation_bypass"] = Value::Null;
    let (s, v) = sb.call(Method::POST, "/v1/fpr/shipments", Some(body)).await;
    assert_eq!(s, 201, "{v}");

    // Through the typed client as well.
    let mut typed = fpr_body();
    typed.reseller_organization_id = Some(sandbox::fulfiller::seed::DEFAULT_RESELLER.into());
    typed.address_validation_bypass = Some(false);
    sb.client.create_fpr_shipment(&typed).await.unwrap();
}

#[tokio::test]
async fn fpr_create_refuses_wrong_types_naming_the_field() {
    let sb = start().await;
    for (field, value) in [
        ("address_validation_bypass", json!("yes")),
        ("address_validation_bypass", json!(1)),
        ("reseller_organization_id", json!(12345)),
        (
            "reseller_organization_id",
            json!(["E1ap3BG24ytkAwmQG8NWnP"]),
        ),
    ] {
        let mut body = fpr_json();
        body[field] = value.clone();
        let (s, v) = sb.call(Method::POST, "/v1/fpr/shipments", Some(body)).await;
        assert_eq!(s, 400, "{field}={value}: {v}");
        assert_eq!(v["code"], "validation_error", "{v}");
        assert_eq!(v["field"], field, "{v}");
        assert!(
            v["message"].as_str().unwrap().starts_with("Input for "),
            "{v}"
        );
    }
}

#[tokio::test]
async fn fpr_create_refuses_a_malformed_or_unknown_reseller() {
    let sb = start().await;
    // Not a base58 organisation id.
    let mut b = fpr_body();
    b.reseller_organization_id = Some("reseller-42".into());
    let e = sb.client.create_fpr_shipment(&b).await.unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert_eq!(e.code(), Some(yubienterprise::ErrorCode::ValidationError));
    assert!(e.to_string().contains("Base58"), "{e}");
    // Well formed, but not a reseller of this organisation.
    let (s, v) = sb
        .call(
            Method::POST,
            "/v1/fpr/shipments",
            Some({
                let mut body = fpr_json();
                body["reseller_organization_id"] = json!("U89bvfKKCtQfhnqaFBrAZW");
                body
            }),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (400, Some("validation_error")),
        "{v}"
    );
    assert_eq!(v["field"], "reseller_organization_id");
    assert!(
        v["message"].as_str().unwrap().contains("not a reseller"),
        "{v}"
    );
    // Nothing was created by the refused calls.
    let (_, state) = sb.call(Method::GET, "/sandbox/v1/state", None).await;
    assert_eq!(
        state["shipments"].as_array().map(Vec::len),
        Some(0),
        "{state}"
    );
}

/// The signing keys as published, raw.
async fn signing_jwks(sb: &Sandbox) -> Value {
    sb.http
        .get(format!("{}/.well-known/yubico-sign.jwks", sb.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn der(b64: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().unwrap())
        .unwrap()
}

/// Whether `cert` is signed (ECDSA P-384 / SHA-384) by `issuer`'s key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    let key = p384::ecdsa::VerifyingKey::from_sec1_bytes(
        issuer
            .tbs_certificate()
            .subject_public_key_info()
            .subject_public_key
            .raw_bytes(),
    )
    .unwrap();
    let sig = p384::ecdsa::DerSignature::from_bytes(cert.signature().raw_bytes()).unwrap();
    let tbs = cert.tbs_certificate().to_der().unwrap();
    cert.tbs_certificate().issuer() == issuer.tbs_certificate().subject()
        && key.verify(&tbs, &sig).is_ok()
}

#[tokio::test]
async fn signing_keys_are_published_with_an_x5c_chain_over_the_key() {
    let sb = start().await;
    let v = signing_jwks(&sb).await;
    let ca_der = sb.store.signing_ca_der();
    let ca = Certificate::from_der(&ca_der).unwrap();
    assert!(signed_by(&ca, &ca), "the CA is self-signed");
    let keys = v["keys"].as_array().unwrap();
    assert!(keys.len() >= 2);
    for k in keys {
        let chain = k["x5c"].as_array().unwrap();
        assert_eq!(chain.len(), 2, "leaf then CA: {k}");
        let leaf_der = der(&chain[0]);
        assert_eq!(der(&chain[1]), ca_der);
        let leaf = Certificate::from_der(&leaf_der).unwrap();
        assert!(signed_by(&leaf, &ca), "the leaf is issued by the CA");
        // RFC 7517 §4.7: the leaf's key is the JWK's key.
        let jwk = envelope::PublicJwk::from_value(k).unwrap();
        let point = p384::PublicKey::from_sec1_bytes(
            leaf.tbs_certificate()
                .subject_public_key_info()
                .subject_public_key
                .raw_bytes(),
        )
        .unwrap();
        assert_eq!(point, p384::PublicKey::from_sec1_bytes(jwk.sec1()).unwrap());
        // RFC 7517 §4.9: x5t#S256 is the base64url SHA-256 of the leaf's DER.
        assert_eq!(
            k["x5t#S256"].as_str().unwrap(),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(&leaf_der))
        );
    }
    // The published set still reads as the profile's JWKS (x5c ignored), through the
    // typed client too.
    let set = envelope::Jwks::from_value(&v).unwrap();
    assert_eq!(set, sb.client.signing_keys().await.unwrap());
    // Transport keys carry no chain.
    let t: Value = sb
        .http
        .get(format!("{}/.well-known/yubico-transport-keys.jwks", sb.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(t["keys"][0].get("x5c").is_none());
}

#[tokio::test]
async fn a_rotated_signing_key_gets_its_own_certificate() {
    let sb = start().await;
    let (s, rot) = sb
        .call(
            Method::POST,
            "/sandbox/v1/keys/rotate",
            Some(json!({"use": "sig"})),
        )
        .await;
    assert_eq!(s, 200, "{rot}");
    let v = signing_jwks(&sb).await;
    let added = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == rot["added"])
        .unwrap();
    let leaf = Certificate::from_der(&der(&added["x5c"][0])).unwrap();
    let ca = Certificate::from_der(&sb.store.signing_ca_der()).unwrap();
    assert!(signed_by(&leaf, &ca));
    assert!(
        leaf.tbs_certificate()
            .subject()
            .to_string()
            .contains(added["kid"].as_str().unwrap())
    );
}
