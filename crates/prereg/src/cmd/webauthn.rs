//! `prereg webauthn ...`: check WebAuthn data the way a relying party would, with the
//! `webauthn` crate's verifier.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use webauthn::{AttestationPolicy, RegistrationExpectations, TrustRoots, b64};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Verify a registration (clientDataJSON + attestation object) and print the
    /// credential as JSON: `{"fmt","aaguid","credential_id","public_key_cose","attested"}`
    /// (bytes as base64url).
    ///
    /// Attestation is required: the object must be `packed` with an x5c chain that
    /// reaches one of the `--trust-root` certificates. With `--allow-unattested`,
    /// `none`, self attestation and untrusted chains are accepted (statement
    /// signatures must still verify) and `attested` says which it was.
    ///
    /// Without `--origin` the expected origin is `https://<rp-id>`. Without
    /// `--challenge` the challenge is taken from the clientData itself, so the
    /// challenge check then proves nothing; pass `--challenge` with the challenge the
    /// IdP issued to have it checked.
    VerifyAttestation {
        /// The RP id the credential is for, e.g. `login.microsoft.com`.
        #[arg(long, value_name = "ID")]
        rp_id: String,
        /// clientDataJSON, base64url.
        #[arg(long, value_name = "B64URL")]
        client_data: String,
        /// The CBOR attestation object, base64url.
        #[arg(long, value_name = "B64URL")]
        attestation_object: String,
        /// PEM file with one or more attestation root certificates. Repeatable.
        #[arg(long, value_name = "ROOT.pem", required = true)]
        trust_root: Vec<String>,
        /// Refuse the registration unless the UV flag is set.
        #[arg(long)]
        require_uv: bool,
        /// Allowed origin (default `https://<rp-id>`). Repeatable.
        #[arg(long, value_name = "ORIGIN")]
        origin: Vec<String>,
        /// The challenge as issued (default: the one in the clientData, unchecked).
        #[arg(long, value_name = "CHALLENGE")]
        challenge: Option<String>,
        /// Accept registrations without trusted attestation (reported as
        /// `"attested": false`) instead of refusing them.
        #[arg(long)]
        allow_unattested: bool,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::VerifyAttestation {
            rp_id,
            client_data,
            attestation_object,
            trust_root,
            require_uv,
            origin,
            challenge,
            allow_unattested,
        } => verify_attestation(VerifyArgs {
            rp_id,
            client_data,
            attestation_object,
            trust_root,
            require_uv,
            origin,
            challenge,
            allow_unattested,
        }),
    }
}

struct VerifyArgs {
    rp_id: String,
    client_data: String,
    attestation_object: String,
    trust_root: Vec<String>,
    require_uv: bool,
    origin: Vec<String>,
    challenge: Option<String>,
    allow_unattested: bool,
}

fn verify_attestation(a: VerifyArgs) -> anyhow::Result<()> {
    let client_data =
        b64::decode("--client-data", &a.client_data).context("reading --client-data")?;
    let attestation_object = b64::decode("--attestation-object", &a.attestation_object)
        .context("reading --attestation-object")?;

    let mut roots = TrustRoots::default();
    for path in &a.trust_root {
        let pem =
            std::fs::read_to_string(path).with_context(|| format!("reading trust root {path}"))?;
        roots.extend(TrustRoots::from_pem(&pem).with_context(|| format!("trust root {path}"))?);
    }

    let challenge = match a.challenge {
        Some(c) => c,
        None => {
            webauthn::ClientData::parse(&client_data)
                .context("reading --client-data")?
                .challenge
        }
    };
    let policy = if a.allow_unattested {
        AttestationPolicy::Optional(roots)
    } else {
        AttestationPolicy::Required(roots)
    };
    let mut exp = RegistrationExpectations::new(a.rp_id.clone(), challenge, policy);
    exp.require_uv = a.require_uv;
    // Every certificate in the chain, and the root, must be valid now.
    exp.now = Some(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs(),
    );
    if !a.origin.is_empty() {
        exp.origins = a.origin;
    }

    let cred = webauthn::verify_registration(&exp, &client_data, &attestation_object)
        .with_context(|| format!("registration for RP {} refused", a.rp_id))?;
    let out = json!({
        "fmt": cred.fmt,
        "aaguid": cred.aaguid.to_string(),
        "credential_id": b64::encode(&cred.credential_id),
        "public_key_cose": b64::encode(&cred.public_key_cose),
        "attested": cred.attested,
    });
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}
