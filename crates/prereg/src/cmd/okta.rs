//! `prereg okta ...`: Okta mode's batch and reconciliation from the command line,
//! against the connector's database (docs/okta-mode.md). The requests are recorded
//! with due jobs; a running `prereg serve` on the same database processes them, or
//! `--process` runs them here at once.

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use connector::okta::{Order, Started};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;

use super::read_input;

/// The connector configuration.
#[derive(Debug, Args)]
pub struct Conf {
    /// The `prereg serve` configuration file (with an `[okta]` section).
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// Also process the due jobs here (otherwise a running `prereg serve` does).
    #[arg(long)]
    process: bool,
}

/// Arguments of `prereg okta batch`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    #[command(flatten)]
    conf: Conf,
    /// The mapped group whose order line the users get (default: the first mapping).
    #[arg(long, value_name = "GROUP_ID")]
    group_id: Option<String>,
    /// A file with one login or Okta user id per line (`-` for standard input).
    #[arg(long, value_name = "PATH")]
    file: Option<String>,
    /// Logins or Okta user ids.
    users: Vec<String>,
}

/// `prereg okta ...`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Order keys for a list of users (the guide's "batch requests"); prints one JSON
    /// line per user: created, already_open or refused.
    Batch(BatchArgs),
    /// Order keys for members of mapped groups who never had one; prints a JSON summary.
    Reconcile(Conf),
}

/// The connector's services for `path` (store, clients, Okta mode), without the HTTP
/// layer: these commands serve nothing.
async fn services(path: &std::path::Path) -> anyhow::Result<Arc<connector::Services>> {
    let config = connector::Config::load(Some(path))?;
    if config.okta.is_none() {
        bail!("{} has no [okta] section: Okta mode is off", path.display());
    }
    connector::Services::build(config)
        .await
        .context("opening the connector's database and clients")
}

/// How long `--process` runs at most.
const PROCESS_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Runs a `prereg okta` command.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cmd {
            Command::Batch(a) => batch(a).await,
            Command::Reconcile(c) => {
                let state = services(&c.config).await?;
                let sum = connector::okta::reconcile(&state)
                    .await
                    .map_err(|e| anyhow::anyhow!(e))?;
                println!("{}", serde_json::to_string(&sum)?);
                if c.process {
                    let s = connector::runner::run_until_idle(state, PROCESS_LIMIT).await;
                    eprintln!("processed {} jobs", s.processed);
                }
                Ok(())
            }
        }
    })
}

async fn batch(a: BatchArgs) -> anyhow::Result<()> {
    let mut users = a.users.clone();
    if let Some(f) = &a.file {
        users.extend(
            read_input(f)?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_owned),
        );
    }
    if users.is_empty() {
        bail!("name at least one user (arguments or --file)");
    }
    let state = services(&a.conf.config).await?;
    let Some(o) = state.okta.as_ref() else {
        bail!("Okta mode is off");
    };
    let order = match &a.group_id {
        Some(g) => o
            .config
            .group(g)
            .map(Order::from)
            .with_context(|| format!("group {g} is not mapped in [okta] groups"))?,
        None => o
            .config
            .groups
            .first()
            .map(Order::from)
            .context("no group is mapped in [okta] groups; add one or pass --group-id")?,
    };
    let mut refused = 0;
    for u in users {
        let line = match connector::okta::start_request(&state, &u, order.clone(), "batch").await {
            Ok(Started::Created(r)) => {
                json!({"user": u, "status": "created", "request_id": r.id})
            }
            Ok(Started::Duplicate(id) | Started::Replayed(id)) => {
                json!({"user": u, "status": "already_open", "request_id": id})
            }
            Err(e) => {
                refused += 1;
                json!({"user": u, "status": "refused", "error": e.to_string()})
            }
        };
        println!("{line}");
    }
    if a.conf.process {
        let s = connector::runner::run_until_idle(state.clone(), PROCESS_LIMIT).await;
        eprintln!("processed {} jobs", s.processed);
    }
    if refused > 0 {
        bail!("{refused} users were refused (see their lines)");
    }
    Ok(())
}
