//! Heap allocations counted per shard thread (issue 16): the `keel` binary's global allocator is
//! the system's, wrapped to count the allocations a shard thread makes while it serves S3
//! requests (`keel_shard_heap_allocations_total`). The S3 GET of an inline object and every HEAD
//! are meant to allocate nothing per request; `tests/clients/test_allocations.py` holds them to
//! it. Counting is a thread-local add on threads that asked for it (`count_this_thread`), so
//! other threads pay one thread-local read per allocation.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting on shard threads.
pub struct Counting;

thread_local! {
    /// Whether this thread counts (shard threads), and its count.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    /// Allocations made for operator endpoints (/metrics, /health, /_keel/): left out.
    static EXCLUDED: Cell<u64> = const { Cell::new(0) };
}

#[inline]
fn count() {
    // `try_with`: never panic inside the allocator (a thread being torn down).
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }
}

// SAFETY: every call is passed to `System` unchanged; counting touches only thread-locals
// without destructors, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Makes this thread count its allocations (a shard thread, at its start).
pub fn count_this_thread() {
    COUNTING.with(|c| c.set(true));
}

/// This thread's allocations so far (0 where it does not count, or where the binary's allocator
/// is not `Counting`: a test or another program using the library).
pub fn allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Leaves `n` allocations out of the S3 count (an operator endpoint's).
pub fn exclude(n: u64) {
    EXCLUDED.with(|c| c.set(c.get() + n));
}

/// This thread's allocations while serving S3 requests.
pub fn s3_allocations() -> u64 {
    allocations().saturating_sub(EXCLUDED.with(Cell::get))
}
