//! The one gate for files from outside: images, lists, shards and their indexes, classes.txt,
//! CIFAR binaries, model files and checkpoints. Only regular files are read (a FIFO would block
//! forever, a device never end, a folder is no file), the check is made on the opened file (no
//! race with a rename), and every kind of file has a named size limit that the read stops at.
//! No other module opens outside data (tests/structure.rs checks).

use std::fs::File;
use std::io::{self, Read};
use std::path::{Component, Path, PathBuf};

/// What a file is read as; each kind has its size limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FileKind {
    /// An image (a 100-megapixel JPEG is about 50 MB; a PNG at the decoder's pixel limit about
    /// 300 MB).
    Image,
    /// A CSV list of samples (a few hundred bytes per line even for 10 million lines).
    List,
    /// classes.txt of shards: one class name per line.
    Classes,
    /// A shard index (`.tar.idx`: 40 bytes per sample).
    Index,
    /// A CIFAR binary batch (30 MB each).
    Cifar,
    /// A model file or checkpoint (safetensors; VGG-16 is about 550 MB).
    Model,
    /// A small JSON or text file of a run (reports, lock holders).
    Report,
}

impl FileKind {
    /// The largest file of this kind that is read.
    pub const fn limit(self) -> u64 {
        match self {
            FileKind::Image => 512 << 20,
            FileKind::List => 2 << 30,
            FileKind::Classes => 16 << 20,
            FileKind::Index => 1 << 30,
            FileKind::Cifar => 256 << 20,
            FileKind::Model => 8 << 30,
            FileKind::Report => 64 << 20,
        }
    }

    fn what(self) -> &'static str {
        match self {
            FileKind::Image => "an image",
            FileKind::List => "a sample list",
            FileKind::Classes => "a class list",
            FileKind::Index => "a shard index",
            FileKind::Cifar => "a CIFAR batch",
            FileKind::Model => "a model file",
            FileKind::Report => "a run file",
        }
    }
}

/// Opens `p` for reading if it is a regular file: opened without blocking (a FIFO would wait
/// for a writer), then checked on the open file. Returns the file and its length.
pub(crate) fn open_regular(p: &Path) -> io::Result<(File, u64)> {
    let mut opts = std::fs::OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc_nonblock());
    }
    let f = opts.open(p)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other(format!(
            "not a regular file ({})",
            file_kind(&meta.file_type())
        )));
    }
    Ok((f, meta.len()))
}

/// O_NONBLOCK (the same value on every Linux architecture but alpha, sparc and parisc, which
/// Rust's std targets do not use for this).
#[cfg(unix)]
fn libc_nonblock() -> i32 {
    #[cfg(target_os = "linux")]
    {
        0o4000
    }
    #[cfg(not(target_os = "linux"))]
    {
        0x0004
    }
}

/// Appends all of `p`, a regular file of at most `kind`'s limit, to `buf`.
pub(crate) fn read_into(p: &Path, kind: FileKind, buf: &mut Vec<u8>) -> io::Result<()> {
    let (f, len) = open_regular(p)?;
    let limit = kind.limit();
    let over = |n: u64| {
        io::Error::other(format!(
            "{n} bytes, more than the limit of {limit} bytes for {}",
            kind.what()
        ))
    };
    if len > limit {
        return Err(over(len));
    }
    // +1: read_to_end needs room to see the end of the file without growing.
    buf.reserve(len as usize + 1);
    let start = buf.len();
    f.take(limit + 1).read_to_end(buf)?;
    let n = (buf.len() - start) as u64;
    if n > limit {
        buf.truncate(start);
        return Err(over(n));
    }
    Ok(())
}

/// All of `p`, a regular file of at most `kind`'s limit.
pub fn read(p: &Path, kind: FileKind) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    read_into(p, kind, &mut buf)?;
    Ok(buf)
}

/// [`read`] as UTF-8 text.
pub fn read_to_string(p: &Path, kind: FileKind) -> io::Result<String> {
    String::from_utf8(read(p, kind)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("not UTF-8 text: {e}")))
}

fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a folder"
    } else {
        "not a file"
    }
}

/// Lexically normalises `p` (no symlink resolution): removes `.` and folds `..`.
pub(crate) fn normalise(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_limit_are_read() {
        let d = tempfile::tempdir().unwrap();
        let ok = d.path().join("a.txt");
        std::fs::write(&ok, b"abc").unwrap();
        assert_eq!(read(&ok, FileKind::Classes).unwrap(), b"abc");
        let err = read(d.path(), FileKind::Classes).unwrap_err().to_string();
        assert!(err.contains("folder"), "{err}");
        let err = read(Path::new("/dev/zero"), FileKind::Image)
            .unwrap_err()
            .to_string();
        assert!(err.contains("device"), "{err}");
        #[cfg(unix)]
        {
            // A FIFO without a writer: refused at once instead of waiting for one.
            let fifo = d.path().join("fifo");
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                let err = read(&fifo, FileKind::Model).unwrap_err().to_string();
                assert!(err.contains("FIFO"), "{err}");
            }
        }
    }

    #[test]
    fn a_file_over_its_kind_limit_is_refused_before_reading() {
        let d = tempfile::tempdir().unwrap();
        let big = d.path().join("classes.txt");
        let f = File::create(&big).unwrap();
        f.set_len(FileKind::Classes.limit() + 1).unwrap(); // sparse: no disk used
        let err = read(&big, FileKind::Classes).unwrap_err().to_string();
        assert!(err.contains("limit") && err.contains("class list"), "{err}");
    }
}
