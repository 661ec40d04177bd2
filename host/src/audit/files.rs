//! Audit file names, listing them in chain order, and reading the last line.
//!
//! A file is named `audit-YYYYMMDD-NNNN.jsonl`: the UTC day it was opened
//! and a counter from 1 within that day. Files are ordered by (day, counter)
//! as numbers, which matches lexical order while the counter has four
//! digits. Other names in the directory are ignored.
//!
//! Opening a log also takes the directory's lock and finds where the chain
//! stands from the newest file's last line.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::audit::AuditError;
use crate::audit::event::{Event, GENESIS_HASH};

/// Lock file in the audit directory, held while a log is open. Its name is
/// not an audit file name, so listing ignores it.
const LOCK_FILE: &str = "audit.lock";

/// One audit file and where it sits in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuditFile {
    pub path: PathBuf,
    pub date: u32,
    pub index: u32,
}

/// The end of a file, as far as resuming the chain is concerned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Tail {
    /// The file has no bytes.
    Empty,
    /// The last complete line, without its newline.
    Line(Vec<u8>),
    /// The file does not end with a newline: a write was cut off.
    Torn,
}

/// The file name for `date` (`YYYYMMDD`) and `index`.
pub(crate) fn file_name(date: u32, index: u32) -> String {
    format!("audit-{date:08}-{index:04}.jsonl")
}

/// The (date, index) of an audit file name, or `None` for other names.
pub(crate) fn parse_name(name: &str) -> Option<(u32, u32)> {
    let rest = name.strip_prefix("audit-")?.strip_suffix(".jsonl")?;
    let (date, index) = rest.split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if date.len() != 8 || !digits(date) || index.len() < 4 || !digits(index) {
        return None;
    }
    Some((date.parse().ok()?, index.parse().ok()?))
}

/// The audit files in `dir`, in chain order.
pub(crate) fn list(dir: &Path) -> io::Result<Vec<AuditFile>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some((date, index)) = name.to_str().and_then(parse_name) else {
            continue;
        };
        if entry.file_type()?.is_file() {
            files.push(AuditFile {
                path: entry.path(),
                date,
                index,
            });
        }
    }
    files.sort_by_key(|f| (f.date, f.index));
    Ok(files)
}

/// Reads the last line of `path` from the end, without reading the whole
/// file.
pub(crate) fn read_tail(path: &Path) -> io::Result<Tail> {
    const CHUNK: u64 = 8 * 1024;
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(Tail::Empty);
    }

    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        return Ok(Tail::Torn);
    }

    // Walk back in chunks until the newline before the last line is found.
    let end = len - 1;
    let mut start = end;
    let mut line: Vec<u8> = Vec::new();
    while start > 0 {
        let from = start.saturating_sub(CHUNK);
        let mut chunk = vec![0u8; (start - from) as usize];
        file.seek(SeekFrom::Start(from))?;
        file.read_exact(&mut chunk)?;
        if let Some(pos) = chunk.iter().rposition(|&b| b == b'\n') {
            chunk.drain(..=pos);
            chunk.extend_from_slice(&line);
            return Ok(Tail::Line(chunk));
        }
        chunk.extend_from_slice(&line);
        line = chunk;
        start = from;
    }
    Ok(Tail::Line(line))
}

/// Takes the directory's lock file, so that a second log (in this process
/// or another) cannot start a second chain in the same directory. The lock
/// is held until the writer thread ends.
pub(crate) fn lock_dir(dir: &Path) -> Result<File, AuditError> {
    let path = dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| AuditError::Dir {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(AuditError::Locked { path }),
        Err(TryLockError::Error(source)) => Err(AuditError::Dir { path, source }),
    }
}

/// The seq and hash to continue from: after the last line of the newest
/// file that has one.
pub(crate) fn resume(listed: &[AuditFile]) -> Result<(u64, String), AuditError> {
    for file in listed.iter().rev() {
        let bad = |detail: &str| AuditError::Resume {
            path: file.path.clone(),
            detail: detail.to_owned(),
        };
        let tail = read_tail(&file.path).map_err(|source| AuditError::Read {
            path: file.path.clone(),
            source,
        })?;
        let line = match tail {
            Tail::Empty => continue,
            Tail::Torn => return Err(bad("its last line is cut off (no newline)")),
            Tail::Line(line) => line,
        };

        let event: Event = std::str::from_utf8(&line)
            .ok()
            .and_then(|text| serde_json::from_str(text).ok())
            .ok_or_else(|| bad("its last line is not an audit event"))?;
        if event.hash != event.compute_hash() || event.to_line().as_bytes() != line {
            return Err(bad("its last line does not match its hash"));
        }
        return Ok((event.seq + 1, event.hash));
    }
    Ok((0, GENESIS_HASH.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_sort_as_numbers() {
        assert_eq!(file_name(20250301, 7), "audit-20250301-0007.jsonl");
        assert_eq!(parse_name("audit-20250301-0007.jsonl"), Some((20250301, 7)));
        assert_eq!(
            parse_name("audit-20250301-12345.jsonl"),
            Some((20250301, 12345))
        );
        for bad in [
            "audit-2025031-0001.jsonl",
            "audit-20250301-001.jsonl",
            "x.jsonl",
            "audit-20250301-0001.jsonl.bak",
        ] {
            assert_eq!(parse_name(bad), None, "{bad}");
        }

        let dir = tempfile::tempdir().unwrap();
        for name in [
            "audit-20250302-0001.jsonl",
            "audit-20250301-10000.jsonl",
            "audit-20250301-9999.jsonl",
            "notes.txt",
        ] {
            fs::write(dir.path().join(name), "").unwrap();
        }
        let order: Vec<(u32, u32)> = list(dir.path())
            .unwrap()
            .iter()
            .map(|f| (f.date, f.index))
            .collect();
        assert_eq!(order, [(20250301, 9999), (20250301, 10000), (20250302, 1)]);
    }

    #[test]
    fn tail_finds_the_last_line_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");

        fs::write(&path, "").unwrap();
        assert_eq!(read_tail(&path).unwrap(), Tail::Empty);
        fs::write(&path, "one\n").unwrap();
        assert_eq!(read_tail(&path).unwrap(), Tail::Line(b"one".to_vec()));
        fs::write(&path, "one\ntwo").unwrap();
        assert_eq!(read_tail(&path).unwrap(), Tail::Torn);

        let long = "x".repeat(20_000);
        fs::write(&path, format!("first\n{long}\n")).unwrap();
        assert_eq!(
            read_tail(&path).unwrap(),
            Tail::Line(long.clone().into_bytes())
        );
        fs::write(&path, format!("{long}\n")).unwrap();
        assert_eq!(read_tail(&path).unwrap(), Tail::Line(long.into_bytes()));
    }
}
