//! PIN delivery: SMTP (STARTTLS, TLS, or plain to a loopback host; optional login) to
//! the request's contacts, or an HTTP webhook in the spirit of the guide's
//! `SEND_PIN_URL` (a Logic App that mails the PIN). SMTP wins when both are configured.
//!
//! The PIN is only ever in this request body; it is never logged.

use crate::app::AppState;
use crate::store::RequestRow;
use serde_json::json;

/// Sends the PIN to the configured channel. The error text never contains the PIN.
pub async fn deliver(state: &AppState, row: &RequestRow, pin: &str) -> Result<(), String> {
    let contacts: Vec<String> = serde_json::from_str(&row.pin_contacts).unwrap_or_default();
    if let Some(smtp) = &state.config.smtp {
        send_smtp(smtp, row, &contacts, pin).await?;
        tracing::info!(request_id = %row.id, recipients = contacts.len(), "PIN mailed");
        return Ok(());
    }
    let Some(url) = &state.config.send_pin_url else {
        return Err(
            "no PIN channel is configured: set SMTP_HOST (smtp_host) or SEND_PIN_URL (send_pin_url)"
                .into(),
        );
    };
    let body = zeroize::Zeroizing::new(
        json!({
            "request_id": row.id,
            "shipment_id": row.shipment_id,
            "serial_number": row.serial,
            "user_id": row.user_id,
            "user": row.user_label,
            "emails_to": contacts,
            "subject": format!("PIN for the security key of {}", row.user_label),
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
        .map_err(|e| format!("PIN webhook did not answer: {}", e.without_url()))?;
    if !r.status().is_success() {
        return Err(format!("PIN webhook answered {}", r.status()));
    }
    tracing::info!(request_id = %row.id, recipients = contacts.len(), "PIN delivered");
    Ok(())
}

/// Sends the PIN by SMTP to each contact, one message each. The error text never
/// contains the PIN.
pub async fn send_smtp(
    smtp: &crate::config::Smtp,
    row: &RequestRow,
    contacts: &[String],
    pin: &str,
) -> Result<(), String> {
    use crate::config::SmtpSecurity;
    use lettre::message::header::ContentType;
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
    use secrecy::ExposeSecret;

    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
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
        .timeout(Some(std::time::Duration::from_secs(30)));
    if let (Some(u), Some(p)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(Credentials::new(u.clone(), p.expose_secret().to_owned()));
    }
    let mailer = builder.build();
    let from: lettre::message::Mailbox =
        smtp.from.parse().map_err(|e| format!("smtp_from: {e}"))?;
    let serial = row.serial.as_deref().unwrap_or("(unknown)");
    for to in contacts {
        let to: lettre::message::Mailbox = to
            .parse()
            .map_err(|e| format!("PIN contact {to:?} is not an address: {e}"))?;
        let body = zeroize::Zeroizing::new(format!(
            "A security key (YubiKey serial {serial}) is on its way to {user}, already registered \
             for signing in to Microsoft Entra ID.\r\n\r\n\
             Its PIN is: {pin}\r\n\r\n\
             Please give this PIN to {user} separately from the key (in person or by phone), \
             never together with it. Delete this message afterwards.\r\n",
            user = row.user_label,
        ));
        let msg = Message::builder()
            .from(from.clone())
            .to(to)
            .subject(format!(
                "PIN for the security key of {} (serial {serial})",
                row.user_label
            ))
            .header(ContentType::TEXT_PLAIN)
            .body(body.as_str().to_owned())
            .map_err(|e| format!("building the PIN message: {e}"))?;
        mailer
            .send(msg)
            .await
            .map_err(|e| format!("SMTP {}:{}: {e}", smtp.host, smtp.port))?;
    }
    Ok(())
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

use crate::store::Backend;
use sqlx::Row;

/// The `pin_holds` table (run by the store's migration).
pub fn schema(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &["CREATE TABLE IF NOT EXISTS pin_holds (
            request_id TEXT PRIMARY KEY, delivered_at INTEGER NOT NULL, held_until INTEGER,
            purged_at INTEGER, purge_reason TEXT)"],
        Backend::Postgres => &["CREATE TABLE IF NOT EXISTS pin_holds (
            request_id TEXT PRIMARY KEY, delivered_at BIGINT NOT NULL, held_until BIGINT,
            purged_at BIGINT, purge_reason TEXT)"],
    }
}

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
pub async fn hold(state: &AppState, request_id: &str) -> DbResult<Option<Hold>> {
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
pub async fn record_delivery(state: &AppState, request_id: &str, at: i64) -> DbResult<Option<i64>> {
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
pub async fn purge(state: &AppState, request_id: &str, at: i64, reason: &str) -> DbResult<()> {
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
/// (recording that for their PINs too). Returns how many PINs were purged.
pub async fn cleanup(state: &AppState, at: i64) -> DbResult<u64> {
    use crate::store::Store;
    let before = at - i64::from(state.config.cron_data_cleanup_completed_days) * 86400;
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
