//! Bounded file reads: every reader of cilp checks a file before it reads it.
//!
//! A dataset, a run folder or a checkpoint can hold hostile or broken files: a 5 GB sparse
//! `.npy` (no disk used, but `std::fs::read` allocates 5 GB for it), a FIFO that blocks the
//! reader forever, a symlink to `/dev/zero` that never ends. The functions here refuse those
//! before allocating anything:
//!
//! 1. [`check_regular_file`] stats the path (symlinks followed) and refuses anything that is
//!    not a regular file (folders, FIFOs, character and block devices, sockets), by name.
//! 2. [`open_bounded`] also refuses a file larger than the caller's limit, then opens it
//!    without blocking (`O_NONBLOCK`, so a file swapped for a FIFO between the stat and the open
//!    does not hang the open) and checks the opened handle again (regular file, size within the
//!    limit), so what is read is what was checked.
//! 3. [`read_bounded`] / [`read_bounded_into`] / [`read_bounded_to_string`] read at most
//!    `max_bytes + 1` bytes (`Read::take`), so a file that grows while it is read is caught too,
//!    and reserve only the size the file had when it was opened.
//!
//! Every error is a [`ReadError`] naming the path, what was expected (`what`, e.g.
//! `"a 64x64 PNG image"`) and, for sizes, the size found and the limit. The other crates
//! (cilp-track's run files, cilp-models' PyTorch reader, cilp-train's checkpoints) use these
//! functions with their own limits and wrap the error in their own error type.

use std::fs::{File, Metadata, OpenOptions};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Why a bounded read refused a file. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The operating system refused to stat, open or read the file.
    #[error("{}: {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The path is a folder, FIFO, device or socket, not a regular file.
    #[error("{}: is a {kind}, not a regular file{}", path.display(), expected_suffix(what))]
    NotRegular {
        path: PathBuf,
        /// e.g. `"FIFO (named pipe)"`, `"character device"`.
        kind: &'static str,
        /// What the caller expected there (may be empty).
        what: String,
    },
    /// The file is larger than the caller's limit; nothing was read.
    #[error("{}: file is {size} bytes, larger than the {max}-byte limit for {what}; refused without reading it", path.display())]
    TooLarge { path: PathBuf, size: u64, max: u64, what: String },
    /// The file grew past the limit while it was being read.
    #[error("{}: file grew past the {max}-byte limit for {what} while it was being read", path.display())]
    Grew { path: PathBuf, max: u64, what: String },
}

fn expected_suffix(what: &str) -> String {
    if what.is_empty() { String::new() } else { format!("; expected {what}") }
}

impl ReadError {
    /// The file the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::Io { path, .. }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::Grew { path, .. } => path,
        }
    }

    fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        ReadError::Io { path: path.to_path_buf(), action, source }
    }
}

/// A human name for a file type that is not a regular file.
fn kind_name(ft: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return "FIFO (named pipe)";
        }
        if ft.is_char_device() {
            return "character device";
        }
        if ft.is_block_device() {
            return "block device";
        }
        if ft.is_socket() {
            return "socket";
        }
    }
    if ft.is_dir() { "folder" } else { "special file" }
}

fn check_metadata(path: &Path, meta: &Metadata, what: &str) -> Result<(), ReadError> {
    if meta.is_file() {
        Ok(())
    } else {
        Err(ReadError::NotRegular { path: path.to_path_buf(), kind: kind_name(&meta.file_type()), what: what.to_owned() })
    }
}

/// Stats `path` (following symlinks) and returns its metadata if it is a regular file.
///
/// Folders, FIFOs, character and block devices (`/dev/zero`, directly or through a symlink)
/// and sockets are refused with [`ReadError::NotRegular`] naming the path and its kind; a
/// missing or unreadable path is [`ReadError::Io`]. Nothing is opened, so a FIFO cannot block.
pub fn check_regular_file(path: &Path) -> Result<Metadata, ReadError> {
    check_regular_file_for(path, "")
}

/// [`check_regular_file`] with `what` (what the file should be) in the error message.
pub fn check_regular_file_for(path: &Path, what: &str) -> Result<Metadata, ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| ReadError::io(path, "cannot stat file", e))?;
    check_metadata(path, &meta, what)?;
    Ok(meta)
}

fn too_large(path: &Path, size: u64, max: u64, what: &str) -> ReadError {
    ReadError::TooLarge { path: path.to_path_buf(), size, max, what: what.to_owned() }
}

/// Opens `path` for reading after checking that it is a regular file (see
/// [`check_regular_file`]) of at most `max_bytes` bytes; returns the file and its size.
///
/// For readers that stream or seek (a zip archive, a header followed by a payload) instead of
/// reading the whole file: they must still not read more than the returned size (use
/// `Read::take`). The open does not block on a FIFO (`O_NONBLOCK`; it has no effect on reads
/// of a regular file) and the opened handle is checked again, so a file replaced between the
/// stat and the open is caught. `what` says what the file should be, for the messages.
pub fn open_bounded(path: &Path, max_bytes: u64, what: &str) -> Result<(File, u64), ReadError> {
    let meta = std::fs::metadata(path).map_err(|e| ReadError::io(path, "cannot stat file", e))?;
    check_metadata(path, &meta, what)?;
    if meta.len() > max_bytes {
        return Err(too_large(path, meta.len(), max_bytes, what));
    }
    let mut opts = OpenOptions::new();
    opts.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.custom_flags(libc::O_NONBLOCK);
    }
    let file = opts.open(path).map_err(|e| ReadError::io(path, "cannot open file", e))?;
    let meta = file.metadata().map_err(|e| ReadError::io(path, "cannot stat open file", e))?;
    check_metadata(path, &meta, what)?;
    if meta.len() > max_bytes {
        return Err(too_large(path, meta.len(), max_bytes, what));
    }
    Ok((file, meta.len()))
}

/// Reads the whole of `path` into `buf` (cleared first), refusing special files and files over
/// `max_bytes` before reading anything (see [`open_bounded`]). At most `max_bytes + 1` bytes are
/// read: a file that grows past the limit during the read is [`ReadError::Grew`]. `buf` keeps
/// its capacity, so a loop over many small files allocates once.
pub fn read_bounded_into(path: &Path, max_bytes: u64, what: &str, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    buf.clear();
    let (file, size) = open_bounded(path, max_bytes, what)?;
    // `size <= max_bytes`; on a 32-bit target it may still not fit in memory.
    let size = usize::try_from(size).map_err(|_| too_large(path, size, max_bytes, what))?;
    buf.reserve_exact(size);
    file.take(max_bytes.saturating_add(1)).read_to_end(buf).map_err(|e| ReadError::io(path, "cannot read file", e))?;
    if buf.len() as u64 > max_bytes {
        buf.clear();
        return Err(ReadError::Grew { path: path.to_path_buf(), max: max_bytes, what: what.to_owned() });
    }
    Ok(())
}

/// Reads the whole of `path`, refusing special files and files over `max_bytes` before
/// reading anything. See [`read_bounded_into`].
///
/// ```
/// # fn main() -> Result<(), cilp_data::io::ReadError> {
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("summary.json");
/// std::fs::write(&p, "{}").unwrap();
/// assert_eq!(cilp_data::io::read_bounded(&p, 16 << 20, "a run summary")?, b"{}");
/// let e = cilp_data::io::read_bounded(&p, 1, "a run summary").unwrap_err().to_string();
/// assert!(e.contains("2 bytes") && e.contains("1-byte limit for a run summary"));
/// # Ok(()) }
/// ```
pub fn read_bounded(path: &Path, max_bytes: u64, what: &str) -> Result<Vec<u8>, ReadError> {
    let mut buf = Vec::new();
    read_bounded_into(path, max_bytes, what, &mut buf)?;
    Ok(buf)
}

/// Like [`read_bounded`], for UTF-8 text; invalid UTF-8 is a [`ReadError::Io`] of kind
/// `InvalidData`, as with `std::fs::read_to_string`.
pub fn read_bounded_to_string(path: &Path, max_bytes: u64, what: &str) -> Result<String, ReadError> {
    let bytes = read_bounded(path, max_bytes, what)?;
    String::from_utf8(bytes).map_err(|e| {
        ReadError::io(
            path,
            "cannot read file",
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not valid UTF-8 text ({})", e.utf8_error())),
        )
    })
}

/// Appends exactly `len` more bytes from `file` (opened by [`open_bounded`]) to `buf`,
/// reserving exactly `len`: a file that ends early is an `UnexpectedEof` [`ReadError::Io`].
/// For formats whose header gives the size of what follows; the caller has checked `len`
/// against the file size and its limit before calling.
pub fn read_exact_len(path: &Path, file: &mut File, len: usize, buf: &mut Vec<u8>) -> Result<(), ReadError> {
    buf.reserve_exact(len);
    let got = file.take(len as u64).read_to_end(buf).map_err(|e| ReadError::io(path, "cannot read file", e))?;
    if got != len {
        return Err(ReadError::io(
            path,
            "cannot read file",
            std::io::Error::new(std::io::ErrorKind::UnexpectedEof, format!("file ended after {got} of {len} bytes")),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn reads_small_regular_files_and_symlinks_to_them() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        fs::write(&p, "hello").unwrap();
        assert_eq!(read_bounded(&p, 5, "text").unwrap(), b"hello");
        assert_eq!(read_bounded_to_string(&p, 100, "text").unwrap(), "hello");
        let link = dir.path().join("link.txt");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert_eq!(read_bounded(&link, 5, "text").unwrap(), b"hello");
        assert_eq!(check_regular_file(&link).unwrap().len(), 5);
        // Reuse of a scratch buffer.
        let mut buf = b"old contents that are longer".to_vec();
        read_bounded_into(&p, 5, "text", &mut buf).unwrap();
        assert_eq!(buf, b"hello");
        fs::write(&p, [0xff, 0xfe]).unwrap();
        let e = read_bounded_to_string(&p, 100, "text").unwrap_err().to_string();
        assert!(e.contains("a.txt") && e.contains("UTF-8"), "{e}");
    }

    #[test]
    fn refuses_files_over_the_limit_before_reading() {
        crate::testutil::under_memory_limit("io::tests::refuses_files_over_the_limit_before_reading", over_the_limit_check);
    }

    fn over_the_limit_check() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.bin");
        // 5 GB, sparse: no disk used. Reading it would allocate 5 GB.
        fs::File::create(&p).unwrap().set_len(5_000_000_000).unwrap();
        let e = read_bounded(&p, 1 << 20, "a small file").unwrap_err();
        assert!(matches!(e, ReadError::TooLarge { size: 5_000_000_000, max: 1_048_576, .. }), "{e:?}");
        let e = e.to_string();
        assert!(e.contains("big.bin") && e.contains("5000000000 bytes") && e.contains("1048576-byte limit for a small file"), "{e}");
        assert!(matches!(open_bounded(&p, 1 << 20, "x"), Err(ReadError::TooLarge { .. })));
        // Exactly at the limit is fine.
        fs::write(&p, [1, 2, 3]).unwrap();
        assert_eq!(read_bounded(&p, 3, "x").unwrap(), [1, 2, 3]);
        assert!(matches!(read_bounded(&p, 2, "x"), Err(ReadError::TooLarge { size: 3, max: 2, .. })));
    }

    #[test]
    fn refuses_special_files_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.npy");
        let st = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(st.success());
        let zero = dir.path().join("zero.npy");
        std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
        for (p, kind) in [(&fifo, "FIFO"), (&zero, "character device"), (&dir.path().to_path_buf(), "folder")] {
            // Would block forever (FIFO) or never end (/dev/zero) if opened and read.
            let e = read_bounded(p, 1 << 20, "a .npy file").unwrap_err();
            assert!(matches!(e, ReadError::NotRegular { .. }), "{e:?}");
            let e = e.to_string();
            assert!(e.contains(&p.display().to_string()) && e.contains(kind) && e.contains("expected a .npy file"), "{e}");
            let e = check_regular_file(p).unwrap_err().to_string();
            assert!(e.contains(kind), "{e}");
        }
        let e = read_bounded(&dir.path().join("missing"), 10, "x").unwrap_err().to_string();
        assert!(e.contains("missing") && e.contains("cannot stat"), "{e}");
    }

    #[test]
    fn a_file_longer_than_its_stat_size_is_caught() {
        // procfs files report size 0 but have content: like a file growing during the read.
        let p = Path::new("/proc/self/status");
        if !p.exists() {
            return;
        }
        let e = read_bounded(p, 10, "a status file").unwrap_err();
        assert!(matches!(e, ReadError::Grew { max: 10, .. }), "{e:?}");
        assert!(e.to_string().contains("/proc/self/status") && e.to_string().contains("grew past the 10-byte limit"), "{e}");
        assert!(read_bounded(p, 1 << 20, "a status file").unwrap().starts_with(b"Name:"));
    }

    #[test]
    fn read_exact_len_reports_short_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.bin");
        fs::write(&p, [1, 2, 3, 4]).unwrap();
        let (mut f, size) = open_bounded(&p, 10, "x").unwrap();
        assert_eq!(size, 4);
        let mut buf = Vec::new();
        read_exact_len(&p, &mut f, 3, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3]);
        read_exact_len(&p, &mut f, 0, &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3], "appends");
        let e = read_exact_len(&p, &mut f, 3, &mut buf).unwrap_err().to_string();
        assert!(e.contains("a.bin") && e.contains("after 1 of 3"), "{e}");
    }
}
