//! Checking the hash chain across all audit files.
//!
//! [`verify`] reads the files in chain order and stops at the first event
//! that is not where the chain says it should be. Every line must be the
//! exact serialization of an event whose `hash` matches its canonical line;
//! seqs must count up from 0 without gaps; each `prev` must be the `hash`
//! before it, across file boundaries too. When a check fails, the lines
//! around it are used to say what most likely happened (an edit, a deletion,
//! an insertion, a swap, a cut-off write) and which event to look at.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::audit::event::{Event, GENESIS_HASH};
use crate::audit::files;

/// The chain is sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    /// Audit files read.
    pub files: usize,
    /// Events in the chain.
    pub events: u64,
    /// `hash` of the last event (64 zeros when there is none). Keep it
    /// outside the host to detect later removal of events from the end.
    pub last_hash: String,
}

/// Why the chain is not sound, or could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The first event that breaks the chain.
    #[error("{}:{line}: {}: {problem}", file.display(), SeqLabel(*seq))]
    Broken {
        /// The file holding the broken event.
        file: PathBuf,
        /// Its 1-based line number.
        line: usize,
        /// Its seq, when the line could be read as an event.
        seq: Option<u64>,
        /// What is wrong.
        problem: Problem,
    },
    /// A file or the directory could not be read.
    #[error("cannot read {path:?}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// What is wrong with the first broken event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// The line is not an audit event (or is empty).
    #[error("not an audit event: {detail}")]
    BadJson {
        /// What the parser said.
        detail: String,
    },
    /// The last line of a file has no newline: a write was cut off.
    #[error("last line is cut off (no newline)")]
    Truncated,
    /// The line does not match its own hash, or is not written in the
    /// canonical form.
    #[error("event was edited: {detail}")]
    Edited {
        /// Which check failed.
        detail: &'static str,
    },
    /// Events are missing just before this one.
    #[error("events seq {first}..={last} are missing before this event")]
    Deleted {
        /// First missing seq.
        first: u64,
        /// Last missing seq.
        last: u64,
    },
    /// This event does not belong in the chain.
    #[error("event was inserted: {detail}")]
    Inserted {
        /// How that was seen.
        detail: String,
    },
    /// Events are out of order: this one comes before `expected`.
    #[error("events are out of order: seq {expected} comes later, at line {found_at}")]
    Reordered {
        /// The seq that should be here.
        expected: u64,
        /// Line where it is.
        found_at: usize,
    },
    /// `prev` does not match the hash of the event before: one of the two
    /// was rewritten with a fresh hash.
    #[error("prev does not match the hash of seq {previous}: an event was rewritten")]
    BrokenLink {
        /// Seq of the event before.
        previous: u64,
    },
    /// The first event of this file does not continue the previous file:
    /// events or whole files between them are missing or were replaced.
    #[error("file does not continue {previous_file:?}: expected seq {expected}, found seq {found}")]
    BrokenFileLink {
        /// Name of the previous file.
        previous_file: String,
        /// Seq the previous file leads to.
        expected: u64,
        /// Seq found.
        found: u64,
    },
    /// The first event of the chain is not seq 0 with the zero `prev`: the
    /// oldest files are missing.
    #[error("chain does not start at seq 0 after the zero hash (found seq {found})")]
    BadStart {
        /// Seq found.
        found: u64,
    },
}

/// Verifies every audit file in `dir`; see the module docs for the checks.
pub fn verify(dir: &Path) -> Result<VerifyReport, VerifyError> {
    let io_err = |path: &Path| {
        let path = path.to_owned();
        move |source| VerifyError::Io { path, source }
    };
    let listed = files::list(dir).map_err(io_err(dir))?;

    let mut cursor = Cursor {
        expected: 0,
        last_hash: GENESIS_HASH.to_owned(),
        previous_file: None,
    };
    for file in &listed {
        let bytes = std::fs::read(&file.path).map_err(io_err(&file.path))?;
        let lines = Lines::parse(&bytes);
        cursor
            .check_file(&lines)
            .map_err(|(line, seq, problem)| VerifyError::Broken {
                file: file.path.clone(),
                line,
                seq,
                problem,
            })?;
        if !lines.events.is_empty() {
            let name = file.path.file_name().unwrap_or_default();
            cursor.previous_file = Some(name.to_string_lossy().into_owned());
        }
    }

    Ok(VerifyReport {
        files: listed.len(),
        events: cursor.expected,
        last_hash: cursor.last_hash,
    })
}

/// Where the chain stands after the events checked so far.
struct Cursor {
    /// Seq the next event must have (= events checked).
    expected: u64,
    /// Hash the next event's `prev` must be.
    last_hash: String,
    /// Name of the last file that held events.
    previous_file: Option<String>,
}

/// The lines of one file, parsed.
struct Lines<'a> {
    texts: Vec<&'a [u8]>,
    events: Vec<Result<Event, String>>,
    /// The file ends with a newline.
    complete: bool,
}

type Failure = (usize, Option<u64>, Problem);

impl Cursor {
    fn check_file(&mut self, lines: &Lines<'_>) -> Result<(), Failure> {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for i in 0..lines.events.len() {
            let number = i + 1;
            let last_line = i + 1 == lines.events.len();
            let event = match &lines.events[i] {
                Ok(event) => event,
                Err(_) if last_line && !lines.complete => {
                    return Err((number, None, Problem::Truncated));
                }
                Err(detail) => {
                    let detail = detail.clone();
                    return Err((number, None, Problem::BadJson { detail }));
                }
            };
            let fail = |problem| Err((number, Some(event.seq), problem));
            if last_line && !lines.complete {
                return fail(Problem::Truncated);
            }

            if let Err(detail) = intact(event, lines.texts[i]) {
                // A line the next one skips over was added, not changed.
                if self.continues(lines.intact_event(i + 1)) {
                    let detail = "the next line continues the chain without it".to_owned();
                    return fail(Problem::Inserted { detail });
                }
                return fail(Problem::Edited { detail });
            }

            if event.seq == self.expected && event.prev == self.last_hash {
                if let Some(problem) = self.fork_after(lines, i) {
                    return Err(problem);
                }
                seen.insert(&event.hash, number);
                self.expected += 1;
                self.last_hash = event.hash.clone();
                continue;
            }

            if i == 0 {
                if let Some(previous_file) = &self.previous_file {
                    return fail(Problem::BrokenFileLink {
                        previous_file: previous_file.clone(),
                        expected: self.expected,
                        found: event.seq,
                    });
                }
                if self.expected == 0 {
                    return fail(Problem::BadStart { found: event.seq });
                }
            }
            if let Some(copy_of) = seen.get(event.hash.as_str()) {
                let detail = format!("it repeats line {copy_of}");
                return fail(Problem::Inserted { detail });
            }
            if event.seq == self.expected {
                return fail(Problem::BrokenLink {
                    previous: self.expected.saturating_sub(1),
                });
            }
            if event.seq > self.expected {
                let later = (i + 1..lines.events.len())
                    .find(|&j| matches!(&lines.events[j], Ok(e) if e.seq == self.expected));
                return match later {
                    Some(j) => fail(Problem::Reordered {
                        expected: self.expected,
                        found_at: j + 1,
                    }),
                    None => fail(Problem::Deleted {
                        first: self.expected,
                        last: event.seq - 1,
                    }),
                };
            }
            let detail = format!("seq {} was already used", event.seq);
            return fail(Problem::Inserted { detail });
        }
        Ok(())
    }

    /// Whether `next` is an intact event that fits where the chain stands.
    fn continues(&self, next: Option<&Event>) -> bool {
        next.is_some_and(|e| e.seq == self.expected && e.prev == self.last_hash)
    }

    /// Line `i` fits the chain; if line `i + 1` claims the same place (same
    /// seq, same prev), one of the two was inserted. The one whose successor
    /// links to it is genuine; when nothing follows, the second is blamed.
    fn fork_after(&self, lines: &Lines<'_>, i: usize) -> Option<Failure> {
        let here = lines.intact_event(i)?;
        let rival = lines.intact_event(i + 1)?;
        if rival.seq != here.seq || rival.prev != here.prev {
            return None;
        }
        if rival.hash == here.hash {
            let detail = format!("it repeats line {}", i + 1);
            return Some((i + 2, Some(rival.seq), Problem::Inserted { detail }));
        }

        let successor = lines.intact_event(i + 2);
        let (line, event) = match successor {
            Some(s) if s.prev == rival.hash => (i + 1, here),
            _ => (i + 2, rival),
        };
        let detail = "another event claims the same place in the chain".to_owned();
        Some((line, Some(event.seq), Problem::Inserted { detail }))
    }
}

impl<'a> Lines<'a> {
    fn parse(bytes: &'a [u8]) -> Lines<'a> {
        let complete = bytes.is_empty() || bytes.ends_with(b"\n");
        let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
        let texts: Vec<&[u8]> = if bytes.is_empty() {
            Vec::new()
        } else {
            body.split(|&b| b == b'\n').collect()
        };
        let events = texts.iter().map(|t| parse_line(t)).collect();
        Lines {
            texts,
            events,
            complete,
        }
    }

    /// The event on line index `i` if it parsed and is intact.
    fn intact_event(&self, i: usize) -> Option<&Event> {
        let event = self.events.get(i)?.as_ref().ok()?;
        let complete = i + 1 < self.texts.len() || self.complete;
        (complete && intact(event, self.texts[i]).is_ok()).then_some(event)
    }
}

fn parse_line(text: &[u8]) -> Result<Event, String> {
    if text.is_empty() {
        return Err("empty line".to_owned());
    }
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_owned())?;
    serde_json::from_str(text).map_err(|e| e.to_string())
}

/// Whether `event`, read from `text`, matches its hash and is written in the
/// canonical form.
fn intact(event: &Event, text: &[u8]) -> Result<(), &'static str> {
    if event.hash != event.compute_hash() {
        return Err("its content does not match its hash");
    }
    if event.to_line().as_bytes() != text {
        return Err("the line is not in canonical form");
    }
    Ok(())
}

struct SeqLabel(Option<u64>);

impl fmt::Display for SeqLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(seq) => write!(f, "event seq {seq}"),
            None => f.write_str("unreadable event"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::AuditConfig;
    use crate::audit::testutil::*;

    /// A chain of ten events in one file, and that file's lines.
    fn ten_events() -> (tempfile::TempDir, PathBuf, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        write_events(&config(dir.path()), 10);
        let file = audit_files(dir.path()).remove(0);
        let lines = read_lines(&file);
        assert_eq!(lines.len(), 10);
        (dir, file, lines)
    }

    /// Verifies `dir` and returns (line, seq, problem) of the break.
    fn broken(dir: &Path) -> (usize, Option<u64>, Problem) {
        match verify(dir) {
            Err(VerifyError::Broken {
                line, seq, problem, ..
            }) => (line, seq, problem),
            other => panic!("expected a broken chain, got {other:?}"),
        }
    }

    fn parse(line: &str) -> Event {
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (dir, _, lines) = ten_events();
        let report = verify(dir.path()).unwrap();
        assert_eq!(report.files, 1);
        assert_eq!(report.events, 10);
        assert_eq!(report.last_hash, parse(&lines[9]).hash);
    }

    #[test]
    fn an_empty_directory_is_an_empty_chain() {
        let dir = tempfile::tempdir().unwrap();
        let report = verify(dir.path()).unwrap();
        assert_eq!((report.files, report.events), (0, 0));
        assert_eq!(report.last_hash, GENESIS_HASH);
    }

    #[test]
    fn an_edited_field_names_the_event() {
        let (dir, file, mut lines) = ten_events();
        let user = parse(&lines[5]).user;
        lines[5] = lines[5].replace(&format!(r#""user":"{user}""#), r#""user":"mallory""#);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (6, Some(5)));
        assert!(matches!(problem, Problem::Edited { .. }), "{problem}");
    }

    #[test]
    fn an_edit_with_a_fresh_hash_breaks_the_next_link() {
        let (dir, file, mut lines) = ten_events();
        let mut forged = parse(&lines[5]);
        forged.bytes_in += 1;
        forged.hash = forged.compute_hash();
        lines[5] = forged.to_line();
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (7, Some(6)));
        assert_eq!(problem, Problem::BrokenLink { previous: 5 });
    }

    #[test]
    fn a_non_canonical_line_counts_as_edited() {
        let (dir, file, mut lines) = ten_events();
        lines[3] = lines[3].replacen('{', "{ ", 1);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (4, Some(3)));
        assert_eq!(
            problem,
            Problem::Edited {
                detail: "the line is not in canonical form"
            }
        );
    }

    #[test]
    fn a_deleted_line_names_the_event_after_the_gap() {
        let (dir, file, mut lines) = ten_events();
        lines.remove(3);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (4, Some(4)));
        assert_eq!(problem, Problem::Deleted { first: 3, last: 3 });
    }

    #[test]
    fn deleted_lines_are_counted() {
        let (dir, file, mut lines) = ten_events();
        lines.drain(3..6);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (4, Some(6)));
        assert_eq!(problem, Problem::Deleted { first: 3, last: 5 });
    }

    #[test]
    fn a_copied_line_inserted_later_is_named() {
        let (dir, file, mut lines) = ten_events();
        let copy = lines[2].clone();
        lines.insert(7, copy);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (8, Some(2)));
        let detail = "it repeats line 3".to_owned();
        assert_eq!(problem, Problem::Inserted { detail });
    }

    #[test]
    fn a_forged_event_with_a_valid_hash_inserted_is_named() {
        let (dir, file, mut lines) = ten_events();
        // Claims seq 5 right after seq 4, with a correct prev and hash.
        let mut forged = parse(&lines[5]);
        forged.user = "mallory".into();
        forged.hash = forged.compute_hash();
        lines.insert(5, forged.to_line());
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (6, Some(5)));
        assert!(matches!(problem, Problem::Inserted { .. }), "{problem}");
    }

    #[test]
    fn an_inserted_line_with_a_bad_hash_is_named_as_inserted() {
        let (dir, file, mut lines) = ten_events();
        let stray = lines[5].replace(r#""bytes_out":0"#, r#""bytes_out":1"#);
        assert_ne!(stray, lines[5]);
        lines.insert(5, stray);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (6, Some(5)));
        assert!(matches!(problem, Problem::Inserted { .. }), "{problem}");
    }

    #[test]
    fn two_swapped_lines_are_named_as_reordered() {
        let (dir, file, mut lines) = ten_events();
        lines.swap(3, 4);
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (4, Some(4)));
        assert_eq!(
            problem,
            Problem::Reordered {
                expected: 3,
                found_at: 5
            }
        );
    }

    #[test]
    fn a_cut_off_last_line_is_reported() {
        let (dir, file, _) = ten_events();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, &text[..text.len() - 30]).unwrap();

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq, problem), (10, None, Problem::Truncated));
    }

    #[test]
    fn a_last_line_without_its_newline_is_reported() {
        let (dir, file, _) = ten_events();
        let text = std::fs::read_to_string(&file).unwrap();
        std::fs::write(&file, text.trim_end()).unwrap();

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq, problem), (10, Some(9), Problem::Truncated));
    }

    #[test]
    fn a_blank_line_is_reported() {
        let (dir, file, mut lines) = ten_events();
        lines.insert(2, String::new());
        write_lines(&file, &lines);

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (3, None));
        assert_eq!(
            problem,
            Problem::BadJson {
                detail: "empty line".into()
            }
        );
    }

    /// A chain over several files; returns the files and each one's first seq.
    fn rotated() -> (tempfile::TempDir, Vec<PathBuf>, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = AuditConfig {
            max_file_bytes: 2_000,
            ..config(dir.path())
        };
        write_events(&cfg, 30);
        let files = audit_files(dir.path());
        assert!(files.len() >= 3);
        let firsts = files.iter().map(|f| parse(&read_lines(f)[0]).seq).collect();
        (dir, files, firsts)
    }

    #[test]
    fn a_deleted_middle_file_breaks_the_link_between_files() {
        let (dir, files, firsts) = rotated();
        std::fs::remove_file(&files[1]).unwrap();

        let err = verify(dir.path()).unwrap_err();
        let VerifyError::Broken {
            file,
            line,
            seq,
            problem,
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!(file, &files[2]);
        assert_eq!((*line, *seq), (1, Some(firsts[2])));
        let previous_file = files[0].file_name().unwrap().to_string_lossy().into_owned();
        let expected = Problem::BrokenFileLink {
            previous_file,
            expected: firsts[1],
            found: firsts[2],
        };
        assert_eq!(problem, &expected);

        let message = err.to_string();
        let name = files[2].file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            message.contains(&format!("{name}:1: event seq {}", firsts[2])),
            "{message}"
        );
    }

    #[test]
    fn a_deleted_first_file_is_a_bad_start() {
        let (dir, files, firsts) = rotated();
        std::fs::remove_file(&files[0]).unwrap();

        let (line, seq, problem) = broken(dir.path());
        assert_eq!((line, seq), (1, Some(firsts[1])));
        assert_eq!(problem, Problem::BadStart { found: firsts[1] });
    }
}
