//! The whole Entra-mode flow against the sandboxes: the guide's request to a registered
//! credential and a delivered PIN.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use common::{ALEX, guide_request, start};
use reqwest::Method;

#[tokio::test]
async fn the_guides_request_ends_with_a_registered_key_and_a_delivered_pin() {
    let w = start().await;
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    assert_eq!(sid.len(), 22);
    assert_eq!(w.shipment(&sid).await["state"], "open");

    w.advance().await;
    w.process().await;
    assert_eq!(w.shipment(&sid).await["state"], "open", "not shipped yet");
    w.advance().await;
    let sum = w.process().await;
    assert_eq!(sum["data"]["completed"], 1, "{sum}");

    let got = w.shipment(&sid).await;
    assert_eq!(got["state"], "complete", "{got}");
    assert!(got["serial_number"].as_str().is_some_and(|s| !s.is_empty()));
    let timeline: Vec<_> = got["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        timeline.contains(&"pin_pending".to_owned()) && timeline.last().unwrap() == "complete",
        "{timeline:?}"
    );

    // Registered in Entra for Alex.
    let methods = w.entra.registered_methods();
    assert_eq!(methods.len(), 1);
    // The PIN went to the manager (AdeleV), once, naming the key's serial.
    let pins = w.pins.lock().unwrap().clone();
    assert_eq!(pins.len(), 1);
    assert_eq!(pins[0]["emails_to"][0], "AdeleV@contoso.onmicrosoft.com");
    assert_eq!(pins[0]["serial_number"], got["serial_number"]);
    let pin = pins[0]["pin"].as_str().unwrap().to_owned();
    assert_eq!(pin.len(), 8);
    // The PIN is nowhere else: not in the API's answers, not in the database file.
    assert!(!got.to_string().contains(&pin));
    let (_, list) = w.call(Method::GET, "/v1/fpr/shipments", None).await;
    assert!(!list.to_string().contains(&pin));
    for f in std::fs::read_dir(&w.dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        assert!(
            !bytes.windows(pin.len()).any(|x| x == pin.as_bytes()),
            "PIN found in a database file"
        );
    }
}
