//! Progress reporting: a live bar (epoch, step, loss, samples/s, ETA) on a terminal, plain
//! periodic lines otherwise (logs, CI), and one line per finished epoch either way.

use crate::run_dir::HistoryRow;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Reports training progress on standard error.
pub struct Progress {
    bar: Option<ProgressBar>,
    quiet: bool,
    every: Duration,
    last_line: Instant,
    epoch: usize,
    epochs: usize,
    steps: usize,
}

impl Progress {
    /// A reporter; `quiet` silences everything but errors.
    pub fn new(quiet: bool, every_secs: f64) -> Self {
        Self {
            bar: None,
            quiet,
            every: Duration::from_secs_f64(every_secs.max(0.1)),
            last_line: Instant::now(),
            epoch: 0,
            epochs: 0,
            steps: 0,
        }
    }

    /// A new epoch of `steps` steps begins (at `first_step`, when resuming mid-epoch).
    pub fn start_epoch(&mut self, epoch: usize, epochs: usize, steps: usize, first_step: usize) {
        self.epoch = epoch;
        self.epochs = epochs;
        self.steps = steps;
        self.last_line = Instant::now();
        if self.quiet || !std::io::stderr().is_terminal() {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "epoch {prefix} [{bar:30.cyan/blue}] {pos}/{len} {msg} ETA {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_prefix(format!("{epoch}/{epochs}"));
        bar.set_position(first_step as u64);
        self.bar = Some(bar);
    }

    /// A step finished.
    pub fn step(&mut self, step: usize, loss: f64, samples_per_sec: f64) {
        if self.quiet {
            return;
        }
        if let Some(bar) = &self.bar {
            bar.set_position(step as u64);
            bar.set_message(format!("loss {loss:.5} {samples_per_sec:.0} samples/s"));
        } else if self.last_line.elapsed() >= self.every {
            self.last_line = Instant::now();
            eprintln!(
                "epoch {}/{} step {step}/{} loss {loss:.5} {samples_per_sec:.0} samples/s",
                self.epoch, self.epochs, self.steps
            );
        }
    }

    /// The epoch finished with this history row.
    pub fn end_epoch(&mut self, row: &HistoryRow) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if !self.quiet {
            eprintln!(
                "epoch {}/{}: train loss {:.5}, validation loss {:.5}, {:.1} s, {:.0} samples/s",
                row.epoch,
                self.epochs,
                row.train_loss,
                row.valid_loss,
                row.seconds,
                row.samples_per_sec
            );
        }
    }

    /// Prints a line without breaking the bar.
    pub fn note(&self, message: &str) {
        if self.quiet {
            return;
        }
        match &self.bar {
            Some(bar) => bar.println(message),
            None => eprintln!("{message}"),
        }
    }

    /// Removes the bar (before an error or the end).
    pub fn finish(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}
