//! Where the process's log lines go (tracing's output: the access log, warnings, errors):
//! stderr, through a buffer that a background thread writes out every 50 ms. Written line by
//! line, the access log alone cost one blocking write(2) per request on the async workers.
//! Warnings and errors are written at once, after what is buffered, so the order holds;
//! if the process is killed, at most the last 50 ms of info lines are lost.

pub mod access;
mod format;

pub use format::LineFormat;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tracing::Metadata;
use tracing_subscriber::fmt::MakeWriter;

const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Past this many buffered bytes a line is written out by its own thread, with the buffer.
const MAX_BUFFERED: usize = 256 * 1024;

/// The `MakeWriter` given to tracing's formatter; see [`buffered`].
#[derive(Clone)]
pub struct Sink {
    shared: Arc<Shared>,
}

struct Shared {
    /// Taken first by whoever writes out, so lines leave in the order they came.
    out: Mutex<Box<dyn Write + Send>>,
    buf: Mutex<Vec<u8>>,
    stop: AtomicBool,
}

fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    /// Writes out what is buffered, then `line`.
    fn write_out(&self, line: &[u8]) -> io::Result<()> {
        let mut out = lock(&self.out);
        let pending = std::mem::take(&mut *lock(&self.buf));
        out.write_all(&pending)?;
        out.write_all(line)?;
        out.flush()
    }
}

/// Stops the flusher and writes out what is left when dropped: keep it alive in `main`.
pub struct Guard {
    shared: Arc<Shared>,
    flusher: Option<JoinHandle<()>>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(f) = self.flusher.take() {
            f.thread().unpark();
            let _ = f.join();
        }
        let _ = self.shared.write_out(&[]);
    }
}

/// A sink writing to `out` (stderr in the binary) and the guard of its flusher thread. If
/// the thread cannot be started, every line is written at once.
pub fn buffered(out: Box<dyn Write + Send>) -> (Sink, Guard) {
    let shared = Arc::new(Shared {
        out: Mutex::new(out),
        buf: Mutex::new(Vec::new()),
        stop: AtomicBool::new(false),
    });
    let s = shared.clone();
    let flusher = std::thread::Builder::new()
        .name("souk-log".into())
        .spawn(move || {
            while !s.stop.load(Ordering::Acquire) {
                std::thread::park_timeout(FLUSH_EVERY);
                let _ = s.write_out(&[]);
            }
        })
        .ok();
    if flusher.is_none() {
        shared.stop.store(true, Ordering::Release);
    }
    let guard = Guard {
        shared: shared.clone(),
        flusher,
    };
    (Sink { shared }, guard)
}

/// One log line on its way out.
pub struct Line<'a> {
    shared: &'a Shared,
    at_once: bool,
}

impl Write for Line<'_> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if !self.at_once && !self.shared.stop.load(Ordering::Acquire) {
            let mut buf = lock(&self.shared.buf);
            if buf.len() + data.len() <= MAX_BUFFERED {
                buf.extend_from_slice(data);
                return Ok(data.len());
            }
        }
        self.shared.write_out(data)?;
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            shared: &self.shared,
            at_once: false,
        }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line<'a> {
        Line {
            shared: &self.shared,
            at_once: *meta.level() <= tracing::Level::WARN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            lock(&self.0).extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(lock(&self.0).clone()).unwrap()
        }
    }

    #[test]
    fn info_waits_for_the_flusher_warnings_go_at_once_and_order_holds() {
        let out = Captured::default();
        let (sink, guard) = buffered(Box::new(out.clone()));
        let mut info = Line {
            shared: &sink.shared,
            at_once: false,
        };
        let mut warn = Line {
            shared: &sink.shared,
            at_once: true,
        };
        info.write_all(b"one\n").unwrap();
        info.write_all(b"two\n").unwrap();
        warn.write_all(b"three\n").unwrap();
        assert_eq!(
            out.text(),
            "one\ntwo\nthree\n",
            "the warning brought the buffer"
        );
        info.write_all(b"four\n").unwrap();
        let waited = std::time::Instant::now();
        while out.text().len() < 19 && waited.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            out.text(),
            "one\ntwo\nthree\nfour\n",
            "the flusher wrote it"
        );
        info.write_all(b"five\n").unwrap();
        drop(guard);
        assert_eq!(
            out.text(),
            "one\ntwo\nthree\nfour\nfive\n",
            "the guard flushed"
        );
        info.write_all(b"six\n").unwrap();
        assert!(
            out.text().ends_with("six\n"),
            "after the guard, lines go at once"
        );
    }

    #[test]
    fn a_full_buffer_is_written_by_the_writer() {
        let out = Captured::default();
        let (sink, _guard) = buffered(Box::new(out.clone()));
        let mut info = Line {
            shared: &sink.shared,
            at_once: false,
        };
        let line = vec![b'x'; 1000];
        let lines = 3 * MAX_BUFFERED / 1000;
        for _ in 0..lines {
            info.write_all(&line).unwrap();
            assert!(lock(&sink.shared.buf).len() <= MAX_BUFFERED);
        }
        let buffered = lock(&sink.shared.buf).len();
        assert_eq!(out.text().len() + buffered, lines * 1000, "nothing lost");
    }
}
