//! The line of calls the spent hedge budget refused: served oldest first, each woken when the
//! budget can pay for its hedge. A call that has waited longest is the likeliest to be in the
//! tail (on a long-tailed server, an attempt that has run long has long to run), and waking it at
//! the deposit that refills the budget sends its hedge then, not at its next look.
//!
//! Each call in line has the hedges of the calls ahead of it kept for them, and no more: one that
//! never comes back for its hedge (its future held but no longer polled) holds up one hedge, not
//! the line.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

/// The calls waiting, oldest first.
#[derive(Debug, Default)]
pub(crate) struct Line {
    waiting: Mutex<Waiting>,
    /// How many wait: read without the lock on every deposit, so that a budget nobody waits for
    /// costs no lock.
    len: AtomicUsize,
}

#[derive(Debug, Default)]
struct Waiting {
    /// The number the next call to join takes.
    next: u64,
    calls: VecDeque<(u64, Waker)>,
}

/// A call's place in the line, from the refusal that made it join until its hedge leaves or its
/// race ends; dropped, it leaves the line, and the call behind it, first now, is woken to look at
/// the budget.
#[derive(Debug)]
pub(crate) struct Place {
    line: Arc<Line>,
    number: u64,
}

impl Line {
    /// Whether no call waits. Sequentially consistent with the budget's balance: a deposit that
    /// reads an empty line happened before a call joined, and that call sees its deposit.
    pub(crate) fn is_empty(&self) -> bool {
        self.len.load(Ordering::SeqCst) == 0
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Nothing panics while the lock is held; a poisoned line is still a valid one.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Wakes the first `n` calls in line (the budget can pay for their hedges).
    pub(crate) fn wake_first(&self, n: usize) {
        for (_, waker) in self.lock().calls.iter().take(n) {
            waker.wake_by_ref();
        }
    }

    /// How many calls are ahead of `place` (0: it is first), its waker brought up to date.
    pub(crate) fn ahead_of(&self, place: &Place, waker: &Waker) -> usize {
        let mut waiting = self.lock();
        let at = waiting.calls.iter().position(|(n, _)| *n == place.number);
        match at.and_then(|at| waiting.calls.get_mut(at).map(|entry| (at, entry))) {
            Some((at, (_, known))) => {
                if !known.will_wake(waker) {
                    *known = waker.clone();
                }
                at
            }
            // Not in this line (a place is only ever in its budget's): behind everyone.
            None => waiting.calls.len(),
        }
    }

    /// Puts a call at the end of the line.
    pub(crate) fn join(self: &Arc<Self>, waker: &Waker) -> Place {
        let mut waiting = self.lock();
        let number = waiting.next;
        waiting.next += 1;
        waiting.calls.push_back((number, waker.clone()));
        self.len.fetch_add(1, Ordering::SeqCst);
        Place {
            line: self.clone(),
            number,
        }
    }

    /// Takes a call out of the line; when it was first, the new first is woken (the budget may
    /// pay for its hedge: it looks).
    fn leave(&self, number: u64) {
        let mut waiting = self.lock();
        let Some(at) = waiting.calls.iter().position(|(n, _)| *n == number) else {
            return;
        };
        waiting.calls.remove(at);
        self.len.fetch_sub(1, Ordering::SeqCst);
        if at == 0
            && let Some((_, next)) = waiting.calls.front()
        {
            next.wake_by_ref();
        }
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        self.line.leave(self.number);
    }
}
