//! `prereg sandbox`: runs the local sandboxes (the YubiEnterprise Delivery fulfiller with
//! FIDO Pre-reg, the Microsoft Entra and Okta sandboxes, and an SMTP mail catcher) on
//! loopback, prints one JSON line when ready (base URLs, seeded tokens, the seeded
//! organisation, the Entra tenant and its app registrations, the Okta org, its SSWS token
//! and service app, the mail catcher), and stops cleanly on SIGINT or SIGTERM.

use anyhow::{Context, bail};
use clap::Args as ClapArgs;
use sandbox::faults::FaultConfig;
use sandbox::fulfiller::Seed;
use sandbox::{App, Config};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Options of `prereg sandbox`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Where the fulfiller sandbox listens (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8700", value_name = "ADDR")]
    pub fulfiller_listen: SocketAddr,
    /// Where the Microsoft Entra sandbox (token service, Graph, sign-in) listens
    /// (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8701", value_name = "ADDR")]
    pub entra_listen: SocketAddr,
    /// A JSON Entra tenant (users, groups, app registrations, FIDO2 policy) instead of
    /// the built-in Contoso tenant.
    #[arg(long, value_name = "FILE")]
    pub entra_seed: Option<PathBuf>,
    /// Where the Okta sandbox (management API, OAuth token, WebAuthn Preregistration
    /// API, sign-in, `/sandbox/v1/mail`) listens (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8702", value_name = "ADDR")]
    pub okta_listen: SocketAddr,
    /// A JSON Okta org (users, groups, API tokens, service apps) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub okta_seed: Option<PathBuf>,
    /// Where the SMTP mail catcher listens (loopback only; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:8725", value_name = "ADDR")]
    pub smtp_listen: SocketAddr,
    /// Also write a `prereg serve --config` file pointing at this sandbox
    /// (docs/connector.md): fulfiller token, tenant, app credentials, issuer, mail catcher.
    #[arg(long, value_name = "PATH")]
    pub connector_config: Option<PathBuf>,
    /// A JSON seed (tokens, products, inventory, customizations, undeliverable
    /// addresses, denied parties) instead of the built-in one.
    #[arg(long, value_name = "FILE")]
    pub seed: Option<PathBuf>,
    /// Run a processing round by itself every `--auto-fulfil-every` seconds (for demos);
    /// otherwise the clock moves only on `POST /sandbox/v1/advance`.
    #[arg(long)]
    pub auto_fulfil: bool,
    /// Seconds between automatic rounds.
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub auto_fulfil_every: f64,
    /// Fault injection: fraction of service requests answered 500.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub error_rate: f64,
    /// Fault injection: fraction answered 429 with Retry-After.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub rate_limit_rate: f64,
    /// Fault injection: the Retry-After value of injected 429s.
    #[arg(long, default_value_t = 1, value_name = "SECS")]
    pub retry_after: u64,
    /// Fault injection: added latency per service request.
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub latency_ms: u64,
    /// Fault injection: fraction of connections dropped mid-response.
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub drop_rate: f64,
    /// Fault injection: fraction of requests carried out, then dropped mid-response
    /// (e.g. a shipment created whose answer is lost).
    #[arg(long, default_value_t = 0.0, value_name = "FRACTION")]
    pub drop_after_rate: f64,
    /// The fulfiller acts as if it did not know `customer_reference`: dropped on
    /// create, ignored as a list filter.
    #[arg(long)]
    pub ignore_customer_reference: bool,
    /// The fulfiller acts as if it did not know `customer_reference`: dropped on
    /// create, a search by it refused (400).
    #[arg(long)]
    pub refuse_customer_reference: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for addr in [
        args.fulfiller_listen,
        args.entra_listen,
        args.okta_listen,
        args.smtp_listen,
    ] {
        if !addr.ip().is_loopback() {
            bail!(
                "the sandbox listens on loopback only; {addr} is not a loopback address (use 127.0.0.1 or [::1])"
            );
        }
    }
    for (name, rate) in [
        ("--error-rate", args.error_rate),
        ("--rate-limit-rate", args.rate_limit_rate),
        ("--drop-rate", args.drop_rate),
        ("--drop-after-rate", args.drop_after_rate),
    ] {
        if !(0.0..=1.0).contains(&rate) {
            bail!("{name} must be a fraction from 0 to 1, not {rate}");
        }
    }
    let auto_fulfil = if args.auto_fulfil {
        if !(args.auto_fulfil_every.is_finite() && args.auto_fulfil_every >= 0.01) {
            bail!("--auto-fulfil-every must be at least 0.01 seconds");
        }
        Some(Duration::from_secs_f64(args.auto_fulfil_every))
    } else {
        None
    };
    let seed = match &args.seed {
        Some(p) => Seed::load(p)?,
        None => Seed::default(),
    };
    let mut config = Config::for_tests();
    config.fulfiller_addr = args.fulfiller_listen;
    config.entra_addr = args.entra_listen;
    if let Some(p) = &args.entra_seed {
        config.entra_seed = sandbox::entra::TenantSeed::load(p)?;
    }
    config.okta_addr = args.okta_listen;
    config.smtp_addr = args.smtp_listen;
    if let Some(p) = &args.okta_seed {
        config.okta_seed = sandbox::okta::OrgSeed::load(p)?;
    }
    config.seed = seed;
    config.auto_fulfil = auto_fulfil;
    config.faults = FaultConfig {
        error_rate: args.error_rate,
        rate_limit_rate: args.rate_limit_rate,
        retry_after_secs: Some(args.retry_after),
        latency_ms: args.latency_ms,
        drop_rate: args.drop_rate,
        drop_after_rate: args.drop_after_rate,
        ignore_customer_reference: args.ignore_customer_reference,
        refuse_customer_reference: args.refuse_customer_reference,
        script: Vec::new(),
    };
    let connector_config = args.connector_config.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let app = App::build(config).await?;
        let ready = app.ready_info();
        if let Some(path) = &connector_config {
            connector::sandbox_config::write_file(path, &ready).map_err(anyhow::Error::msg)?;
        }
        super::print_ready_line(&ready)?;
        app.run(super::shutdown_signal())
            .await
            .context("serving the sandbox")?;
        anyhow::Ok(())
    })
}
