//! On-site programming (issue #19 item 2): the connector orders from a depot instead of
//! the fulfiller sandbox, the desk programs the key, the connector completes the request
//! as for a shipped key (registration in Entra, PIN mail), and the person signs in at
//! the Entra sandbox with the depot's key and the mailed PIN. The depot restarts between
//! the order and the programming: its keys and the waiting shipment survive.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{self, ALEX, guide_request};
use authenticator::KeyProgrammer;
use reqwest::Method;
use sandbox::depot::{DESK_TOKEN_FILE, Depot, DepotConfig, DeskClient};
use sandbox::fulfiller::{
    EnvelopeProgrammer, Order, ProgramError, Programmed, Programmer, VirtualKeys,
};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const ALEX_UPN: &str = "AlexW@contoso.onmicrosoft.com";

/// A depot running on `listen` with its state in `dir`: its ready line, and the sender
/// that stops it and the task that ends once it stopped (its port is free again).
async fn run_depot(
    dir: &Path,
    listen: SocketAddr,
) -> (
    Value,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    run_depot_with(dir, listen, false, None).await
}

/// As [`run_depot`]; `serial_from_desk`: the desk must give each key's serial number,
/// as with real keys over USB; `programmer` instead of the default.
async fn run_depot_with(
    dir: &Path,
    listen: SocketAddr,
    serial_from_desk: bool,
    programmer: Option<Arc<dyn Programmer>>,
) -> (
    Value,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<std::io::Result<()>>,
) {
    let mut config = DepotConfig::new(dir.to_owned());
    config.listen = listen;
    config.serial_from_desk = serial_from_desk;
    if let Some(p) = programmer {
        config.programmer = p;
    }
    let depot = Depot::build(config).await.unwrap();
    let ready = depot.ready_info();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(depot.run(async {
        let _ = rx.await;
    }));
    (ready, tx, task)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_programmed_at_the_depot_desk_completes_the_request_and_signs_in() {
    let dir = std::env::temp_dir().join(format!("prereg-depot-{}", uuid::Uuid::new_v4()));
    let (ready, stop, task) = run_depot(&dir, SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let base = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let w = common::start_ordering_from(ready["fulfiller"].clone()).await;
    let transport_before = transport_jwks(&w.http, &base).await;

    // An admin orders a key for Alex, as for a shipped one.
    let (s, v) = w
        .call(Method::POST, "/v1/fprRequest", Some(guide_request(ALEX)))
        .await;
    assert_eq!(s, 201, "{v}");
    let sid = v["data"]["shipment_id"].as_str().unwrap().to_owned();
    w.process().await;
    let open = w.shipment(&sid).await;
    assert_ne!(open["state"], "complete", "nothing moves by itself: {open}");

    // The depot restarts on the same address: keys and the waiting shipment are kept.
    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let (ready2, stop, task) = run_depot(&dir, addr).await;
    assert_eq!(ready2["fulfiller"]["base_url"], base.as_str());
    // A new client for the restarted depot: `w.http` may hold a kept-alive connection to
    // the stopped one, whose reuse fails ("IncompleteMessage") when its close was not
    // yet seen.
    let http = reqwest::Client::new();
    let transport_after = transport_jwks(&http, &base).await;
    assert_eq!(
        transport_after, transport_before,
        "the same transport keys after a restart"
    );

    // The desk lists the waiting shipment and programs it.
    let token = std::fs::read_to_string(dir.join(DESK_TOKEN_FILE)).unwrap();
    let desk = DeskClient::new(http.clone(), &base, &token);
    let waiting = desk.waiting().await.unwrap();
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].shipment_id, sid);
    assert_eq!(waiting[0].recipient_name, "Alex Wilber");
    assert_eq!(waiting[0].product_name, "YubiKey 5 NFC");
    let wrong = DeskClient::new(http.clone(), &base, "not-the-desk-token");
    let refused = wrong.waiting().await.unwrap_err().to_string();
    assert!(refused.contains("401"), "{refused}");
    let handover = desk.program(&sid, None).await.unwrap();
    assert_eq!(handover.shipment_id, sid);
    assert_eq!(handover.shipment_state_id, 104, "handed over = delivered");
    assert!(desk.waiting().await.unwrap().is_empty());
    let again = desk.program(&sid, None).await.unwrap_err().to_string();
    assert!(
        again.contains("409") && again.contains("not waiting at the desk"),
        "{again}"
    );

    // The connector completes the request as for a shipped key: registered, PIN mailed.
    let got = w.settle(&sid, &["complete"]).await;
    assert_eq!(
        got["serial_number"],
        handover.serial_number.as_str(),
        "{got}"
    );
    let pin = mailed_pin(&w, &handover.serial_number).await;
    assert_eq!(pin.len(), 8);
    assert!(
        !got.to_string().contains(&pin),
        "the PIN is not in the view"
    );
    let saved = std::fs::read_to_string(dir.join(sandbox::depot::STATE_FILE)).unwrap();
    assert!(saved.contains(&sid), "the depot saved the shipment");
    assert!(!saved.contains(&pin), "the depot keeps no PIN in clear");

    // Alex signs in at Entra with the key from the desk and the mailed PIN (changing it
    // first if the key demands a change).
    let mut key = authenticator::VirtualYubiKey::from_json(&handover.key.to_string()).unwrap();
    assert_eq!(key.identity().serial.to_string(), handover.serial_number);
    let mut pin_now = pin.clone();
    if key.summary().force_pin_change {
        pin_now = "27182818".to_owned();
        key.change_pin(
            &authenticator::Pin::new(pin.as_str()),
            &authenticator::Pin::new(pin_now.as_str()),
        )
        .unwrap();
    }
    let (s, who) =
        common::sign_in_at(&w.http, &w.entra.base_url(), &mut key, ALEX_UPN, &pin_now).await;
    assert_eq!(s, 200, "{who}");
    assert_eq!(who["signedIn"], true, "{who}");
    assert_eq!(who["userVerified"], true, "{who}");
    assert_eq!(who["user"]["userPrincipalName"], ALEX_UPN, "{who}");

    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Orders a key for Alex and one for Diego (Entra mode) and lets the connector send the
/// orders: their shipment ids, waiting at the depot.
async fn order_for_alex_and_diego(w: &common::World) -> Vec<String> {
    let mut sids = Vec::new();
    for who in [ALEX, crate::console_common::DIEGO] {
        let (s, v) = w
            .call(Method::POST, "/v1/fprRequest", Some(guide_request(who)))
            .await;
        assert_eq!(s, 201, "{v}");
        sids.push(v["data"]["shipment_id"].as_str().unwrap().to_owned());
    }
    w.process().await;
    sids
}

/// With virtual keys the desk may give a serial number; the seed's counter then skips
/// it, so no two keys share one.
#[tokio::test(flavor = "multi_thread")]
async fn the_counter_skips_a_serial_number_the_desk_gave() {
    let dir = std::env::temp_dir().join(format!("prereg-depot-{}", uuid::Uuid::new_v4()));
    let (ready, stop, task) = run_depot(&dir, SocketAddr::from(([127, 0, 0, 1], 0))).await;
    let base = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    let w = common::start_ordering_from(ready["fulfiller"].clone()).await;
    let token = std::fs::read_to_string(dir.join(DESK_TOKEN_FILE)).unwrap();
    let desk = DeskClient::new(w.http.clone(), &base, &token);
    let sids = order_for_alex_and_diego(&w).await;

    // The number the counter would give next, given by the desk to the first key.
    let next = sandbox::fulfiller::Seed::default().first_serial.to_string();
    let first = desk.program(&sids[0], Some(&next)).await.unwrap();
    assert_eq!(first.serial_number, next);
    let second = desk.program(&sids[1], None).await.unwrap();
    assert_ne!(second.serial_number, next, "the counter skipped it");
    for (sid, serial) in [
        (&sids[0], &first.serial_number),
        (&sids[1], &second.serial_number),
    ] {
        assert_eq!(
            w.settle(sid, &["complete"]).await["serial_number"],
            serial.as_str()
        );
    }

    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Virtual keys behind a "plugged in" switch, as a depot's USB key is: while it is off,
/// no key can be programmed.
struct Plugged {
    inner: EnvelopeProgrammer<VirtualKeys>,
    plugged: Arc<AtomicBool>,
}

impl Programmer for Plugged {
    fn program(&self, order: &Order<'_>) -> Result<Programmed, ProgramError> {
        self.inner.program(order)
    }

    fn ready(&self) -> Result<(), ProgramError> {
        if self.plugged.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(ProgramError("no FIDO key is plugged in".to_owned()))
        }
    }
}

/// A depot with the rules of real keys over USB, here with virtual keys: the serial
/// number comes from the desk (CTAP cannot read it), so a key is programmed only with
/// the number printed on it, and a number already handed over is refused naming its
/// shipment; with no key plugged in the shipment keeps waiting. The connector records
/// the desk's numbers.
#[tokio::test(flavor = "multi_thread")]
async fn a_depot_with_the_rules_of_real_keys_takes_serial_numbers_from_the_desk() {
    let dir = std::env::temp_dir().join(format!("prereg-depot-{}", uuid::Uuid::new_v4()));
    let plugged = Arc::new(AtomicBool::new(false));
    let programmer = Arc::new(Plugged {
        inner: EnvelopeProgrammer::new(VirtualKeys),
        plugged: plugged.clone(),
    });
    let (ready, stop, task) = run_depot_with(
        &dir,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        true,
        Some(programmer),
    )
    .await;
    let base = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    let w = common::start_ordering_from(ready["fulfiller"].clone()).await;
    let token = std::fs::read_to_string(dir.join(DESK_TOKEN_FILE)).unwrap();
    let desk = DeskClient::new(w.http.clone(), &base, &token);

    let sids = order_for_alex_and_diego(&w).await;

    // Without the number, or with one that is not a serial number: refused, nothing
    // programmed, the shipment still waits.
    let missing = desk.program(&sids[0], None).await.unwrap_err().to_string();
    assert!(
        missing.contains("400") && missing.contains("give the number printed on the key"),
        "{missing}"
    );
    let bad = desk
        .program(&sids[0], Some("0"))
        .await
        .unwrap_err()
        .to_string();
    assert!(bad.contains("is not a key's serial number"), "{bad}");
    let unplugged = desk
        .program(&sids[0], Some("31415926"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        unplugged.contains("409")
            && unplugged.contains("no FIDO key is plugged in")
            && unplugged.contains("still waits"),
        "{unplugged}"
    );
    assert_eq!(desk.waiting().await.unwrap().len(), 2);
    plugged.store(true, Ordering::SeqCst);

    let handover = desk.program(&sids[0], Some(" 31415926 ")).await.unwrap();
    assert_eq!(handover.serial_number, "31415926");
    let key = authenticator::VirtualYubiKey::from_json(&handover.key.to_string()).unwrap();
    assert_eq!(key.identity().serial, 31_415_926);

    // The same number for the next shipment: that key was handed over already.
    let twice = desk
        .program(&sids[1], Some("31415926"))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        twice.contains("already programmed for shipment") && twice.contains(sids[0].as_str()),
        "{twice}"
    );
    let second = desk.program(&sids[1], Some("27182818")).await.unwrap();
    assert_eq!(second.serial_number, "27182818");

    // The connector records the desk's numbers and mails each PIN naming its key.
    for (sid, serial) in [(&sids[0], "31415926"), (&sids[1], "27182818")] {
        let got = w.settle(sid, &["complete"]).await;
        assert_eq!(got["serial_number"], serial, "{got}");
        assert_eq!(mailed_pin(&w, serial).await.len(), 8);
    }

    let _ = stop.send(());
    task.await.unwrap().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Virtual keys that wait for a touch, as a real key does: `program` says it started
/// and waits until the test touches the key (or drops the sender).
struct Touch {
    inner: EnvelopeProgrammer<VirtualKeys>,
    started: std::sync::Mutex<std::sync::mpsc::Sender<String>>,
    touched: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Programmer for Touch {
    fn program(&self, order: &Order<'_>) -> Result<Programmed, ProgramError> {
        let _ = self
            .started
            .lock()
            .unwrap()
            .send(order.shipment_id.to_owned());
        let _ = self.touched.lock().unwrap().recv();
        self.inner.program(order)
    }
}

/// The depot in a runtime of its own, so that the test can stop it the way a killed
/// process stops: every task and connection dropped at once, nothing saved after.
fn run_depot_process(
    dir: &Path,
    listen: SocketAddr,
    programmer: Arc<dyn Programmer>,
) -> (Value, tokio::runtime::Runtime) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut config = DepotConfig::new(dir.to_owned());
    config.listen = listen;
    config.programmer = programmer;
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let depot = Depot::build(config).await.unwrap();
        tx.send(depot.ready_info()).unwrap();
        depot.run(std::future::pending()).await.unwrap();
    });
    let ready = rx.recv_timeout(Duration::from_secs(30)).unwrap();
    (ready, rt)
}

/// Waits (off the async workers) for the touch programmer to start on a shipment.
async fn started(rx: &Arc<std::sync::Mutex<std::sync::mpsc::Receiver<String>>>) -> String {
    let rx = rx.clone();
    tokio::task::spawn_blocking(move || {
        rx.lock()
            .unwrap()
            .recv_timeout(Duration::from_secs(60))
            .expect("the desk started programming")
    })
    .await
    .unwrap()
}

/// While a key waits for its touch the depot keeps answering: the connector's polls
/// (the shipment shows 101, the request stays open), the desk's list, and a second
/// program of the same shipment (409). A depot killed while a key waits fails that
/// shipment when it starts again (its sealed requests are gone and the key may be half
/// made), and the connector shows the request in error; the other shipment completes.
#[tokio::test(flavor = "multi_thread")]
async fn a_key_waiting_for_its_touch_holds_up_nothing_and_a_depot_killed_then_fails_only_that_shipment()
 {
    let dir = std::env::temp_dir().join(format!("prereg-depot-{}", uuid::Uuid::new_v4()));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (touch, touched) = std::sync::mpsc::channel();
    let started_rx = Arc::new(std::sync::Mutex::new(started_rx));
    let programmer = Arc::new(Touch {
        inner: EnvelopeProgrammer::new(VirtualKeys),
        started: std::sync::Mutex::new(started_tx),
        touched: std::sync::Mutex::new(touched),
    });
    let (ready, depot) = run_depot_process(&dir, SocketAddr::from(([127, 0, 0, 1], 0)), programmer);
    let base = ready["fulfiller"]["base_url"].as_str().unwrap().to_owned();
    let addr: SocketAddr = base.trim_start_matches("http://").parse().unwrap();
    let w = common::start_ordering_from(ready["fulfiller"].clone()).await;
    let token = std::fs::read_to_string(dir.join(DESK_TOKEN_FILE)).unwrap();
    let desk = DeskClient::new(reqwest::Client::new(), &base, &token);
    let sids = order_for_alex_and_diego(&w).await;

    // The first key waits for its touch; everything else is answered meanwhile.
    let first = {
        let desk = desk.clone();
        let sid = sids[0].clone();
        tokio::spawn(async move { desk.program(&sid, None).await })
    };
    assert_eq!(started(&started_rx).await, sids[0]);
    // (A depot that held its store while the key waited would never answer: the
    // timeout turns that into a failure instead of a hung test.)
    let meanwhile = async {
        let waiting = desk.waiting().await.unwrap();
        assert_eq!(
            waiting
                .iter()
                .map(|s| s.shipment_id.as_str())
                .collect::<Vec<_>>(),
            [sids[1].as_str()],
            "the shipment being programmed is no longer waiting"
        );
        let again = desk.program(&sids[0], None).await.unwrap_err().to_string();
        assert!(
            again.contains("409") && again.contains("state 101"),
            "{again}"
        );
        w.process().await;
        assert_eq!(w.shipment(&sids[0]).await["state"], "open");
    };
    tokio::time::timeout(Duration::from_secs(120), meanwhile)
        .await
        .expect("the depot answered while a key waited for its touch");
    touch.send(()).unwrap();
    let handover = first.await.unwrap().unwrap();
    assert_eq!(handover.shipment_state_id, 104);
    w.settle(&sids[0], &["complete"]).await;

    // The second key waits for its touch, and the depot is killed.
    let second = {
        let desk = desk.clone();
        let sid = sids[1].clone();
        tokio::spawn(async move { desk.program(&sid, None).await })
    };
    assert_eq!(started(&started_rx).await, sids[1]);
    // A change the depot saves while the key waits (here the refused second program).
    assert!(desk.program(&sids[1], None).await.is_err());
    depot.shutdown_background();
    assert!(
        second.await.unwrap().is_err(),
        "the desk got no key from a killed depot"
    );

    // Started again: the interrupted shipment is failed, saying why; the request is in
    // error at the connector.
    let (_ready, depot) =
        run_depot_process(&dir, addr, Arc::new(EnvelopeProgrammer::new(VirtualKeys)));
    let desk = DeskClient::new(reqwest::Client::new(), &base, &token);
    assert!(desk.waiting().await.unwrap().is_empty());
    let got = w.settle(&sids[1], &["error"]).await;
    assert_eq!(got["state"], "error", "{got}");
    let at_depot = w
        .fulfiller_call(Method::GET, &format!("/v1/fpr/shipments/{}", sids[1]), None)
        .await;
    assert_eq!(
        at_depot["shipment_state"]["shipment_state_id"], 8,
        "{at_depot}"
    );
    assert!(
        at_depot.to_string().contains("programming was interrupted"),
        "{at_depot}"
    );
    assert_eq!(w.shipment(&sids[0]).await["state"], "complete");

    drop(touch); // lets the killed depot's programming thread end
    depot.shutdown_background();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The PIN in the mail that names `serial`, once the mail catcher has it.
async fn mailed_pin(w: &common::World, serial: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(m) = w
            .mail
            .messages()
            .into_iter()
            .find(|m| m.subject.contains(serial))
        {
            let at = m.body.find("Its PIN is: ").expect("the mail names the PIN") + 12;
            return m.body[at..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
        }
        assert!(Instant::now() < deadline, "no PIN mail names {serial}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The published transport key set of the fulfiller at `base`.
async fn transport_jwks(http: &reqwest::Client, base: &str) -> Value {
    let r = http
        .get(format!("{base}/.well-known/yubico-transport-keys.jwks"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
