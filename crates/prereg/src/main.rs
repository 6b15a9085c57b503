//! `prereg`: the one binary. Thin: parses the command line and hands each subcommand to
//! its module under `cmd/`. Every failure prints one line on stderr and exits 1.
#![forbid(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Ship FIDO2 security keys pre-registered with your identity provider.
#[derive(Debug, Parser)]
#[command(name = "prereg", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Inspect or open pre-registration envelopes (JWE/JWS).
    #[command(subcommand)]
    Envelope(cmd::envelope::Command),
    /// Verify WebAuthn data as a relying party would.
    #[command(subcommand)]
    Webauthn(cmd::webauthn::Command),
    /// The virtual YubiKey: the key in your hand, kept in a JSON state file.
    #[command(subcommand)]
    Key(cmd::key::Command),
    /// Run the local sandboxes (the YubiEnterprise fulfiller, Microsoft Entra) on loopback.
    Sandbox(cmd::sandbox::Args),
    /// Run the connector (Entra mode): the API, processing and PIN delivery.
    Serve(cmd::serve::Args),
    /// On-site programming: a depot that takes the same sealed requests as YubiEnterprise
    /// and programs keys at a desk (`serve`, `list`, `program`; docs/depot.md).
    #[command(subcommand)]
    Depot(cmd::depot::Command),
    /// The guide's Yubico action cards: create-shipment, shipment, build-item, keys
    /// (docs/yubico-cards.md).
    #[command(subcommand)]
    Yubico(cmd::yubico::Command),
    /// Entra mode's group trigger from the command line: `reconcile` orders keys for
    /// mapped groups' members who never had one (docs/entra-groups.md).
    #[command(subcommand)]
    Entra(cmd::entra::Command),
    /// Okta mode from the command line: batch orders and reconciliation against the
    /// connector's database (docs/okta-mode.md).
    #[command(subcommand)]
    Okta(cmd::okta::Command),
    /// Order keys for the rows of a CSV file, both modes, against the connector's
    /// database and vendors; one JSON line per row (docs/batch.md).
    Batch(cmd::batch::Args),
    /// The whole system in one command: sandboxes and connector in this process, keys
    /// ordered, shipped, registered, PINs mailed, users signing in (docs/demo.md).
    Demo(cmd::demo::Args),
    /// How fast the connector takes orders and processes them, on SQLite and PostgreSQL:
    /// prints the numbers (docs/bench.md).
    Bench(cmd::bench::Args),
    /// The connector's promises under crashes, restarts, vendor faults and replicas:
    /// counts from the vendors' side, exits non-zero on a broken one (docs/reliability.md).
    Chaos(cmd::chaos::Args),
    /// The admin console's helpers: `hash-password` (docs/console.md).
    #[command(subcommand)]
    Console(cmd::console::Command),
    /// The master key: re-seal every secret with the current key after a rotation
    /// (`rotate`), or show the key ids in use (`status`) (docs/connector.md).
    #[command(subcommand)]
    Secrets(cmd::data::SecretsCommand),
    /// Remove the personal data of requests finished more than `retention_days` ago,
    /// keeping their audit trail (docs/connector.md).
    #[command(subcommand)]
    Retention(cmd::data::RetentionCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Envelope(c) => cmd::envelope::run(c),
        Command::Webauthn(c) => cmd::webauthn::run(c),
        Command::Key(c) => cmd::key::run(c),
        Command::Sandbox(a) => cmd::sandbox::run(a),
        Command::Serve(a) => cmd::serve::run(a),
        Command::Depot(c) => cmd::depot::run(c),
        Command::Yubico(c) => cmd::yubico::run(c),
        Command::Entra(c) => cmd::entra::run(c),
        Command::Okta(c) => cmd::okta::run(c),
        Command::Batch(a) => cmd::batch::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Bench(a) => cmd::bench::run(a),
        Command::Chaos(a) => cmd::chaos::run(a),
        Command::Console(c) => cmd::console::run(c),
        Command::Secrets(c) => cmd::data::secrets(c),
        Command::Retention(c) => cmd::data::retention(c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole context chain on one line.
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
