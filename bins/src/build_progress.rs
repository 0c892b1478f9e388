//! blockhost-build-template's progress. On a terminal, a live bar: the
//! build's numbered steps (`[n/N] …`) as its position, the current step and
//! its latest detail beside it (a download's percentage), the elapsed time
//! ticking; step lines and other details stay above the bar. Not on a
//! terminal, the plain lines as they come (at least one per 10 s).

use crate::entry::stderr_progress;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

const TEMPLATE: &str = "[{elapsed_precise}] {bar:24} {pos}/{len} {prefix} {wide_msg}";

/// What a progress line of a build means for the bar.
#[derive(Debug, PartialEq, Eq)]
enum Update<'l> {
    /// `[n/N] what`: the build's steps (template_builder's `Steps`).
    Step { done: u64, total: u64, what: &'l str },
    /// A download's running figure: shown beside the bar, not kept.
    Download(&'l str),
    /// Anything else, kept above the bar.
    Detail(&'l str),
}

fn update(line: &str) -> Update<'_> {
    let step = line.strip_prefix('[').and_then(|rest| rest.split_once("] ")).and_then(|(count, what)| {
        let (done, total) = count.split_once('/')?;
        Some(Update::Step { done: done.parse().ok()?, total: total.parse().ok()?, what })
    });
    step.unwrap_or_else(|| match line.trim_start() {
        figure if figure.starts_with("downloaded ") => Update::Download(figure),
        _ => Update::Detail(line),
    })
}

/// The progress sink of a build; the bar is cleared when it is dropped.
pub struct BuildProgress {
    bar: Option<ProgressBar>,
}

impl BuildProgress {
    pub fn new() -> Self {
        Self { bar: std::io::stderr().is_terminal().then(live_bar) }
    }

    pub fn line(&mut self, line: &str) {
        let Some(bar) = &self.bar else { return stderr_progress(line) };
        match update(line) {
            Update::Step { done, total, what } => {
                bar.set_length(total);
                bar.set_position(done.saturating_sub(1));
                bar.set_prefix(what.to_string());
                bar.set_message("");
                bar.println(line);
            }
            Update::Download(figure) => bar.set_message(figure.to_string()),
            Update::Detail(detail) => bar.println(detail),
        }
    }
}

impl Drop for BuildProgress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn live_bar() -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    bar.set_style(ProgressStyle::with_template(TEMPLATE).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_move_the_bar_downloads_are_its_figure_and_the_rest_is_kept() {
        assert_eq!(update("[2/7] debootstrap bookworm"), Update::Step { done: 2, total: 7, what: "debootstrap bookworm" });
        assert_eq!(update("      downloaded 25% (3 of 12 MiB)"), Update::Download("downloaded 25% (3 of 12 MiB)"));
        assert_eq!(update("I: Retrieving Release"), Update::Detail("I: Retrieving Release"));
        assert_eq!(update("[not a step] x"), Update::Detail("[not a step] x"));
    }

    #[test]
    fn the_bar_template_is_valid() {
        assert!(ProgressStyle::with_template(TEMPLATE).is_ok());
    }
}
