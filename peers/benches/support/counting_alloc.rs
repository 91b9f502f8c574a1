//! A global allocator that counts allocations while counting is switched on.
//!
//! The only `unsafe` of the project: a `GlobalAlloc` must be an `unsafe impl`. It forwards every call to
//! the system allocator unchanged; while off, it costs one relaxed load per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// Counts allocations (`alloc`, `alloc_zeroed`, `realloc`) and the bytes they asked for.
pub struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

fn record(size: usize) {
    if COUNTING.load(Relaxed) {
        ALLOCATIONS.fetch_add(1, Relaxed);
        BYTES.fetch_add(size as u64, Relaxed);
    }
}

// SAFETY: every method forwards its arguments to `System`, which upholds the `GlobalAlloc` contract;
// counting touches only atomics and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: the caller's guarantees for `layout` are passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` through this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: as for `dealloc`, and the caller's guarantees for `new_size` are passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Allocations made by the code under count.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Allocations {
    /// How many.
    pub count: u64,
    /// How many bytes they asked for.
    pub bytes: u64,
}

/// Runs `f` with counting on. Counting is process-wide: nothing else may run meanwhile (the benchmarks
/// count on one thread, before criterion starts).
pub fn count<T>(f: impl FnOnce() -> T) -> (T, Allocations) {
    ALLOCATIONS.store(0, Relaxed);
    BYTES.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let out = f();
    COUNTING.store(false, Relaxed);
    let counted = Allocations {
        count: ALLOCATIONS.load(Relaxed),
        bytes: BYTES.load(Relaxed),
    };
    (out, counted)
}
