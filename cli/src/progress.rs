//! Progress bars: bytes and objects, on stderr when it is a terminal, else
//! nothing at all.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};

pub struct Progress {
    bar: ProgressBar,
    objects: u64,
    done: AtomicU64,
    started: Instant,
    verb: &'static str,
    shown: bool,
}

impl Progress {
    /// A bar over `bytes` bytes in `objects` objects; hidden when `quiet` or
    /// when stderr is not a terminal.
    pub fn new(verb: &'static str, bytes: u64, objects: u64, quiet: bool) -> Progress {
        let shown = !quiet && std::io::stderr().is_terminal();
        let bar = if shown {
            let bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr());
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {msg} ({eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(verb);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        } else {
            ProgressBar::hidden()
        };
        let progress = Progress {
            bar,
            objects,
            done: AtomicU64::new(0),
            started: Instant::now(),
            verb,
            shown,
        };
        progress.show_objects(0);
        progress
    }

    pub fn bytes(&self, n: u64) {
        self.bar.inc(n);
    }

    pub fn object_done(&self) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        self.show_objects(done);
    }

    fn show_objects(&self, done: u64) {
        if self.shown {
            self.bar
                .set_message(format!("{done}/{} objects", self.objects));
        }
    }

    /// Ends the bar; on a terminal, leaves a one-line summary.
    pub fn finish(&self, bytes: u64, note: &str) {
        if self.shown {
            self.bar.finish_and_clear();
            eprintln!(
                "{} {} objects, {} in {:.1?}{note}",
                self.verb,
                self.done.load(Ordering::Relaxed),
                HumanBytes(bytes),
                self.started.elapsed()
            );
        }
    }

    /// Removes the bar (on failure) so that error messages stay readable.
    pub fn abandon(&self) {
        self.bar.finish_and_clear();
    }
}
