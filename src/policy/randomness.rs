//! Where the jitter of a policy's waits comes from: the operating system, or a seed for reproducible
//! runs ([`RetryPolicy::seed`](crate::RetryPolicy::seed)).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::SeedableRng;

/// The source of a policy's random numbers; clones of a seeded policy share its counter.
#[derive(Clone)]
pub(crate) enum Randomness {
    Os,
    Seeded { seed: u64, next: Arc<AtomicU64> },
}

impl Randomness {
    pub(crate) fn seeded(seed: u64) -> Self {
        Randomness::Seeded {
            seed,
            next: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A random source for one request, never shared with another.
    pub(crate) fn rng(&self) -> SmallRng {
        match self {
            Randomness::Os => SmallRng::from_rng(&mut rand::rng()),
            Randomness::Seeded { seed, next } => {
                let n = next.fetch_add(1, Ordering::Relaxed);
                // seed_from_u64 scrambles its input, so neighbouring values give unrelated sequences.
                SmallRng::seed_from_u64(seed ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            }
        }
    }
}
