//! The console over an Okta-mode request: listed with IdP okta, and the approval gate
//! (approve PIN release) from the details page.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::console_common;
use crate::okta_common;

use console_common::{ADMIN, PASSWORD, browser, input_value};
use okta_common::*;

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_approves_an_okta_pin_release_in_the_console() {
    let hash = connector::console::auth::hash_password(PASSWORD).unwrap();
    // `[console]` goes between `[okta]`'s keys and its `[[okta.groups]]` (valid TOML).
    let w = start_with(Options {
        extra_okta_toml: format!(
            "\n[console]\nadmin_user = \"{ADMIN}\"\nadmin_password_hash = \"{hash}\"\n"
        ),
        ..Options::default()
    })
    .await;
    w.register_hook().await;
    w.add_to_group(GROUP, BOB).await;
    let r = w.wait_request_of(BOB).await;
    let id = r["request_id"].as_str().unwrap().to_owned();
    w.wait_state(&id, "open").await;
    w.drive_to(&id, "awaiting_approval").await;

    let b = browser();
    let base = w.connector.clone();
    let html = b
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let t = input_value(&html, "csrf");
    let r = b
        .post(format!("{base}/console/login"))
        .form(&[
            ("csrf", t.as_str()),
            ("user", ADMIN),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    let list = b
        .get(format!(
            "{base}/console/shipments?idp=okta&state=awaiting_approval"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(list.contains(&format!("data-id=\"{id}\"")), "{list}");
    let details = b
        .get(format!("{base}/console/shipments/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(details.contains("id=\"approve\""), "{details}");
    let csrf = input_value(&details, "csrf");
    let path = format!("{base}/console/shipments/{id}/approve");
    let r = b
        .post(&path)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("release its PIN"));
    assert!(
        w.mail.messages().is_empty(),
        "nothing before the confirmation"
    );
    let r = b
        .post(&path)
        .form(&[("csrf", csrf.as_str()), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("?done=approved")
    );
    assert_eq!(w.request(&id).await["state"], "complete");
    let mail = w.mail.messages();
    assert_eq!(mail.len(), 1, "Okta mailed the PIN");
    let pin = pin_in(&mail[0].body);
    let details = b
        .get(format!("{base}/console/shipments/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(details.contains("approved by an admin") || details.contains("complete"));
    assert!(!details.contains(&pin), "never the PIN");
}
