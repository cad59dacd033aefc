//! Retry timing (full-jitter exponential backoff, honouring Retry-After) and the adaptive batch
//! size (halved when the cloud says a request is too big or too slow, grown back slowly).

use std::time::Duration;

/// Full jitter: the n-th retry waits a random time in [base/2, min(cap, base·2ⁿ)], so many
/// appliances do not retry in step; a server's Retry-After is a floor (within the cap).
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap: cap.max(base), failures: 0 }
    }

    /// The wait before the next attempt after one more failure.
    pub fn next(&mut self, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling();
        self.failures = self.failures.saturating_add(1);
        let floor = (self.base / 2).min(ceiling);
        let span = ceiling.saturating_sub(floor).as_millis() as u64;
        let jittered = floor + Duration::from_millis(fastrand::u64(0..=span));
        jittered.max(retry_after.unwrap_or_default().min(self.cap))
    }

    /// The largest wait the next failure can bring.
    pub fn ceiling(&self) -> Duration {
        let factor = 1u32.checked_shl(self.failures.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn cap(&self) -> Duration {
        self.cap
    }

    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

/// How many rows and bytes one request may carry now.
#[derive(Clone, Debug)]
pub struct BatchLimit {
    pub max_rows: usize,
    pub max_bytes: usize,
    rows: usize,
}

impl BatchLimit {
    pub fn new(max_rows: usize, max_bytes: usize) -> BatchLimit {
        let max_rows = max_rows.max(1);
        BatchLimit { max_rows, max_bytes: max_bytes.max(1), rows: max_rows }
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Too big or too slow with `sent` rows: the next requests carry at most half of that.
    pub fn halve(&mut self, sent: usize) {
        self.rows = (sent.min(self.rows) / 2).max(1);
    }

    /// A request went through: grow back by an eighth (at least one row), up to the maximum.
    pub fn grow(&mut self) {
        self.rows = (self.rows + (self.rows / 8).max(1)).min(self.max_rows);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_stay_within_bounds_and_grow_to_the_cap() {
        let (base, cap) = (Duration::from_secs(5), Duration::from_secs(900));
        let mut b = Backoff::new(base, cap);
        for n in 0..40 {
            let ceiling = b.ceiling();
            let wait = b.next(None);
            assert!(wait >= base / 2, "failure {n}: {wait:?} below half the base");
            assert!(wait <= ceiling && wait <= cap, "failure {n}: {wait:?} above {ceiling:?}");
            assert_eq!(ceiling, (base * 2u32.pow(n.min(20))).min(cap), "failure {n}");
        }
        assert_eq!(b.ceiling(), cap);
        b.reset();
        assert_eq!(b.ceiling(), base);
    }

    #[test]
    fn retry_after_is_a_floor_within_the_cap() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        assert!(b.next(Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        assert_eq!(b.next(Some(Duration::from_secs(3600))), Duration::from_secs(60));
    }

    #[test]
    fn jitter_spreads_waits() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..50 {
            let mut b = Backoff::new(Duration::from_secs(5), Duration::from_secs(900));
            b.next(None);
            b.next(None);
            seen.insert(b.next(None).as_millis());
        }
        assert!(seen.len() > 10, "full jitter gives different waits: {seen:?}");
    }

    #[test]
    fn batches_halve_to_one_and_grow_back_slowly() {
        let mut l = BatchLimit::new(500, 1 << 20);
        l.halve(500);
        assert_eq!(l.rows(), 250);
        l.halve(40); // the failed request carried fewer rows than allowed
        assert_eq!(l.rows(), 20);
        for _ in 0..10 {
            l.halve(l.rows());
        }
        assert_eq!(l.rows(), 1);
        l.grow();
        assert_eq!(l.rows(), 2);
        let mut steps = 0;
        while l.rows() < 500 {
            l.grow();
            steps += 1;
        }
        assert_eq!(l.rows(), 500, "never beyond the maximum");
        assert!(steps > 30, "grows back over many successes, not at once: {steps}");
    }
}
