//! `prereg key ...`: the virtual YubiKey, kept in a JSON state file (the "physical key").
//!
//! Every command loads the file, runs one operation, and writes the file back, also when
//! the operation fails: a wrong PIN must cost an attempt, as on a real key. `reinsert`
//! is the power cycle (remove and reinsert), which reopens the per-insertion PIN window.
//!
//! The file holds private keys in plaintext and says so (sandbox only); the PIN is kept
//! only as a salted hash. `info` never prints private material.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use authenticator::{KeyProgrammer, Model, Pin, VirtualYubiKey, client};
use clap::Subcommand;

use super::read_input;

/// PINs may also come from the environment, so they stay out of `ps` and shell history.
const PIN_ENV: &str = "PREREG_KEY_PIN";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Make a factory-fresh virtual key (no PIN, no credentials) and write its file.
    Create {
        /// Model, e.g. "YubiKey 5 NFC", "YubiKey 5C NFC", "YubiKey 5 Nano",
        /// "Security Key NFC".
        #[arg(long, default_value = "YubiKey 5 NFC")]
        model: String,
        /// Firmware version, major.minor.patch (the AAGUID follows it: 5.1, 5.2-5.4, 5.7).
        #[arg(long, default_value = "5.7.1")]
        firmware: String,
        /// Serial number; a random 8-digit one when absent.
        #[arg(long)]
        serial: Option<u32>,
        /// Where to write the key file.
        #[arg(long, value_name = "KEY.json")]
        out: PathBuf,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Show serial, firmware, AAGUID, PIN status and credentials as JSON (no secrets).
    Info {
        /// The key file.
        key: PathBuf,
    },
    /// Set the first PIN on a key that has none.
    SetPin {
        /// The key file.
        key: PathBuf,
        /// The new PIN (at least the key's minimum length, 4 by default).
        #[arg(long, env = PIN_ENV, hide_env_values = true)]
        pin: String,
    },
    /// Change the PIN (also clears a pending forced PIN change).
    ChangePin {
        /// The key file.
        key: PathBuf,
        /// The current PIN.
        #[arg(long)]
        old: String,
        /// The new PIN.
        #[arg(long)]
        new: String,
    },
    /// Remove and reinsert the key: after three wrong PINs this is needed to try again.
    Reinsert {
        /// The key file.
        key: PathBuf,
    },
    /// Raise the minimum PIN length and/or force a PIN change (firmware 5.7+).
    SetMinPinLength {
        /// The key file.
        key: PathBuf,
        /// The current PIN (needed once a PIN is set).
        #[arg(long, env = PIN_ENV, hide_env_values = true)]
        pin: Option<String>,
        /// The new minimum length (it can only go up).
        #[arg(long)]
        length: Option<u8>,
        /// Make the user change the PIN before the key can be used.
        #[arg(long)]
        force_change: bool,
    },
    /// Erase every credential and the PIN. Only right after `reinsert` (as on a real key).
    Reset {
        /// The key file.
        key: PathBuf,
    },
    /// Print the sandbox attestation root certificate (PEM) that every virtual key's
    /// attestation chains to. Trust it in sandbox IdPs only.
    SandboxRoot,
    /// Register: read creation options (bare or `{"publicKey": {...}}`, as an IdP
    /// returns them) and print the WebAuthn registration JSON.
    MakeCredential {
        /// The key file.
        key: PathBuf,
        /// PublicKeyCredentialCreationOptions JSON file, or `-` for standard input.
        #[arg(long, value_name = "OPTIONS.json")]
        options: String,
        /// The web origin, e.g. `https://login.microsoft.com`.
        #[arg(long)]
        origin: String,
        /// The key's PIN (user verification).
        #[arg(long, env = PIN_ENV, hide_env_values = true)]
        pin: Option<String>,
    },
    /// Sign in with a discoverable credential and print the WebAuthn assertion JSON.
    GetAssertion {
        /// The key file.
        key: PathBuf,
        /// The RP ID, e.g. login.microsoft.com.
        #[arg(long)]
        rp_id: String,
        /// The challenge: base64url as the RP sent it, or any other text, which is
        /// base64url-encoded first.
        #[arg(long)]
        challenge: String,
        /// The web origin, e.g. `https://login.microsoft.com`.
        #[arg(long)]
        origin: String,
        /// The key's PIN (user verification).
        #[arg(long, env = PIN_ENV, hide_env_values = true)]
        pin: Option<String>,
        /// Use this credential (base64url) instead of the newest discoverable one.
        #[arg(long)]
        credential_id: Option<String>,
    },
    /// Sign in to the Entra or Okta sandbox as a user, with the key and its PIN
    /// (signin/begin, an assertion, signin/finish), and print who signed in.
    SignIn {
        /// The key file.
        key: PathBuf,
        /// The key's PIN (user verification).
        #[arg(long, env = PIN_ENV, hide_env_values = true)]
        pin: String,
        /// The Entra sandbox's base URL (`entra.base_url` in the `prereg sandbox` ready
        /// line), e.g. http://127.0.0.1:8701.
        #[arg(
            long,
            value_name = "URL",
            required_unless_present = "okta",
            conflicts_with = "okta"
        )]
        entra: Option<String>,
        /// The Okta sandbox's base URL (`okta.base_url` in the ready line), e.g.
        /// http://127.0.0.1:8702. The first sign-in closes the org's send-pin.
        #[arg(long, value_name = "URL")]
        okta: Option<String>,
        /// The user's UPN or object id (Entra), login or id (Okta).
        #[arg(long, value_name = "UPN")]
        user: String,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create {
            model,
            firmware,
            serial,
            out,
            force,
        } => create(&model, &firmware, serial, &out, force),
        Command::SandboxRoot => {
            print!("{}", authenticator::sandbox_attestation_root_pem());
            Ok(())
        }
        Command::Info { key } => {
            let k = load(&key)?;
            print_json(&k.summary())
        }
        Command::SetPin { key, pin } => with_key(&key, |k| {
            k.set_pin(&Pin::new(pin))?;
            print_json(&k.summary())
        }),
        Command::ChangePin { key, old, new } => with_key(&key, |k| {
            k.change_pin(&Pin::new(old), &Pin::new(new))?;
            print_json(&k.summary())
        }),
        Command::Reinsert { key } => with_key(&key, |k| {
            k.power_cycle();
            print_json(&k.summary())
        }),
        Command::SetMinPinLength {
            key,
            pin,
            length,
            force_change,
        } => {
            if length.is_none() && !force_change {
                bail!("nothing to do: give --length N and/or --force-change");
            }
            with_key(&key, |k| {
                let pin = pin.map(Pin::new);
                k.set_min_pin_length(pin.as_ref(), length, force_change)?;
                print_json(&k.summary())
            })
        }
        Command::Reset { key } => with_key(&key, |k| {
            k.reset()?;
            print_json(&k.summary())
        }),
        Command::MakeCredential {
            key,
            options,
            origin,
            pin,
        } => {
            let options_json = read_input(&options)?;
            with_key(&key, |k| {
                let pin = pin.map(Pin::new);
                let reg = client::make_credential(k, &options_json, &origin, pin.as_ref())?;
                print_json(&reg)
            })
        }
        Command::GetAssertion {
            key,
            rp_id,
            challenge,
            origin,
            pin,
            credential_id,
        } => {
            let challenge = challenge_b64url(&challenge);
            let allow = match credential_id {
                Some(id) => vec![
                    webauthn::b64::decode("--credential-id", &id)
                        .with_context(|| format!("--credential-id {id:?} is not base64url"))?,
                ],
                None => vec![],
            };
            with_key(&key, |k| {
                let pin = pin.map(Pin::new);
                let a =
                    client::get_assertion(k, &rp_id, &challenge, &origin, &allow, pin.as_ref())?;
                print_json(&a)
            })
        }
        Command::SignIn {
            key,
            pin,
            entra,
            okta,
            user,
        } => {
            let (base, idp) = match (entra, okta) {
                (Some(url), _) => (url, "Entra"),
                (None, Some(url)) => (url, "Okta"),
                (None, None) => bail!("give --entra URL or --okta URL"),
            };
            sign_in(&key, &Pin::new(pin), &base, idp, &user)
        }
    }
}

/// The end user's sign-in against the Entra or Okta sandbox (`/sandbox/v1/signin/...`;
/// both speak the same shape). The key file is saved whatever the sign-in returned.
fn sign_in(path: &Path, pin: &Pin, base: &str, idp: &str, user: &str) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let http = reqwest::Client::new();
    with_key(path, |k| {
        let who = runtime.block_on(sign_in_with(&http, k, pin, base, idp, user))?;
        print_json(&who)
    })
}

/// Signs `user` in at the Entra or Okta sandbox at `base` (`idp` names it in errors)
/// with the key in hand and its PIN: `signin/begin`, an assertion, `signin/finish`.
/// Answers the sandbox's `finish` body (who signed in). Used by `prereg key sign-in`
/// and `prereg demo`.
pub async fn sign_in_with(
    http: &reqwest::Client,
    key: &mut VirtualYubiKey,
    pin: &Pin,
    base: &str,
    idp: &str,
    user: &str,
) -> anyhow::Result<serde_json::Value> {
    let finished = sandbox::signin::sign_in(http, base, key, user, pin)
        .await
        .with_context(|| format!("signing {user} in at the {idp} sandbox"))?;
    if !finished.signed_in() {
        bail!(
            "sign-in finish refused ({}): {}",
            finished.status,
            finished.message()
        );
    }
    Ok(finished.body)
}

fn create(
    model: &str,
    firmware: &str,
    serial: Option<u32>,
    out: &Path,
    force: bool,
) -> anyhow::Result<()> {
    if out.exists() && !force {
        bail!(
            "{} already exists; it may be a key with credentials on it. Pass --force to \
             replace it",
            out.display()
        );
    }
    let model: Model = model.parse()?;
    let key = VirtualYubiKey::new(model, firmware.parse()?, serial)?;
    key.save(out)?;
    print_json(&key.summary())
}

fn load(path: &Path) -> anyhow::Result<VirtualYubiKey> {
    Ok(VirtualYubiKey::load(path)?)
}

/// Loads the key, runs `op`, and saves the key whatever `op` returned: counters changed
/// by a failed attempt are part of the key's state.
fn with_key(
    path: &Path,
    op: impl FnOnce(&mut VirtualYubiKey) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut key = load(path)?;
    let result = op(&mut key);
    key.save(path)
        .with_context(|| format!("saving the key state to {}", path.display()))?;
    result
}

/// A challenge as clientDataJSON carries it: kept when it already is base64url, else the
/// text's UTF-8 bytes, base64url-encoded.
fn challenge_b64url(challenge: &str) -> String {
    let is_b64url = !challenge.is_empty()
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && authenticator::b64::decode(challenge).is_some();
    if is_b64url {
        challenge.to_owned()
    } else {
        authenticator::b64::encode(challenge.as_bytes())
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges_pass_through_when_base64url_else_get_encoded() {
        assert_eq!(challenge_b64url("Y2hhbGxlbmdl"), "Y2hhbGxlbmdl");
        assert_eq!(challenge_b64url("hello world"), "aGVsbG8gd29ybGQ");
        assert_eq!(challenge_b64url("a+b/"), "YStiLw");
    }
}
