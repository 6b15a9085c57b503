//! The connector's figures in the Prometheus text format (version 0.0.4), read when
//! asked: requests by IdP and state and jobs by condition (from the database, so every
//! replica reports the same), this process's job runs by outcome (the runner's totals),
//! each vendor's calls, time, 429 pauses and calls in flight (its gate), PIN
//! deliveries, and how long ago the runner's dispatcher last went round. No personal
//! data and no secret is in any figure.

use crate::services::Services;
use crate::store::{StoreError, now};
use sqlx::Row;
use std::fmt::Write;

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The figures, as `GET /metrics` serves them.
pub async fn render(s: &Services) -> Result<String, StoreError> {
    let pool = s.store.pool();
    let mut out = String::new();

    head(
        &mut out,
        "prereg_requests",
        "gauge",
        "Tracked requests by identity provider and state.",
    );
    let rows = sqlx::query(
        "SELECT idp, state, COUNT(*) AS n FROM requests GROUP BY idp, state ORDER BY idp, state",
    )
    .fetch_all(pool)
    .await?;
    for r in rows {
        let (idp, state, n): (String, String, i64) =
            (r.try_get("idp")?, r.try_get("state")?, r.try_get("n")?);
        let _ = writeln!(
            out,
            "prereg_requests{{idp=\"{idp}\",state=\"{state}\"}} {n}"
        );
    }

    head(
        &mut out,
        "prereg_jobs",
        "gauge",
        "Jobs by condition: due now, leased to a run, waiting out a retry backoff, waiting for the outside world.",
    );
    let t = now();
    let r = sqlx::query(
        "SELECT \
           COALESCE(SUM(CASE WHEN run_at <= $1 AND (locked_until IS NULL OR locked_until < $1) THEN 1 ELSE 0 END), 0) AS due, \
           COALESCE(SUM(CASE WHEN locked_until >= $1 THEN 1 ELSE 0 END), 0) AS leased, \
           COALESCE(SUM(CASE WHEN run_at > $1 AND backoff > 0 THEN 1 ELSE 0 END), 0) AS backoff, \
           COALESCE(SUM(CASE WHEN run_at > $1 AND backoff = 0 THEN 1 ELSE 0 END), 0) AS waiting \
         FROM jobs",
    )
    .bind(t)
    .fetch_one(pool)
    .await?;
    for cond in ["due", "leased", "backoff", "waiting"] {
        let n: i64 = r.try_get(cond)?;
        let _ = writeln!(out, "prereg_jobs{{condition=\"{cond}\"}} {n}");
    }

    head(
        &mut out,
        "prereg_pin_deliveries",
        "gauge",
        "PIN recipients served (one per recipient and request; an admin's resend starts a request's count again).",
    );
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pin_deliveries")
        .fetch_one(pool)
        .await?;
    let _ = writeln!(out, "prereg_pin_deliveries {n}");

    head(
        &mut out,
        "prereg_job_runs_total",
        "counter",
        "Job runs of this process by outcome (completed, error, retry: a transient failure waiting out a backoff, other: waiting or moved on).",
    );
    let t = s.runner.totals();
    let other = t
        .processed
        .saturating_sub(t.completed + t.errors + t.retries);
    for (outcome, n) in [
        ("completed", t.completed),
        ("error", t.errors),
        ("retry", t.retries),
        ("other", other),
    ] {
        let _ = writeln!(out, "prereg_job_runs_total{{outcome=\"{outcome}\"}} {n}");
    }

    head(
        &mut out,
        "prereg_vendor_calls_total",
        "counter",
        "Calls to each vendor service let through its gate.",
    );
    for (vendor, g) in &s.gates {
        let _ = writeln!(
            out,
            "prereg_vendor_calls_total{{vendor=\"{vendor}\"}} {}",
            g.stats().calls
        );
    }
    head(
        &mut out,
        "prereg_vendor_call_seconds",
        "summary",
        "Time of the finished calls to each vendor service.",
    );
    for (vendor, g) in &s.gates {
        let st = g.stats();
        let _ = writeln!(
            out,
            "prereg_vendor_call_seconds_sum{{vendor=\"{vendor}\"}} {}",
            st.seconds
        );
        let _ = writeln!(
            out,
            "prereg_vendor_call_seconds_count{{vendor=\"{vendor}\"}} {}",
            st.finished
        );
    }
    head(
        &mut out,
        "prereg_vendor_rate_limited_total",
        "counter",
        "429 answers with Retry-After that paused each vendor service.",
    );
    for (vendor, g) in &s.gates {
        let _ = writeln!(
            out,
            "prereg_vendor_rate_limited_total{{vendor=\"{vendor}\"}} {}",
            g.stats().pauses
        );
    }
    head(
        &mut out,
        "prereg_vendor_in_flight",
        "gauge",
        "Calls to each vendor service in flight now.",
    );
    for (vendor, g) in &s.gates {
        let _ = writeln!(
            out,
            "prereg_vendor_in_flight{{vendor=\"{vendor}\"}} {}",
            g.stats().in_flight
        );
    }

    head(
        &mut out,
        "prereg_runner_idle_seconds",
        "gauge",
        "Seconds since the runner's dispatcher last went round its loop (at least every 2 s while it lives); -1 before it started.",
    );
    let _ = writeln!(
        out,
        "prereg_runner_idle_seconds {}",
        s.runner.idle_for().unwrap_or(-1)
    );
    Ok(out)
}
