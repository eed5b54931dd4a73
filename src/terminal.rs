//! The terminal a `sluice run` writes to: rows on stdout, the progress line,
//! messages and logs on stderr.
//!
//! On a terminal the progress line is drawn in place, without a newline, as
//! the last line on screen. Everything else is written above it, under one
//! lock: clear the progress line, write whole lines, draw it again. So a
//! row on stdout is never split by the progress line nor glued to it, and
//! a log line never lands in the middle of a row.

use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, MutexGuard, OnceLock};

/// Clears the line the cursor is on and returns to its start.
const CLEAR_LINE: &str = "\r\x1b[2K";

struct Screen {
    /// The progress line on screen now, if one is drawn.
    status: Option<String>,
}

static SCREEN: Mutex<Screen> = Mutex::new(Screen { status: None });

fn screen() -> MutexGuard<'static, Screen> {
    // A panic while drawing leaves nothing half-updated that matters.
    SCREEN.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether stderr is a terminal: the progress line is drawn in place there.
pub fn stderr_is_terminal() -> bool {
    static TTY: OnceLock<bool> = OnceLock::new();
    *TTY.get_or_init(|| io::stderr().is_terminal())
}

fn stdout_is_terminal() -> bool {
    static TTY: OnceLock<bool> = OnceLock::new();
    *TTY.get_or_init(|| io::stdout().is_terminal())
}

/// Draws `line` as the progress line, in place of the one before (a
/// terminal only; elsewhere it does nothing).
pub fn set_status(line: &str) -> io::Result<()> {
    if !stderr_is_terminal() {
        return Ok(());
    }
    // Wider than the terminal it would wrap, and clearing one line would
    // leave the rest behind at every redraw.
    let line = fit(line, terminal_columns());
    let mut screen = screen();
    let mut err = io::stderr().lock();
    write!(err, "{CLEAR_LINE}{line}")?;
    err.flush()?;
    screen.status = Some(line.to_string());
    Ok(())
}

/// The terminal's width (stderr's), if it says.
fn terminal_columns() -> Option<usize> {
    #[cfg(unix)]
    {
        // SAFETY: TIOCGWINSZ fills the winsize it is given; stderr is a
        // terminal here.
        let mut size: libc::winsize = unsafe { std::mem::zeroed() };
        let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
        if ok && size.ws_col > 0 {
            return Some(usize::from(size.ws_col));
        }
    }
    None
}

/// `line` cut to `columns` characters, keeping one column free (a full
/// line makes some terminals wrap).
fn fit(line: &str, columns: Option<usize>) -> &str {
    match columns.and_then(|c| line.char_indices().nth(c.saturating_sub(1))) {
        Some((at, _)) => &line[..at],
        None => line,
    }
}

/// Removes the progress line from the screen.
pub fn clear_status() -> io::Result<()> {
    let mut screen = screen();
    if screen.status.take().is_some() {
        let mut err = io::stderr().lock();
        write!(err, "{CLEAR_LINE}")?;
        err.flush()?;
    }
    Ok(())
}

/// Writes `bytes` (whole lines) to stdout, above the progress line.
pub fn write_stdout(bytes: &[u8]) -> io::Result<()> {
    let write = |bytes: &[u8]| -> io::Result<()> {
        let mut out = io::stdout().lock();
        out.write_all(bytes)?;
        out.flush()
    };
    // Only a progress line on the same screen is in the way. A pipe is
    // written without the lock: a slow reader must hold up this writer,
    // not every log line and the progress display.
    if !stdout_is_terminal() {
        return write(bytes);
    }
    let screen = screen();
    let Some(line) = &screen.status else {
        return write(bytes);
    };
    let mut err = io::stderr().lock();
    err.write_all(CLEAR_LINE.as_bytes())?;
    err.flush()?;
    write(bytes)?;
    err.write_all(line.as_bytes())?;
    err.flush()
}

/// Writes `bytes` (whole lines) to stderr, above the progress line.
pub fn write_stderr(bytes: &[u8]) -> io::Result<()> {
    let screen = screen();
    let mut err = io::stderr().lock();
    match &screen.status {
        Some(line) => {
            err.write_all(CLEAR_LINE.as_bytes())?;
            err.write_all(bytes)?;
            err.write_all(line.as_bytes())?;
        }
        None => err.write_all(bytes)?,
    }
    err.flush()
}

/// Prints `text` and a newline on stderr, above the progress line: what
/// `eprintln!` does, for messages written while the progress line may be
/// drawn. A closed stderr is ignored, as `eprintln!` cannot ignore it.
pub fn message(text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    if write_stderr(line.as_bytes()).is_err() {
        // Nobody reads stderr any more; there is nowhere left to say so.
    }
}

/// Prints `text` and a newline on stdout, above the progress line.
pub fn print(text: &str) -> io::Result<()> {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    write_stdout(line.as_bytes())
}

/// A writer to stderr that writes above the progress line (for `tracing`,
/// which writes each event in one call).
pub struct StderrLines;

impl Write for StderrLines {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_stderr(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_progress_line_fits_the_terminal() {
        assert_eq!(super::fit("abcdef", Some(4)), "abc");
        assert_eq!(super::fit("abc", Some(80)), "abc");
        assert_eq!(super::fit("ééé", Some(3)), "éé");
        assert_eq!(super::fit("abc", None), "abc");
    }
}
