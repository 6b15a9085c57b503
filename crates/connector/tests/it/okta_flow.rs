//! Okta mode end to end: a user added to a mapped group at the Okta sandbox gets a
//! shipment through the connector's event hook, the fulfiller sandbox ships the key, the
//! connector activates it at Okta, an admin approves, Okta mails the PIN to the mail
//! catcher, and the user signs in with the shipped key.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::okta_common;

use authenticator::{KeyProgrammer, Pin};
use okta_common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn a_user_added_to_a_mapped_group_gets_a_key_and_signs_in_with_it() {
    let w = start().await;
    w.register_hook().await;
    assert!(w.requests_of(BOB).await.is_empty());

    w.add_to_group(GROUP, BOB).await;
    let r = w.wait_request_of(BOB).await;
    assert_eq!(r["idp"], "okta");
    assert_eq!(r["okta"]["source"], "group_add");
    assert_eq!(r["okta"]["group_id"], GROUP);
    assert_eq!(r["table_state"], "ongoing");
    let id = r["request_id"].as_str().unwrap().to_owned();

    // The event started the processing: enrolled at Okta, ordered at the fulfiller,
    // with nobody calling process.
    let r = w.wait_state(&id, "open").await;
    assert!(r["shipment_id"].is_string(), "{r}");
    let r = w.drive_to(&id, "awaiting_approval").await;
    assert_eq!(r["table_state"], "ongoing");
    assert_eq!(r["okta"]["activated"], true);
    let shipment = r["shipment_id"].as_str().unwrap().to_owned();
    let serial = r["serial_number"].as_str().unwrap().to_owned();
    let enrollments = w.enrollments(BOB).await;
    assert_eq!(enrollments.len(), 1);
    assert_eq!(enrollments[0]["status"], "ACTIVE");
    assert_eq!(enrollments[0]["profile"]["serial"], serial.as_str());
    assert_eq!(
        r["okta"]["enrollment_ids"],
        json!([enrollments[0]["id"].clone()])
    );
    // The shipment went to Bob's profile address.
    let (s, sh) = w
        .fulfiller_call(Method::GET, &format!("/v1/fpr/shipments/{shipment}"), None)
        .await;
    assert_eq!(s, 200, "{sh}");
    assert!(sh.to_string().contains("bob.brown@example.com"), "{sh}");
    assert!(sh.to_string().contains("Example Corp"), "{sh}");
    // No PIN before approval, whatever runs.
    w.process().await;
    assert!(w.mail.messages().is_empty(), "no PIN before approval");

    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/okta/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["data"]["state"], "complete");
    assert_eq!(v["data"]["table_state"], "complete");
    // Approving twice is refused, naming the state.
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/okta/requests/{id}/approve"),
            None,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error_message"].as_str().unwrap().contains("complete"));

    let mail = w.mail.messages();
    assert_eq!(mail.len(), 1);
    assert_eq!(mail[0].to, vec!["bob.brown@example.com".to_owned()]);
    let pin = pin_in(&mail[0].body);

    // The user changes the PIN (the key demands it) and signs in at Okta.
    let mut key = w.shipped_key(&shipment).await;
    assert_eq!(key.identity().serial.to_string(), serial);
    key.change_pin(&Pin::new(pin.as_str()), &Pin::new("73195208"))
        .unwrap();
    let (s, v) = w
        .sign_in(&mut key, "bob.brown@example.com", "73195208")
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["signedIn"], true);
    assert_eq!(v["user"]["id"], BOB);

    // After the first sign-in Okta no longer holds the PIN: the API says so.
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/fpr/shipments/{id}/resend-pin"),
            None,
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(
        v["error_message"]
            .as_str()
            .unwrap()
            .contains("can no longer be resent"),
        "{v}"
    );

    // The audit trail names every step.
    let r = w.request(&id).await;
    let notes: Vec<String> = r["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}: {}", h["state"], h["note"]))
        .collect();
    let all = notes.join("\n");
    for want in [
        "started by the Okta group-add trigger",
        "enrolled at Okta",
        "shipment created at the fulfiller",
        "key activated at Okta",
        "approved by an admin",
        "Okta sent the PIN",
    ] {
        assert!(all.contains(want), "missing {want:?} in\n{all}");
    }
    // The shared list shows it too, with idp okta.
    let (s, v) = w
        .call(Method::GET, "/v1/fpr/shipments?idp=okta", None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["total_count"], 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_automatic_approval_the_pin_is_sent_right_after_activation_and_resent_on_request() {
    let w = start_with(Options {
        approval: "auto",
        ..Default::default()
    })
    .await;
    let (s, v) = w
        .call(
            Method::POST,
            "/v1/okta/batch",
            Some(json!({"users": ["bob.brown@example.com"]})),
        )
        .await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["data"][0]["status"], "created");
    let id = v["data"][0]["request_id"].as_str().unwrap().to_owned();
    let r = w.drive_to(&id, "complete").await;
    assert_eq!(r["table_state"], "complete");
    assert_eq!(w.mail.messages().len(), 1);

    // Resend works until the first sign-in.
    let (s, v) = w
        .call(
            Method::POST,
            &format!("/v1/fpr/shipments/{id}/resend-pin"),
            None,
        )
        .await;
    assert_eq!(s, 202, "{v}");
    let mail = w.mail.messages();
    assert_eq!(mail.len(), 2);
    assert_eq!(pin_in(&mail[0].body), pin_in(&mail[1].body));
}

/// Okta enrolls the user and its answer is lost on the way back: the enrollment exists
/// at Okta, the connector recorded none. The next run finds the intent it marked before
/// the call, withdraws the stray enrollment, and enrolls again: one enrollment left.
#[tokio::test(flavor = "multi_thread")]
async fn an_enrollment_whose_answer_was_lost_is_withdrawn_before_enrolling_again() {
    use sandbox::faults::{FaultKind, ScriptedFault};
    let w = start().await;
    w.okta_org.faults().script([ScriptedFault::new(
        "POST",
        "/enroll",
        FaultKind::DropAfter,
        1,
    )]);
    let order = connector::okta::Order::from(&w.state.okta.as_ref().unwrap().config.groups[0]);
    let row = match connector::okta::start_request(&w.state, BOB, order, "batch")
        .await
        .unwrap()
    {
        connector::okta::Started::Created(r) => *r,
        other => panic!("{other:?}"),
    };
    let r = w.drive_to(&row.id, "awaiting_approval").await;
    assert!(
        w.okta_org.faults().get().script.is_empty(),
        "the enrollment's answer was lost"
    );
    let e = w.enrollments(BOB).await;
    assert_eq!(e.len(), 1, "the lost enrollment was withdrawn: {e:?}");
    assert_eq!(e[0]["status"], "ACTIVE");
    assert_eq!(r["okta"]["enrollment_ids"], json!([e[0]["id"].clone()]));
}
