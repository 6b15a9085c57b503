//! `prereg batch FILE.csv`: the CSV batch of both modes (docs/batch.md) from the command
//! line, against the connector's database and vendors (the services, without the HTTP
//! layer), as `POST /v1/batch` does it. A progress bar on stderr (on a terminal), each
//! row's result as one JSON line on stdout (or `--summary`: the counts only).

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, ValueEnum};
use connector::batch::{self, RowResult, Summary};
use connector::domain::Idp;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::PathBuf;

use super::read_input;

/// The client name the command records idempotency keys under (the API uses the
/// caller's client id).
const CLIENT: &str = "prereg-cli";

/// How long `--process` runs at most.
const PROCESS_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Arguments of `prereg batch`.
#[derive(Debug, ClapArgs)]
pub struct Args {
    /// The CSV file (`-` for standard input): a header row, one person a row
    /// (docs/batch.md).
    file: String,
    /// The `prereg serve` configuration file.
    #[arg(long, value_name = "PATH")]
    config: PathBuf,
    /// The mode of rows without an `idp` cell.
    #[arg(long, value_enum, default_value = "entra")]
    idp: Mode,
    /// Record each row under this key: running the same file again with the same key
    /// orders nothing twice (its rows answer `created`, `"replayed": true`).
    #[arg(long, value_name = "KEY")]
    idempotency_key: Option<String>,
    /// Print only the counts (one JSON object) instead of one line per row.
    #[arg(long)]
    summary: bool,
    /// Also process the due jobs here (otherwise a running `prereg serve` does).
    #[arg(long)]
    process: bool,
}

/// A batch's default mode.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// Entra mode.
    Entra,
    /// Okta mode.
    Okta,
}

/// Runs `prereg batch`.
pub fn run(a: Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(batch(a))
}

async fn batch(a: Args) -> anyhow::Result<()> {
    if let Some(k) = &a.idempotency_key
        && (k.is_empty() || k.len() > 255)
    {
        bail!("--idempotency-key must be 1 to 255 characters");
    }
    let text = read_input(&a.file)?;
    let rows = batch::parse(text.as_bytes()).with_context(|| format!("reading {}", a.file))?;
    let config = connector::Config::load(Some(a.config.as_path()))?;
    let state = connector::Services::build(config)
        .await
        .context("opening the connector's database and clients")?;
    let bar = progress_bar(rows.len() as u64);
    let default_idp = match a.idp {
        Mode::Entra => Idp::Entra,
        Mode::Okta => Idp::Okta,
    };
    let once = a.idempotency_key.as_deref().map(|k| (CLIENT, k));
    let results = batch::run(&state, &rows, default_idp, once, &|r: &RowResult| {
        bar.inc(1);
        bar.set_message(format!("line {}: {}", r.line, status_word(r)));
    })
    .await;
    bar.finish_and_clear();
    let sum = Summary::of(&results);
    if a.summary {
        println!("{}", serde_json::to_string(&sum)?);
    } else {
        for r in &results {
            println!("{}", serde_json::to_string(r)?);
        }
    }
    if a.process {
        let s = connector::runner::run_until_idle(state.clone(), PROCESS_LIMIT).await;
        eprintln!("processed {} jobs", s.processed);
    }
    if sum.refused > 0 || sum.unavailable > 0 {
        bail!(
            "{} of {} rows were refused and {} unavailable (see their lines; send the unavailable ones again)",
            sum.refused,
            sum.rows,
            sum.unavailable
        );
    }
    Ok(())
}

fn status_word(r: &RowResult) -> &'static str {
    match r.status {
        batch::Status::Created => "created",
        batch::Status::AlreadyOpen => "already open",
        batch::Status::Refused => "refused",
        batch::Status::Unavailable => "unavailable",
    }
}

/// A bar on stderr when it is a terminal; nothing otherwise (a pipe, a file, CI).
fn progress_bar(rows: u64) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(rows), ProgressDrawTarget::stderr());
    // The template is a constant that parses; fall back to the default style if not.
    let style = ProgressStyle::with_template("rows [{bar:32}] {pos:>4}/{len:4} {msg}")
        .map(|s| s.progress_chars("=> "))
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}
