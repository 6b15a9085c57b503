//! `prereg entra reconcile`: the Entra group trigger's reconciliation from the command
//! line, against the connector's database and vendors (docs/entra-groups.md). Each
//! ordered member's shipment is created at once (the intake of `POST /v1/fpr/shipments`);
//! a running `prereg serve` on the same database carries the requests on, or
//! `--process` runs them here.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Arguments of `prereg entra reconcile`.
#[derive(Debug, Args)]
pub struct Conf {
    /// The `prereg serve` configuration file (with `[[entra.groups]]`).
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// Also process the due jobs here (otherwise a running `prereg serve` does).
    #[arg(long)]
    process: bool,
}

/// `prereg entra ...`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Order keys for members of mapped Entra groups who never had one; prints a JSON
    /// summary (members checked, requests started, members that failed and why).
    Reconcile(Conf),
}

/// How long `--process` runs at most.
const PROCESS_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs a `prereg entra` command.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let Command::Reconcile(c) = cmd;
        let config = connector::Config::load(Some(&c.config))?;
        if config.entra.as_ref().is_none_or(|e| e.groups.is_empty()) {
            bail!(
                "{} maps no Entra groups ([[entra.groups]]): the group trigger is off",
                c.config.display()
            );
        }
        let state = connector::Services::build(config)
            .await
            .context("opening the connector's database and clients")?;
        let sum = connector::entra_groups::reconcile(&state)
            .await
            .map_err(|e| anyhow::anyhow!(e))?;
        println!("{}", serde_json::to_string(&sum)?);
        if c.process {
            let s = connector::runner::run_until_idle(state, PROCESS_LIMIT).await;
            eprintln!("processed {} jobs", s.processed);
        }
        Ok(())
    })
}
