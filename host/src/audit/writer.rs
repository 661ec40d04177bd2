//! The file side of the writer thread: appending lines, rotating files,
//! syncing.
//!
//! Only the writer thread owns a [`FileWriter`]. It appends whole lines,
//! rotates before a line that would overflow the size limit or when the UTC
//! day changes, and never leaves a partial line behind a failed write if it
//! can cut it off; when it cannot, it moves on to a new file so the next
//! lines are not glued to the fragment (verify will still report it).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::audit::files::{self, AuditFile};

/// Appends audit lines to the current file and rotates it.
pub(crate) struct FileWriter {
    dir: PathBuf,
    max_file_bytes: u64,
    rotate_daily: bool,
    current: Option<Current>,
    handle: Option<File>,
    /// The current file may end in a fragment that could not be removed.
    damaged: bool,
}

/// The file lines go to now.
struct Current {
    path: PathBuf,
    date: u32,
    index: u32,
    /// Length of the file up to its last complete line.
    len: u64,
}

impl FileWriter {
    /// A writer that continues in `newest` (the newest existing file, whose
    /// last line ends with a newline) or starts a new file.
    pub(crate) fn new(
        dir: &Path,
        max_file_bytes: u64,
        rotate_daily: bool,
        newest: Option<(AuditFile, u64)>,
    ) -> FileWriter {
        FileWriter {
            dir: dir.to_owned(),
            max_file_bytes,
            rotate_daily,
            current: newest.map(|(file, len)| Current {
                path: file.path,
                date: file.date,
                index: file.index,
                len,
            }),
            handle: None,
            damaged: false,
        }
    }

    /// Appends `lines` (each ending with a newline, with the UTC day,
    /// `YYYYMMDD`, it was recorded on) in order, rotating as needed. Returns
    /// how many lines reached a file, and the error that stopped the rest.
    pub(crate) fn write(&mut self, lines: &[(&str, u32)]) -> (usize, io::Result<()>) {
        let mut done = 0;
        let mut buf: Vec<u8> = Vec::new();
        let mut in_buf = 0;

        for &(line, today) in lines {
            if self.must_rotate(buf.len() as u64, line.len() as u64, today) {
                if let Err(e) = self.commit(&buf) {
                    return (done, Err(e));
                }
                done += in_buf;
                buf.clear();
                in_buf = 0;
                if let Err(e) = self.rotate(today) {
                    return (done, Err(e));
                }
            }
            buf.extend_from_slice(line.as_bytes());
            in_buf += 1;
        }

        match self.commit(&buf) {
            Ok(()) => (done + in_buf, Ok(())),
            Err(e) => (done, Err(e)),
        }
    }

    /// Flushes the current file to stable storage.
    pub(crate) fn sync(&mut self) -> io::Result<()> {
        let Some(handle) = &self.handle else {
            return Ok(());
        };
        // After a failed fsync the kernel may have dropped the dirty pages,
        // and a second fsync could succeed without them; do not reuse the file.
        handle.sync_data().inspect_err(|_| self.damaged = true)
    }

    /// Whether a line of `line` bytes, after `buffered` bytes not yet
    /// committed, must go to a new file.
    fn must_rotate(&self, buffered: u64, line: u64, today: u32) -> bool {
        let Some(cur) = &self.current else {
            return true;
        };
        if self.damaged {
            return true;
        }
        let before = cur.len + buffered;
        if before == 0 {
            return false;
        }
        let too_big = self.max_file_bytes > 0 && before + line > self.max_file_bytes;
        too_big || (self.rotate_daily && today > cur.date)
    }

    /// Writes `buf` at the end of the current file.
    fn commit(&mut self, buf: &[u8]) -> io::Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        let Some(cur) = &mut self.current else {
            return Err(io::Error::other("no audit file is open"));
        };
        if self.handle.is_none() {
            self.handle = Some(open_for_append(cur)?);
        }
        let handle = self.handle.as_mut().expect("opened above");

        if let Err(e) = handle.write_all(buf) {
            // Cut off whatever part of the buffer reached the file, so the
            // retry starts on a line boundary.
            if handle.set_len(cur.len).is_err() {
                self.damaged = true;
            }
            self.handle = None;
            return Err(e);
        }
        cur.len += buf.len() as u64;
        Ok(())
    }

    /// Closes the current file (synced) and creates the next one.
    fn rotate(&mut self, today: u32) -> io::Result<()> {
        if let Some(handle) = self.handle.take() {
            handle.sync_data()?;
        }

        // Never name a file with an earlier day than the newest one, even if
        // the clock went back, or lexical order would stop being chain order.
        let (date, mut index) = match &self.current {
            Some(cur) if cur.date >= today => (cur.date, cur.index + 1),
            _ => (today, 1),
        };

        loop {
            let path = self.dir.join(files::file_name(date, index));
            match OpenOptions::new().append(true).create_new(true).open(&path) {
                Ok(handle) => {
                    sync_dir(&self.dir);
                    self.current = Some(Current {
                        path,
                        date,
                        index,
                        len: 0,
                    });
                    self.handle = Some(handle);
                    self.damaged = false;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => index += 1,
                Err(e) => return Err(e),
            }
        }
    }
}

/// Opens the current file for appending, cutting off a fragment left by an
/// earlier failed write.
fn open_for_append(cur: &mut Current) -> io::Result<File> {
    let handle = OpenOptions::new()
        .append(true)
        .create(true)
        .open(&cur.path)?;
    let actual = handle.metadata()?.len();
    if actual > cur.len {
        handle.set_len(cur.len)?;
    } else {
        cur.len = actual;
    }
    Ok(handle)
}

/// Makes a new directory entry durable. Failure is logged, not returned: the
/// file itself is synced on rotation and flush, and some platforms cannot
/// open a directory at all.
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the audit directory");
    }
    #[cfg(not(unix))]
    let _ = dir;
}
