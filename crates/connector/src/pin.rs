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

    let builder = match smtp.security {
        SmtpSecurity::Plain => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host),
        SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| format!("SMTP {}: {e}", smtp.host))?,
        SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| format!("SMTP {}: {e}", smtp.host))?,
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
