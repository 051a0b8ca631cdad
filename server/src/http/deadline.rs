//! Connection deadlines on one sweep per shard (issue 16, item 2; DESIGN D42): instead of a timer
//! future per read or write (compio keeps timers in a map that allocates on every loop turn while
//! one is pending), a connection arms its slot in the shard's table before waiting on the
//! socket and disarms it after; the shard's tick (`run_ticks`, a timerfd read every
//! `TICK`) shuts the socket down when a slot's deadline has passed, which ends the pending
//! read or write at once, and the connection sees the slot fired: a timeout.

use std::cell::RefCell;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How often a shard checks its connections' deadlines: a timeout fires up to this late.
pub const TICK: Duration = Duration::from_millis(250);

/// A shard's connection deadlines.
#[derive(Default)]
pub struct Deadlines {
    slots: RefCell<Vec<Slot>>,
    free: RefCell<Vec<usize>>,
}

#[derive(Clone, Copy)]
struct Slot {
    fd: RawFd,
    at: Option<Instant>,
    fired: bool,
    /// How the socket is shut down when the deadline passes (`SHUT_RD` for a read: an answer
    /// can still be written; `SHUT_RDWR` for a write the client does not take).
    how: libc::c_int,
}

impl Deadlines {
    pub fn new() -> Rc<Deadlines> {
        Rc::new(Deadlines::default())
    }

    /// A slot for the socket `fd` (freed when the registration drops).
    pub fn register(self: &Rc<Self>, fd: RawFd) -> Registration {
        let slot = Slot { fd, at: None, fired: false, how: libc::SHUT_RD };
        let index = match self.free.borrow_mut().pop() {
            Some(i) => {
                self.slots.borrow_mut()[i] = slot;
                i
            }
            None => {
                let mut slots = self.slots.borrow_mut();
                slots.push(slot);
                slots.len() - 1
            }
        };
        Registration { table: self.clone(), index }
    }

    /// Shuts down the sockets whose deadline passed by `now`; how many.
    pub fn sweep(&self, now: Instant) -> usize {
        let mut fired = 0;
        for s in self.slots.borrow_mut().iter_mut() {
            if s.at.is_some_and(|at| at <= now) && !s.fired {
                s.fired = true;
                s.at = None;
                fired += 1;
                // SAFETY: shutdown on a socket the registered connection owns and keeps open
                // while its slot is armed (it disarms before closing).
                unsafe {
                    libc::shutdown(s.fd, s.how);
                }
            }
        }
        fired
    }
}

/// A connection's slot.
pub struct Registration {
    table: Rc<Deadlines>,
    index: usize,
}

impl Registration {
    /// Arms the deadline `after` from now, for a read (or with `write`, a write), until the
    /// guard goes (or says whether it fired).
    pub fn arm(&self, after: Duration, write: bool) -> Armed<'_> {
        let mut slots = self.table.slots.borrow_mut();
        let s = &mut slots[self.index];
        s.at = Some(Instant::now() + after);
        s.fired = false;
        s.how = if write { libc::SHUT_RDWR } else { libc::SHUT_RD };
        Armed { reg: self }
    }

    fn disarm(&self) -> bool {
        let mut slots = self.table.slots.borrow_mut();
        let s = &mut slots[self.index];
        s.at = None;
        std::mem::take(&mut s.fired)
    }
}

/// An armed deadline: disarmed when dropped (a cancelled wait too).
pub struct Armed<'a> {
    reg: &'a Registration,
}

impl Armed<'_> {
    /// Disarms; whether the deadline fired (the wait it guarded was cut: a timeout).
    pub fn fired(self) -> bool {
        let fired = self.reg.disarm();
        std::mem::forget(self);
        fired
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        self.reg.disarm();
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.table.slots.borrow_mut()[self.index] = Slot { fd: -1, at: None, fired: false, how: libc::SHUT_RD };
        self.table.free.borrow_mut().push(self.index);
    }
}

/// The shard's tick: every `TICK`, sweeps `deadlines` and runs `each` (other periodic work), on a
/// timerfd read rather than a compio timer. Where the timerfd cannot be made or read, it goes
/// on with a compio timer: deadlines are always swept. Runs until the shard's runtime stops.
pub async fn run_ticks(deadlines: Rc<Deadlines>, mut each: impl FnMut(Instant)) {
    use compio::io::AsyncRead;
    let mut timer = timerfd(TICK)
        .inspect_err(|e| tracing::error!(error = %e, "no timerfd for the shard's tick: it runs on a timer"))
        .ok();
    let mut buf = Vec::with_capacity(8);
    loop {
        match &mut timer {
            Some(t) => {
                let compio::BufResult(r, b) = t.read(buf).await;
                buf = b;
                buf.clear();
                if let Err(e) = r {
                    tracing::error!(error = %e, "the shard's timerfd failed: its tick runs on a timer");
                    timer = None;
                }
            }
            None => compio::time::sleep(TICK).await,
        }
        let now = Instant::now();
        deadlines.sweep(now);
        each(now);
    }
}

/// A timerfd that becomes readable every `period`, attached to the shard's runtime.
fn timerfd(period: Duration) -> std::io::Result<compio::runtime::fd::AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: a plain syscall; the descriptor is owned by the OwnedFd below from here on.
    let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor nothing else owns.
    let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
    let every =
        libc::timespec { tv_sec: period.as_secs() as libc::time_t, tv_nsec: period.subsec_nanos() as libc::c_long };
    let spec = libc::itimerspec { it_interval: every, it_value: every };
    // SAFETY: a valid timerfd and a valid itimerspec.
    if unsafe { libc::timerfd_settime(fd, 0, &spec, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    compio::runtime::fd::AsyncFd::new(owned)
}
