//! A connector configuration that points at a running sandbox (`prereg sandbox
//! --connector-config PATH`, and the integration tests): fulfiller URLs and token,
//! tenant, the connector app's credentials, the token issuer and the allowed test
//! client, so trying the connector needs no hand edits.

use serde_json::Value;

/// Where the connector itself should keep its state.
pub struct Local<'a> {
    /// `sqlite://...` or `postgres://...`.
    pub database_url: &'a str,
    /// The master key, base64.
    pub master_key_b64: &'a str,
    /// `127.0.0.1:0` in tests.
    pub listen_addr: &'a str,
    /// The PIN webhook, if any.
    pub send_pin_url: Option<&'a str>,
}

fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_str().unwrap_or_default()
}

fn q(v: &str) -> String {
    Value::from(v).to_string()
}

/// TOML text for `prereg serve --config`, from the sandbox's ready line.
pub fn from_ready(ready: &Value, local: &Local<'_>) -> String {
    let f = &ready["fulfiller"];
    let e = &ready["entra"];
    let token = f["tokens"][0].as_str().unwrap_or_default();
    let connector_id = s(e, &["connector_app", "client_id"]);
    let audiences: Vec<&str> = [s(e, &["connector_app", "identifier_uri"]), connector_id]
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let clients: Vec<&str> = [s(e, &["test_client_app", "client_id"])]
        .into_iter()
        .filter(|a| !a.is_empty())
        .collect();
    let mut out = String::from(
        "# Written by `prereg sandbox --connector-config`: points at the local sandbox.\n",
    );
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k} = {v}\n"));
    kv("listen_addr", q(local.listen_addr));
    kv("database_url", q(local.database_url));
    kv("master_key", q(local.master_key_b64));
    kv("ye_api_base_url", q(s(f, &["api_base_url"])));
    kv("yed_api_token", q(token));
    kv(
        "ye_jwks_transport_endpoint",
        q(s(f, &["transport_jwks_url"])),
    );
    kv("ye_jwks_sign_endpoint", q(s(f, &["signing_jwks_url"])));
    kv("azure_tenant_id", q(s(e, &["tenant_id"])));
    kv("entra_fido_api_client_id", q(connector_id));
    kv(
        "entra_fido_api_client_secret",
        q(s(e, &["connector_app", "client_secret"])),
    );
    kv("entra_authority_url", q(s(e, &["authority_host"])));
    kv("graph_api_base_url", q(s(e, &["graph_url"])));
    kv("auth_issuer", q(s(e, &["issuer"])));
    kv("auth_jwks_url", q(s(e, &["jwks_url"])));
    kv("allowed_audiences", Value::from(audiences).to_string());
    kv("allowed_client_apps", Value::from(clients).to_string());
    match (local.send_pin_url, ready["mail"]["smtp"].as_str()) {
        (Some(u), _) => kv("send_pin_url", q(u)),
        // The sandbox's mail catcher (plain SMTP on loopback).
        (None, Some(smtp)) => {
            if let Some((host, port)) = smtp.rsplit_once(':') {
                kv("smtp_host", q(host));
                kv("smtp_port", port.to_owned());
                kv("smtp_security", q("plain"));
                let domain = s(e, &["domain"]);
                let domain = if domain.is_empty() {
                    "prereg.invalid"
                } else {
                    domain
                };
                kv("smtp_from", q(&format!("fido-connector@{domain}")));
            }
        }
        (None, None) => {}
    }
    out
}

/// Okta-mode settings for [`okta_section`].
pub struct OktaLocal<'a> {
    /// The event hook's shared secret.
    pub hook_secret: &'a str,
    /// `auto` or `admin`.
    pub approval: &'a str,
    /// Seconds between reconciliations (0: off).
    pub reconcile_interval_seconds: u64,
    /// The connector's event hook URL to register at the Okta sandbox at start, if any.
    pub event_hook_url: Option<&'a str>,
}

/// The Okta sandbox's group that [`okta_section`] maps ("YubiKey 5 NFC").
pub const SANDBOX_GROUP: &str = "00gsandboxyk5nfc001";

/// An `[okta]` TOML section pointing at the sandbox's Okta org (SSWS token, the org's
/// domain as the RP id, the "YubiKey 5 NFC" group mapped to the fulfiller sandbox's
/// YubiKey 5 NFC product, inventory bucket and customization). Empty when the ready
/// line has no Okta sandbox. Append it after [`from_ready`]'s text (it opens a table).
pub fn okta_section(ready: &Value, o: &OktaLocal<'_>) -> String {
    let k = &ready["okta"];
    let f = &ready["fulfiller"];
    if s(k, &["base_url"]).is_empty() {
        return String::new();
    }
    let cid = f["customizations"][0].as_str().unwrap_or("C19881");
    let product = f["products"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["fido_prereg"] == true))
        .and_then(|p| p["product_id"].as_u64())
        .unwrap_or(1);
    let inventory = f["inventory"]
        .as_array()
        .and_then(|bs| {
            bs.iter()
                .find(|b| b["product_id"].as_u64() == Some(product))
        })
        .and_then(|b| b["inventory_product_id"].as_u64())
        .unwrap_or(1);
    let mut out = String::from("\n[okta]\n");
    let mut kv = |k: &str, v: String| out.push_str(&format!("{k} = {v}\n"));
    kv("org_url", q(s(k, &["base_url"])));
    kv("api_token", q(s(k, &["ssws_token"])));
    kv("rp_ids", Value::from(vec![s(k, &["domain"])]).to_string());
    kv("event_hook_secret", q(o.hook_secret));
    if let Some(u) = o.event_hook_url {
        kv("event_hook_url", q(u));
    }
    kv("approval", q(o.approval));
    kv(
        "reconcile_interval_seconds",
        o.reconcile_interval_seconds.to_string(),
    );
    out.push_str(&format!(
        "\n[[okta.groups]]\ngroup_id = {}\nproduct_id = {product}\ninventory_product_id = {inventory}\ncustomization_id = {}\n",
        q(SANDBOX_GROUP),
        q(cid)
    ));
    out
}

/// Writes a `prereg serve` config pointing at a running sandbox (for `prereg sandbox
/// --connector-config PATH`): a fresh master key, a SQLite database beside the file,
/// the API on 127.0.0.1:8080, PIN mail to the sandbox's mail catcher when it runs one.
/// The file is readable by its owner only (it holds the master key).
pub fn write_file(path: &std::path::Path, ready: &Value) -> Result<(), String> {
    let key = crate::secrets::MasterKey::generate().map_err(|e| e.to_string())?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let db = format!("sqlite://{}", dir.join("prereg-connector.db").display());
    let mut text = from_ready(
        ready,
        &Local {
            database_url: &db,
            master_key_b64: &key.to_base64(),
            listen_addr: "127.0.0.1:8080",
            send_pin_url: None,
        },
    );
    // Okta mode against the Okta sandbox: a fresh hook secret, the hook registered at
    // start, PIN after an admin approves.
    let mut secret = [0u8; 24];
    getrandom::fill(&mut secret).map_err(|e| e.to_string())?;
    let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    text.push_str(&okta_section(
        ready,
        &OktaLocal {
            hook_secret: &secret,
            approval: "admin",
            reconcile_interval_seconds: 3600,
            event_hook_url: Some("http://127.0.0.1:8080/v1/okta/events"),
        },
    ));
    // The admin console, signed in at the Entra sandbox (console helper's addition).
    text.push_str(&crate::console::sandbox_section(ready));
    std::fs::write(path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("restricting {}: {e}", path.display()))?;
    }
    Ok(())
}
