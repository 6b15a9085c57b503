//! The admin console in a real browser: headless Debian Chromium driven over WebDriver
//! (thirtyfour, `/usr/bin/chromedriver` started here on a free port). Signs in, filters
//! to pre-reg shipments, searches by serial, edits an address on an editable shipment
//! (through its confirmation page), sees the edit refused on a locked one, retries an
//! error and resends a PIN; saves screenshots of the main pages under
//! `target/console-screenshots/`.
//!
//! Needs the Debian packages `chromium` and `chromium-driver` (`./scripts/test` installs
//! them); without them the test fails and says so.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::console_common;

use common::ALEX;
use connector::store::Store;
use console_common::*;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thirtyfour::prelude::*;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver, stopped when dropped.
struct Chromedriver {
    child: std::process::Child,
    url: String,
}

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to 20 s, polling) until `cond` holds; panics naming `what` otherwise.
async fn until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !cond().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn start_chromedriver() -> Chromedriver {
    for bin in [CHROMIUM, CHROMEDRIVER] {
        assert!(
            Path::new(bin).exists(),
            "{bin} is missing: the console browser tests need the Debian packages chromium and \
             chromium-driver (./scripts/test installs them; or `apt-get install chromium chromium-driver`)"
        );
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let d = Chromedriver { child, url };
    let http = reqwest::Client::new();
    until("chromedriver to answer /status", || {
        let r = http.get(format!("{}/status", d.url)).send();
        async move { r.await.is_ok_and(|r| r.status().is_success()) }
    })
    .await;
    d
}

async fn browser_session(driver: &Chromedriver) -> WebDriver {
    let mut caps = DesiredCapabilities::chrome();
    caps.set_binary(CHROMIUM).unwrap();
    for a in [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1000",
    ] {
        caps.add_arg(a).unwrap();
    }
    WebDriver::new(&driver.url, caps).await.unwrap()
}

fn shots() -> PathBuf {
    // The repository's target directory (gitignored).
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&d).unwrap();
    d
}

async fn shot(b: &WebDriver, name: &str) {
    let path = shots().join(name);
    b.screenshot(&path).await.unwrap();
    assert!(
        std::fs::metadata(&path).unwrap().len() > 1000,
        "{name} saved"
    );
}

/// Waits until the element at `css` exists and its text contains `want` (navigation
/// errors while the next page loads count as "not yet"); its text.
async fn wait_text(b: &WebDriver, css: &str, want: &str) -> String {
    until(&format!("{css} containing {want:?}"), || {
        let b = b.clone();
        let (css, want) = (css.to_owned(), want.to_owned());
        async move {
            match b.find(By::Css(&css)).await {
                Ok(e) => e.text().await.is_ok_and(|t| t.contains(&want)),
                Err(_) => false,
            }
        }
    })
    .await;
    text_of(b, css).await
}

async fn text_of(b: &WebDriver, css: &str) -> String {
    b.query(By::Css(css))
        .first()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Clicks the element with this id.
async fn click(b: &WebDriver, id: &str) {
    b.find(By::Id(id)).await.unwrap().click().await.unwrap();
}

async fn set_field(b: &WebDriver, id: &str, value: &str) {
    let e = b.find(By::Id(id)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(value).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_works_the_console_in_chromium() {
    let chromedriver = start_chromedriver().await;
    let b = browser_session(&chromedriver).await;
    // The scenario runs in its own task so that, pass or fail, the browser is closed
    // (chromedriver does not stop Chromium by itself); a failure leaves a screenshot and
    // the page's source.
    let run = tokio::spawn(scenario(b.clone())).await;
    if run.is_err() {
        let _ = b.screenshot(&shots().join("failure.png")).await;
        if let Ok(src) = b.source().await {
            eprintln!(
                "page at the failure ({}):\n{src}",
                b.current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default()
            );
        }
    }
    let _ = b.quit().await;
    drop(chromedriver);
    if let Err(e) = run {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn scenario(b: WebDriver) {
    let w = start_console().await;
    // Diego's key ships (locked at the fulfiller, PIN delivered); Alex's order stays
    // editable; a third one ends in error.
    let (shipped, _) = order(&w, DIEGO).await;
    w.advance().await;
    w.advance().await;
    w.process().await;
    let serial = w.shipment(&shipped).await["serial_number"]
        .as_str()
        .unwrap()
        .to_owned();
    let (editable, editable_sid) = order(&w, ALEX).await;
    let (failed, _) = order(&w, ALEX).await;
    let mut row = w.state.store.get_request(&failed).await.unwrap().unwrap();
    row.state = connector::domain::RequestState::Error;
    row.last_error = Some("the fulfiller was unavailable: 503 Service Unavailable".into());
    w.state
        .store
        .update_request(&row, "processing failed")
        .await
        .unwrap();

    let base = w.connector.clone();

    // Sign in: the console sends a signed-out browser to the sign-in page.
    b.goto(format!("{base}/console/shipments")).await.unwrap();
    until("the sign-in page", || async {
        b.current_url()
            .await
            .is_ok_and(|u| u.path() == "/console/login")
    })
    .await;
    shot(&b, "01-sign-in.png").await;
    set_field(&b, "user", ADMIN).await;
    set_field(&b, "password", PASSWORD).await;
    click(&b, "signin").await;
    wait_text(&b, "h1", "All shipments").await;
    assert!(text_of(&b, "#count").await.contains("of 3 shipments"));
    shot(&b, "02-all-shipments.png").await;

    // Filter to pre-reg shipments (htmx swaps the results and pushes the URL).
    b.find(By::Css("#type option[value='fpr']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    until("the type filter in the URL", || async {
        b.current_url()
            .await
            .is_ok_and(|u| u.query().is_some_and(|q| q.contains("type=fpr")))
    })
    .await;
    assert!(text_of(&b, "#count").await.contains("of 3 shipments"));

    // Search by serial.
    set_field(&b, "q", &serial).await;
    click(&b, "apply").await;
    until("one result for the serial", || async {
        b.find_all(By::Css("tr[data-id]"))
            .await
            .is_ok_and(|rows| rows.len() == 1)
    })
    .await;
    let row = b.find(By::Css("tr[data-id]")).await.unwrap();
    assert_eq!(row.attr("data-id").await.unwrap().unwrap(), shipped);
    assert!(row.text().await.unwrap().contains(&serial));
    shot(&b, "03-search-by-serial.png").await;

    // Edit the address of the editable shipment.
    b.goto(format!("{base}/console/shipments/{editable}"))
        .await
        .unwrap();
    assert!(b.find_all(By::Id("locked")).await.unwrap().is_empty());
    set_field(&b, "street_line1", "1 Browser Way").await;
    set_field(&b, "city", "Boston").await;
    click(&b, "save-edit").await;
    // The confirmation lists what changes; the fulfiller has nothing new until then.
    let changes = wait_text(&b, "#changes", "1 Browser Way").await;
    assert!(
        changes.contains("Boston") && changes.contains("Dedham"),
        "{changes}"
    );
    assert!(
        !changes.contains("Postal code"),
        "only changed fields: {changes}"
    );
    let live = w
        .state
        .fulfiller
        .get_fpr_shipment(&editable_sid)
        .await
        .unwrap();
    assert_eq!(live.mailing_address.street_line1, "7788 Foxrun Street");
    shot(&b, "04-confirm-edit.png").await;
    click(&b, "confirm").await;
    wait_text(&b, "#flash", "Saved").await;
    let live = w
        .state
        .fulfiller
        .get_fpr_shipment(&editable_sid)
        .await
        .unwrap();
    assert_eq!(live.mailing_address.street_line1, "1 Browser Way");
    assert_eq!(live.mailing_address.city, "Boston");
    shot(&b, "05-details-edited.png").await;

    // The shipped one is locked: the form is read-only and says why.
    b.goto(format!("{base}/console/shipments/{shipped}"))
        .await
        .unwrap();
    wait_text(&b, "#locked", "can no longer be changed").await;
    let street = b.find(By::Id("street_line1")).await.unwrap();
    assert!(!street.is_enabled().await.unwrap(), "read-only");
    assert!(
        !b.find(By::Id("save-edit"))
            .await
            .unwrap()
            .is_enabled()
            .await
            .unwrap()
    );
    shot(&b, "06-details-locked.png").await;

    // Resend its PIN (with confirmation).
    click(&b, "resend-pin").await;
    wait_text(&b, "#question", "Send the PIN").await;
    shot(&b, "07-confirm-resend.png").await;
    click(&b, "confirm").await;
    wait_text(&b, "#flash", "PIN resend scheduled").await;
    // The runner sends it at once (kicked by the resend); process waits for it.
    w.process().await;
    assert_eq!(w.pins.lock().unwrap().len(), 2, "the PIN went again");

    // Retry the error.
    b.goto(format!("{base}/console/shipments/{failed}"))
        .await
        .unwrap();
    let err = text_of(&b, "#last-error").await;
    assert!(err.contains("unavailable"));
    shot(&b, "08-details-error.png").await;
    click(&b, "retry").await;
    wait_text(&b, "#question", "Retry request").await;
    click(&b, "confirm").await;
    wait_text(&b, "#flash", "Retry scheduled").await;
    assert_eq!(w.shipment(&failed).await["state"], "open");

    // Settings, and the list on a narrow screen.
    b.goto(format!("{base}/console/settings")).await.unwrap();
    wait_text(&b, "h1", "Settings").await;
    shot(&b, "09-settings.png").await;
    b.set_window_rect(0, 0, 420, 1000).await.unwrap();
    b.goto(format!("{base}/console/shipments")).await.unwrap();
    wait_text(&b, "h1", "All shipments").await;
    shot(&b, "10-all-shipments-narrow.png").await;
}
