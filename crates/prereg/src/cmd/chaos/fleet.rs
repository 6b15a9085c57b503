//! The replicas of `prereg chaos`: `prereg serve` child processes of this binary, each
//! start's log in its own files, SIGKILLed and started again on the kill schedule.

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// The replicas' log filter unless `PREREG_LOG` is set: the connector's own debug
/// lines (the secrecy check is only as strong as what is logged).
const LOG_FILTER: &str = "debug,sqlx=info,hyper=info,hyper_util=info,reqwest=info,h2=info,rustls=info,tower=info,lettre=info";

pub(super) struct Fleet {
    exe: PathBuf,
    config: PathBuf,
    logs: PathBuf,
    filter: String,
    slots: Mutex<Vec<Slot>>,
    next: AtomicUsize,
    pub(super) restarts: AtomicUsize,
    pub(super) failed_starts: AtomicUsize,
}

#[derive(Default)]
struct Slot {
    child: Option<Child>,
    url: Option<String>,
    generation: u32,
}

impl Fleet {
    pub(super) fn new(replicas: usize, config: PathBuf, logs: PathBuf) -> anyhow::Result<Self> {
        Ok(Self {
            exe: std::env::current_exe().context("finding this program to run its replicas")?,
            config,
            logs,
            filter: std::env::var("PREREG_LOG").unwrap_or_else(|_| LOG_FILTER.to_owned()),
            slots: Mutex::new((0..replicas).map(|_| Slot::default()).collect()),
            next: AtomicUsize::new(0),
            restarts: AtomicUsize::new(0),
            failed_starts: AtomicUsize::new(0),
        })
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Slot>> {
        self.slots
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn len(&self) -> usize {
        self.slots().len()
    }

    /// A live replica's base URL (round robin).
    pub(super) fn pick(&self) -> Option<String> {
        let slots = self.slots();
        let live: Vec<&String> = slots.iter().filter_map(|s| s.url.as_ref()).collect();
        if live.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % live.len();
        Some(live[i].clone())
    }

    /// Starts replica `r` (a new generation, logs in their own files) and waits for its
    /// ready line; a start that fails (the process exits first) is tried again.
    pub(super) async fn start(&self, r: usize) -> anyhow::Result<()> {
        let mut last = None;
        for _ in 0..30 {
            let generation = {
                let mut slots = self.slots();
                let slot = slots.get_mut(r).context("no such replica")?;
                slot.generation += 1;
                slot.generation
            };
            let (exe, config, logs, filter) = (
                self.exe.clone(),
                self.config.clone(),
                self.logs.clone(),
                self.filter.clone(),
            );
            let started = tokio::task::spawn_blocking(move || {
                spawn_ready(&exe, &config, &logs, &filter, r, generation)
            })
            .await
            .context("starting a replica")?;
            match started {
                Ok((child, url)) => {
                    let mut slots = self.slots();
                    let slot = slots.get_mut(r).context("no such replica")?;
                    slot.child = Some(child);
                    slot.url = Some(url);
                    return Ok(());
                }
                Err(e) => {
                    self.failed_starts.fetch_add(1, Ordering::Relaxed);
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("replica {r} did not start")))
    }

    /// SIGKILLs replica `r` (`Child::kill` on Unix) and starts it again.
    pub(super) async fn kill_and_restart(&self, r: usize) -> anyhow::Result<()> {
        let child = {
            let mut slots = self.slots();
            let slot = slots.get_mut(r).context("no such replica")?;
            slot.url = None;
            slot.child.take()
        };
        if let Some(mut child) = child {
            tokio::task::spawn_blocking(move || {
                let _ = child.kill();
                let _ = child.wait();
            })
            .await
            .context("killing a replica")?;
        }
        self.start(r).await?;
        self.restarts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Kills every replica and waits for it (the end of the run).
    pub(super) fn stop_all(&self) {
        let mut slots = self.slots();
        for s in slots.iter_mut() {
            s.url = None;
            if let Some(mut c) = s.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// Runs `prereg serve --config CONFIG` as replica `r`, generation `generation`: stderr
/// (the log) to `replica<r>-<generation>.stderr.log`, stdout after the ready line to
/// `...stdout.log`; returns the child and its base URL once it printed the ready line.
fn spawn_ready(
    exe: &Path,
    config: &Path,
    logs: &Path,
    filter: &str,
    r: usize,
    generation: u32,
) -> anyhow::Result<(Child, String)> {
    let err_path = logs.join(format!("replica{r}-{generation}.stderr.log"));
    let stderr = std::fs::File::create(&err_path)
        .with_context(|| format!("creating {}", err_path.display()))?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("PREREG_LOG", filter)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("running {} serve", exe.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("the replica's stdout is not piped")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let read = reader.read_line(&mut line);
    let url = read
        .ok()
        .and_then(|_| serde_json::from_str::<Value>(line.trim()).ok())
        .and_then(|v| v["connector"]["base_url"].as_str().map(str::to_owned));
    let Some(url) = url else {
        let _ = child.kill();
        let status = child.wait();
        bail!(
            "replica {r} stopped before it was ready ({status:?}); its log: {}",
            err_path.display()
        );
    };
    let out_path = logs.join(format!("replica{r}-{generation}.stdout.log"));
    let mut out = std::fs::File::create(&out_path)
        .with_context(|| format!("creating {}", out_path.display()))?;
    let _ = out.write_all(line.as_bytes());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut reader, &mut out);
    });
    Ok((child, url))
}
