//! Calls to the replicas for `prereg chaos`: each sent to a live replica (round robin)
//! and repeated, on whichever replica is up, until it is answered.

use super::{Fleet, HOOK_SECRET};
use anyhow::bail;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a call to the connector is repeated (on another replica, or after a
/// restart) before the run gives up on it.
const CALL_PATIENCE: Duration = Duration::from_secs(300);

#[derive(Clone)]
pub(super) struct Api {
    pub(super) http: reqwest::Client,
    pub(super) token: String,
    pub(super) fleet: Arc<Fleet>,
    pub(super) retries: Arc<AtomicUsize>,
}

/// What a call's answer means: done (with a value), try again, or a failure of the run.
enum Answer<T> {
    Done(T),
    Again,
    Fail(String),
}

impl Api {
    /// One call to a live replica. `Err`: no replica is up, or none answered.
    pub(super) async fn once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Result<(u16, Value), String> {
        let base = self.fleet.pick().ok_or("no replica is up")?;
        let mut r = self
            .http
            .request(method, format!("{base}{path}"))
            .bearer_auth(&self.token);
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        if let Some(b) = body {
            r = r.json(b);
        }
        let r = r.send().await.map_err(|e| e.to_string())?;
        let s = r.status().as_u16();
        let text = r.text().await.map_err(|e| e.to_string())?;
        Ok((
            s,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    /// Repeats the call (200 ms apart, on whichever replica is up) until `decide` says
    /// done or failed, for at most [`CALL_PATIENCE`].
    async fn until<T>(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        decide: impl Fn(u16, &Value) -> Answer<T>,
    ) -> anyhow::Result<T> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < CALL_PATIENCE {
            match self.once(method.clone(), path, body, headers).await {
                Ok((s, v)) => match decide(s, &v) {
                    Answer::Done(t) => return Ok(t),
                    Answer::Fail(why) => bail!("{method} {path}: {why}"),
                    Answer::Again => last = format!("answered {s}: {v}"),
                },
                Err(e) => last = e,
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!(
            "{method} {path}: no answer to go on for {} s; the last: {last}",
            CALL_PATIENCE.as_secs()
        )
    }

    /// An Entra-mode order with its `Idempotency-Key`: done when created, or when the
    /// connector kept it for the runner to create (503 with a `request_id`).
    pub(super) async fn order(&self, path: &str, body: &Value, key: &str) -> anyhow::Result<()> {
        self.until(
            Method::POST,
            path,
            Some(body),
            &[("Idempotency-Key", key)],
            |s, v| match s {
                200 | 201 => Answer::Done(()),
                503 if v["error_data"]["request_id"].is_string() => Answer::Done(()),
                400 | 401 | 404 | 422 => Answer::Fail(format!("answered {s}: {v}")),
                _ => Answer::Again,
            },
        )
        .await
    }

    /// An Okta-mode batch with its `Idempotency-Key`: every user `created` (a repeated
    /// batch whose first answer was lost is answered from the first call) or
    /// `already_open`. Users answered `unavailable` (the connector could not record them
    /// just then) are sent again, alone, under the same key.
    pub(super) async fn batch(&self, logins: &[String], key: &str) -> anyhow::Result<()> {
        let mut todo = logins.to_vec();
        while !todo.is_empty() {
            let body = json!({"users": todo, "group_id": connector::sandbox_config::SANDBOX_GROUP});
            todo = self
                .until(
                    Method::POST,
                    "/v1/okta/batch",
                    Some(&body),
                    &[("Idempotency-Key", key)],
                    |s, v| match s {
                        202 => {
                            let lines = v["data"].as_array().cloned().unwrap_or_default();
                            let refused: Vec<&Value> = lines
                                .iter()
                                .filter(|r| {
                                    !matches!(
                                        r["status"].as_str(),
                                        Some("created" | "already_open" | "unavailable")
                                    )
                                })
                                .collect();
                            if !refused.is_empty() {
                                return Answer::Fail(format!("users refused: {refused:?}"));
                            }
                            Answer::Done(
                                lines
                                    .iter()
                                    .filter(|r| r["status"] == "unavailable")
                                    .filter_map(|r| r["user"].as_str().map(str::to_owned))
                                    .collect::<Vec<String>>(),
                            )
                        }
                        400 | 401 | 404 => Answer::Fail(format!("answered {s}: {v}")),
                        _ => Answer::Again,
                    },
                )
                .await?;
        }
        Ok(())
    }

    /// Okta's event hook call, as Okta makes it (the shared secret in `Authorization`):
    /// done on 200 (a redelivery lists the event in `duplicates_ignored`).
    pub(super) async fn deliver(&self, event: &Value) -> anyhow::Result<Value> {
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < CALL_PATIENCE {
            let Some(base) = self.fleet.pick() else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let r = self
                .http
                .post(format!("{base}/v1/okta/events"))
                .header("Authorization", HOOK_SECRET)
                .json(event)
                .send()
                .await;
            match r {
                Ok(r) => {
                    let s = r.status().as_u16();
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    match s {
                        200 => return Ok(v),
                        401 | 400 => bail!("the event hook answered {s}: {v}"),
                        _ => last = format!("answered {s}: {v}"),
                    }
                }
                Err(e) => last = e.to_string(),
            }
            self.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("the event hook: no answer to go on; the last: {last}")
    }

    /// Adds Okta user `id` to the mapped group at the Okta sandbox (its management API,
    /// faulted like the rest of Okta).
    pub(super) async fn okta_group_add(
        &self,
        okta: &str,
        ssws: &str,
        id: &str,
    ) -> anyhow::Result<()> {
        let url = format!(
            "{okta}/api/v1/groups/{}/users/{id}",
            connector::sandbox_config::SANDBOX_GROUP
        );
        let started = Instant::now();
        let mut last = String::new();
        while started.elapsed() < CALL_PATIENCE {
            match self
                .http
                .put(&url)
                .header("Authorization", format!("SSWS {ssws}"))
                .send()
                .await
            {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    bail!("Okta refused adding {id} to the group: {}", r.status())
                }
                Ok(r) => last = r.status().to_string(),
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bail!("Okta did not add {id} to the group; the last answer: {last}")
    }

    /// Approves every Okta request awaiting approval (one page), as an admin confirming
    /// the key arrived; how many were approved.
    pub(super) async fn approve_waiting(&self) -> usize {
        let Ok((200, v)) = self
            .once(
                Method::GET,
                "/v1/fpr/shipments?idp=okta&state=awaiting_approval&limit=100",
                None,
                &[],
            )
            .await
        else {
            return 0;
        };
        let mut approved = 0;
        for id in v["data"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| r["request_id"].as_str())
        {
            let path = format!("/v1/okta/requests/{id}/approve");
            if let Ok((200, _)) = self.once(Method::POST, &path, None, &[]).await {
                approved += 1;
            }
        }
        approved
    }

    /// The connector's counts: idp -> state -> requests.
    pub(super) async fn states(&self) -> Result<BTreeMap<String, BTreeMap<String, u64>>, String> {
        const STATES: [&str; 8] = [
            "creating",
            "cancelling",
            "open",
            "awaiting_approval",
            "pin_pending",
            "complete",
            "error",
            "deleted",
        ];
        let mut out = BTreeMap::new();
        for idp in ["entra", "okta"] {
            let mut per = BTreeMap::new();
            for state in STATES {
                let path = format!("/v1/fpr/shipments?idp={idp}&state={state}&limit=1");
                let (s, v) = self.once(Method::GET, &path, None, &[]).await?;
                let n = v["total_count"]
                    .as_u64()
                    .filter(|_| s == 200)
                    .ok_or_else(|| format!("listing answered {s}: {v}"))?;
                if n > 0 {
                    per.insert(state.to_owned(), n);
                }
            }
            out.insert(idp.to_owned(), per);
        }
        Ok(out)
    }
}
