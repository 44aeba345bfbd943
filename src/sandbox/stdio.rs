//! The command's standard streams as pipes to the supervisor (`Stdio::piped()` and
//! `Stdio::from(bytes)`).
//!
//! The pipes are made before `clone3`; the sandbox's init moves its ends onto 0, 1 and 2
//! and the parent closes its copies of them right after `clone3`, so the supervisor sees
//! end of file once the sandbox is gone. The supervisor's ends are non-blocking and served
//! by its one poll loop: stdin is fed, stdout and stderr are drained, all as they become
//! ready, so a command that writes megabytes to both outputs while reading its input never
//! waits on hakoniwa.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::plan::StreamSource;
use crate::sys::{self, BlockedSignals, Errno};

/// How much is read from an output pipe at a time: a whole default pipe buffer.
const CHUNK: usize = 64 * 1024;

/// The pipes for the streams a plan wants piped, before and until `clone3`.
pub(crate) struct StreamPipes<'a> {
    /// The sandbox's ends: the read end for stdin, the write ends for stdout and stderr.
    sandbox: [Option<OwnedFd>; 3],
    /// The supervisor's ends, non-blocking.
    supervisor: [Option<OwnedFd>; 3],
    /// What a piped stdin gets.
    input: &'a [u8],
    sigpipe: Option<SigpipeGuard>,
}

impl<'a> StreamPipes<'a> {
    /// A pipe for each stream that is `Pipe`, both ends close-on-exec and above 2, to feed
    /// `input` to stdin. Everything that can fail is done here, before `clone3`: once the
    /// sandbox exists, the supervisor must not leave it unattended.
    pub(crate) fn new(streams: [StreamSource; 3], input: &'a [u8]) -> Result<Self, Errno> {
        let feeds_stdin = streams[0] == StreamSource::Pipe && !input.is_empty();
        let mut pipes = StreamPipes {
            sandbox: [None, None, None],
            supervisor: [None, None, None],
            input,
            sigpipe: if feeds_stdin {
                Some(SigpipeGuard::new()?)
            } else {
                None
            },
        };
        for (fd, source) in streams.iter().enumerate() {
            if *source != StreamSource::Pipe {
                continue;
            }
            let (read, write) = sys::pipe()?;
            let (sandbox, supervisor) = if fd == 0 {
                (read, write)
            } else {
                (write, read)
            };
            sys::set_nonblocking(supervisor.as_raw_fd())?;
            pipes.sandbox[fd] = Some(sandbox);
            pipes.supervisor[fd] = Some(supervisor);
        }
        Ok(pipes)
    }

    /// The sandbox's ends as init finds them (-1 where a stream is not piped).
    pub(crate) fn sandbox_fds(&self) -> [RawFd; 3] {
        self.sandbox
            .each_ref()
            .map(|fd| fd.as_ref().map_or(-1, AsRawFd::as_raw_fd))
    }

    /// Closes the sandbox's ends in this process (call it right after `clone3`: a copy
    /// kept here would hold the pipes open forever) and starts serving the supervisor's
    /// ends.
    pub(crate) fn into_pump(self) -> StreamPump<'a> {
        let StreamPipes {
            sandbox,
            supervisor: [stdin, stdout, stderr],
            input,
            sigpipe,
        } = self;
        drop(sandbox);
        StreamPump {
            // Nothing to feed: closing stdin at once gives the command end of file.
            stdin: stdin.filter(|_| !input.is_empty()),
            input,
            outputs: [stdout, stderr],
            captured: [Vec::new(), Vec::new()],
            chunk: Vec::new(),
            sigpipe,
        }
    }
}

/// The supervisor's side of the piped streams while the sandbox runs.
pub(crate) struct StreamPump<'a> {
    stdin: Option<OwnedFd>,
    /// What stdin has still to get.
    input: &'a [u8],
    /// stdout and stderr, until their end of file.
    outputs: [Option<OwnedFd>; 2],
    captured: [Vec<u8>; 2],
    chunk: Vec<u8>,
    sigpipe: Option<SigpipeGuard>,
}

impl StreamPump<'_> {
    /// The poll(2) entries for stdin, stdout and stderr; -1 (ignored by poll) for those
    /// that are not piped or are done.
    pub(crate) fn poll_fds(&self) -> [libc::pollfd; 3] {
        let entry = |fd: &Option<OwnedFd>, events| libc::pollfd {
            fd: fd.as_ref().map_or(-1, AsRawFd::as_raw_fd),
            events,
            revents: 0,
        };
        [
            entry(&self.stdin, libc::POLLOUT),
            entry(&self.outputs[0], libc::POLLIN),
            entry(&self.outputs[1], libc::POLLIN),
        ]
    }

    /// Moves data through the entries poll found ready (`fds` as `poll_fds` made them).
    pub(crate) fn on_ready(&mut self, fds: &[libc::pollfd]) {
        if fds.first().is_some_and(|p| p.revents != 0) {
            self.feed_stdin(fds[0].revents);
        }
        for (i, entry) in fds.iter().skip(1).take(2).enumerate() {
            if entry.revents != 0 {
                self.read_output(i);
            }
        }
    }

    /// Reads what is left in the output pipes without waiting, for when no writer can be
    /// left: the sandbox is gone.
    pub(crate) fn drain(&mut self) {
        for i in 0..2 {
            while self.read_output(i) == PipeRead::Data {}
        }
        self.outputs = [None, None];
    }

    /// The captured stdout and stderr.
    pub(crate) fn into_captured(self) -> [Vec<u8>; 2] {
        self.captured
    }

    fn feed_stdin(&mut self, revents: i16) {
        let Some(fd) = &self.stdin else { return };
        // The command closed its stdin (or ended): writing would only raise SIGPIPE.
        if revents & libc::POLLERR != 0 {
            self.stdin = None;
            return;
        }
        match sys::write(fd.as_raw_fd(), self.input) {
            Ok(n) => self.input = self.input.get(n..).unwrap_or_default(),
            Err(Errno(libc::EAGAIN)) => return,
            Err(errno) => {
                if errno == Errno(libc::EPIPE)
                    && let Some(guard) = &mut self.sigpipe
                {
                    guard.take_back();
                }
                self.input = &[];
            }
        }
        if self.input.is_empty() {
            // End of file for the command.
            self.stdin = None;
        }
    }

    /// Reads once from output `i`, and forgets it at its end.
    fn read_output(&mut self, i: usize) -> PipeRead {
        let Some(fd) = &self.outputs[i] else {
            return PipeRead::End;
        };
        self.chunk.resize(CHUNK, 0);
        let read = read_pipe(fd.as_raw_fd(), &mut self.captured[i], &mut self.chunk);
        if read == PipeRead::End {
            self.outputs[i] = None;
        }
        read
    }
}

/// What one read from a non-blocking pipe got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PipeRead {
    /// Some bytes, appended.
    Data,
    /// Nothing yet (EAGAIN).
    Empty,
    /// End of file, or an error that ends the pipe's use.
    End,
}

/// Reads once from the non-blocking pipe `fd` through `chunk` and appends it to `out`.
pub(crate) fn read_pipe(fd: RawFd, out: &mut Vec<u8>, chunk: &mut [u8]) -> PipeRead {
    match sys::read(fd, chunk) {
        Ok(0) => PipeRead::End,
        Ok(n) => {
            out.extend_from_slice(&chunk[..n]);
            PipeRead::Data
        }
        Err(Errno(libc::EAGAIN)) => PipeRead::Empty,
        Err(_) => PipeRead::End,
    }
}

/// Blocks SIGPIPE in the supervising thread while it feeds stdin. A command may end or
/// close its stdin before reading all of it, and the write that finds the pipe closed
/// raises SIGPIPE, which by default kills the whole caller: a library cannot count on its
/// host ignoring SIGPIPE as Rust programs do. The guard takes such a SIGPIPE back.
struct SigpipeGuard {
    _blocked: BlockedSignals,
    /// Whether a pending SIGPIPE is ours to take: not when one was pending already.
    ours: bool,
}

impl SigpipeGuard {
    const SIGPIPE: u64 = sys::sigmask(&[libc::SIGPIPE]);

    fn new() -> Result<SigpipeGuard, Errno> {
        let blocked = BlockedSignals::new(Self::SIGPIPE)?;
        let pending = sys::pending_signals()? & Self::SIGPIPE != 0;
        Ok(SigpipeGuard {
            _blocked: blocked,
            ours: !pending,
        })
    }

    /// Takes back the SIGPIPE a write that failed with EPIPE raised.
    fn take_back(&mut self) {
        if self.ours {
            sys::take_pending_signal(Self::SIGPIPE);
            self.ours = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_to_a_closed_stdin_leaves_no_sigpipe_behind() {
        let sigpipe = sys::sigmask(&[libc::SIGPIPE]);
        let pipes = StreamPipes::new(
            [
                StreamSource::Pipe,
                StreamSource::Inherit,
                StreamSource::Null,
            ],
            b"input",
        )
        .unwrap();
        assert!(pipes.sandbox_fds()[0] > 2);
        assert_eq!(pipes.sandbox_fds()[1..], [-1, -1]);
        // The pump closes the sandbox's (read) end here: no reader is left.
        let mut pump = pipes.into_pump();
        assert_eq!(sys::block_signals(0).unwrap() & sigpipe, sigpipe, "blocked");
        // As after a poll that saw room in the pipe just before the reader went away.
        pump.feed_stdin(libc::POLLOUT);
        assert!(pump.stdin.is_none(), "stdin is closed after EPIPE");
        assert_eq!(
            sys::pending_signals().unwrap() & sigpipe,
            0,
            "SIGPIPE taken back"
        );
        drop(pump);
        assert_eq!(
            sys::block_signals(0).unwrap() & sigpipe,
            0,
            "unblocked again"
        );
    }
}
