//! The engaged scopes' lanes: a map split into shards, each behind its own lock, so that a call to
//! one scope never waits for another's, and finding a scope costs the same among a thousand as
//! among none. Bounded: past [`MAX_SCOPES`] the quietest scope without a hold is forgotten, and a
//! scope quiet for [`FORGET_AFTER`] is forgotten at the next sweep, whether it is looked up or not.

use std::collections::hash_map::{self, HashMap};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::authority::Authority;
use super::lane::Lane;

/// How many locks the map is split over.
const SHARDS: usize = 16;
/// The most scopes tracked at once.
pub(crate) const MAX_SCOPES: usize = 4096;
/// A scope quiet for this long (no throttling answer, nobody in line, no hold) is forgotten.
pub(crate) const FORGET_AFTER: Duration = Duration::from_secs(60);
/// How often the whole map is swept for quiet scopes, at most.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// One engaged scope.
pub(crate) struct Entry {
    pub(crate) authority: Authority,
    /// The scope's name in a fleet's store, when the throttle has one.
    pub(crate) name: Option<String>,
    pub(crate) lane: Lane,
}

/// The lanes of one shard, by their scope's key: a keyed hash already, used as it is.
pub(crate) type Shard = HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>;

/// Hashes a scope's key, itself a keyed hash, to itself.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `u64` keys are hashed here; anything else is folded in all the same.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

pub(crate) struct Lanes {
    shards: Box<[Mutex<Shard>]>,
    /// How many scopes are engaged: 0 lets every call through on one atomic load.
    engaged: AtomicUsize,
    /// When the next sweep is due, in ms since `epoch`.
    next_sweep: AtomicU64,
    epoch: Instant,
}

impl Lanes {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            engaged: AtomicUsize::new(0),
            next_sweep: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    /// Scopes engaged now.
    #[inline]
    pub(crate) fn engaged(&self) -> usize {
        self.engaged.load(Ordering::Acquire)
    }

    /// The shard `key` lives in, locked.
    pub(crate) fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        // Middle bits: the map itself places entries by the low bits and tags them by the top.
        let at = ((key >> 32) % SHARDS as u64) as usize;
        self.shards[at]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The lane of `key`, forgotten first if it has been quiet long enough.
    pub(crate) fn find<'a>(
        &self,
        shard: &'a mut Shard,
        key: u64,
        now: Instant,
    ) -> Option<&'a mut Entry> {
        match shard.entry(key) {
            hash_map::Entry::Occupied(entry) if is_quiet(&entry.get().lane, now) => {
                entry.remove();
                self.engaged.fetch_sub(1, Ordering::AcqRel);
                None
            }
            hash_map::Entry::Occupied(entry) => Some(entry.into_mut()),
            hash_map::Entry::Vacant(_) => None,
        }
    }

    /// Makes the lane of `key` in `shard`. When the map is full, the quietest scope of the shard
    /// without a hold or a line is forgotten for it; when there is none, nothing is made (the
    /// scope's requests go unpaced, each call still waiting what its own answers asked).
    pub(crate) fn insert<'a>(
        &self,
        shard: &'a mut Shard,
        key: u64,
        entry: impl FnOnce() -> Entry,
        now: Instant,
    ) -> Option<&'a mut Entry> {
        if self.engaged() >= MAX_SCOPES {
            let quietest = shard
                .iter()
                .filter(|(_, entry)| entry.lane.is_idle() && !entry.lane.is_held(now))
                .min_by_key(|(_, entry)| entry.lane.last_signal)
                .map(|(key, _)| *key)?;
            shard.remove(&quietest);
            self.engaged.fetch_sub(1, Ordering::AcqRel);
        }
        self.engaged.fetch_add(1, Ordering::AcqRel);
        Some(shard.entry(key).or_insert_with(entry))
    }

    /// Forgets every quiet scope, at most once per [`SWEEP_EVERY`]; call with no shard locked.
    pub(crate) fn sweep(&self, now: Instant) {
        let ms = |at: Instant| {
            u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX)
        };
        let due = self.next_sweep.load(Ordering::Relaxed);
        let now_ms = ms(now);
        if now_ms < due || self.engaged() == 0 {
            return;
        }
        let next = now_ms.saturating_add(SWEEP_EVERY.as_millis() as u64);
        if self
            .next_sweep
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return; // another call sweeps
        }
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            let before = shard.len();
            shard.retain(|_, entry| !is_quiet(&entry.lane, now));
            self.engaged
                .fetch_sub(before - shard.len(), Ordering::AcqRel);
        }
    }
}

/// Nobody in line, no throttling answer for [`FORGET_AFTER`], and no hold.
fn is_quiet(lane: &Lane, now: Instant) -> bool {
    lane.is_idle()
        && now.saturating_duration_since(lane.last_signal) >= FORGET_AFTER
        && !lane.is_held(now)
}
