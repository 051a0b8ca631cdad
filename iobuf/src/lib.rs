//! Page-aligned I/O buffers and a per-thread pool of them: the one memory type both the HTTP
//! shell (socket reads and writes) and the engine (data-file reads and writes) move bytes in, so
//! neither layer needs the other's.
//!
//! Body bytes are read from the socket straight into these buffers, hashed in place and written to
//! the data file from the same memory. Alignment matters: a misaligned copy from the page cache ran
//! 4x slower on the development machines, and O_DIRECT needs it.

use std::alloc::{self, Layout};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::ptr::NonNull;

use compio_buf::{IoBuf, IoBufMut, SetLen};

/// Size of one pooled buffer.
pub const BUFFER_BYTES: usize = 1024 * 1024;
/// Alignment (and size granularity) of every buffer.
pub const ALIGN_BYTES: usize = 4096;

const _: () = assert!(BUFFER_BYTES.is_multiple_of(ALIGN_BYTES));

/// A fixed-capacity, page-aligned byte buffer. All `cap` bytes are initialised (zeroed at
/// allocation; buffers are pooled, so that cost is paid once); `len` of them hold data.
pub struct IoBuffer {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
}

// SAFETY: IoBuffer owns its allocation exclusively, like a Vec<u8>.
unsafe impl Send for IoBuffer {}
unsafe impl Sync for IoBuffer {}

impl IoBuffer {
    /// Allocates a zero-length buffer of `cap` bytes (a multiple of the alignment, at least one
    /// page). The memory is mapped for the buffer alone (anonymous pages, zero until written), so
    /// dropping a buffer gives its pages back to the system at once: a burst of large bodies
    /// does not leave the heap grown.
    pub fn with_capacity(cap: usize) -> IoBuffer {
        let cap = cap.max(ALIGN_BYTES).next_multiple_of(ALIGN_BYTES);
        // SAFETY: an anonymous private mapping of `cap` bytes; checked for failure below.
        let raw = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                cap,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if raw == libc::MAP_FAILED {
            let layout = Layout::from_size_align(cap, ALIGN_BYTES).expect("valid buffer layout");
            alloc::handle_alloc_error(layout);
        }
        let Some(ptr) = NonNull::new(raw.cast::<u8>()) else { unreachable!("mmap never maps page 0 here") };
        IoBuffer { ptr, len: 0, cap }
    }

    pub fn capacity(&self) -> usize {
        self.cap
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Shortens the initialised part to `len` bytes.
    pub fn truncate(&mut self, len: usize) {
        assert!(len <= self.len, "truncate past initialised bytes");
        self.len = len;
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: the first `len` bytes are initialised and owned by self.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        // SAFETY: as above, with exclusive access through &mut self.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }

    /// The spare capacity after the data, for decoders that write in place; follow with `grow`.
    pub fn spare_mut(&mut self) -> &mut [u8] {
        // SAFETY: every byte of the allocation is initialised (zeroed at allocation).
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().add(self.len), self.cap - self.len) }
    }

    /// Counts `n` more bytes of the spare capacity as data.
    pub fn grow(&mut self, n: usize) {
        assert!(self.len + n <= self.cap, "grow past capacity");
        self.len += n;
    }

    /// Appends as much of `data` as fits; returns how many bytes were taken.
    pub fn extend_from_slice(&mut self, data: &[u8]) -> usize {
        let n = data.len().min(self.cap - self.len);
        // SAFETY: the destination range lies inside the allocation and does not overlap `data`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), self.ptr.as_ptr().add(self.len), n) };
        self.len += n;
        n
    }

    /// Removes the first `n` bytes, moving the rest to the front.
    pub fn consume_front(&mut self, n: usize) {
        assert!(n <= self.len);
        // SAFETY: both ranges lie within the initialised part of the allocation; copy handles overlap.
        unsafe { std::ptr::copy(self.ptr.as_ptr().add(n), self.ptr.as_ptr(), self.len - n) };
        self.len -= n;
    }
}

impl Drop for IoBuffer {
    fn drop(&mut self) {
        // SAFETY: mapped in with_capacity with this length; nothing refers to it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.cap) };
    }
}

impl IoBuf for IoBuffer {
    fn as_init(&self) -> &[u8] {
        self.as_slice()
    }
}

impl SetLen for IoBuffer {
    unsafe fn set_len(&mut self, len: usize) {
        assert!(len <= self.cap, "set_len past capacity");
        self.len = len;
    }
}

impl IoBufMut for IoBuffer {
    fn as_uninit(&mut self) -> &mut [MaybeUninit<u8>] {
        // SAFETY: the allocation holds `cap` bytes; MaybeUninit makes no claim about their contents.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast(), self.cap) }
    }
}

/// Free buffers kept per thread (each shard is one thread), bounded so an idle shard gives memory back.
const POOL_BUFFERS_MAX: usize = 64;

thread_local! {
    static POOL: RefCell<Vec<IoBuffer>> = const { RefCell::new(Vec::new()) };
}

/// Takes a standard-size buffer from this thread's pool, or allocates one.
pub fn take_buffer() -> IoBuffer {
    POOL.with(|p| p.borrow_mut().pop()).unwrap_or_else(|| IoBuffer::with_capacity(BUFFER_BYTES))
}

/// Gives this thread's pooled buffers back to the system, down to `keep` (a shard that sat
/// idle: a burst of large bodies should not hold its memory forever). Returns how many.
pub fn trim_pool(keep: usize) -> usize {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let freed = p.len().saturating_sub(keep);
        p.truncate(keep);
        freed
    })
}

/// Returns a buffer to this thread's pool (buffers of other sizes are dropped).
pub fn give_buffer(mut buf: IoBuffer) {
    if buf.capacity() != BUFFER_BYTES {
        return;
    }
    buf.clear();
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_BUFFERS_MAX {
            p.push(buf);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligned_and_bounded() {
        let mut b = IoBuffer::with_capacity(10);
        assert_eq!(b.capacity(), 4096);
        assert_eq!(b.as_slice().as_ptr() as usize % 4096, 0);
        assert_eq!(b.extend_from_slice(&[1; 5000]), 4096);
        assert_eq!(b.extend_from_slice(&[1]), 0);
        b.consume_front(4000);
        assert_eq!(b.len(), 96);
        let p = take_buffer();
        assert_eq!(p.capacity(), BUFFER_BYTES);
        give_buffer(p);
    }

    #[test]
    fn a_pool_is_trimmed() {
        let bufs: Vec<IoBuffer> = (0..5).map(|_| take_buffer()).collect();
        bufs.into_iter().for_each(give_buffer);
        assert_eq!(trim_pool(1), 4);
        assert_eq!(trim_pool(1), 0);
        let b = take_buffer();
        assert!(b.as_slice().is_empty() && b.capacity() == BUFFER_BYTES);
    }
}
