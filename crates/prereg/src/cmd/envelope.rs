//! `prereg envelope ...`: look inside pre-registration envelopes (profile v1,
//! docs/envelope.md) from the command line.
//!
//! `inspect` shows protected headers only and needs no key. `open` decrypts and verifies
//! with keys the operator holds, and prints the payload only once every check passed.

use anyhow::{Context, bail};
use clap::Subcommand;
use envelope::{Jwks, PrivateJwk};

use super::read_input;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the protected header of a JWE or JWS as JSON, without decrypting or
    /// verifying anything.
    Inspect {
        /// File holding the compact JWE or JWS, or `-` for standard input.
        token: String,
    },
    /// Decrypt and verify a request or a response and print its payload as JSON.
    ///
    /// A request (JWE `cty` fido-prereg+json) opens with the fulfiller's transport private
    /// key. A response (JWE `cty` JWS) opens with the requester's response private key,
    /// and also needs the fulfiller's signing JWKS and the request JWE it answers.
    Open {
        /// Private JWK file (with `d`): a transport key for requests, a response key
        /// for responses. Repeat to try several keys (rotation); the JWE `kid` picks one.
        #[arg(long, value_name = "KEY.jwk", required = true)]
        key: Vec<String>,
        /// Trusted signing keys (`{"keys":[...]}`), for responses.
        #[arg(long, value_name = "JWKS.json")]
        signing_jwks: Option<String>,
        /// File holding the request JWE this response answers, for responses.
        #[arg(long, value_name = "REQ")]
        request: Option<String>,
        /// File holding the compact JWE, or `-` for standard input.
        token: String,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Inspect { token } => inspect(&token),
        Command::Open {
            key,
            signing_jwks,
            request,
            token,
        } => open(&key, signing_jwks.as_deref(), request.as_deref(), &token),
    }
}

fn inspect(token_arg: &str) -> anyhow::Result<()> {
    let token = read_input(token_arg)?;
    let header = envelope::inspect(&token).with_context(|| format!("inspecting {token_arg}"))?;
    print_json(&header)
}

fn open(
    key_args: &[String],
    jwks_arg: Option<&str>,
    request_arg: Option<&str>,
    token_arg: &str,
) -> anyhow::Result<()> {
    let token = read_input(token_arg)?;
    let keys = key_args
        .iter()
        .map(|arg| {
            let text = read_input(arg)?;
            PrivateJwk::parse(&text).with_context(|| format!("reading private key {arg}"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;

    let header = envelope::inspect(&token).with_context(|| format!("opening {token_arg}"))?;
    let Some(jwe) = header.get("jwe") else {
        bail!("{token_arg} is a JWS, not a JWE; `open` takes a request or response JWE");
    };
    let payload = match jwe.get("cty").and_then(|c| c.as_str()) {
        Some(envelope::CTY_REQUEST) => {
            if jwks_arg.is_some() || request_arg.is_some() {
                bail!(
                    "{token_arg} is a request; --signing-jwks and --request apply only to responses"
                );
            }
            envelope::open_request(&token, &keys)
                .with_context(|| format!("opening request {token_arg}"))?
                .to_value()?
        }
        Some(envelope::CTY_RESPONSE) => {
            let (Some(jwks_arg), Some(request_arg)) = (jwks_arg, request_arg) else {
                bail!(
                    "{token_arg} is a response; pass the fulfiller's signing keys with \
                     --signing-jwks and the request it answers with --request"
                );
            };
            let trusted = Jwks::parse(&read_input(jwks_arg)?)
                .with_context(|| format!("reading signing JWKS {jwks_arg}"))?;
            let request = read_input(request_arg)?;
            envelope::open_response(&token, &keys, &trusted, &request)
                .with_context(|| format!("opening response {token_arg}"))?
                .to_value()?
        }
        _ => bail!(
            "{token_arg}: JWE cty is neither {:?} (request) nor {:?} (response)",
            envelope::CTY_REQUEST,
            envelope::CTY_RESPONSE
        ),
    };
    print_json(&payload)
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
