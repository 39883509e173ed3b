//! Lines to stdout and stderr without panics. A reader that closed stdout early (`| head`) ends
//! the command quietly with exit 0, as `cat` ends in a pipeline; a stderr that cannot be
//! written (`2>/dev/full`) ends it with exit 1, since nothing could say what went wrong.

use std::fmt::Arguments;
use std::io::{ErrorKind, Write};

/// Writes `text` and a newline to stdout.
pub fn stdout_line(text: Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{text}").and_then(|()| out.flush()) {
        if e.kind() == ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        stderr_line(format_args!("error: writing to stdout: {e}"));
        std::process::exit(1);
    }
}

/// Writes `text` and a newline to stderr.
pub fn stderr_line(text: Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    if writeln!(err, "{text}").and_then(|()| err.flush()).is_err() {
        std::process::exit(1);
    }
}

/// `println!` that never panics (see the module).
macro_rules! out {
    ($($t:tt)*) => {
        $crate::out::stdout_line(format_args!($($t)*))
    };
}

/// `eprintln!` that never panics (see the module).
macro_rules! note {
    ($($t:tt)*) => {
        $crate::out::stderr_line(format_args!($($t)*))
    };
}

pub(crate) use {note, out};
