//! `prereg depot`: on-site programming (docs/depot.md). `serve` runs a depot (the
//! YubiEnterprise FIDO Pre-reg API for a desk that programs keys itself, crate
//! `sandbox::depot`); `list` and `program` are the desk's commands against it.

use anyhow::{Context, bail};
use clap::{Args as ClapArgs, Subcommand};
use sandbox::depot::{DESK_TOKEN_FILE, Depot, DepotConfig, DeskClient};
use sandbox::fulfiller::Seed;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The depot's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the depot: the fulfiller API a connector orders from, keys programmed at the
    /// desk. Prints one JSON ready line (the fulfiller's URLs and tokens, the desk URL).
    Serve {
        /// Where it listens (loopback only; port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8710", value_name = "ADDR")]
        listen: SocketAddr,
        /// Where the keys, shipments and desk token are kept (created if absent).
        #[arg(long, default_value = "depot", value_name = "DIR")]
        state_dir: PathBuf,
        /// A JSON seed (API tokens, products, inventory, customizations), the shape of
        /// `prereg sandbox --seed`, instead of the built-in one.
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
        /// Which keys the desk programs: `virtual` (a key state file the person takes
        /// away) or `usb` (the one real key plugged into this machine; needs a prereg
        /// built with `--features usb`, and `program --serial`).
        #[arg(long, value_enum, default_value_t = Keys::Virtual)]
        keys: Keys,
    },
    /// List the shipments waiting to be programmed: id, recipient, product.
    List {
        #[command(flatten)]
        desk: DeskArgs,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Program the key of one waiting shipment, write its state file (the key the
    /// person takes away) and mark the shipment delivered; the connector then registers
    /// it and sends the PIN as for a shipped key.
    Program {
        /// The shipment id (from `prereg depot list`).
        shipment_id: String,
        /// Where to write the key's state file (default: `key-<shipment id>.json`); for a
        /// real key, its receipt. Refuses to replace an existing file.
        #[arg(long, value_name = "FILE")]
        key_out: Option<PathBuf>,
        /// The serial number printed on the key (required by a depot with real keys;
        /// with virtual keys it replaces the next number of the seed's counter).
        #[arg(long, value_name = "N")]
        serial: Option<String>,
        #[command(flatten)]
        desk: DeskArgs,
    },
}

/// The keys a depot programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Keys {
    /// Virtual keys: each is a state file the person takes away.
    Virtual,
    /// The real key plugged into the depot's machine, over USB.
    Usb,
}

/// How the desk reaches the depot.
#[derive(Debug, ClapArgs)]
pub struct DeskArgs {
    /// The depot's base URL.
    #[arg(long, default_value = "http://127.0.0.1:8710", value_name = "URL")]
    url: String,
    /// The depot's state directory, where its desk token is.
    #[arg(long, default_value = "depot", value_name = "DIR")]
    state_dir: PathBuf,
}

impl DeskArgs {
    fn client(&self) -> anyhow::Result<DeskClient> {
        let path = self.state_dir.join(DESK_TOKEN_FILE);
        let token = zeroize::Zeroizing::new(super::read_input(&path.to_string_lossy())?);
        Ok(DeskClient::new(reqwest::Client::new(), &self.url, &token))
    }
}

pub fn run(cmd: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        Command::Serve {
            listen,
            state_dir,
            seed,
            keys,
        } => {
            if !listen.ip().is_loopback() {
                bail!(
                    "the depot listens on loopback only; {listen} is not a loopback address (put a TLS reverse proxy in front to reach it from another host)"
                );
            }
            let mut config = DepotConfig::new(state_dir);
            config.listen = listen;
            if let Some(p) = &seed {
                config.seed = Seed::load(p)?;
            }
            if keys == Keys::Usb {
                config = usb_keys(config)?;
            }
            runtime.block_on(async move {
                let depot = Depot::build(config).await?;
                super::print_ready_line(&depot.ready_info())?;
                depot
                    .run(super::shutdown_signal())
                    .await
                    .context("serving the depot")
            })
        }
        Command::List { desk, json } => {
            let waiting = runtime.block_on(desk.client()?.waiting())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&waiting)?);
            } else if waiting.is_empty() {
                println!("no shipment is waiting");
            } else {
                for w in &waiting {
                    println!("{w}");
                }
            }
            Ok(())
        }
        Command::Program {
            shipment_id,
            key_out,
            serial,
            desk,
        } => {
            let out = key_out.unwrap_or_else(|| {
                PathBuf::from(format!("key-{}.json", file_safe(shipment_id.trim())))
            });
            // Check the target first: the depot keeps no copy of a programmed key.
            refuse_existing(&out)?;
            let handover =
                runtime.block_on(desk.client()?.program(&shipment_id, serial.as_deref()))?;
            let mut text = zeroize::Zeroizing::new(handover.key.to_string());
            text.push('\n');
            authenticator::write_private(&out, text.as_bytes())
                .with_context(|| format!("writing the key's state file {}", out.display()))?;
            println!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "shipment_id": handover.shipment_id,
                    "serial_number": handover.serial_number,
                    "firmware_version": handover.firmware_version,
                    "shipment_state_id": handover.shipment_state_id,
                    "key_file": out.display().to_string(),
                }))?
            );
            Ok(())
        }
    }
}

#[cfg(feature = "usb")]
fn usb_keys(config: DepotConfig) -> anyhow::Result<DepotConfig> {
    Ok(config.with_usb_keys())
}

#[cfg(not(feature = "usb"))]
fn usb_keys(_config: DepotConfig) -> anyhow::Result<DepotConfig> {
    bail!(
        "this prereg was built without real keys over USB: build it with `cargo build --release -p prereg --features usb` (needs Debian's libudev-dev and pkg-config)"
    )
}

fn refuse_existing(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!(
            "{} already exists; it may be another person's key. Choose another --key-out",
            path.display()
        );
    }
    Ok(())
}

/// A shipment id as part of a file name: base58 ids pass as they are.
fn file_safe(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
