//! The live progress display of `prereg demo`: one bar per stage on a terminal
//! (indicatif), one plain line per event otherwise (a pipe, a file, CI).

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// The stages every user's key goes through, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The connector accepted the order and the fulfiller has the shipment.
    Ordered,
    /// The fulfiller programmed and shipped the key.
    Shipped,
    /// The key's credential is registered with the IdP.
    Registered,
    /// The PIN mail arrived at the mail catcher.
    PinDelivered,
    /// The user signed in at the IdP with the key and its PIN.
    SignedIn,
}

impl Stage {
    const ALL: [Stage; 5] = [
        Stage::Ordered,
        Stage::Shipped,
        Stage::Registered,
        Stage::PinDelivered,
        Stage::SignedIn,
    ];

    fn index(self) -> usize {
        match self {
            Stage::Ordered => 0,
            Stage::Shipped => 1,
            Stage::Registered => 2,
            Stage::PinDelivered => 3,
            Stage::SignedIn => 4,
        }
    }

    /// The stage's name as the display shows it.
    pub fn label(self) -> &'static str {
        match self {
            Stage::Ordered => "ordered",
            Stage::Shipped => "shipped",
            Stage::Registered => "registered",
            Stage::PinDelivered => "PIN delivered",
            Stage::SignedIn => "signed in",
        }
    }
}

/// Where progress goes.
pub struct Progress {
    bars: Option<(MultiProgress, Vec<ProgressBar>)>,
}

impl Progress {
    /// Bars when standard output is a terminal, plain lines otherwise. `total` is how many
    /// keys (of normal users, not bad cases) are expected to reach each stage.
    pub fn new(total: u64) -> Self {
        if !std::io::stdout().is_terminal() {
            return Self { bars: None };
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stdout());
        // The template is a constant that parses; fall back to the default style if not.
        let style = ProgressStyle::with_template("{prefix:>14} [{bar:32}] {pos:>3}/{len:3} {msg}")
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bars = Stage::ALL
            .iter()
            .map(|s| {
                let b = multi.add(ProgressBar::new(total));
                b.set_style(style.clone());
                b.set_prefix(s.label());
                b
            })
            .collect();
        Self {
            bars: Some((multi, bars)),
        }
    }

    /// One key reached `stage`. Only normal users (`counts`) move the bars; a bad case
    /// shows as a plain line only.
    pub fn reached(&self, idp: &str, user: &str, stage: Stage, counts: bool) {
        match &self.bars {
            Some((_, bars)) => {
                if !counts {
                    return;
                }
                if let Some(b) = bars.get(stage.index()) {
                    b.inc(1);
                    b.set_message(format!("{idp} {user}"));
                }
            }
            None => println!("progress: {idp:<5} {:<13} {user}", stage.label()),
        }
    }

    /// A line that is not a stage (an expected failure, a phase).
    pub fn note(&self, text: &str) {
        match &self.bars {
            Some((multi, _)) => {
                // A write error on the terminal only loses a note.
                let _ = multi.println(text);
            }
            None => println!("{text}"),
        }
    }

    /// Clears the message lines and leaves the bars as they ended.
    pub fn finish(&self) {
        if let Some((_, bars)) = &self.bars {
            for b in bars {
                b.finish_with_message("");
            }
        }
    }
}
