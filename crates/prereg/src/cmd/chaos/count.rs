//! Counting from the vendors' side for `prereg chaos`: the fulfiller's shipments,
//! Entra's passkeys and Okta's active enrollments, the caught PIN mails, and every PIN
//! looked for in the replicas' logs and the database.

use super::World;
use super::{Plan, demo};
use anyhow::{Context, bail};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// A user the run ordered a key for, as the vendors know them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExpectedUser {
    pub(super) idp: &'static str,
    /// The Entra object id or the Okta user id.
    pub(super) id: String,
    /// The shipment's recipient email (lowercase).
    pub(super) email: String,
    /// Where the PIN mail goes (lowercase): the manager in Entra mode, the user in Okta.
    pub(super) pin_to: String,
}

pub(super) fn expected_users(plan: &Plan) -> Vec<ExpectedUser> {
    let d = demo::entra::domain();
    let cast = demo::cast(plan.entra_users.max(plan.okta_users));
    let manager = demo::entra::MANAGER.to_ascii_lowercase();
    let entra = cast[..plan.entra_users].iter().map(|m| ExpectedUser {
        idp: "entra",
        id: demo::entra::object_id(m.i),
        email: demo::entra::upn(m, &d).to_ascii_lowercase(),
        pin_to: manager.clone(),
    });
    let okta = cast[..plan.okta_users].iter().map(|m| {
        let login = demo::okta::login(m).to_ascii_lowercase();
        ExpectedUser {
            idp: "okta",
            id: demo::okta::user_id(m.i),
            email: login.clone(),
            pin_to: login,
        }
    });
    entra.chain(okta).collect()
}

/// A shipment at the fulfiller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Shipment {
    pub(super) email: String,
    pub(super) state: i64,
    pub(super) serial: Option<String>,
}

/// A credential registered at an IdP: an Entra passkey or an active Okta enrollment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Credential {
    pub(super) idp: &'static str,
    pub(super) user_id: String,
}

/// A PIN mail the mail catcher received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PinMail {
    pub(super) to: Vec<String>,
    pub(super) serial: Option<String>,
    pub(super) pin: Option<String>,
}

/// What the vendors hold at the end.
#[derive(Debug, Default, Clone)]
pub(super) struct Observed {
    pub(super) shipments: Vec<Shipment>,
    pub(super) credentials: Vec<Credential>,
    pub(super) mails: Vec<PinMail>,
}

impl Observed {
    /// Every PIN mailed.
    pub(super) fn pins(&self) -> HashSet<String> {
        self.mails.iter().filter_map(|m| m.pin.clone()).collect()
    }

    /// Every key serial shipped.
    pub(super) fn serials(&self) -> HashSet<String> {
        self.shipments
            .iter()
            .filter_map(|s| s.serial.clone())
            .collect()
    }
}

pub(super) async fn observe(w: &World) -> anyhow::Result<Observed> {
    let get = |url: String, auth: Option<&str>| {
        let mut r = w.http.get(url);
        if let Some(a) = auth {
            r = r.bearer_auth(a);
        }
        async move {
            let r = r.send().await.context("reading a sandbox's state")?;
            if !r.status().is_success() {
                bail!("a sandbox's state answered {}", r.status());
            }
            r.json::<Value>().await.context("reading a sandbox's state")
        }
    };
    let f = get(
        format!("{}/sandbox/v1/state", w.fulfiller),
        Some(sandbox::fulfiller::seed::DEFAULT_TOKEN),
    )
    .await?;
    let shipments = f["shipments"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| Shipment {
            email: s["recipient"]["recipient_email"]
                .as_str()
                .unwrap_or_default()
                .to_ascii_lowercase(),
            state: s["state"]
                .as_i64()
                .or_else(|| s["state"]["id"].as_i64())
                .unwrap_or(-1),
            serial: s["serial"].as_u64().map(|n| n.to_string()),
        })
        .collect();
    let mut credentials: Vec<Credential> = w
        .entra
        .registered_methods()
        .into_iter()
        .map(|m| Credential {
            idp: "entra",
            user_id: m.user_id,
        })
        .collect();
    let o = get(format!("{}/sandbox/v1/state", w.okta.base_url()), None).await?;
    credentials.extend(
        o["factors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["status"] == "ACTIVE")
            .filter_map(|f| {
                let href = f["_links"]["self"]["href"].as_str()?;
                let user = href.split("/users/").nth(1)?.split('/').next()?;
                Some(Credential {
                    idp: "okta",
                    user_id: user.to_owned(),
                })
            }),
    );
    let mails = w
        .mail
        .messages()
        .into_iter()
        .map(|m| PinMail {
            to: m.to.iter().map(|t| t.to_ascii_lowercase()).collect(),
            serial: digits_after(&m.subject, "serial ")
                .or_else(|| digits_after(&m.body, "serial ")),
            pin: digits_after(&m.body, "PIN is:"),
        })
        .collect();
    Ok(Observed {
        shipments,
        credentials,
        mails,
    })
}

/// The run of digits after the first `marker` in `text` (spaces skipped).
pub(super) fn digits_after(text: &str, marker: &str) -> Option<String> {
    let at = text.find(marker)? + marker.len();
    let d: String = text[at..]
        .trim_start()
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    (!d.is_empty()).then_some(d)
}

/// The figures of one IdP's users, from the vendors' side.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct IdpTally {
    pub(super) users: usize,
    /// Shipped, registered at the IdP and the PIN mailed.
    pub(super) complete: usize,
    pub(super) no_shipment: usize,
    /// Users with more than one shipment, and the shipments beyond the first.
    pub(super) duplicate_shipments: usize,
    pub(super) extra_shipments: usize,
    pub(super) not_shipped: usize,
    pub(super) no_credential: usize,
    pub(super) duplicate_credentials: usize,
    /// A shipped key whose PIN mail never reached its recipient.
    pub(super) undelivered_pins: usize,
    /// Keys whose PIN was mailed more than once to one recipient (the same PIN).
    pub(super) repeated_pin_mails: usize,
    /// Keys whose PIN mails carry different PINs.
    pub(super) conflicting_pins: usize,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub(super) struct Tally {
    pub(super) entra: IdpTally,
    pub(super) okta: IdpTally,
    /// Shipments for no user the run ordered for.
    pub(super) unmatched_shipments: usize,
    pub(super) pin_mails: usize,
}

pub(super) fn tally(expected: &[ExpectedUser], o: &Observed) -> Tally {
    let mut t = Tally {
        pin_mails: o.mails.len(),
        ..Tally::default()
    };
    let mut by_email: HashMap<&str, Vec<&Shipment>> = HashMap::new();
    for s in &o.shipments {
        by_email.entry(s.email.as_str()).or_default().push(s);
    }
    let mut creds: HashMap<(&str, &str), usize> = HashMap::new();
    for c in &o.credentials {
        *creds.entry((c.idp, c.user_id.as_str())).or_default() += 1;
    }
    let mut known = HashSet::new();
    for u in expected {
        known.insert(u.email.as_str());
        let x = if u.idp == "entra" {
            &mut t.entra
        } else {
            &mut t.okta
        };
        x.users += 1;
        let ships = by_email.get(u.email.as_str()).cloned().unwrap_or_default();
        match ships.len() {
            0 => x.no_shipment += 1,
            1 => {}
            n => {
                x.duplicate_shipments += 1;
                x.extra_shipments += n - 1;
            }
        }
        let shipped: Vec<&str> = ships
            .iter()
            .filter(|s| matches!(s.state, 103 | 104))
            .filter_map(|s| s.serial.as_deref())
            .collect();
        if !ships.is_empty() && shipped.is_empty() {
            x.not_shipped += 1;
        }
        let n_creds = creds.get(&(u.idp, u.id.as_str())).copied().unwrap_or(0);
        match n_creds {
            0 => x.no_credential += 1,
            1 => {}
            _ => x.duplicate_credentials += 1,
        }
        let mut delivered = false;
        for serial in &shipped {
            let mails: Vec<&PinMail> = o
                .mails
                .iter()
                .filter(|m| m.serial.as_deref() == Some(*serial) && m.to.contains(&u.pin_to))
                .collect();
            if mails.is_empty() {
                x.undelivered_pins += 1;
                continue;
            }
            delivered = true;
            if mails.len() > 1 {
                x.repeated_pin_mails += 1;
            }
            let distinct: HashSet<Option<&str>> = mails.iter().map(|m| m.pin.as_deref()).collect();
            if distinct.len() > 1 {
                x.conflicting_pins += 1;
            }
        }
        if !shipped.is_empty() && n_creds >= 1 && delivered {
            x.complete += 1;
        }
    }
    t.unmatched_shipments = o
        .shipments
        .iter()
        .filter(|s| !known.contains(s.email.as_str()))
        .count();
    t
}

/// The PIN search: each PIN mailed, looked for as a whole number (not part of a longer
/// run of digits) in the replicas' logs and the database. A PIN that equals a shipped
/// key's serial cannot be told from it and is left out (counted).
#[derive(Debug, Default)]
pub(super) struct Scan {
    pub(super) pins: HashSet<String>,
    pub(super) pins_left_out: usize,
    pub(super) log_files: usize,
    pub(super) log_bytes: u64,
    pub(super) log_hits: usize,
    pub(super) db_bytes: u64,
    pub(super) db_hits: usize,
    /// Where each hit in the logs is: the file, the line number and the line with the
    /// PIN replaced by `[PIN]` (to tell a leak from a chance match, such as a UUID's
    /// all-digit first group).
    pub(super) log_places: Vec<String>,
}

impl Scan {
    pub(super) fn new(pins: &HashSet<String>, serials: &HashSet<String>) -> Self {
        let kept: HashSet<String> = pins.difference(serials).cloned().collect();
        Self {
            pins_left_out: pins.len() - kept.len(),
            pins: kept,
            ..Self::default()
        }
    }

    pub(super) fn hits(&self, bytes: &[u8]) -> usize {
        bytes
            .split(|b| !b.is_ascii_digit())
            .filter(|run| !run.is_empty())
            .filter(|run| std::str::from_utf8(run).is_ok_and(|s| self.pins.contains(s)))
            .count()
    }

    pub(super) fn logs(&mut self, file: &str, bytes: &[u8]) {
        self.log_files += 1;
        self.log_bytes += bytes.len() as u64;
        for (n, line) in bytes.split(|b| *b == b'\n').enumerate() {
            let line = &without_clock_fractions(line);
            let hits = self.hits(line);
            if hits == 0 {
                continue;
            }
            self.log_hits += hits;
            let masked: String = String::from_utf8_lossy(line)
                .split_inclusive(|c: char| !c.is_ascii_digit())
                .map(|part| {
                    let digits = part.trim_end_matches(|c: char| !c.is_ascii_digit());
                    if self.pins.contains(digits) {
                        part.replacen(digits, "[PIN]", 1)
                    } else {
                        part.to_owned()
                    }
                })
                .collect();
            let masked: String = masked.chars().take(300).collect();
            self.log_places.push(format!("{file}:{}: {masked}", n + 1));
        }
    }

    pub(super) fn database(&mut self, bytes: &[u8]) {
        self.db_bytes += bytes.len() as u64;
        self.db_hits += self.hits(bytes);
    }
}

/// The line with the fractional seconds of every clock time (`hh:mm:ss.` and the digits
/// after it, as the logger stamps each line) turned into `x`: the logger's own digits,
/// not data, and with 1000 eight-digit PINs searched in megabytes of nanosecond stamps a
/// fraction equals some PIN by chance (15 such matches in one 1000-user run).
fn without_clock_fractions(line: &[u8]) -> Vec<u8> {
    let d = |i: usize| line.get(i).is_some_and(u8::is_ascii_digit);
    let mut out = line.to_vec();
    let mut i = 0;
    while i + 9 <= line.len() {
        let clock = d(i)
            && d(i + 1)
            && line[i + 2] == b':'
            && d(i + 3)
            && d(i + 4)
            && line[i + 5] == b':'
            && d(i + 6)
            && d(i + 7)
            && line[i + 8] == b'.';
        if clock {
            let mut j = i + 9;
            while d(j) {
                out[j] = b'x';
                j += 1;
            }
            i = j;
        } else {
            i += 1;
        }
    }
    out
}
