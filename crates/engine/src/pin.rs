//! PIN delivery: SMTP (STARTTLS, TLS, or plain to a loopback host; optional login) to
//! the request's contacts, or an HTTP webhook in the spirit of the guide's
//! `SEND_PIN_URL` (a Logic App that mails the PIN). SMTP wins when both are configured.
//!
//! The PIN is only ever in this request body; it is never logged.

use crate::services::Services;
use crate::store::RequestRow;
use serde_json::json;

/// Why a PIN could not be delivered. The text never contains the PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// Worth trying again (a busy or unreachable server, a 4xx SMTP reply, a webhook
    /// 5xx/429).
    Transient(String),
    /// Refused for good (an SMTP 5xx for a recipient, a webhook 4xx, no channel, a bad
    /// address): retrying changes nothing until an admin fixes the cause.
    Permanent(String),
}

impl DeliveryError {
    /// The text an admin reads.
    pub fn message(&self) -> &str {
        match self {
            Self::Transient(m) | Self::Permanent(m) => m,
        }
    }
}

/// The recipient key under which a webhook delivery is recorded.
const WEBHOOK: &str = "webhook";

/// Sends the PIN to the configured channel, to each recipient not yet served (the
/// recipients served are recorded one by one, so a retry after a partial failure sends
/// only to the others). The error text never contains the PIN.
pub async fn deliver(state: &Services, row: &RequestRow, pin: &str) -> Result<(), DeliveryError> {
    let contacts: Vec<String> = serde_json::from_str(&row.pin_contacts).unwrap_or_default();
    let served = delivered(state, &row.id)
        .await
        .map_err(|e| DeliveryError::Transient(e.to_string()))?;
    // A key of a credential request is named by its label ("primary", "backup").
    let label = crate::credreq::label_of(state, &row.id)
        .await
        .map_err(|e| DeliveryError::Transient(e.to_string()))?;
    let which = which_key(label.as_deref());
    if let Some(mailer) = &state.mailer {
        let todo: Vec<String> = contacts
            .iter()
            .filter(|c| !served.iter().any(|s| s.eq_ignore_ascii_case(c)))
            .cloned()
            .collect();
        for to in &todo {
            mailer.send(row, label.as_deref(), to, pin).await?;
            record(state, &row.id, to).await?;
        }
        tracing::info!(request_id = %row.id, recipients = todo.len(), already = served.len(), "PIN mailed");
        return Ok(());
    }
    let Some(url) = &state.config.send_pin_url else {
        return Err(DeliveryError::Permanent(
            "no PIN channel is configured: set SMTP_HOST (smtp_host) or SEND_PIN_URL (send_pin_url)"
                .into(),
        ));
    };
    if served.iter().any(|s| s == WEBHOOK) {
        return Ok(());
    }
    let body = zeroize::Zeroizing::new(
        json!({
            "request_id": row.id,
            "shipment_id": row.shipment_id,
            "serial_number": row.serial,
            "user_id": row.user_id,
            "user": row.user_label,
            "emails_to": contacts,
            "key_label": label,
            "subject": format!("PIN for {which} of {}", row.user_label),
            "pin": pin,
        })
        .to_string(),
    );
    let r = state
        .http
        .post(url)
        .header("content-type", "application/json")
        .body(body.as_str().to_owned())
        .send()
        .await
        .map_err(|e| {
            DeliveryError::Transient(format!("PIN webhook did not answer: {}", e.without_url()))
        })?;
    let status = r.status();
    if status.is_client_error() && status.as_u16() != 408 && status.as_u16() != 429 {
        return Err(DeliveryError::Permanent(format!(
            "the PIN webhook refused the PIN ({status}); fix the webhook (send_pin_url), then retry the request"
        )));
    }
    if !status.is_success() {
        return Err(DeliveryError::Transient(format!(
            "PIN webhook answered {status}"
        )));
    }
    record(state, &row.id, WEBHOOK).await?;
    tracing::info!(request_id = %row.id, recipients = contacts.len(), "PIN delivered");
    Ok(())
}

/// The recipients already served for a request.
async fn delivered(state: &Services, request_id: &str) -> DbResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT recipient FROM pin_deliveries WHERE request_id = $1")
            .bind(request_id)
            .fetch_all(state.store.pool())
            .await?,
    )
}

/// Records that `recipient` got the PIN. A recipient the database cannot record is
/// not counted as served (sent again on retry, rather than never).
async fn record(state: &Services, request_id: &str, recipient: &str) -> Result<(), DeliveryError> {
    sqlx::query(
        "INSERT INTO pin_deliveries (request_id, recipient, delivered_at) VALUES ($1, $2, $3) \
         ON CONFLICT (request_id, recipient) DO NOTHING",
    )
    .bind(request_id)
    .bind(recipient.to_ascii_lowercase())
    .bind(crate::store::now())
    .execute(state.store.pool())
    .await
    .map_err(|e| DeliveryError::Transient(format!("recording the delivery to {recipient}: {e}")))?;
    Ok(())
}

/// Forgets who was served (an admin's resend sends to every recipient again).
pub async fn forget_deliveries(state: &Services, request_id: &str) -> DbResult<()> {
    sqlx::query("DELETE FROM pin_deliveries WHERE request_id = $1")
        .bind(request_id)
        .execute(state.store.pool())
        .await?;
    Ok(())
}

/// The SMTP transport for PIN mail, built once at start and shared by every worker:
/// lettre's pool keeps connections open between messages (checked with `NOOP` before
/// reuse, closed after a minute idle), so a batch of PINs is not one TCP and TLS
/// handshake and login per message.
pub struct Mailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
    server: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// The transport for `smtp` (no connection is made yet). Fails on a sender or CA
    /// certificate that cannot be used (checked at start already).
    pub fn new(smtp: &crate::config::Smtp) -> Result<Self, String> {
        use crate::config::SmtpSecurity;
        use lettre::transport::smtp::PoolConfig;
        use lettre::transport::smtp::authentication::Credentials;
        use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
        use lettre::{AsyncSmtpTransport, Tokio1Executor};
        use secrecy::ExposeSecret;
        // The server's certificate is checked against the platform's roots plus, when
        // `smtp_ca_file` is set, the CA certificates in it (for private CAs).
        let params = || -> Result<TlsParameters, String> {
            let mut b = TlsParameters::builder(smtp.host.clone());
            for pem in smtp.ca_pem.as_deref().map(split_pem).unwrap_or_default() {
                let cert = Certificate::from_pem(&pem).map_err(|e| format!("smtp_ca_file: {e}"))?;
                b = b.add_root_certificate(cert);
            }
            b.build_rustls()
                .map_err(|e| format!("SMTP {} TLS: {e}", smtp.host))
        };
        let builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host);
        let builder = match smtp.security {
            SmtpSecurity::Plain => builder,
            SmtpSecurity::StartTls => builder.tls(Tls::Required(params()?)),
            SmtpSecurity::Tls => builder.tls(Tls::Wrapper(params()?)),
        };
        let mut builder = builder
            .port(smtp.port)
            .timeout(Some(std::time::Duration::from_secs(30)))
            .pool_config(
                PoolConfig::new()
                    .max_size(8)
                    .idle_timeout(std::time::Duration::from_secs(60)),
            );
        if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
            builder =
                builder.credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()));
        }
        let from = smtp.from.parse().map_err(|e| format!("smtp_from: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
            server: format!("{}:{}", smtp.host, smtp.port),
        })
    }

    /// Sends the PIN to one contact; `label` names the key of a credential request
    /// ("primary", "backup"). The error text never contains the PIN; a permanent refusal
    /// names the recipient.
    pub async fn send(
        &self,
        row: &RequestRow,
        label: Option<&str>,
        to_text: &str,
        pin: &str,
    ) -> Result<(), DeliveryError> {
        use DeliveryError::{Permanent, Transient};
        use lettre::message::header::ContentType;
        use lettre::{AsyncTransport, Message};
        let serial = row.serial.as_deref().unwrap_or("(unknown)");
        let which = which_key(label);
        let what = match label {
            Some(l) => format!("The {l} security key"),
            None => "A security key".to_owned(),
        };
        {
            let to: lettre::message::Mailbox = to_text.parse().map_err(|e| {
                Permanent(format!(
                    "PIN contact {to_text:?} is not an address: {e}; correct the contact and order again"
                ))
            })?;
            let body = zeroize::Zeroizing::new(format!(
                "{what} (YubiKey serial {serial}) is on its way to {user}, already registered \
                 for signing in to Microsoft Entra ID.\r\n\r\n\
                 Its PIN is: {pin}\r\n\r\n\
                 Please give this PIN to {user} separately from the key (in person or by phone), \
                 never together with it. Delete this message afterwards.\r\n",
                user = row.user_label,
            ));
            let msg = Message::builder()
                .from(self.from.clone())
                .to(to)
                .subject(format!(
                    "PIN for {which} of {} (serial {serial})",
                    row.user_label
                ))
                .header(ContentType::TEXT_PLAIN)
                .body(body.as_str().to_owned())
                .map_err(|e| Permanent(format!("building the PIN message: {e}")))?;
            if let Err(e) = self.transport.send(msg).await {
                return Err(if e.is_permanent() {
                    Permanent(format!(
                        "the mail server {} refused the PIN mail to {to_text} for good: {e}; correct the PIN contact, then retry the request",
                        self.server
                    ))
                } else {
                    Transient(format!("SMTP {} (mail to {to_text}): {e}", self.server))
                });
            }
        }
        Ok(())
    }
}

/// The key a PIN unlocks, as a PIN message names it: "the security key", or with a
/// credential request's label, "the backup security key".
fn which_key(label: Option<&str>) -> String {
    match label {
        Some(l) => format!("the {l} security key"),
        None => "the security key".to_owned(),
    }
}

/// The certificates of a PEM file, one PEM block each.
fn split_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    const END: &str = "-----END CERTIFICATE-----";
    String::from_utf8_lossy(pem)
        .split_inclusive(END)
        .filter(|b| b.contains(END))
        .map(|b| b.trim().as_bytes().to_vec())
        .collect()
}

// ---------------------------------------------------------------------------------
// Holding a delivered PIN for resends.
//
// After delivery the PIN stays sealed (AES-GCM, as before delivery) for
// `pin_retention_days`, so an admin can resend it; it is purged when the retention
// ends (the cleanup schedule), when an admin acknowledges that the user has signed in,
// or when the request is deleted. `pin_holds` remembers when and why, so a resend after
// the purge can say so. It never holds the PIN.

use sqlx::Row;

/// What is known about a request's delivered PIN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// First delivery, seconds.
    pub delivered_at: i64,
    /// Held (sealed) for resends until then, seconds; `None` once purged.
    pub held_until: Option<i64>,
    /// When it was purged, seconds.
    pub purged_at: Option<i64>,
    /// Why: `retention`, `acknowledged`, `deleted`, `not_retained`, `cleanup`.
    pub purge_reason: Option<String>,
}

type DbResult<T> = Result<T, crate::store::StoreError>;

/// The hold of one request, if its PIN was ever delivered (or purged).
pub async fn hold(state: &Services, request_id: &str) -> DbResult<Option<Hold>> {
    let r = sqlx::query(
        "SELECT delivered_at, held_until, purged_at, purge_reason FROM pin_holds WHERE request_id = $1",
    )
    .bind(request_id)
    .fetch_optional(state.store.pool())
    .await?;
    Ok(match r {
        Some(r) => Some(Hold {
            delivered_at: r.try_get("delivered_at")?,
            held_until: r.try_get("held_until")?,
            purged_at: r.try_get("purged_at")?,
            purge_reason: r.try_get("purge_reason")?,
        }),
        None => None,
    })
}

/// Records a delivery: the first one starts the retention (`held_until`), later ones
/// (resends) keep it. Returns `held_until` (`None` when nothing is retained).
pub async fn record_delivery(state: &Services, request_id: &str, at: i64) -> DbResult<Option<i64>> {
    let days = i64::from(state.config.pin_retention_days);
    if let Some(h) = hold(state, request_id).await? {
        return Ok(h.held_until);
    }
    let until = (days > 0).then_some(at + days * 86400);
    sqlx::query(
        "INSERT INTO pin_holds (request_id, delivered_at, held_until, purged_at, purge_reason) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(request_id)
    .bind(at)
    .bind(until)
    .bind(if until.is_none() { Some(at) } else { None })
    .bind(if until.is_none() {
        Some("not_retained")
    } else {
        None
    })
    .execute(state.store.pool())
    .await?;
    Ok(until)
}

/// Destroys the sealed PIN of a request and records why. Idempotent: a second purge
/// keeps the first date and reason.
pub async fn purge(state: &Services, request_id: &str, at: i64, reason: &str) -> DbResult<()> {
    use crate::store::Store;
    state
        .store
        .delete_secret(request_id, crate::secrets::Purpose::Pin)
        .await?;
    let n = sqlx::query(
        "UPDATE pin_holds SET held_until = NULL, purged_at = $1, purge_reason = $2 \
         WHERE request_id = $3 AND purged_at IS NULL",
    )
    .bind(at)
    .bind(reason)
    .bind(request_id)
    .execute(state.store.pool())
    .await?
    .rows_affected();
    if n == 0 && hold(state, request_id).await?.is_none() {
        sqlx::query(
            "INSERT INTO pin_holds (request_id, delivered_at, held_until, purged_at, purge_reason) \
             VALUES ($1, $2, NULL, $3, $4)",
        )
        .bind(request_id)
        .bind(at)
        .bind(at)
        .bind(reason)
        .execute(state.store.pool())
        .await?;
    }
    Ok(())
}

/// The cleanup run as of `at`: purges held PINs whose retention ended, then the secrets
/// of requests completed or deleted more than `cron_data_cleanup_completed_days` ago
/// (recording that for their PINs too; 0, the default as in Yubico's connector, keeps
/// them). Returns how many PINs were purged.
pub async fn cleanup(state: &Services, at: i64) -> DbResult<u64> {
    use crate::store::Store;
    let days = state.config.cron_data_cleanup_completed_days;
    // 0: never (no request is older than the start of time).
    let before = if days == 0 {
        i64::MIN
    } else {
        at - i64::from(days) * 86400
    };
    let due: Vec<(String, &str)> = sqlx::query(
        "SELECT request_id FROM pin_holds WHERE purged_at IS NULL AND held_until < $1",
    )
    .bind(at)
    .fetch_all(state.store.pool())
    .await?
    .iter()
    .map(|r| r.try_get::<String, _>("request_id").map(|id| (id, "retention")))
    .chain(
        sqlx::query(
            "SELECT h.request_id FROM pin_holds h JOIN requests r ON r.id = h.request_id \
             WHERE h.purged_at IS NULL AND r.state IN ('complete', 'deleted') AND r.updated_at < $1",
        )
        .bind(before)
        .fetch_all(state.store.pool())
        .await?
        .iter()
        .map(|r| r.try_get::<String, _>("request_id").map(|id| (id, "cleanup"))),
    )
    .collect::<Result<_, _>>()?;
    let mut n = 0;
    for (id, reason) in due {
        if hold(state, &id)
            .await?
            .is_some_and(|h| h.purged_at.is_none())
        {
            purge(state, &id, at, reason).await?;
            n += 1;
        }
    }
    state.store.purge_completed(before).await?;
    Ok(n)
}

/// Seconds to an RFC 3339 UTC date for messages and views.
pub fn date(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| at.to_string())
}

/// Why the PIN of a request can no longer be resent, and what to do (for the 409).
pub fn gone_message(h: &Hold) -> String {
    let when = h.purged_at.map(date).unwrap_or_default();
    let why = match h.purge_reason.as_deref() {
        Some("acknowledged") => format!(
            "an admin acknowledged on {when} that the user has signed in, so the PIN was purged"
        ),
        Some("retention") => {
            format!("the PIN was purged on {when}: its retention (pin_retention_days) ended")
        }
        Some("not_retained") => {
            format!("the PIN was destroyed right after delivery on {when} (pin_retention_days = 0)")
        }
        Some("deleted") => format!("the PIN was purged on {when} when the request was deleted"),
        _ => format!("the PIN was purged on {when} by the data cleanup"),
    };
    format!(
        "{why}; the connector no longer knows it. Reset the key's PIN (the user, or an admin with the key) or order a new key"
    )
}
