//! `prereg serve --config PATH`: the connector (Entra mode). Configuration from the
//! TOML file plus environment variables (docs/connector.md); prints one JSON line with
//! its base URL when ready; stops cleanly on SIGINT or SIGTERM.

use anyhow::Context;
use clap::Args as ClapArgs;
use std::path::PathBuf;

/// Arguments of `prereg serve`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The TOML configuration file (environment variables with the guide's names override it).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// Runs the connector until a signal arrives.
pub fn run(args: Args) -> anyhow::Result<()> {
    let config = connector::Config::load(args.config.as_deref())?;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PREREG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log_format {
        connector::config::LogFormat::Json => builder.json().init(),
        connector::config::LogFormat::Text => builder.init(),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let app = connector::Application::build(config)
            .await
            .context("starting the connector")?;
        let line = serde_json::json!({"ready": true, "connector": {"base_url": app.base_url()}});
        super::print_ready_line(&line)?;
        app.run(super::shutdown_signal())
            .await
            .context("serving the connector")?;
        anyhow::Ok(())
    })
}
