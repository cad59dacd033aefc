//! Console logging that can never hurt an upload: lines go through a bounded in-memory queue to
//! a background thread (a slow or stuck stderr never blocks a request), and a write that fails
//! (full disk, closed pipe) costs that line, never a panic.

use std::io::Write;

use tracing_appender::non_blocking::WorkerGuard;

/// Stderr that forgets its write errors: logging must not fail the program.
struct ForgivingStderr;

impl Write for ForgivingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

/// Logs to stderr with `filter` (e.g. "info"); keep the guard until the program ends so the last
/// lines are written.
pub fn init_console(filter: &str) -> WorkerGuard {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Lossy: when the queue is full, lines are dropped rather than the request waiting.
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default().lossy(true).finish(ForgivingStderr);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer)
        .log_internal_errors(false)
        .try_init();
    guard
}
