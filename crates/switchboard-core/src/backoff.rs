//! How long a reconnecting transport waits between attempts: exponential backoff with jitter.
//!
//! One policy for every transport that reconnects by itself, so they all back off alike.

use std::time::Duration;

/// Exponential backoff: the first retry waits [`first`](Self::first), each later one twice the
/// one before, up to [`max`](Self::max); each wait gets up to a tenth more at random, so clients
/// that lost the same broker do not all retry in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first retry. Default 50 ms.
    pub first: Duration,
    /// The longest wait. Default 2 s.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { first: Duration::from_millis(50), max: Duration::from_secs(2) }
    }
}

impl Backoff {
    /// A backoff from `first` doubling up to `max` (at least `first`).
    pub fn new(first: Duration, max: Duration) -> Self {
        Backoff { first, max: max.max(first) }
    }

    /// The wait before retry number `attempt`, counting from 1 (0 is treated as 1).
    pub fn delay(&self, attempt: usize) -> Duration {
        let base = self.base(attempt);
        base + base.mul_f64(0.1 * random_fraction())
    }

    /// The wait before retry `attempt` without its jitter.
    fn base(&self, attempt: usize) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(32);
        self.first.saturating_mul(1u32 << doublings.min(31)).min(self.max)
    }
}

/// A number in `[0, 1)`, from the random bits of a version 4 UUID (its generator is already a
/// dependency; the jitter needs no better randomness).
fn random_fraction() -> f64 {
    let bits = uuid::Uuid::new_v4().as_u128() as u64 >> 11;
    bits as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_a_tenth_of_jitter() {
        let backoff = Backoff::default();
        let bases: Vec<u128> = (1..=8).map(|a| backoff.base(a).as_millis()).collect();
        assert_eq!(bases, [50, 100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(backoff.base(0), backoff.base(1));
        assert_eq!(backoff.base(usize::MAX), backoff.max);
        for attempt in 1..=8 {
            let delay = backoff.delay(attempt);
            let base = backoff.base(attempt);
            assert!(delay >= base && delay <= base + base / 10, "{delay:?} for {base:?}");
        }
        assert_eq!(
            Backoff::new(Duration::from_secs(3), Duration::from_secs(1)).base(5).as_secs(),
            3
        );
    }
}
