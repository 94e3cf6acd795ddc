//! Reading messages: the input files (or standard input) split on the delimiter, or generated
//! ones, on a thread of their own so that a blocking read never stalls publishing.
//!
//! Input is read in large blocks and each message is a slice of its block (no copy); a block is
//! freed when the last of its messages has been answered.

use std::fs::File;
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use bytes::{Buf, Bytes, BytesMut};
use tokio::sync::mpsc;

/// How much is read at a time.
const BLOCK: usize = 256 * 1024;

/// How many messages go to the publisher at a time.
const CHUNK: usize = 1024;

/// One message and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Msg {
    pub(crate) body: Bytes,
    /// Its source, an index into [`Sources::names`].
    pub(crate) source: u32,
    /// Its record number in the source, from 1, counting empty records.
    pub(crate) record: u64,
}

/// The messages of one publish: one PUB's, or one MPUB's.
#[derive(Debug)]
pub(crate) enum Msgs {
    One(Msg),
    Many(Vec<Msg>),
}

impl Msgs {
    /// The messages, as a slice.
    pub(crate) fn as_slice(&self) -> &[Msg] {
        match self {
            Self::One(msg) => std::slice::from_ref(msg),
            Self::Many(msgs) => msgs,
        }
    }
}

/// What the reader hands the publisher.
#[derive(Debug)]
pub(crate) enum Chunk {
    /// Messages in input order, and how many empty records were skipped before the last.
    Messages { msgs: Vec<Msg>, skipped: u64 },
    /// A read failed; nothing more comes from this source or the ones after it.
    Failed { source: u32, error: io::Error },
}

/// Where messages come from.
pub(crate) enum Sources {
    /// Files and standard input, opened, in order.
    Read(Vec<(String, Box<dyn Read + Send>)>),
    /// `count` generated messages of `size` bytes.
    Generate { count: u64, size: usize },
}

impl Sources {
    /// Opens `files` (`-` being standard input; none, standard input alone).
    ///
    /// # Errors
    ///
    /// The first file that cannot be opened, with its path.
    pub(crate) fn open(files: &[PathBuf]) -> Result<Self, (PathBuf, io::Error)> {
        if files.is_empty() {
            return Ok(Self::Read(vec![(
                "stdin".to_owned(),
                Box::new(io::stdin()),
            )]));
        }
        let mut opened: Vec<(String, Box<dyn Read + Send>)> = Vec::with_capacity(files.len());
        for path in files {
            if path.as_os_str() == "-" {
                opened.push(("stdin".to_owned(), Box::new(io::stdin())));
            } else {
                let file = File::open(path).map_err(|e| (path.clone(), e))?;
                opened.push((path.display().to_string(), Box::new(file)));
            }
        }
        Ok(Self::Read(opened))
    }

    /// The bytes there are to read, when every source is a regular file.
    pub(crate) fn size(files: &[PathBuf]) -> Option<u64> {
        if files.is_empty() {
            return None;
        }
        files.iter().try_fold(0, |total, path| {
            let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
            (path.as_os_str() != "-").then(|| total + meta.len())
        })
    }

    /// The name of each source, for messages about a record.
    pub(crate) fn names(&self) -> Vec<String> {
        match self {
            Self::Read(sources) => sources.iter().map(|(name, _)| name.clone()).collect(),
            Self::Generate { .. } => vec!["generated".to_owned()],
        }
    }

    /// Starts the reading thread; its chunks arrive on the returned channel, which closes at
    /// the end of the input. Dropping the receiver stops the thread at its next chunk. Every
    /// byte read is added to `read_bytes`.
    pub(crate) fn spawn(self, delimiter: u8, read_bytes: Arc<AtomicU64>) -> mpsc::Receiver<Chunk> {
        let (tx, rx) = mpsc::channel(16);
        std::thread::Builder::new()
            .name("nsq-pub-input".to_owned())
            .spawn(move || match self {
                Self::Read(sources) => {
                    for (index, (_, reader)) in sources.into_iter().enumerate() {
                        let mut splitter = Splitter::new(index as u32, delimiter, &tx, &read_bytes);
                        if let Err(error) = splitter.run(reader) {
                            if error.kind() != io::ErrorKind::BrokenPipe || !tx.is_closed() {
                                let _ = tx.blocking_send(Chunk::Failed {
                                    source: index as u32,
                                    error,
                                });
                            }
                            return;
                        }
                        if tx.is_closed() {
                            return;
                        }
                    }
                }
                Self::Generate { count, size } => generate(count, size, &tx),
            })
            .expect("spawning the input thread");
        rx
    }
}

/// Splits one source into messages.
struct Splitter<'a> {
    source: u32,
    delimiter: u8,
    tx: &'a mpsc::Sender<Chunk>,
    read_bytes: &'a AtomicU64,
    record: u64,
    msgs: Vec<Msg>,
    skipped: u64,
}

impl<'a> Splitter<'a> {
    fn new(
        source: u32,
        delimiter: u8,
        tx: &'a mpsc::Sender<Chunk>,
        read_bytes: &'a AtomicU64,
    ) -> Self {
        Self {
            source,
            delimiter,
            tx,
            read_bytes,
            record: 0,
            msgs: Vec::with_capacity(CHUNK),
            skipped: 0,
        }
    }

    /// Reads the source to its end. A receiver gone is reported as `BrokenPipe`.
    fn run(&mut self, mut reader: Box<dyn Read + Send>) -> io::Result<()> {
        let mut buf = BytesMut::with_capacity(BLOCK);
        // Where the search for the next delimiter resumes: what is before it has none.
        let mut scanned = 0;
        loop {
            if buf.capacity() - buf.len() < BLOCK / 4 {
                buf.reserve(BLOCK);
            }
            let filled = buf.len();
            buf.resize(buf.capacity(), 0);
            let n = loop {
                match reader.read(&mut buf[filled..]) {
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    other => break other,
                }
            };
            let n = match n {
                Ok(n) => n,
                Err(e) => {
                    buf.truncate(filled);
                    self.flush()?;
                    return Err(e);
                }
            };
            buf.truncate(filled + n);
            self.read_bytes.fetch_add(n as u64, Relaxed);
            if n == 0 {
                // The last record needs no delimiter.
                if !buf.is_empty() {
                    self.record(buf.split().freeze())?;
                }
                return self.flush();
            }
            while let Some(at) = memchr::memchr(self.delimiter, &buf[scanned..]) {
                let record = buf.split_to(scanned + at).freeze();
                buf.advance(1);
                scanned = 0;
                self.record(record)?;
            }
            scanned = buf.len();
            // What this read completed goes now, not when a chunk fills: a line from a slow
            // source (`tail -F`) is published as soon as it is read.
            self.flush()?;
        }
    }

    fn record(&mut self, body: Bytes) -> io::Result<()> {
        self.record += 1;
        if body.is_empty() {
            self.skipped += 1;
            return Ok(());
        }
        self.msgs.push(Msg {
            body,
            source: self.source,
            record: self.record,
        });
        if self.msgs.len() == CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.msgs.is_empty() && self.skipped == 0 {
            return Ok(());
        }
        let chunk = Chunk::Messages {
            msgs: std::mem::replace(&mut self.msgs, Vec::with_capacity(CHUNK)),
            skipped: std::mem::take(&mut self.skipped),
        };
        self.tx
            .blocking_send(chunk)
            .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))
    }
}

/// `count` messages of `size` bytes: the message's number (its last digits, if `size` is
/// short), then filler.
fn generate(count: u64, size: usize, tx: &mpsc::Sender<Chunk>) {
    let mut done = 0;
    while done < count {
        let n = (count - done).min(CHUNK as u64);
        let mut block = BytesMut::with_capacity(n as usize * size);
        for record in done + 1..=done + n {
            let digits = format!("{record:020}");
            let shown = size.min(digits.len());
            let start = block.len();
            block.extend_from_slice(&digits.as_bytes()[digits.len() - shown..]);
            block.resize(start + size, b'.');
        }
        let mut block = block.freeze();
        let msgs = (done + 1..=done + n)
            .map(|record| Msg {
                body: block.split_to(size),
                source: 0,
                record,
            })
            .collect();
        done += n;
        if tx
            .blocking_send(Chunk::Messages { msgs, skipped: 0 })
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(input: &'static [u8], delimiter: u8) -> (Vec<(u64, Vec<u8>)>, u64) {
        let sources = Sources::Read(vec![("test".to_owned(), Box::new(input))]);
        let mut rx = sources.spawn(delimiter, Arc::default());
        let mut out = Vec::new();
        let mut skipped = 0;
        while let Some(chunk) = rx.blocking_recv() {
            match chunk {
                Chunk::Messages { msgs, skipped: s } => {
                    skipped += s;
                    out.extend(msgs.into_iter().map(|m| (m.record, m.body.to_vec())));
                }
                Chunk::Failed { error, .. } => panic!("{error}"),
            }
        }
        (out, skipped)
    }

    #[test]
    fn records_split_on_the_delimiter_and_empty_ones_are_skipped() {
        let (msgs, skipped) = split(b"a\n\nbb\nccc", b'\n');
        assert_eq!(
            msgs,
            vec![
                (1, b"a".to_vec()),
                (3, b"bb".to_vec()),
                (4, b"ccc".to_vec())
            ]
        );
        assert_eq!(skipped, 1);
        let (msgs, skipped) = split(b"x;y\n;;z;", b';');
        assert_eq!(
            msgs,
            vec![(1, b"x".to_vec()), (2, b"y\n".to_vec()), (4, b"z".to_vec())]
        );
        assert_eq!(skipped, 1);
    }

    #[test]
    fn records_larger_than_a_block_come_whole() {
        let mut input = vec![b'a'; BLOCK * 3 + 7];
        input.push(b'\n');
        input.extend_from_slice(b"tail");
        let input: &'static [u8] = Vec::leak(input);
        let (msgs, _) = split(input, b'\n');
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].1.len(), BLOCK * 3 + 7);
        assert_eq!(msgs[1].1, b"tail");
    }

    #[test]
    fn the_size_is_known_only_for_regular_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"one\n").unwrap();
        std::fs::write(&b, b"two\nthree\n").unwrap();
        assert_eq!(Sources::size(&[a.clone(), b.clone()]), Some(14));
        assert_eq!(Sources::size(&[]), None, "standard input");
        assert_eq!(Sources::size(&[a.clone(), PathBuf::from("-")]), None);
        assert_eq!(Sources::size(&[dir.path().to_owned()]), None, "a directory");
    }

    #[test]
    fn generated_messages_have_the_size_asked_for() {
        let mut rx = Sources::Generate {
            count: 2500,
            size: 7,
        }
        .spawn(b'\n', Arc::default());
        let mut all = Vec::new();
        while let Some(Chunk::Messages { msgs, .. }) = rx.blocking_recv() {
            all.extend(msgs);
        }
        assert_eq!(all.len(), 2500);
        assert!(all.iter().all(|m| m.body.len() == 7));
        assert_eq!(all[2499].record, 2500);
        let (small, large) = (&all[0].body, &all[1].body);
        assert_ne!(small, large);
    }
}
