//! PIN delivery. Today: an HTTP webhook compatible in spirit with the guide's
//! `SEND_PIN_URL` (a Logic App that mails the PIN). SMTP delivery is not built yet.
//!
//! The PIN is only ever in this request body; it is never logged.

use crate::app::AppState;
use crate::store::RequestRow;
use serde_json::json;

/// Sends the PIN to the configured channel. The error text never contains the PIN.
pub async fn deliver(state: &AppState, row: &RequestRow, pin: &str) -> Result<(), String> {
    let Some(url) = &state.config.send_pin_url else {
        return Err("no PIN channel is configured: set SEND_PIN_URL (send_pin_url)".into());
    };
    let contacts: Vec<String> = serde_json::from_str(&row.pin_contacts).unwrap_or_default();
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
