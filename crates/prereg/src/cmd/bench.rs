//! `prereg bench [--users N] [--db sqlite|postgres|both] [--mode entra|okta|both] [--concurrency C]
//! [--latency-ms L] [--json]`: how fast the connector takes orders and moves them to `complete`, measured
//! on the demo's in-process world (the sandboxes and the connector on loopback, see
//! `demo`), the sandboxes adding L ms to every service call to model real round trips. Prints
//! numbers, asserts none: the only failure is a correctness one (not every request
//! complete, or the fulfiller holding another number of shipments than N). docs/bench.md
//! says what each number is.

use super::demo::{self, World};
use super::pg::PgDatabase;
use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The PostgreSQL server the bench makes its throwaway database on, by default.
const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432";
/// How long one processing round may wait for the connector's runner to go idle
/// (`POST /v1/fpr/shipments/process?wait=`, its maximum).
const ROUND_WAIT_SECS: u64 = 300;
/// Processing rounds in a row that leave the count where it was (50 ms apart) before
/// the bench stops waiting for a phase: the correctness check then reports it.
const MAX_STALLS: usize = 20;

/// Which database the connector runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DbChoice {
    /// SQLite in a temporary directory.
    Sqlite,
    /// A throwaway database on the `--postgres` server, dropped at the end.
    Postgres,
    /// SQLite, then PostgreSQL.
    Both,
}

/// Options of `prereg bench`.
/// Which modes the bench runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeChoice {
    /// Entra mode only.
    Entra,
    /// Okta mode only.
    Okta,
    /// Entra mode, then Okta mode.
    Both,
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// How many users get a key in each mode (Entra and Okta).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub users: u16,
    /// Which database the connector runs on.
    #[arg(long, value_enum, default_value_t = DbChoice::Sqlite)]
    pub db: DbChoice,
    /// Which modes run (the skipped one's rows print `-`).
    #[arg(long, value_enum, default_value_t = ModeChoice::Both)]
    pub mode: ModeChoice,
    /// Concurrent API clients for the order intake (and the Okta approvals).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
    /// Milliseconds the sandboxes (fulfiller, Entra's Graph, Okta) add to every service
    /// call, to model the real services' round trips.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub latency_ms: u64,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
    /// The PostgreSQL server (URL without a database; the role must be allowed to create
    /// databases) on which a throwaway `prereg_bench_*` database is made.
    #[arg(long, default_value = POSTGRES)]
    pub postgres: String,
}

/// Runs the bench on each chosen backend and prints the numbers; fails when a backend
/// did not take every request to `complete` with exactly N shipments at the fulfiller.
pub fn run(args: Args) -> anyhow::Result<()> {
    demo::init_logs();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let backends: &[&str] = match args.db {
        DbChoice::Sqlite => &["sqlite"],
        DbChoice::Postgres => &["postgres"],
        DbChoice::Both => &["sqlite", "postgres"],
    };
    let mut results = Vec::new();
    for backend in backends {
        let dir = demo::work_dir("bench")?;
        let r = runtime.block_on(on_backend(&args, backend, &dir));
        // Best effort: a leftover temporary directory is not worth failing the run for.
        let _ = std::fs::remove_dir_all(&dir);
        results.push(r.with_context(|| format!("the bench on {backend}"))?);
    }
    let report = json!({
        "machine": machine(),
        "users": args.users,
        "concurrency": args.concurrency,
        "latency_ms": args.latency_ms,
        "backends": results,
        "ok": results.iter().all(|r| r["ok"] == true),
    });
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    let wrong: Vec<String> = results
        .iter()
        .flat_map(|r| r["problems"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect();
    if !wrong.is_empty() {
        bail!("{}", wrong.join("; "));
    }
    Ok(())
}

/// What the numbers depend on: cores, build profile, operating system.
pub(crate) fn machine() -> Value {
    json!({
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
    })
}

/// Both modes on one backend: a fresh world (sandboxes and connector) on the backend's
/// database; for PostgreSQL a throwaway database, dropped even when the bench fails.
async fn on_backend(args: &Args, backend: &str, dir: &std::path::Path) -> anyhow::Result<Value> {
    match backend {
        "postgres" => {
            let db = PgDatabase::create(args.postgres.trim_end_matches('/'), "bench").await?;
            let result = measure(args, backend, dir, &db.url).await;
            let dropped = db.drop_db().await;
            let value = result?;
            dropped?;
            Ok(value)
        }
        _ => measure(args, backend, dir, &demo::sqlite_url(dir)).await,
    }
}

async fn measure(
    args: &Args,
    backend: &str,
    dir: &std::path::Path,
    database_url: &str,
) -> anyhow::Result<Value> {
    let n = usize::from(args.users);
    let c = usize::from(args.concurrency);
    let world = World::start(n, dir, true, database_url).await?;
    let result = async {
        let token = world.api_token().await?;
        add_latency(&world, args.latency_ms);
        let entra = match args.mode {
            ModeChoice::Okta => Value::Null,
            _ => entra_mode(&world, &token, n, c).await?,
        };
        let okta = match args.mode {
            ModeChoice::Entra => Value::Null,
            _ => okta_mode(&world, &token, n, c).await?,
        };
        anyhow::Ok((entra, okta))
    }
    .await;
    world.stop().await;
    let (entra, okta) = result?;
    let mut problems = Vec::new();
    for (mode, v) in [("entra", &entra), ("okta", &okta)] {
        if v.is_null() {
            continue;
        }
        let p = &v["processing"];
        let (complete, shipments) = (&p["complete"], &p["fulfiller_shipments"]);
        if complete != n || shipments != n {
            problems.push(format!(
                "{backend} {mode}: {complete} of {n} requests complete, the fulfiller holds {shipments} shipments (expected {n} and {n})"
            ));
        }
    }
    Ok(json!({
        "db": backend,
        "entra": entra,
        "okta": okta,
        "ok": problems.is_empty(),
        "problems": problems,
    }))
}

/// Every service call to the fulfiller, Graph and Okta waits `ms` before it is handled
/// (the sandboxes' `/sandbox/` routes, which the bench uses to count and to advance the
/// fulfiller's clock, never do).
fn add_latency(w: &World, ms: u64) {
    let faults = sandbox::faults::FaultConfig {
        latency_ms: ms,
        ..Default::default()
    };
    w.fulfiller_faults.set(faults.clone());
    w.entra.faults().set(faults.clone());
    w.okta.faults().set(faults);
}

/// Entra mode: N orders through `POST /v1/fpr/shipments` by C concurrent clients, the
/// fulfiller ships them (two rounds of its clock), then processing until all complete.
async fn entra_mode(w: &World, token: &str, n: usize, c: usize) -> anyhow::Result<Value> {
    let d = demo::entra::domain();
    let calls: Vec<Call> = demo::cast(n)
        .iter()
        .filter(|m| m.case.is_none())
        .map(|m| {
            let upn = demo::entra::upn(m, &d);
            Call {
                method: Method::POST,
                path: "/v1/fpr/shipments".to_owned(),
                body: Some(demo::entra::order_body(&upn)),
                expect: 201,
            }
        })
        .collect();
    let before = fulfiller_shipments(w).await?;
    let started = Instant::now();
    let latencies = concurrently(w, token, c, calls).await?;
    let intake = started.elapsed();

    // Address validation, then the daily batch programs and ships.
    w.advance().await?;
    w.advance().await?;
    let mut clock = Processing::start();
    process_until(w, token, "entra", "complete", n, &mut clock).await?;
    let took = clock.stop();
    let complete = count(w, token, "entra", "complete").await?;
    let shipments = fulfiller_shipments(w).await?.saturating_sub(before);
    Ok(json!({
        "intake": intake_json(n, c, intake, latencies),
        "processing": clock.json(n, took, complete, shipments),
    }))
}

/// Okta mode: one `POST /v1/okta/batch` for N users, then processing (enroll at Okta,
/// create the shipments), the fulfiller ships, processing (activate at Okta), an admin
/// approves each (C concurrent calls), processing (Okta mails the PIN) until complete.
async fn okta_mode(w: &World, token: &str, n: usize, c: usize) -> anyhow::Result<Value> {
    let logins: Vec<String> = demo::cast(n)
        .iter()
        .filter(|m| m.case.is_none())
        .map(demo::okta::login)
        .collect();
    let before = fulfiller_shipments(w).await?;
    let body = json!({"users": logins, "group_id": connector::sandbox_config::SANDBOX_GROUP});
    let started = Instant::now();
    let (s, v) = w
        .call(token, Method::POST, "/v1/okta/batch", Some(body))
        .await?;
    let batch = started.elapsed();
    if s != 202 {
        bail!("the batch trigger answered {s}: {v}");
    }
    let created = v["data"]
        .as_array()
        .map(|a| a.iter().filter(|r| r["status"] == "created").count())
        .unwrap_or_default();
    if created != n {
        bail!("the batch trigger started {created} of {n} requests: {v}");
    }

    // The batch trigger has already started processing in the background.
    let mut clock = Processing::start();
    process_until(w, token, "okta", "open", n, &mut clock).await?;
    let shipping = Instant::now();
    w.advance().await?;
    w.advance().await?;
    clock.fulfiller += shipping.elapsed();
    process_until(w, token, "okta", "awaiting_approval", n, &mut clock).await?;
    let approvals: Vec<Call> = ids(w, token, "okta", "awaiting_approval")
        .await?
        .into_iter()
        .map(|id| Call {
            method: Method::POST,
            path: format!("/v1/okta/requests/{id}/approve"),
            body: None,
            expect: 200,
        })
        .collect();
    let approving = Instant::now();
    concurrently(w, token, c, approvals).await?;
    clock.approvals = Some(approving.elapsed());
    process_until(w, token, "okta", "complete", n, &mut clock).await?;
    let took = clock.stop();
    let complete = count(w, token, "okta", "complete").await?;
    let shipments = fulfiller_shipments(w).await?.saturating_sub(before);
    Ok(json!({
        "batch": {
            "users": n,
            "seconds": batch.as_secs_f64(),
            "per_second": per_second(n, batch),
        },
        "processing": clock.json(n, took, complete, shipments),
    }))
}

/// One API call of a concurrent run, and the status it must answer.
struct Call {
    method: Method,
    path: String,
    body: Option<Value>,
    expect: u16,
}

/// Sends `calls` with `c` clients at once (each takes the next call when its last one
/// answered); returns each call's latency. Fails on the first unexpected answer.
async fn concurrently(
    w: &World,
    token: &str,
    c: usize,
    calls: Vec<Call>,
) -> anyhow::Result<Vec<Duration>> {
    let calls = Arc::new(calls);
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..c.min(calls.len()) {
        let (calls, next) = (calls.clone(), next.clone());
        let (http, base, token) = (w.http.clone(), w.connector.clone(), token.to_owned());
        tasks.spawn(async move {
            let mut took = Vec::new();
            while let Some(call) = calls.get(next.fetch_add(1, Ordering::Relaxed)) {
                let mut r = http
                    .request(call.method.clone(), format!("{base}{}", call.path))
                    .bearer_auth(&token);
                if let Some(b) = &call.body {
                    r = r.json(b);
                }
                let started = Instant::now();
                let r = r
                    .send()
                    .await
                    .with_context(|| format!("calling the connector: {}", call.path))?;
                let status = r.status().as_u16();
                let text = r.text().await.context("reading the connector's answer")?;
                took.push(started.elapsed());
                if status != call.expect {
                    bail!("{} {} answered {status}: {text}", call.method, call.path);
                }
            }
            anyhow::Ok(took)
        });
    }
    let mut all = Vec::with_capacity(calls.len());
    while let Some(joined) = tasks.join_next().await {
        all.extend(joined.context("a bench client stopped")??);
    }
    Ok(all)
}

/// The wall-clock time of a processing phase, less the time the fulfiller sandbox's
/// clock took to program and ship (the real fulfiller's part, days in real life), how
/// many processing rounds it took (`process?wait=`), and what the connector's runner
/// said it did in them: job runs and requests that went to `error`.
struct Processing {
    started: Instant,
    fulfiller: Duration,
    runs: usize,
    round_seconds: Vec<f64>,
    approvals: Option<Duration>,
    job_runs: u64,
    errors: u64,
}

impl Processing {
    fn start() -> Self {
        Self {
            started: Instant::now(),
            fulfiller: Duration::ZERO,
            runs: 0,
            round_seconds: Vec::new(),
            approvals: None,
            job_runs: 0,
            errors: 0,
        }
    }

    fn stop(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.fulfiller)
    }

    fn json(&self, n: usize, took: Duration, complete: u64, shipments: u64) -> Value {
        let mut v = json!({
            "seconds": took.as_secs_f64(),
            "per_second": per_second(n, took),
            "runs": self.runs,
            "round_seconds": self.round_seconds,
            "job_runs": self.job_runs,
            "errors": self.errors,
            "complete": complete,
            "fulfiller_shipments": shipments,
        });
        if let Some(a) = self.approvals {
            v["approvals_seconds"] = json!(a.as_secs_f64());
        }
        v
    }
}

/// Processing rounds until `n` requests of `idp` are in `state`. A round is one
/// `POST /v1/fpr/shipments/process?wait=300`: every job made due, answered once the
/// connector's runner (its concurrent workers) has run them as far as they go, then one
/// count. Usually one round is enough; a request may need another (a vendor that had not
/// acted yet, a retry). While a round leaves the count where it was, the next waits
/// 50 ms; after [`MAX_STALLS`] such rounds in a row, or a round whose runner did not go
/// idle within the wait, the phase is left unfinished and the correctness check
/// afterwards reports it.
async fn process_until(
    w: &World,
    token: &str,
    idp: &str,
    state: &str,
    n: usize,
    clock: &mut Processing,
) -> anyhow::Result<()> {
    let mut last = count(w, token, idp, state).await?;
    let mut stalls = 0;
    while last < n as u64 {
        let round = Instant::now();
        let (s, v) = w
            .call(
                token,
                Method::POST,
                &format!("/v1/fpr/shipments/process?wait={ROUND_WAIT_SECS}"),
                None,
            )
            .await?;
        if s != 200 {
            bail!("processing answered {s}: {v}");
        }
        clock.runs += 1;
        clock.round_seconds.push(round.elapsed().as_secs_f64());
        let d = &v["data"];
        clock.job_runs += d["processed"].as_u64().unwrap_or_default();
        clock.errors += d["errors"].as_u64().unwrap_or_default();
        if d["idle"] != true {
            // The runner is still busy after the whole wait: something is stuck.
            return Ok(());
        }
        let done = count(w, token, idp, state).await?;
        if done == last {
            stalls += 1;
            if stalls >= MAX_STALLS {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        } else {
            stalls = 0;
        }
        last = done;
    }
    Ok(())
}

/// How many requests of `idp` the connector holds in `state`.
async fn count(w: &World, token: &str, idp: &str, state: &str) -> anyhow::Result<u64> {
    let (s, v) = w
        .call(
            token,
            Method::GET,
            &format!("/v1/fpr/shipments?idp={idp}&state={state}&limit=1"),
            None,
        )
        .await?;
    if s != 200 {
        bail!("listing the {idp} requests answered {s}: {v}");
    }
    v["total_count"]
        .as_u64()
        .with_context(|| format!("the request list has no total_count: {v}"))
}

/// The ids of the requests of `idp` in `state`.
async fn ids(w: &World, token: &str, idp: &str, state: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    loop {
        let path = format!(
            "/v1/fpr/shipments?idp={idp}&state={state}&limit=100&offset={}",
            out.len()
        );
        let (s, v) = w.call(token, Method::GET, &path, None).await?;
        if s != 200 {
            bail!("listing the {idp} requests answered {s}: {v}");
        }
        let page = v["data"].as_array().cloned().unwrap_or_default();
        let len = page.len();
        out.extend(
            page.iter()
                .filter_map(|r| r["request_id"].as_str().map(str::to_owned)),
        );
        if len < 100 {
            return Ok(out);
        }
    }
}

/// How many shipments the fulfiller sandbox holds.
async fn fulfiller_shipments(w: &World) -> anyhow::Result<u64> {
    let r = w
        .http
        .get(format!("{}/sandbox/v1/state", w.fulfiller))
        .bearer_auth(sandbox::fulfiller::seed::DEFAULT_TOKEN)
        .send()
        .await
        .context("reading the fulfiller sandbox's state")?;
    if !r.status().is_success() {
        bail!("the fulfiller sandbox's state answered {}", r.status());
    }
    let v: Value = r
        .json()
        .await
        .context("reading the fulfiller sandbox's state")?;
    Ok(v["shipments"].as_array().map_or(0, Vec::len) as u64)
}

fn intake_json(n: usize, c: usize, took: Duration, mut latencies: Vec<Duration>) -> Value {
    latencies.sort();
    let ms = |q: f64| {
        // Nearest rank: the smallest latency at or above the q-th fraction.
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        latencies
            .get(rank - 1)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    json!({
        "requests": n,
        "concurrency": c,
        "seconds": took.as_secs_f64(),
        "per_second": per_second(n, took),
        "latency_ms": {"p50": ms(0.50), "p95": ms(0.95), "p99": ms(0.99), "max": ms(1.0)},
    })
}

pub(crate) fn per_second(n: usize, took: Duration) -> f64 {
    let s = took.as_secs_f64();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

fn print_table(r: &Value) {
    let m = &r["machine"];
    println!(
        "prereg bench: {} users per mode, {} concurrent clients, {} ms added to each service call; {} cores, {} build, {}/{}",
        r["users"],
        r["concurrency"],
        r["latency_ms"],
        m["cores"],
        text(&m["profile"]),
        text(&m["os"]),
        text(&m["arch"])
    );
    println!();
    println!(
        "{:<8}  {:<5}  {:<10}  {:>5}  {:>8}  {:>8}  {:>7}  {:>7}  {:>7}  {:>7}  CHECK",
        "DB", "MODE", "PHASE", "N", "SECONDS", "PER SEC", "P50 MS", "P95 MS", "P99 MS", "MAX MS"
    );
    let f = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
    let secs = |v: &Value| v.as_f64().map_or("-".to_owned(), |x| format!("{x:.3}"));
    for b in r["backends"].as_array().into_iter().flatten() {
        let db = b["db"].as_str().unwrap_or("?");
        let rows = [
            ("entra", "intake", &b["entra"]["intake"]),
            ("entra", "processing", &b["entra"]["processing"]),
            ("okta", "batch", &b["okta"]["batch"]),
            ("okta", "processing", &b["okta"]["processing"]),
        ];
        for (mode, phase, v) in rows {
            let lat = &v["latency_ms"];
            let n = v["requests"].as_u64().or(v["users"].as_u64()).unwrap_or(0);
            let n = if n == 0 {
                r["users"].as_u64().unwrap_or(0)
            } else {
                n
            };
            let check = if v["complete"].is_null() {
                String::new()
            } else {
                format!(
                    "{} complete, {} shipments, {} processing round(s), {} job runs, {} error(s)",
                    v["complete"], v["fulfiller_shipments"], v["runs"], v["job_runs"], v["errors"]
                )
            };
            println!(
                "{db:<8}  {mode:<5}  {phase:<10}  {n:>5}  {:>8}  {:>8}  {:>7}  {:>7}  {:>7}  {:>7}  {check}",
                secs(&v["seconds"]),
                f(&v["per_second"]),
                f(&lat["p50"]),
                f(&lat["p95"]),
                f(&lat["p99"]),
                f(&lat["max"]),
            );
        }
    }
    println!();
    println!(
        "{}",
        if r["ok"] == true {
            "correctness: every request complete, the fulfiller holds exactly N shipments per mode"
        } else {
            "correctness: FAILED (see the error below)"
        }
    );
}
