//! `prereg chaos [--users N] [--db sqlite|postgres] [--replicas R] [--kills K]
//! [--fault-rate F] [--seed S] [--json]`: the connector's promises under crashes,
//! restarts, vendor faults and several replicas on one database, counted from the
//! vendors' side. docs/reliability.md says what each figure is and what was measured.
//!
//! The sandboxes run in this process (the demo's world, see `demo`); the connector runs
//! as R `prereg serve` child processes of this same binary on one database, their logs
//! in files. The run:
//!
//! 1. **Faults on** at every vendor: the fulfiller, Graph and Okta answer a fraction of
//!    calls 500, 429 with `Retry-After`, drop the connection before or after acting, and
//!    add latency; the mail catcher refuses PIN mail 4xx (and 5xx from Okta's mailer).
//! 2. **Orders** (seeded order): half the users in Entra mode through the API
//!    (`POST /v1/fprRequest` and `POST /v1/fpr/shipments`, with an `Idempotency-Key`), half
//!    in Okta mode (batches, and group adds at Okta each delivered to the event hook and
//!    redelivered). Each call goes to a live replica and is repeated until answered.
//! 3. **Kills**: K times, at seeded moments of the fault window, a seeded replica is
//!    SIGKILLed and started again. Meanwhile the fulfiller's clock moves on
//!    (`/sandbox/v1/advance`) and keys awaiting approval are approved, as an admin would.
//! 4. **Faults off**; the replicas finish on their own (cron ticks and backoffs; no
//!    "process now", no retry) until every request is complete or nothing moves for
//!    [`STALL`].
//! 5. **Count** from the vendors: shipments at the fulfiller per user, credentials per
//!    user at Entra and Okta, PIN mails per recipient and serial, and every PIN mailed
//!    searched for in the replicas' logs and the database. Any broken promise is named
//!    and the command exits non-zero.
//!
//! The seed fixes the orders (who, which route or trigger, in which order) and the kill
//! schedule (when, which replica); the sandboxes' faults hit at random.

mod api;
mod count;
mod fleet;

use super::bench::{machine, per_second};
use super::demo::{self, World};
use super::pg::PgDatabase;
use anyhow::{Context, bail};
use api::Api;
use clap::Args as ClapArgs;
use count::{Scan, Tally, expected_users, observe, tally};
use fleet::Fleet;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The PostgreSQL server the throwaway database is made on, by default.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// The event hook's shared secret in the replicas' `[okta]` section.
pub(super) const HOOK_SECRET: &str = "prereg-chaos-event-hook-secret";
/// The finish phase ends when the connector's counts have not moved for this long.
const STALL: Duration = Duration::from_secs(60);
/// The finish phase ends after this long whatever happens (the count then says).
const FINISH_CAP: Duration = Duration::from_secs(1800);
/// Okta-mode users per batch call.
const BATCH: usize = 25;
/// The replicas' settings beyond the sandbox's: short backoffs, a short lease (a
/// killed replica's jobs are taken over after it), a cron tick every 2 seconds.
const REPLICA_SETTINGS: &str = "\
cron_process_shipment_schedule = \"*/2 * * * * *\"
retry_base_seconds = 1
retry_max_seconds = 4
job_lease_seconds = 3
processing_workers = 16
";

/// Which database the replicas share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DbChoice {
    /// SQLite in the working directory (one replica only).
    Sqlite,
    /// A throwaway database on the `--postgres` server, dropped at the end.
    Postgres,
}

/// Options of `prereg chaos`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// How many users get a key: half in Entra mode, the rest in Okta mode.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(2..=2000))]
    pub users: u16,
    /// The database the replicas share (more than one replica needs PostgreSQL).
    #[arg(long, value_enum, default_value_t = DbChoice::Sqlite)]
    pub db: DbChoice,
    /// How many `prereg serve` processes run on the database.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub replicas: u8,
    /// How many times a replica is SIGKILLed (and started again).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub kills: u16,
    /// The fraction of vendor calls that fail (spread over 500, 429, a drop before and a
    /// drop after the vendor acted) and of PIN mails refused, while faults are on.
    #[arg(long, default_value_t = 0.2)]
    pub fault_rate: f64,
    /// Fixes the orders and the kill schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Concurrent clients placing the orders.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The PostgreSQL server (URL without a database; the role must be allowed to create
    /// databases) on which a throwaway `prereg_chaos_*` database is made.
    #[arg(long, default_value = POSTGRES)]
    pub postgres: String,
    /// Keep the working directory (replica logs, configuration, SQLite database) and
    /// print where it is.
    #[arg(long)]
    pub keep: bool,
}

/// Runs the chaos and prints the figures; fails when a promise broke.
pub fn run(args: Args) -> anyhow::Result<()> {
    if !(0.0..=0.9).contains(&args.fault_rate) {
        bail!(
            "--fault-rate must be a fraction from 0 to 0.9, not {}",
            args.fault_rate
        );
    }
    if args.replicas > 1 && args.db == DbChoice::Sqlite {
        bail!(
            "--replicas {} needs --db postgres: replicas share one database, and SQLite is a file for one process",
            args.replicas
        );
    }
    demo::init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let dir = demo::work_dir("chaos")?;
    let result = runtime.block_on(on_backend(&args, &dir));
    if args.keep {
        eprintln!("kept: {} (logs/, connector.toml)", dir.display());
    } else {
        // Best effort: a leftover temporary directory is not worth failing the run for.
        let _ = std::fs::remove_dir_all(&dir);
    }
    let report = result?;
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    let problems: Vec<String> = report["problems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    if !problems.is_empty() {
        bail!("broken promise(s): {}", problems.join("; "));
    }
    Ok(())
}

async fn on_backend(args: &Args, dir: &Path) -> anyhow::Result<Value> {
    match args.db {
        DbChoice::Postgres => {
            let db = PgDatabase::create(args.postgres.trim_end_matches('/'), "chaos").await?;
            let result = chaos(args, dir, &db.url, Some(&db)).await;
            let dropped = db.drop_db().await;
            let value = result?;
            dropped?;
            Ok(value)
        }
        DbChoice::Sqlite => chaos(args, dir, &demo::sqlite_url(dir), None).await,
    }
}

// ---------------------------------------------------------------------------------
// The plan: what the seed fixes.

/// How an Entra-mode key is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntraRoute {
    /// `POST /v1/fprRequest`, the guide's body (object id, recipient, address).
    FprRequest,
    /// `POST /v1/fpr/shipments` by UPN, shipping data from the Entra profile.
    Shipments,
}

/// One submission to the connector (or to Okta).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Submission {
    /// One Entra user (cast index).
    Entra(usize, EntraRoute),
    /// Okta users by batch (cast indices).
    Batch(Vec<usize>),
    /// An Okta user added to the mapped group; the event is delivered, then delivered
    /// again after `redeliver_ms`.
    GroupAdd { user: usize, redeliver_ms: u64 },
}

/// A kill: `at_ms` after the faults went on, replica `replica`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kill {
    at_ms: u64,
    replica: usize,
}

/// Everything the seed decides.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Plan {
    entra_users: usize,
    okta_users: usize,
    /// In the order they are sent.
    submissions: Vec<Submission>,
    kills: Vec<Kill>,
    /// How long faults stay on at least (and over which the kills are spread).
    window_ms: u64,
}

impl Plan {
    fn new(users: usize, replicas: usize, kills: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let entra_users = users.div_ceil(2);
        let okta_users = users - entra_users;
        let mut subs: Vec<Submission> = (0..entra_users)
            .map(|i| {
                let route = if rng.random_bool(0.5) {
                    EntraRoute::FprRequest
                } else {
                    EntraRoute::Shipments
                };
                Submission::Entra(i, route)
            })
            .collect();
        let mut batched = Vec::new();
        for i in 0..okta_users {
            if rng.random_bool(0.5) {
                batched.push(i);
            } else {
                subs.push(Submission::GroupAdd {
                    user: i,
                    redeliver_ms: rng.random_range(0..2000),
                });
            }
        }
        subs.extend(batched.chunks(BATCH).map(|c| Submission::Batch(c.to_vec())));
        // Fisher-Yates with the seeded generator.
        for i in (1..subs.len()).rev() {
            subs.swap(i, rng.random_range(0..=i));
        }
        let window_ms = (users as u64 * 40).clamp(10_000, 60_000);
        let mut kills: Vec<Kill> = (0..kills)
            .map(|_| Kill {
                at_ms: rng.random_range(window_ms / 20..window_ms * 19 / 20),
                replica: rng.random_range(0..replicas),
            })
            .collect();
        kills.sort_by_key(|k| k.at_ms);
        Self {
            entra_users,
            okta_users,
            submissions: subs,
            kills,
            window_ms,
        }
    }
}

// ---------------------------------------------------------------------------------
// The run.

async fn chaos(
    args: &Args,
    dir: &Path,
    database_url: &str,
    pg: Option<&PgDatabase>,
) -> anyhow::Result<Value> {
    let users = usize::from(args.users);
    let replicas = usize::from(args.replicas);
    let plan = Plan::new(users, replicas, usize::from(args.kills), args.seed);
    let world = World::sandboxes(plan.entra_users.max(plan.okta_users), dir).await?;
    let result = async {
        let mut toml = world.connector_toml(database_url)?;
        toml.push_str(REPLICA_SETTINGS);
        toml.push_str(&connector::sandbox_config::okta_section(
            &world.ready,
            &connector::sandbox_config::OktaLocal {
                hook_secret: HOOK_SECRET,
                approval: "admin",
                reconcile_interval_seconds: 0,
                event_hook_url: None,
            },
        ));
        let config = dir.join("connector.toml");
        std::fs::write(&config, toml).with_context(|| format!("writing {}", config.display()))?;
        let logs = dir.join("logs");
        std::fs::create_dir_all(&logs).with_context(|| format!("creating {}", logs.display()))?;
        let fleet = Arc::new(Fleet::new(replicas, config, logs.clone())?);
        let run = drive(args, &plan, &world, &fleet).await;
        fleet.stop_all();
        let run = run?;
        let observed = observe(&world).await?;
        let expected = expected_users(&plan);
        let tally = tally(&expected, &observed);
        let pins = observed.pins();
        let mut scan = Scan::new(&pins, &observed.serials());
        for entry in std::fs::read_dir(&logs).context("listing the logs")? {
            let path = entry.context("listing the logs")?.path();
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
            scan.logs(name.as_deref().unwrap_or("?"), &bytes);
        }
        match pg {
            Some(db) => scan.database(&db.text_dump().await?),
            None => {
                for name in ["connector.db", "connector.db-wal", "connector.db-shm"] {
                    if let Ok(bytes) = std::fs::read(dir.join(name)) {
                        scan.database(&bytes);
                    }
                }
            }
        }
        anyhow::Ok(report(args, &plan, &run, &tally, &scan))
    }
    .await;
    world.stop().await;
    result
}

/// What happened while the run drove the replicas.
#[derive(Debug, Default)]
struct Run {
    faults_seconds: f64,
    orders_seconds: f64,
    finish_seconds: f64,
    total_seconds: f64,
    kills: usize,
    restarts: usize,
    failed_starts: usize,
    call_retries: usize,
    events_delivered: usize,
    events_redelivered: usize,
    duplicates_ignored: usize,
    slowest_submission_seconds: f64,
    approvals: usize,
    advances: usize,
    /// The connector's word at the end: idp -> state -> count.
    connector: BTreeMap<String, BTreeMap<String, u64>>,
    /// Whether the finish phase ended because every request was complete.
    finished: bool,
}

async fn drive(args: &Args, plan: &Plan, w: &World, fleet: &Arc<Fleet>) -> anyhow::Result<Run> {
    let started = Instant::now();
    for r in 0..fleet.len() {
        fleet.start(r).await?;
    }
    let token = w.api_token().await?;
    let api = Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .context("building the HTTP client")?,
        token: token.clone(),
        fleet: fleet.clone(),
        retries: Arc::new(AtomicUsize::new(0)),
    };
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let advances = Arc::new(AtomicUsize::new(0));
    let approvals = Arc::new(AtomicUsize::new(0));

    // The fulfiller's clock and the admin's approvals run all along.
    let advancer = {
        let (stop, n) = (stop.clone(), advances.clone());
        let (http, base) = (w.http.clone(), w.fulfiller.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = http
                    .post(format!("{base}/sandbox/v1/advance"))
                    .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
                    .json(&json!({}))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status().is_success()) {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let approver = {
        let (stop, n, api) = (stop.clone(), approvals.clone(), api.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                n.fetch_add(api.approve_waiting().await, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(1000)).await;
            }
        })
    };

    // Faults on, orders and kills.
    set_faults(w, args.fault_rate);
    let faults_on = Instant::now();
    let killer = {
        let (fleet, kills) = (fleet.clone(), plan.kills.clone());
        tokio::spawn(async move {
            let mut done = 0;
            for k in kills {
                let at = faults_on + Duration::from_millis(k.at_ms);
                tokio::time::sleep_until(at.into()).await;
                fleet.kill_and_restart(k.replica).await?;
                done += 1;
            }
            anyhow::Ok(done)
        })
    };
    let events = Arc::new(Events::default());
    let orders = place_orders(
        &api,
        w,
        plan,
        usize::from(args.concurrency),
        args.seed,
        events.clone(),
    )
    .await;
    let orders_seconds = faults_on.elapsed().as_secs_f64();
    let kills = killer.await.context("the kill schedule stopped")?;
    let window = faults_on + Duration::from_millis(plan.window_ms);
    tokio::time::sleep_until(window.into()).await;
    set_faults(w, 0.0);
    let faults_seconds = faults_on.elapsed().as_secs_f64();
    let kills = match (orders, kills) {
        (Ok(()), Ok(k)) => k,
        (Err(e), _) | (_, Err(e)) => {
            stop.store(true, Ordering::Relaxed);
            let _ = advancer.await;
            let _ = approver.await;
            return Err(e);
        }
    };

    // Faults off: the replicas finish on their own.
    let finish = Instant::now();
    let users = (plan.entra_users + plan.okta_users) as u64;
    let mut last = BTreeMap::new();
    let mut moved = Instant::now();
    let mut finished = false;
    while finish.elapsed() < FINISH_CAP {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(now) = api.states().await else {
            continue;
        };
        let complete: u64 = now.values().filter_map(|s| s.get("complete")).sum();
        if complete >= users {
            finished = true;
            last = now;
            break;
        }
        if now != last {
            last = now;
            moved = Instant::now();
        } else if moved.elapsed() >= STALL {
            break;
        }
    }
    let finish_seconds = finish.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let _ = advancer.await;
    let _ = approver.await;
    // Okta mails the PIN inside send-pin, the connector before recording it: both are
    // in the mail catcher by now. The last word of the connector, then stop.
    let connector = api.states().await.unwrap_or(last);
    Ok(Run {
        faults_seconds,
        orders_seconds,
        finish_seconds,
        total_seconds: started.elapsed().as_secs_f64(),
        kills,
        restarts: fleet.restarts.load(Ordering::Relaxed),
        failed_starts: fleet.failed_starts.load(Ordering::Relaxed),
        call_retries: api.retries.load(Ordering::Relaxed),
        events_delivered: events.delivered.load(Ordering::Relaxed),
        events_redelivered: events.redelivered.load(Ordering::Relaxed),
        duplicates_ignored: events.duplicates.load(Ordering::Relaxed),
        slowest_submission_seconds: events.slowest_ms.load(Ordering::Relaxed) as f64 / 1000.0,
        approvals: approvals.load(Ordering::Relaxed),
        advances: advances.load(Ordering::Relaxed),
        connector,
        finished,
    })
}

/// Faults at every vendor at `rate` (0: off): the fulfiller, Graph and Okta each answer
/// a quarter of it 500, a quarter 429 (`Retry-After: 1`), drop a quarter before acting
/// and a quarter after, all with added latency; the mail catcher refuses half of `rate`
/// of the PIN recipients with 451 (transient, any sender) and half with 550 in the Okta
/// sandbox's own mail (Okta then answers send-pin 500, which the connector retries). A
/// 550 to the connector's own PIN mail is a refusal for good by design (the request goes
/// to `error` naming the recipient for an admin), so it is not injected there.
fn set_faults(w: &World, rate: f64) {
    let quarter = rate / 4.0;
    let faults = sandbox::faults::FaultConfig {
        error_rate: quarter,
        rate_limit_rate: quarter,
        retry_after_secs: Some(1),
        latency_ms: (rate * 100.0) as u64,
        drop_rate: quarter,
        drop_after_rate: quarter,
        ..Default::default()
    };
    w.fulfiller_faults.set(faults.clone());
    w.entra.faults().set(faults.clone());
    w.okta.faults().set(faults);
    w.mail.accept_all();
    if rate > 0.0 {
        w.mail.refuse_at_rate(451, rate / 2.0, None);
        w.mail
            .refuse_at_rate(550, rate / 2.0, Some(&w.okta.seed().mail_from));
    }
}

/// Counters of the ordering: Okta event deliveries, and the slowest submission.
#[derive(Debug, Default)]
struct Events {
    delivered: AtomicUsize,
    redelivered: AtomicUsize,
    duplicates: AtomicUsize,
    slowest_ms: AtomicUsize,
}

/// Sends every submission of the plan, `c` at a time, in the plan's order.
async fn place_orders(
    api: &Api,
    w: &World,
    plan: &Plan,
    c: usize,
    seed: u64,
    events: Arc<Events>,
) -> anyhow::Result<()> {
    let subs = Arc::new(plan.submissions.clone());
    let next = Arc::new(AtomicUsize::new(0));
    let d = demo::entra::domain();
    let cast = Arc::new(demo::cast(plan.entra_users.max(plan.okta_users)));
    let ssws = w.ready["okta"]["ssws_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let okta = w.okta.base_url();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..c.min(subs.len()).max(1) {
        let (subs, next, cast, api) = (subs.clone(), next.clone(), cast.clone(), api.clone());
        let (d, ssws, okta, events) = (d.clone(), ssws.clone(), okta.clone(), events.clone());
        tasks.spawn(async move {
            while let Some(s) = subs.get(next.fetch_add(1, Ordering::Relaxed)) {
                let began = Instant::now();
                match s {
                    Submission::Entra(i, route) => {
                        let m = &cast[*i];
                        let upn = demo::entra::upn(m, &d);
                        let (path, body) = match route {
                            EntraRoute::Shipments => {
                                ("/v1/fpr/shipments", demo::entra::order_body(&upn))
                            }
                            EntraRoute::FprRequest => ("/v1/fprRequest", guide_body(m, &upn)),
                        };
                        let key = format!("chaos-{seed}-entra-{i}");
                        api.order(path, &body, &key).await?;
                    }
                    Submission::Batch(users) => {
                        let logins: Vec<String> =
                            users.iter().map(|i| demo::okta::login(&cast[*i])).collect();
                        // One key per batch, the same on every repeat: a batch whose
                        // answer was lost is answered from its first call.
                        let key =
                            format!("chaos-{seed}-batch-{}", users.first().copied().unwrap_or(0));
                        api.batch(&logins, &key).await?;
                    }
                    Submission::GroupAdd { user, redeliver_ms } => {
                        let m = &cast[*user];
                        let id = demo::okta::user_id(m.i);
                        api.okta_group_add(&okta, &ssws, &id).await?;
                        let event = group_add_event(&okta, m, &id, seed);
                        api.deliver(&event).await?;
                        events.delivered.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(*redeliver_ms)).await;
                        let v = api.deliver(&event).await?;
                        events.redelivered.fetch_add(1, Ordering::Relaxed);
                        let dup = v["duplicates_ignored"].as_array().map_or(0, Vec::len);
                        events.duplicates.fetch_add(dup, Ordering::Relaxed);
                    }
                }
                let ms = usize::try_from(began.elapsed().as_millis()).unwrap_or(usize::MAX);
                events.slowest_ms.fetch_max(ms, Ordering::Relaxed);
            }
            anyhow::Ok(())
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let r = joined.context("an ordering client stopped").and_then(|r| r);
        if let Err(e) = r
            && first_error.is_none()
        {
            first_error = Some(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The guide's `POST /v1/fprRequest` body for cast member `m` (object id, recipient and
/// address given, a generated 8-digit PIN).
fn guide_body(m: &demo::Member, upn: &str) -> Value {
    json!({
        "user_id": demo::entra::object_id(m.i),
        "pin_request": {"type": "generate", "length": 8},
        "yubico_shipment_request": {
            "delivery_type": 1,
            "recipient": {
                "recipient_company": "Contoso",
                "recipient_email": upn,
                "recipient_firstname": m.first,
                "recipient_lastname": m.last,
                "recipient_telephone": format!("425555{:04}", 1000 + m.i % 9000),
            },
            "mailing_address": {
                "street_line1": m.street,
                "city": "Redmond",
                "region": "WA",
                "postal_code": "98052",
                "country_code_2": "US",
            },
            "shipment_items": demo::ITEM.json(),
        },
    })
}

/// The event hook call Okta makes when `m` (Okta id `id`) is added to the mapped group;
/// its event id is fixed by the seed and the user, so a redelivery is recognisable.
fn group_add_event(okta: &str, m: &demo::Member, id: &str, seed: u64) -> Value {
    let uuid = format!("{:08x}-0000-4000-8000-{:012x}", seed as u32, m.i);
    let now = connector_time();
    json!({
        "eventType": "com.okta.event_hook",
        "eventTypeVersion": "1.0",
        "cloudEventsVersion": "0.1",
        "source": format!("{okta}/api/v1/eventHooks"),
        "eventId": format!("{:08x}-0000-4000-9000-{:012x}", seed as u32, m.i),
        "eventTime": now,
        "contentType": "application/json",
        "data": {"events": [{
            "uuid": uuid,
            "published": now,
            "eventType": "group.user_membership.add",
            "version": "0",
            "displayMessage": "Add user to group membership",
            "severity": "INFO",
            "actor": {"id": "0oachaosadminapi001", "type": "PublicClientApp",
                      "alternateId": "prereg chaos", "displayName": "Okta Admin Console"},
            "target": [
                {"id": id, "type": "User", "alternateId": demo::okta::login(m),
                 "displayName": format!("{} {}", m.first, m.last)},
                {"id": connector::sandbox_config::SANDBOX_GROUP, "type": "UserGroup",
                 "alternateId": "unknown", "displayName": "YubiKey 5 NFC"},
            ],
            "outcome": {"result": "SUCCESS"},
            "debugContext": {"debugData": {}},
        }]},
    })
}

/// Now, RFC 3339 (UTC).
fn connector_time() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

// ---------------------------------------------------------------------------------
// The report.

fn report(args: &Args, plan: &Plan, run: &Run, t: &Tally, scan: &Scan) -> Value {
    let users = plan.entra_users + plan.okta_users;
    let complete = t.entra.complete + t.okta.complete;
    let connector_complete: u64 = run
        .connector
        .values()
        .filter_map(|s| s.get("complete"))
        .sum();
    let mut problems = Vec::new();
    let mut broken = |n: usize, what: String| {
        if n > 0 {
            problems.push(format!("{n} {what}"));
        }
    };
    broken(
        users - complete.min(users),
        format!(
            "of {users} requests not complete at the vendors (shipped, registered, PIN mailed)"
        ),
    );
    broken(
        t.entra.extra_shipments + t.okta.extra_shipments,
        "duplicate shipment(s) at the fulfiller (more than one per request)".into(),
    );
    broken(
        t.unmatched_shipments,
        "shipment(s) at the fulfiller for no request of the run".into(),
    );
    broken(
        t.entra.duplicate_credentials + t.okta.duplicate_credentials,
        "user(s) with more than one credential registered".into(),
    );
    broken(
        t.entra.undelivered_pins + t.okta.undelivered_pins,
        "shipped key(s) whose PIN mail never arrived".into(),
    );
    broken(
        t.entra.conflicting_pins + t.okta.conflicting_pins,
        "key(s) whose PIN mails carry different PINs".into(),
    );
    broken(
        scan.log_hits,
        format!(
            "PIN(s) found in the replicas' logs, at: {}",
            scan.log_places.join(" | ")
        ),
    );
    broken(scan.db_hits, "PIN(s) found in the database".into());
    if connector_complete != users as u64 {
        problems.push(format!(
            "the connector reports {connector_complete} of {users} requests complete"
        ));
    }
    let throughput = per_second(users, Duration::from_secs_f64(run.total_seconds));
    json!({
        "machine": machine(),
        "command": {
            "users": users,
            "db": match args.db { DbChoice::Sqlite => "sqlite", DbChoice::Postgres => "postgres" },
            "replicas": args.replicas,
            "kills": args.kills,
            "fault_rate": args.fault_rate,
            "seed": args.seed,
            "concurrency": args.concurrency,
        },
        "plan": {
            "entra_users": plan.entra_users,
            "okta_users": plan.okta_users,
            "submissions": plan.submissions.len(),
            "window_seconds": plan.window_ms as f64 / 1000.0,
            "kills_at_seconds": plan.kills.iter().map(|k| k.at_ms as f64 / 1000.0).collect::<Vec<_>>(),
            "kills_replica": plan.kills.iter().map(|k| k.replica).collect::<Vec<_>>(),
        },
        "run": {
            "orders_seconds": run.orders_seconds,
            "faults_seconds": run.faults_seconds,
            "finish_seconds": run.finish_seconds,
            "total_seconds": run.total_seconds,
            "requests_per_second": throughput,
            "finished": run.finished,
            "kills": run.kills,
            "restarts": run.restarts,
            "failed_starts": run.failed_starts,
            "call_retries": run.call_retries,
            "events_delivered": run.events_delivered,
            "events_redelivered": run.events_redelivered,
            "duplicates_ignored": run.duplicates_ignored,
            "slowest_submission_seconds": run.slowest_submission_seconds,
            "approvals": run.approvals,
            "fulfiller_advances": run.advances,
        },
        "connector": run.connector,
        "vendors": t,
        "secrecy": {
            "pins_searched": scan.pins.len(),
            "pins_left_out": scan.pins_left_out,
            "log_files": scan.log_files,
            "log_bytes": scan.log_bytes,
            "pins_in_logs": scan.log_hits,
            "database_bytes": scan.db_bytes,
            "pins_in_database": scan.db_hits,
        },
        "ok": problems.is_empty(),
        "problems": problems,
    })
}

fn print_table(r: &Value) {
    let c = &r["command"];
    let m = &r["machine"];
    let run = &r["run"];
    let s = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    println!(
        "prereg chaos: {} users, {}, {} replica(s), {} kill(s), fault rate {}, seed {}; {} cores, {} build",
        n(&c["users"]),
        s(&c["db"]),
        n(&c["replicas"]),
        n(&c["kills"]),
        f(&c["fault_rate"]),
        n(&c["seed"]),
        n(&m["cores"]),
        s(&m["profile"]),
    );
    println!(
        "time: orders placed in {:.1} s (the slowest took {:.1} s), faults on for {:.1} s, finish {:.1} s{}, total {:.1} s: {:.2} requests/s end to end",
        f(&run["orders_seconds"]),
        f(&run["slowest_submission_seconds"]),
        f(&run["faults_seconds"]),
        f(&run["finish_seconds"]),
        if run["finished"] == true {
            ""
        } else {
            " (stalled)"
        },
        f(&run["total_seconds"]),
        f(&run["requests_per_second"]),
    );
    println!(
        "chaos: {} kill(s), {} restart(s) ({} failed start(s)), {} call(s) repeated, {} event(s) delivered and {} redelivered ({} ignored as duplicates), {} approval(s)",
        n(&run["kills"]),
        n(&run["restarts"]),
        n(&run["failed_starts"]),
        n(&run["call_retries"]),
        n(&run["events_delivered"]),
        n(&run["events_redelivered"]),
        n(&run["duplicates_ignored"]),
        n(&run["approvals"]),
    );
    println!();
    println!(
        "{:<48} {:>7} {:>7} {:>7}",
        "FROM THE VENDORS' SIDE", "ENTRA", "OKTA", "TOTAL"
    );
    let v = &r["vendors"];
    let row = |label: &str, key: &str| {
        let (e, o) = (n(&v["entra"][key]), n(&v["okta"][key]));
        println!("{label:<48} {e:>7} {o:>7} {:>7}", e + o);
    };
    row("requests ordered", "users");
    row("complete (shipped, registered, PIN mailed)", "complete");
    row("no shipment at the fulfiller", "no_shipment");
    row("not shipped", "not_shipped");
    row(
        "duplicate shipments (beyond one per request)",
        "extra_shipments",
    );
    row("no credential at the IdP", "no_credential");
    row(
        "users with more than one credential",
        "duplicate_credentials",
    );
    row("undelivered PINs", "undelivered_pins");
    row(
        "PINs mailed more than once (same PIN)",
        "repeated_pin_mails",
    );
    row("keys whose PIN mails differ", "conflicting_pins");
    let conn = &r["connector"];
    let (ce, co) = (n(&conn["entra"]["complete"]), n(&conn["okta"]["complete"]));
    println!(
        "{:<48} {ce:>7} {co:>7} {:>7}",
        "complete (the connector's word)",
        ce + co
    );
    for idp in ["entra", "okta"] {
        let states: Vec<String> = conn[idp]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        println!("the connector's {idp} requests: {}", states.join(", "));
    }
    println!(
        "{:<48} {:>23}",
        "shipments for no request",
        n(&v["unmatched_shipments"])
    );
    let sec = &r["secrecy"];
    println!(
        "{:<48} {:>23}",
        format!(
            "PINs in logs ({} files, {:.1} MB)",
            n(&sec["log_files"]),
            n(&sec["log_bytes"]) as f64 / 1e6
        ),
        n(&sec["pins_in_logs"])
    );
    println!(
        "{:<48} {:>23}",
        format!(
            "PINs in the database ({:.1} MB)",
            n(&sec["database_bytes"]) as f64 / 1e6
        ),
        n(&sec["pins_in_database"])
    );
    println!(
        "({} PINs searched for; {} left out because they equal a key serial)",
        n(&sec["pins_searched"]),
        n(&sec["pins_left_out"])
    );
    println!();
    if r["ok"] == true {
        println!("promises: every one held");
    } else {
        println!("promises: BROKEN (see the error below)");
    }
}

#[cfg(test)]
mod tests {
    use super::count::{Credential, ExpectedUser, Observed, PinMail, Shipment};
    use super::*;
    use std::collections::HashSet;

    fn users() -> Vec<ExpectedUser> {
        vec![
            ExpectedUser {
                idp: "entra",
                id: "e1".into(),
                email: "a@contoso.example".into(),
                pin_to: "boss@contoso.example".into(),
            },
            ExpectedUser {
                idp: "okta",
                id: "o1".into(),
                email: "b@example.com".into(),
                pin_to: "b@example.com".into(),
            },
        ]
    }

    fn all_well() -> Observed {
        Observed {
            shipments: vec![
                Shipment {
                    email: "a@contoso.example".into(),
                    state: 103,
                    serial: Some("30000001".into()),
                },
                Shipment {
                    email: "b@example.com".into(),
                    state: 104,
                    serial: Some("30000002".into()),
                },
            ],
            credentials: vec![
                Credential {
                    idp: "entra",
                    user_id: "e1".into(),
                },
                Credential {
                    idp: "okta",
                    user_id: "o1".into(),
                },
            ],
            mails: vec![
                PinMail {
                    to: vec!["boss@contoso.example".into()],
                    serial: Some("30000001".into()),
                    pin: Some("11112222".into()),
                },
                PinMail {
                    to: vec!["b@example.com".into()],
                    serial: Some("30000002".into()),
                    pin: Some("33334444".into()),
                },
            ],
        }
    }

    #[test]
    fn every_promise_kept_counts_every_user_complete() {
        let t = tally(&users(), &all_well());
        assert_eq!(t.entra.complete, 1);
        assert_eq!(t.okta.complete, 1);
        assert_eq!(t.entra.extra_shipments + t.okta.extra_shipments, 0);
        assert_eq!(t.unmatched_shipments, 0);
    }

    #[test]
    fn a_second_shipment_for_one_request_is_flagged() {
        let mut o = all_well();
        o.shipments.push(Shipment {
            email: "b@example.com".into(),
            state: 2,
            serial: None,
        });
        let t = tally(&users(), &o);
        assert_eq!(t.okta.duplicate_shipments, 1);
        assert_eq!(t.okta.extra_shipments, 1);
        assert_eq!(t.entra.extra_shipments, 0);
        let plan = Plan::new(2, 1, 0, 1);
        let args = Args {
            users: 2,
            db: DbChoice::Sqlite,
            replicas: 1,
            kills: 0,
            fault_rate: 0.0,
            seed: 1,
            concurrency: 1,
            json: true,
            postgres: POSTGRES.into(),
            keep: false,
        };
        let mut run = Run::default();
        run.connector
            .insert("entra".into(), BTreeMap::from([("complete".to_owned(), 1)]));
        run.connector
            .insert("okta".into(), BTreeMap::from([("complete".to_owned(), 1)]));
        let r = report(&args, &plan, &run, &t, &Scan::default());
        assert_eq!(r["ok"], false, "{r}");
        assert_eq!(
            r["problems"],
            json!(["1 duplicate shipment(s) at the fulfiller (more than one per request)"])
        );
    }

    #[test]
    fn a_second_credential_a_missing_pin_mail_and_conflicting_pins_are_flagged() {
        let mut o = all_well();
        o.credentials.push(Credential {
            idp: "entra",
            user_id: "e1".into(),
        });
        o.mails.remove(1);
        o.mails.push(PinMail {
            to: vec!["boss@contoso.example".into()],
            serial: Some("30000001".into()),
            pin: Some("99990000".into()),
        });
        let t = tally(&users(), &o);
        assert_eq!(t.entra.duplicate_credentials, 1);
        assert_eq!(t.entra.conflicting_pins, 1);
        assert_eq!(t.entra.repeated_pin_mails, 1);
        assert_eq!(t.okta.undelivered_pins, 1);
        assert_eq!(t.okta.complete, 0);
    }

    #[test]
    fn a_pin_is_found_only_as_a_whole_number_and_never_when_it_is_a_serial() {
        let pins = HashSet::from(["12345678".to_owned(), "30000001".to_owned()]);
        let serials = HashSet::from(["30000001".to_owned()]);
        let mut s = Scan::new(&pins, &serials);
        assert_eq!(s.pins_left_out, 1);
        s.logs(
            "replica0-1.stderr.log",
            b"2026-12-03T20:10:37.12345678Z start\npin=\"12345678\" serial 30000001 id=112345678 x12345678y",
        );
        assert_eq!(
            s.log_hits, 2,
            "quoted and between letters; not inside 112345678, nor as a clock's fraction"
        );
        assert_eq!(
            s.log_places,
            ["replica0-1.stderr.log:2: pin=\"[PIN]\" serial 30000001 id=112345678 x[PIN]y"],
            "where, with the PIN masked"
        );
        s.database(b"\x00\x0312345678\x00");
        assert_eq!(s.db_hits, 1);
    }

    #[test]
    fn the_same_seed_makes_the_same_plan_and_another_seed_another() {
        let a = Plan::new(50, 2, 5, 7);
        assert_eq!(a, Plan::new(50, 2, 5, 7));
        assert_ne!(a, Plan::new(50, 2, 5, 8));
        assert_eq!((a.entra_users, a.okta_users), (25, 25));
        assert_eq!(a.kills.len(), 5);
        assert!(a.kills.windows(2).all(|k| k[0].at_ms <= k[1].at_ms));
        assert!(
            a.kills
                .iter()
                .all(|k| k.replica < 2 && k.at_ms < a.window_ms)
        );
        let mut okta: Vec<usize> = a
            .submissions
            .iter()
            .flat_map(|s| match s {
                Submission::Batch(u) => u.clone(),
                Submission::GroupAdd { user, .. } => vec![*user],
                Submission::Entra(..) => vec![],
            })
            .collect();
        okta.sort();
        assert_eq!(okta, (0..25).collect::<Vec<_>>(), "every Okta user once");
    }
}
