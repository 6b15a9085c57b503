//! `prereg demo [--users N] [--idp entra|okta|both] [--keep]`: the whole system in one
//! process. Starts the sandboxes (fulfiller, Entra, Okta, mail catcher) and the connector
//! on loopback port 0 with SQLite in a temporary directory, orders keys for N users of
//! each tenant, lets the fulfiller program and ship them (the sandbox clock is advanced,
//! nothing waits), processes them, and then plays each user: the parcel (the shipped key
//! file), the PIN mail from the mail catcher, the forced PIN change, the sign-in at the
//! IdP sandbox. Every run also shows three bad cases ending in the error a user or admin
//! should see: an undeliverable address, missing profile fields, and a tampered fulfiller
//! response. Prints a table per user and exits 0 only when every user signed in and every
//! bad case failed the way it should. docs/demo.md tells the story.

pub(crate) mod entra;
pub(crate) mod okta;
mod progress;

use anyhow::{Context, bail};
use authenticator::{KeyProgrammer, Pin, VirtualYubiKey};
use clap::Args as ClapArgs;
use connector::secrets::MasterKey;
use progress::{Progress, Stage};
use sandbox::fulfiller::program::{Order, ProgramError, Programmed, Programmer};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Which identity provider's half of the demo runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IdpChoice {
    /// Entra mode: keys ordered through the connector's API, registered through Graph.
    Entra,
    /// Okta mode: keys ordered by Okta's triggers, registered by Okta itself.
    Okta,
    /// Both, one after the other.
    Both,
}

/// Options of `prereg demo`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// How many users of each tenant get a key (the bad cases come on top).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=200))]
    pub users: u16,
    /// Which identity provider's flow to run.
    #[arg(long, value_enum, default_value_t = IdpChoice::Both)]
    pub idp: IdpChoice,
    /// Keep the working directory (the connector's SQLite database, the key files) and
    /// print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// How one user's story ended: a row of the final table.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// `entra` or `okta`.
    pub idp: &'static str,
    /// UPN or login.
    pub user: String,
    /// The key's serial number, once known.
    pub serial: Option<String>,
    /// The request's final state (the connector's words), or `refused` when no request
    /// was created.
    pub state: String,
    /// Whether the user signed in with the key.
    pub signed_in: bool,
    /// For a bad case: what it demonstrates.
    pub expected_failure: Option<&'static str>,
    /// What went wrong: the error an admin sees (bad cases) or the unexpected failure.
    pub detail: Option<String>,
    /// A normal user signed in, or a bad case failed the way it should.
    pub as_expected: bool,
}

impl Outcome {
    fn new(idp: &'static str, user: &str, expected_failure: Option<&'static str>) -> Self {
        Self {
            idp,
            user: user.to_owned(),
            serial: None,
            state: "-".to_owned(),
            signed_in: false,
            expected_failure,
            detail: None,
            as_expected: false,
        }
    }
}

/// The shipment item every demo order asks for: one YubiKey 5 NFC from the sandbox's
/// first inventory bucket, with its FIDO Pre-reg customization.
pub const ITEM: ShipmentItem = ShipmentItem {
    product_id: 1,
    inventory_product_id: 1,
};

/// What the demo orders.
pub struct ShipmentItem {
    /// The product.
    pub product_id: u32,
    /// Its inventory bucket.
    pub inventory_product_id: u32,
}

impl ShipmentItem {
    /// As the create body's `shipment_items`.
    pub fn json(&self) -> Value {
        json!([{
            "product_id": self.product_id,
            "inventory_product_id": self.inventory_product_id,
            "product_quantity": 1,
            "customization_id": sandbox::fulfiller::seed::DEFAULT_CUSTOMIZATION,
        }])
    }
}

/// The three bad cases every run shows.
pub const UNDELIVERABLE: &str = "undeliverable address";
/// See [`UNDELIVERABLE`].
pub const MISSING_FIELDS: &str = "missing profile fields";
/// See [`UNDELIVERABLE`].
pub const TAMPERED: &str = "tampered fulfiller response";

/// Runs the demo and prints its report.
pub fn run(args: Args) -> anyhow::Result<()> {
    init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let dir = work_dir("demo")?;
    let result = runtime.block_on(demo(&args, &dir));
    if args.keep {
        println!(
            "kept: {} (connector.db: the connector's SQLite database; keys/: the key files)",
            dir.display()
        );
    } else {
        // Best effort: a leftover temporary directory is not worth failing the run for.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let outcomes = result?;
    report(&outcomes)
}

/// The servers' logs only when asked for (PREREG_LOG=info, debug, ...), on stderr.
pub(crate) fn init_logs() {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_env("PREREG_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .init();
    }
}

/// A fresh working directory `prereg-<what>-<pid>-<nanos>` in the system's temporary
/// directory, with an empty `keys/` inside.
pub(crate) fn work_dir(what: &str) -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "prereg-{what}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    ));
    std::fs::create_dir_all(dir.join("keys"))
        .with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The connector's SQLite database in the working directory `dir`.
pub(crate) fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("connector.db").display())
}

async fn demo(args: &Args, dir: &Path) -> anyhow::Result<Vec<Outcome>> {
    let n = usize::from(args.users);
    let entra_on = matches!(args.idp, IdpChoice::Entra | IdpChoice::Both);
    let okta_on = matches!(args.idp, IdpChoice::Okta | IdpChoice::Both);
    let world = World::start(n, dir, okta_on, &sqlite_url(dir)).await?;
    println!(
        "sandboxes: fulfiller {}, Entra {}, Okta {}, mail catcher smtp://{}",
        world.fulfiller,
        world.entra.base_url(),
        world.okta.base_url(),
        world.mail.addr()
    );
    println!(
        "connector: {} (SQLite in {})",
        world.connector,
        dir.display()
    );
    let halves = usize::from(entra_on) + usize::from(okta_on);
    let progress = Progress::new((n * halves) as u64);
    let mut outcomes = Vec::new();
    if entra_on {
        outcomes.extend(entra::run(&world, n, &progress).await?);
    }
    if okta_on {
        outcomes.extend(okta::run(&world, n, &progress).await?);
    }
    progress.finish();
    world.stop().await;
    Ok(outcomes)
}

/// Prints the table, the expected failures and the totals; fails unless every user
/// signed in and every bad case failed as it should.
fn report(outcomes: &[Outcome]) -> anyhow::Result<()> {
    println!();
    let user_w = outcomes
        .iter()
        .map(|o| o.user.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<5}  {:<user_w$}  {:<10}  {:<9}  SIGNED IN",
        "IDP", "USER", "SERIAL", "STATE"
    );
    for o in outcomes {
        let signed = match (o.signed_in, o.expected_failure) {
            (true, _) => "yes".to_owned(),
            (false, Some(what)) => format!("no (expected: {what})"),
            (false, None) => "NO".to_owned(),
        };
        println!(
            "{:<5}  {:<user_w$}  {:<10}  {:<9}  {signed}",
            o.idp,
            o.user,
            o.serial.as_deref().unwrap_or("-"),
            o.state
        );
    }
    println!();
    for o in outcomes.iter().filter(|o| o.expected_failure.is_some()) {
        let what = o.expected_failure.unwrap_or_default();
        let tag = if o.as_expected {
            "expected failure"
        } else {
            "UNEXPECTED (bad case did not fail as it should)"
        };
        println!(
            "{tag}: {} {what}: {}: {}",
            o.idp,
            o.user,
            o.detail.as_deref().unwrap_or("(no error recorded)")
        );
    }
    let unexpected: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| o.expected_failure.is_none() && !o.as_expected)
        .collect();
    for o in &unexpected {
        println!(
            "FAILED: {} {}: {}",
            o.idp,
            o.user,
            o.detail.as_deref().unwrap_or("did not sign in")
        );
    }
    let users = outcomes
        .iter()
        .filter(|o| o.expected_failure.is_none())
        .count();
    let signed = outcomes
        .iter()
        .filter(|o| o.expected_failure.is_none() && o.signed_in)
        .count();
    let bad = outcomes
        .iter()
        .filter(|o| o.expected_failure.is_some())
        .count();
    let bad_ok = outcomes
        .iter()
        .filter(|o| o.expected_failure.is_some() && o.as_expected)
        .count();
    println!();
    println!(
        "totals: {signed} of {users} users signed in; {bad_ok} of {bad} expected failures as expected"
    );
    if signed != users || bad_ok != bad {
        bail!(
            "the demo did not go as it should: {} of {users} users did not sign in, {} bad case(s) did not fail as expected",
            users - signed,
            bad - bad_ok
        );
    }
    Ok(())
}

/// The sandboxes and the connector, running in this process.
pub struct World {
    /// The working directory (database, key files).
    pub dir: PathBuf,
    /// One client for every call.
    pub http: reqwest::Client,
    /// The sandbox's ready line (URLs, app credentials).
    pub ready: Value,
    /// The fulfiller sandbox's base URL.
    pub fulfiller: String,
    /// The Entra sandbox.
    pub entra: sandbox::entra::Entra,
    /// The Okta sandbox.
    pub okta: sandbox::okta::Okta,
    /// The mail catcher.
    pub mail: sandbox::mail::MailCatcher,
    /// The connector's base URL.
    pub connector: String,
    /// Shipments whose credential response the fulfiller tampers with.
    pub tamper: Arc<Mutex<HashSet<String>>>,
    /// The fulfiller sandbox's live fault setting (the Entra and Okta sandboxes hold
    /// theirs: `entra.faults()`, `okta.faults()`).
    pub fulfiller_faults: sandbox::faults::Faults,
    stops: Vec<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Programs keys like the sandbox; for the shipments in its switch set, flips one
/// character of the credential response's ciphertext, as an attacker on the path would:
/// the fault switch behind the "tampered fulfiller response" bad case.
struct Tampering {
    inner: Arc<dyn Programmer>,
    targets: Arc<Mutex<HashSet<String>>>,
}

impl Programmer for Tampering {
    fn program(&self, order: &Order<'_>) -> Result<Programmed, ProgramError> {
        let mut p = self.inner.program(order)?;
        let hit = self
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(order.shipment_id);
        if hit && let Some(jwe) = p.product_data.fido_credential_responses.first_mut() {
            let mut parts: Vec<String> = jwe.split('.').map(str::to_owned).collect();
            if let Some(ct) = parts.get_mut(3).filter(|c| !c.is_empty()) {
                let mid = ct.len() / 2;
                let flipped = if ct.as_bytes()[mid] == b'A' { "B" } else { "A" };
                ct.replace_range(mid..=mid, flipped);
            }
            *jwe = parts.join(".");
        }
        Ok(p)
    }
}

impl World {
    /// Starts the sandboxes (seeded with `n` demo users in each IdP, and stock for them)
    /// and the connector on `database_url`, with its `[okta]` section when `okta_on`.
    pub(crate) async fn start(
        n: usize,
        dir: &Path,
        okta_on: bool,
        database_url: &str,
    ) -> anyhow::Result<Self> {
        let mut world = Self::sandboxes(n, dir).await?;
        let mut toml = world.connector_toml(database_url)?;
        if okta_on {
            toml.push_str(&okta::connector_toml(&world.ready));
        }
        let config = connector::Config::from_parts(&toml, Default::default())
            .context("the connector's configuration")?;
        let app = connector::Application::build(config)
            .await
            .context("starting the connector")?;
        world.connector = app.base_url();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        world.tasks.push(tokio::spawn(async move {
            if let Err(e) = app
                .run(async {
                    let _ = rx.await;
                })
                .await
            {
                eprintln!("the connector stopped: {e}");
            }
        }));
        world.stops.push(tx);
        Ok(world)
    }

    /// Starts only the sandboxes (seeded with `n` demo users in each IdP, and stock for
    /// three orders each); `connector` stays empty: the caller runs the connector itself
    /// (`prereg chaos` runs `prereg serve` processes with [`World::connector_toml`]).
    pub(crate) async fn sandboxes(n: usize, dir: &Path) -> anyhow::Result<Self> {
        let tamper = Arc::new(Mutex::new(HashSet::new()));
        let mut config = sandbox::Config::for_tests();
        config.programmer = Arc::new(Tampering {
            inner: sandbox::default_programmer(),
            targets: tamper.clone(),
        });
        config.entra_seed = entra::tenant(n)?;
        config.okta_seed = okta::org(n)?;
        // Enough stock for every order of the run.
        let need = (3 * n + 20) as u64;
        for b in config
            .seed
            .inventory
            .iter_mut()
            .filter(|b| b.inventory_product_id == ITEM.inventory_product_id)
        {
            b.quantity = b.quantity.max(need);
        }
        let app = sandbox::App::build(config)
            .await
            .context("starting the sandboxes")?;
        let ready = app.ready_info();
        let fulfiller = app.fulfiller_url();
        let fulfiller_faults = app.fulfiller_faults();
        let entra = app.entra();
        let okta = app.okta();
        let mail = app.mail_catcher();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            if let Err(e) = app
                .run(async {
                    let _ = rx.await;
                })
                .await
            {
                eprintln!("the sandboxes stopped: {e}");
            }
        });
        Ok(Self {
            dir: dir.to_owned(),
            http: reqwest::Client::new(),
            ready,
            fulfiller,
            entra,
            okta,
            mail,
            connector: String::new(),
            tamper,
            fulfiller_faults,
            stops: vec![tx],
            tasks: vec![task],
        })
    }

    /// The connector's configuration (TOML, top-level keys only: append tables such as
    /// `[okta]` after it) for these sandboxes, on `database_url`, listening on a free
    /// loopback port, with a fresh master key.
    pub(crate) fn connector_toml(&self, database_url: &str) -> anyhow::Result<String> {
        let key = MasterKey::generate()
            .map_err(|e| anyhow::anyhow!("making the connector's master key: {e}"))?
            .to_base64();
        Ok(connector::sandbox_config::from_ready(
            &self.ready,
            &connector::sandbox_config::Local {
                database_url,
                master_key_b64: &key,
                listen_addr: "127.0.0.1:0",
                send_pin_url: None,
            },
        ))
    }

    /// Stops the connector and the sandboxes and waits for them.
    pub(crate) async fn stop(mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// One round of the fulfiller sandbox's clock (validation, programming, shipping).
    pub async fn advance(&self) -> anyhow::Result<()> {
        let r = self
            .http
            .post(format!("{}/sandbox/v1/advance", self.fulfiller))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .json(&json!({}))
            .send()
            .await
            .context("advancing the fulfiller sandbox")?;
        if !r.status().is_success() {
            bail!("the fulfiller sandbox refused to advance: {}", r.status());
        }
        Ok(())
    }

    /// The parcel: the shipped key's state file.
    pub async fn parcel(&self, shipment_id: &str) -> anyhow::Result<VirtualYubiKey> {
        let r = self
            .http
            .get(format!(
                "{}/sandbox/v1/shipments/{shipment_id}/key",
                self.fulfiller
            ))
            .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
            .send()
            .await
            .context("fetching the shipped key")?;
        let status = r.status();
        let text = r.text().await.context("reading the shipped key")?;
        if !status.is_success() {
            bail!("the fulfiller has no shipped key for {shipment_id} ({status})");
        }
        VirtualYubiKey::from_json(&text).context("the shipped key file")
    }

    /// A call to the connector's API with a bearer token: status and JSON body.
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut r = self
            .http
            .request(method, format!("{}{path}", self.connector))
            .bearer_auth(token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r
            .send()
            .await
            .with_context(|| format!("calling the connector: {path}"))?;
        let s = r.status().as_u16();
        let text = r.text().await.context("reading the connector's answer")?;
        Ok((
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// `POST /v1/fpr/shipments/process?wait=300`: makes due what waits for the
    /// fulfiller and returns once the connector's runner has run it as far as it goes.
    pub async fn process(&self, token: &str) -> anyhow::Result<()> {
        let (s, v) = self
            .call(
                token,
                reqwest::Method::POST,
                "/v1/fpr/shipments/process?wait=300",
                None,
            )
            .await?;
        if s != 200 {
            bail!("processing answered {s}: {v}");
        }
        Ok(())
    }

    /// The connector's view of one request.
    pub async fn shipment(&self, token: &str, id: &str) -> anyhow::Result<Value> {
        let (s, v) = self
            .call(
                token,
                reqwest::Method::GET,
                &format!("/v1/fpr/shipments/{id}"),
                None,
            )
            .await?;
        if s != 200 {
            bail!("reading request {id} answered {s}: {v}");
        }
        Ok(v["data"].clone())
    }

    /// A token for the Entra sandbox's test client app, the connector API's caller.
    pub async fn api_token(&self) -> anyhow::Result<String> {
        let e = &self.ready["entra"];
        let field = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let form = [
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", field(&e["test_client_app"]["client_id"])),
            (
                "client_secret",
                field(&e["test_client_app"]["client_secret"]),
            ),
            ("scope", field(&e["connector_api_scope"])),
        ];
        let body = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(field(&e["token_url"]))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .context("asking the Entra sandbox for a token")?;
        let v: Value = r.json().await.context("reading the token answer")?;
        match v["access_token"].as_str() {
            Some(t) => Ok(t.to_owned()),
            None => bail!(
                "the Entra sandbox gave no token: {}",
                v["error_description"].as_str().unwrap_or("no reason given")
            ),
        }
    }

    /// The PIN from the first caught mail whose subject or body names `serial`; the
    /// PIN is the first run of digits after `marker`.
    pub fn pin_mail(&self, serial: &str, marker: &str) -> Option<Pin> {
        self.mail.messages().iter().find_map(|m| {
            if !(m.subject.contains(serial) || m.body.contains(serial)) {
                return None;
            }
            let at = m.body.find(marker)? + marker.len();
            let digits: String = m.body[at..]
                .trim_start()
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            (digits.len() >= 4).then(|| Pin::new(digits))
        })
    }

    /// [`pin_mail`](Self::pin_mail) once the message is there: SMTP delivery may finish
    /// just after processing answered. Gives up after about five seconds.
    pub async fn wait_pin_mail(&self, serial: &str, marker: &str) -> Option<Pin> {
        for _ in 0..250 {
            if let Some(p) = self.pin_mail(serial, marker) {
                return Some(p);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        None
    }

    /// The user's part after the parcel and the PIN mail arrived: change the PIN if the
    /// key forces it, sign in at the IdP sandbox, keep the key file in `keys/`.
    pub async fn sign_in(
        &self,
        mut key: VirtualYubiKey,
        pin: Pin,
        idp: &str,
        base: &str,
        user: &str,
    ) -> anyhow::Result<Value> {
        let mut pin = pin;
        if key.summary().force_pin_change {
            let new = sandbox::fulfiller::fulfil::generate_pin(8)
                .map_err(|e| anyhow::anyhow!("choosing a new PIN: {e}"))?;
            let new = Pin::new(new.expose().to_owned());
            key.change_pin(&pin, &new)
                .context("changing the mailed PIN")?;
            pin = new;
        }
        let result = super::key::sign_in_with(&self.http, &mut key, &pin, base, idp, user).await;
        let file = self
            .dir
            .join("keys")
            .join(format!("{}.json", file_name(user)));
        key.save(&file)
            .with_context(|| format!("saving {}", file.display()))?;
        let who = result?;
        if who["signedIn"] != json!(true) {
            bail!("the {idp} sandbox did not sign {user} in: {who}");
        }
        Ok(who)
    }
}

/// Reports the stages a request reached since `seen`, from the connector's view.
pub fn report_stages(
    progress: &Progress,
    idp: &str,
    user: &str,
    counts: bool,
    view: &Value,
    seen: &mut Vec<Stage>,
) {
    let state = view["state"].as_str().unwrap_or_default();
    let fstate = view["fulfiller_state"].as_i64().unwrap_or_default();
    let mut reached = vec![Stage::Ordered];
    if matches!(fstate, 103 | 104) || matches!(state, "pin_pending" | "complete") {
        reached.push(Stage::Shipped);
    }
    if matches!(state, "pin_pending" | "complete") {
        reached.push(Stage::Registered);
    }
    for s in reached {
        if !seen.contains(&s) {
            seen.push(s);
            progress.reached(idp, user, s, counts);
        }
    }
}

fn file_name(user: &str) -> String {
    user.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '@' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn form_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One person the demo puts in a directory (the same cast in both IdPs).
pub struct Member {
    /// Position in the cast; seeds ids and phone numbers.
    pub i: usize,
    pub first: &'static str,
    pub last: &'static str,
    /// The login's local part (`ava.thompson`).
    pub handle: String,
    pub street: String,
    /// The bad case this person stands for (`None`: should sign in).
    pub case: Option<&'static str>,
}

/// The demo's cast in one directory: `n` people with complete profiles, then Una Nowhere
/// (an address the fulfiller cannot deliver to) and Theo Tampered (whose fulfiller
/// response gets tampered with).
pub fn cast(n: usize) -> Vec<Member> {
    let mut out: Vec<Member> = (0..n)
        .map(|i| {
            let (first, last) = person(i);
            Member {
                i,
                first,
                last,
                handle: handle(i),
                street: format!("{} Main Street", 100 + i),
                case: None,
            }
        })
        .collect();
    for (i, first, last, street, case) in [
        (n, "Una", "Nowhere", "1 Undeliverable Road", UNDELIVERABLE),
        (n + 1, "Theo", "Tampered", "9 Harbor Drive", TAMPERED),
    ] {
        out.push(Member {
            i,
            first,
            last,
            handle: format!(
                "{}.{}",
                first.to_ascii_lowercase(),
                last.to_ascii_lowercase()
            ),
            street: street.to_owned(),
            case: Some(case),
        });
    }
    out
}

/// Names for the generated users: "Ava Thompson", "Ben Ortiz", ...
pub fn person(i: usize) -> (&'static str, &'static str) {
    const FIRST: [&str; 26] = [
        "Ava", "Ben", "Chloe", "Daniel", "Emma", "Felix", "Grace", "Hugo", "Ivy", "Jonas", "Kira",
        "Liam", "Maya", "Noah", "Olivia", "Paul", "Quinn", "Rosa", "Samir", "Tara", "Umar", "Vera",
        "Wade", "Ximena", "Yusuf", "Zoe",
    ];
    const LAST: [&str; 26] = [
        "Thompson",
        "Ortiz",
        "Nakamura",
        "Keller",
        "Duarte",
        "Lindqvist",
        "Mensah",
        "Okafor",
        "Petrov",
        "Quist",
        "Romero",
        "Schmidt",
        "Tanaka",
        "Usman",
        "Varga",
        "Weber",
        "Young",
        "Zimmer",
        "Abbott",
        "Brennan",
        "Castro",
        "Dubois",
        "Evans",
        "Fischer",
        "Garcia",
        "Hansen",
    ];
    (FIRST[i % 26], LAST[(i * 7 + i / 26) % 26])
}

/// A login-friendly name for generated user `i`: `ava.thompson`, `ava.thompson2`, ...
pub fn handle(i: usize) -> String {
    let (f, l) = person(i);
    let round = i / 26;
    let suffix = if round == 0 {
        String::new()
    } else {
        (round + 1).to_string()
    };
    format!(
        "{}.{}{suffix}",
        f.to_ascii_lowercase(),
        l.to_ascii_lowercase()
    )
}
