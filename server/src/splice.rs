//! Zero-copy object bodies: file → pipe → socket with io_uring splice, no user-space copy.
//!
//! Each shard keeps a small pool of pipes sized with F_SETPIPE_SZ. A pipe that failed mid-way
//! may still hold bytes, so it is discarded, never pooled. Splice from files needs the io_uring
//! driver (under the poll driver the copy path is used).

use std::cell::RefCell;
use std::os::fd::AsRawFd;

use compio::fs::File;
use compio::fs::pipe::{Receiver, Sender, anonymous, splice};
use compio::net::TcpStream;

/// Bytes one pipe holds (and one splice moves). The kernel may grant less.
const PIPE_BYTES: usize = 1 << 20;
/// Pipes kept per shard.
const POOLED_PIPES_MAX: usize = 32;

struct Pipe {
    rx: Receiver,
    tx: Sender,
    capacity: usize,
}

thread_local! {
    static PIPES: RefCell<Vec<Pipe>> = const { RefCell::new(Vec::new()) };
}

async fn take_pipe() -> std::io::Result<Pipe> {
    if let Some(p) = PIPES.with(|p| p.borrow_mut().pop()) {
        return Ok(p);
    }
    let (rx, tx) = anonymous().await?;
    // SAFETY: fcntl on a pipe fd we own; F_SETPIPE_SZ only resizes its buffer.
    let granted = unsafe { libc::fcntl(tx.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES as libc::c_int) };
    let capacity = if granted > 0 { granted as usize } else { 64 * 1024 };
    Ok(Pipe { rx, tx, capacity })
}

fn give_pipe(p: Pipe) {
    PIPES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOLED_PIPES_MAX {
            pool.push(p);
        }
    });
}

/// Sends `len` bytes of `file` from `offset` to `sock`. On error the connection must be cut: some
/// bytes may have gone out.
pub async fn send_file_range(file: &File, sock: &TcpStream, mut offset: u64, mut len: u64) -> std::io::Result<()> {
    let pipe = take_pipe().await?;
    while len > 0 {
        let want = (len as usize).min(pipe.capacity);
        let n = splice(file, &pipe.tx, want).offset_in(offset as i64).flags(libc::SPLICE_F_MOVE).await?;
        if n == 0 {
            // The file ended before its record said: pipe is empty, but the body is short.
            give_pipe(pipe);
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let mut left = n;
        while left > 0 {
            let m = splice(&pipe.rx, sock, left).flags(libc::SPLICE_F_MOVE | libc::SPLICE_F_MORE).await?;
            if m == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            left -= m;
        }
        offset += n as u64;
        len -= n as u64;
    }
    give_pipe(pipe);
    Ok(())
}
