//! Reading inputs, each once, with errors that name the path. A regular file is read up to its
//! length; a pipe, a FIFO or a character device is read as its data arrives, waiting at most a
//! timeout for each piece and never past a bound set by the memory available. A reader that knows
//! its format stops where the format's header says the data ends ([`read_until`]). Directories and
//! sockets are refused, and every buffer is checked against the memory available before it is
//! allocated ([`reserve`]), so that too large an input is an error, not the end of the process.

use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How much of an input to read, judged from the bytes read so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Extent {
    /// Read until there are this many bytes, then judge again (stop if the input ends first, or
    /// if there are that many already).
    AtLeast(usize),
    /// This many bytes in all and no more (fewer if the input ends first).
    Total(usize),
    /// Everything, to the input's end.
    ToEnd,
}

/// The memory one input may take where the system does not say what is available.
const UNKNOWN_MEMORY: u64 = 8 << 30;

/// Bytes asked of the operating system per read.
const CHUNK: usize = 1 << 20;

/// How long to wait for a pipe's or a FIFO's next data, unless `DOWNHILL_INPUT_TIMEOUT` says.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The whole input at `path`, read once (see [`read_until`] for how each kind is read).
pub fn read(path: &Path) -> Result<Vec<u8>> {
    read_until(path, |_| Extent::ToEnd)
}

/// The input at `path`, read once and only as far as `extent` says from the bytes read so far:
/// a format's reader asks for its header, then for the size the header declares.
///
/// A regular file is read no further than its length. Anything else that can be read (a pipe
/// such as `<(cat x.npy)`, a FIFO, a character device) is opened without blocking and read as
/// its data arrives; each wait for data lasts at most `DOWNHILL_INPUT_TIMEOUT` seconds (default
/// 30), after which the read fails saying that no data arrived, and read to its end it may hold
/// at most half the memory available. Directories and sockets are refused.
pub fn read_until(path: &Path, mut extent: impl FnMut(&[u8]) -> Extent) -> Result<Vec<u8>> {
    let mut input = Input::open(path)?;
    let mut bytes = Vec::new();
    loop {
        match extent(&bytes) {
            Extent::AtLeast(n) => {
                if n <= bytes.len() || !input.fill(&mut bytes, n)? {
                    return Ok(bytes);
                }
            }
            Extent::Total(n) => {
                input.fill(&mut bytes, n)?;
                return Ok(bytes);
            }
            Extent::ToEnd => {
                input.fill_to_end(&mut bytes)?;
                return Ok(bytes);
            }
        }
    }
}

/// Bytes of memory available now (Linux's `MemAvailable`), or 8 GiB where that is not known:
/// the most that the data read from one input may take.
fn memory_limit() -> u64 {
    crate::host_memory::available().unwrap_or(UNKNOWN_MEMORY)
}

/// Makes room in `buffer` for `additional` more elements of data read from `name`, refusing with
/// an error that says how much was needed when that is more than the memory available or more
/// than can be allocated.
pub fn reserve<T>(buffer: &mut Vec<T>, additional: usize, name: &str) -> Result<()> {
    let bytes = (additional as u64).saturating_mul(size_of::<T>() as u64);
    let available = memory_limit();
    let refuse = || Error::Data {
        source_name: name.to_string(),
        message: format!(
            "needs {} of memory to read, over the {} available on this machine; free memory or \
             use a smaller file (a .npy file of features can be memory-mapped with --mmap)",
            crate::units::size(bytes),
            crate::units::size(available)
        ),
    };
    if bytes > available {
        return Err(refuse());
    }
    buffer.try_reserve_exact(additional).map_err(|_| refuse())
}

/// The longest wait for an input: a year.
const MAX_TIMEOUT: Duration = Duration::from_secs(365 * 24 * 3600);

/// How long to wait for a stream's next data: `DOWNHILL_INPUT_TIMEOUT` seconds (at most a year),
/// else 30.
fn input_timeout() -> Result<Duration> {
    let Some(text) = std::env::var_os("DOWNHILL_INPUT_TIMEOUT") else {
        return Ok(DEFAULT_TIMEOUT);
    };
    text.to_str()
        .and_then(|t| t.trim().parse::<f64>().ok())
        .filter(|&seconds| seconds > 0.0)
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        // A year is as good as for ever, and keeps deadlines representable.
        .map(|timeout| timeout.min(MAX_TIMEOUT))
        .ok_or_else(|| {
            Error::Usage(format!(
                "DOWNHILL_INPUT_TIMEOUT={text:?} is not a number of seconds above 0; set it to \
                 the seconds to wait for data from a pipe or FIFO (say 30), or unset it"
            ))
        })
}

/// What is being read.
enum Kind {
    /// A regular file of this many bytes.
    File(usize),
    /// A pipe, a FIFO or a device, whose data may take up to this long to arrive.
    Stream {
        /// The wait for each piece of data.
        timeout: Duration,
        /// Whether it is a FIFO (for messages).
        fifo: bool,
    },
}

/// An input opened for reading.
struct Input<'a> {
    file: std::fs::File,
    path: &'a Path,
    kind: Kind,
}

impl<'a> Input<'a> {
    /// Opens `path` without blocking (a FIFO with no writer would otherwise block the open), and
    /// refuses what cannot be read as data.
    fn open(path: &'a Path) -> Result<Self> {
        let refuse = |what: &str| Error::Data {
            source_name: path.display().to_string(),
            message: format!("is {what}, not a file; give a file, a FIFO or a pipe"),
        };
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|source| {
                if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket()) {
                    refuse("a socket")
                } else {
                    io_error("could not read", path, source)
                }
            })?;
        let metadata = file
            .metadata()
            .map_err(|source| io_error("could not read", path, source))?;
        let kind = metadata.file_type();
        if kind.is_dir() {
            return Err(refuse("a directory"));
        }
        let kind = if kind.is_file() {
            Kind::File(usize::try_from(metadata.len()).unwrap_or(usize::MAX))
        } else {
            Kind::Stream {
                timeout: input_timeout()?,
                fifo: kind.is_fifo(),
            }
        };
        Ok(Self { file, path, kind })
    }

    fn name(&self) -> String {
        self.path.display().to_string()
    }

    /// Reads until `bytes` holds `target` bytes (no further than a regular file's length) or the
    /// input ends; whether it got them all.
    fn fill(&mut self, bytes: &mut Vec<u8>, target: usize) -> Result<bool> {
        let goal = match self.kind {
            Kind::File(length) => target.min(length),
            Kind::Stream { .. } => target,
        };
        if goal > bytes.len() {
            reserve(bytes, goal - bytes.len(), &self.name())?;
        }
        self.read_into(bytes, goal)?;
        Ok(bytes.len() >= target)
    }

    /// Reads to the end: a regular file to its length, a stream until its writer closes it, up
    /// to half the memory available.
    fn fill_to_end(&mut self, bytes: &mut Vec<u8>) -> Result<()> {
        let Kind::Stream { .. } = self.kind else {
            return self.fill(bytes, usize::MAX).map(drop);
        };
        let cap = usize::try_from(memory_limit() / 2).unwrap_or(usize::MAX - 1);
        self.read_into(bytes, cap + 1)?;
        if bytes.len() > cap {
            return Err(Error::Data {
                source_name: self.name(),
                message: format!(
                    "sends more than {}, half the memory available, without ending; write it \
                     to a file and give that instead",
                    crate::gpu::mib(cap as u64)
                ),
            });
        }
        Ok(())
    }

    /// Appends what the input holds until `bytes` has `goal` bytes or the input ends, growing
    /// `bytes` (checked) where it has no room left.
    fn read_into(&mut self, bytes: &mut Vec<u8>, goal: usize) -> Result<()> {
        while bytes.len() < goal {
            let len = bytes.len();
            let want = (goal - len).min(CHUNK);
            if bytes.capacity() - len < want {
                reserve(bytes, len.max(want).min(goal - len), &self.name())?;
            }
            bytes.resize(len + want, 0);
            let got = self.read_some(&mut bytes[len..])?;
            bytes.truncate(len + got);
            if got == 0 {
                break;
            }
        }
        Ok(())
    }

    /// One read into `buffer`, after waiting for data on a stream: the bytes read, 0 at the end.
    fn read_some(&mut self, buffer: &mut [u8]) -> Result<usize> {
        loop {
            if let Kind::Stream { timeout, fifo } = self.kind {
                self.wait(timeout, fifo)?;
            }
            match self.file.read(buffer) {
                Ok(n) => return Ok(n),
                Err(e) if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) => {}
                Err(source) => return Err(io_error("could not read", self.path, source)),
            }
        }
    }

    /// Waits up to `timeout` for data (or the end) to be ready to read.
    fn wait(&self, timeout: Duration, fifo: bool) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let millis = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            let mut ready = libc::pollfd {
                fd: self.file.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one pollfd, alive for the whole call, on a descriptor this input owns.
            match unsafe { libc::poll(&mut ready, 1, millis) } {
                0 => {
                    return Err(Error::Data {
                        source_name: self.name(),
                        message: format!(
                            "no data arrived from this {} within {} s; is a writer connected? \
                             (set DOWNHILL_INPUT_TIMEOUT to the seconds to wait)",
                            if fifo { "FIFO" } else { "input" },
                            timeout.as_secs_f64()
                        ),
                    });
                }
                n if n > 0 => return Ok(()),
                _ => {
                    let source = std::io::Error::last_os_error();
                    if source.kind() != ErrorKind::Interrupted {
                        return Err(io_error("could not wait for data from", self.path, source));
                    }
                }
            }
        }
    }
}

fn io_error(action: &'static str, path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        action,
        path: path.display().to_string(),
        source,
    }
}
