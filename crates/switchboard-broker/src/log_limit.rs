//! Rate-limited log lines about what peers send, so one peer sending junk cannot flood the log.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

/// How many lines a limit lets through per window.
const LINES: u32 = 10;
/// The window.
const WINDOW: Duration = Duration::from_secs(10);

/// Lets [`LINES`] log lines through per [`WINDOW`], and counts the rest.
#[derive(Debug)]
pub(crate) struct LogLimit {
    state: Mutex<Window>,
}

#[derive(Debug)]
struct Window {
    started: Instant,
    lines: u32,
    suppressed: u64,
}

impl LogLimit {
    pub(crate) fn new() -> Self {
        LogLimit { state: Mutex::new(Window { started: Instant::now(), lines: 0, suppressed: 0 }) }
    }

    /// Whether a line may be logged now; if so, how many were held back before it.
    pub(crate) fn allow(&self) -> Option<u64> {
        let mut window = switchboard_core::sync::lock(&self.state);
        let now = Instant::now();
        if now.duration_since(window.started) >= WINDOW {
            window.started = now;
            window.lines = 0;
        }
        if window.lines >= LINES {
            window.suppressed += 1;
            return None;
        }
        window.lines += 1;
        Some(std::mem::take(&mut window.suppressed))
    }
}

/// Logs a warning through a [`LogLimit`], with how many were held back before it.
macro_rules! limited_warn {
    ($limit:expr, $($arg:tt)+) => {
        if let Some(suppressed) = $limit.allow() {
            tracing::warn!(suppressed, $($arg)+);
        }
    };
}
pub(crate) use limited_warn;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lets_a_few_through_and_counts_the_rest() {
        let limit = LogLimit::new();
        for _ in 0..LINES {
            assert_eq!(limit.allow(), Some(0));
        }
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        limit.state.lock().unwrap().started -= WINDOW;
        assert_eq!(limit.allow(), Some(2), "the next window reports what was held back");
    }
}
