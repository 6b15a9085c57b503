//! Fidelity: the official Okta Python SDK (okta 3.4.6, `interop/okta_prereg.py`) calls
//! enroll, activate, send-pin and the enrollments list against the sandbox and parses
//! every answer into its own models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_okta_python_sdk_runs_the_preregistration_flow_and_parses_every_answer() {
    let sb = start().await;
    let base = json!({"org_url": sb.okta_url, "token": SSWS, "user_id": ALICE});
    let mut inp = base.clone();
    inp["phase"] = json!("enroll");
    inp["transport_key"] = sb.transport_key().await;
    inp["rp_ids"] = json!([RP]);
    let out = tokio::task::spawn_blocking(move || testkit::run_python("okta_prereg.py", &inp))
        .await
        .unwrap();
    let enrolled = &out["enroll"];
    assert_eq!(enrolled["userId"], ALICE, "{out}");
    let fid = enrolled["credRequests"][0]["authenticatorEnrollmentId"]
        .as_str()
        .unwrap()
        .to_owned();

    let shipped = sb.fulfil(enrolled).await;
    let mut inp = base.clone();
    inp["phase"] = json!("activate");
    inp["cred_responses"] = json!([{"id": fid, "jwe": shipped.cred_responses[0]}]);
    inp["pin_response"] = json!(shipped.pin_response);
    inp["serial"] = json!(shipped.serial);
    inp["version"] = json!(shipped.version);
    inp["signing_keys"] = sb.signing_keys().await;
    let out = tokio::task::spawn_blocking(move || testkit::run_python("okta_prereg.py", &inp))
        .await
        .unwrap();
    assert_eq!(
        out["activate"]["authenticatorEnrollmentIds"],
        json!([fid]),
        "{out}"
    );
    assert_eq!(out["factors"][0]["status"], "ACTIVE", "{out}");
    // The SDK's to_dict() leaves out read-only members (id, created, lastUpdated).
    assert_eq!(out["factors"][0]["factorType"], "webauthn", "{out}");
    assert_eq!(
        out["factors"][0]["profile"]["presetPinAvailable"], true,
        "{out}"
    );
    assert_eq!(sb.mail().await.len(), 1, "send-pin mailed the PIN");
}
