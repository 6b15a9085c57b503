//! `prereg secrets rotate` and `prereg retention apply`: maintenance of the connector's
//! database with its configuration (docs/connector.md, "Master key" and "Retention").
//! Both open only the database (no vendor client), are idempotent, and can run beside
//! `prereg serve` replicas on the same database.

use anyhow::Context;
use clap::{Args, Subcommand};
use std::path::PathBuf;

/// The connector configuration file.
#[derive(Debug, Args)]
pub struct Conf {
    /// The `prereg serve` configuration file (environment variables override it).
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
}

/// `prereg secrets ...`.
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-seals every sealed value in the database with the current master key
    /// (`master_key`), opening each with the key its id names (`master_key_old`); prints
    /// a JSON summary. Run again after an interruption; exits 1 if a value did not open.
    Rotate(Conf),
    /// Prints the current and old master keys' ids and how many sealed values are not
    /// under the current key yet (JSON).
    Status(Conf),
}

/// `prereg retention ...`.
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Removes the personal data of requests complete or deleted more than
    /// `retention_days` ago now (the cleanup schedule does it too); prints a JSON summary.
    Apply {
        #[command(flatten)]
        conf: Conf,
        /// Use this many days instead of `retention_days` (at least 1).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        days: Option<u32>,
    },
}

fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(f)
}

async fn open(conf: &Conf) -> anyhow::Result<(connector::Config, connector::store::SqlStore)> {
    let config = connector::Config::load(conf.config.as_deref())?;
    let store = connector::store::SqlStore::connect(&config.database_url)
        .await
        .context("opening the connector's database")?;
    Ok((config, store))
}

/// Runs a `prereg secrets` command.
pub fn secrets(cmd: SecretsCommand) -> anyhow::Result<()> {
    block_on(async move {
        match cmd {
            SecretsCommand::Rotate(c) => {
                let (config, store) = open(&c).await?;
                let r = connector::rotation::rotate(&store, &config.master_key).await?;
                store.close().await;
                println!("{}", serde_json::to_string(&r)?);
                if !r.failed.is_empty() {
                    anyhow::bail!(
                        "{} sealed value(s) did not open; the others were re-sealed with key {}",
                        r.failed.len(),
                        r.key_id
                    );
                }
                Ok(())
            }
            SecretsCommand::Status(c) => {
                let (config, store) = open(&c).await?;
                let n = connector::rotation::not_current(&store, &config.master_key).await?;
                store.close().await;
                let line = serde_json::json!({
                    "key_id": config.master_key.key_id(),
                    "old_key_ids": config.master_key.old_key_ids(),
                    "not_current": n,
                });
                println!("{line}");
                Ok(())
            }
        }
    })
}

/// Runs a `prereg retention` command.
pub fn retention(cmd: RetentionCommand) -> anyhow::Result<()> {
    block_on(async move {
        match cmd {
            RetentionCommand::Apply { conf, days } => {
                let (config, store) = open(&conf).await?;
                let days = days.unwrap_or(config.retention_days);
                if days == 0 {
                    store.close().await;
                    anyhow::bail!(
                        "retention_days is 0 (personal data is kept forever): set it, or pass --days N"
                    );
                }
                let n = connector::retention::apply(&store, days, connector::store::now()).await?;
                store.close().await;
                println!(
                    "{}",
                    serde_json::json!({"retention_days": days, "requests_cleaned": n})
                );
                Ok(())
            }
        }
    })
}
