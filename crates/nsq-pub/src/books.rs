//! What becomes of each message: counted in the tally and, when it is not acknowledged, written
//! to the out file of where it ended. The publisher hands every message here exactly once.

use std::io;
use std::path::{Path, PathBuf};

use nsq_producer::{InvalidPublish, PublishError};

use crate::console::Notices;
use crate::input::{Msg, Msgs};
use crate::outfile::OutFile;
use crate::tally::{Fate, TOO_LARGE, Tally};

/// The tally of a run, its out files, and the error lines about single messages.
pub(crate) struct Books {
    tally: Tally,
    failed_out: Option<OutFile>,
    unknown_out: Option<OutFile>,
    delimiter: u8,
    notices: Notices,
}

impl Books {
    /// Books writing to the out files given (each started as a temporary file, put in place by
    /// [`close`](Self::close)), for the input whose sources are `names`.
    ///
    /// # Errors
    ///
    /// An out file that cannot be created, with its path.
    pub(crate) fn new(
        failed_out: Option<&Path>,
        unknown_out: Option<&Path>,
        delimiter: u8,
        names: Vec<String>,
    ) -> Result<Self, (PathBuf, io::Error)> {
        Ok(Self {
            tally: Tally::new(names),
            failed_out: failed_out.map(OutFile::create).transpose()?,
            unknown_out: unknown_out.map(OutFile::create).transpose()?,
            delimiter,
            notices: Notices::default(),
        })
    }

    /// The counts so far.
    pub(crate) fn tally(&self) -> &Tally {
        &self.tally
    }

    /// Notes a chunk taken from the input: its messages (not yet published) and the empty
    /// records skipped before them.
    pub(crate) fn taken(&mut self, msgs: &[Msg], skipped: u64) {
        self.tally.skipped(skipped);
        self.tally.taken(msgs);
    }

    /// Records the outcomes of a group of publishes.
    pub(crate) fn outcomes(&mut self, outcomes: Vec<(Result<(), PublishError>, Msgs)>) {
        for (result, msgs) in outcomes {
            self.outcome(result, &msgs);
        }
    }

    /// Records one publish's outcome for each of its messages.
    pub(crate) fn outcome(&mut self, result: Result<(), PublishError>, msgs: &Msgs) {
        match result {
            Ok(()) => {
                let msgs = msgs.as_slice();
                let bytes = msgs.iter().map(|m| m.body.len() as u64).sum();
                self.tally.acked(msgs.len() as u64, bytes);
            }
            Err(error) => {
                for msg in msgs.as_slice() {
                    self.failed(&error, msg);
                }
            }
        }
    }

    /// Records a message that ended with `error`.
    pub(crate) fn failed(&mut self, error: &PublishError, msg: &Msg) {
        if let PublishError::Invalid(InvalidPublish::MessageTooLarge { size, max, .. }) = error {
            self.notices.show(
                TOO_LARGE,
                format_args!(
                    "{}: message of {size} bytes is over the limit of {max} bytes; not sent",
                    self.tally.place_of(msg)
                ),
            );
        }
        let fate = self.tally.failed(error);
        self.write_out(fate, msg);
    }

    /// Records a message read but not sent, for `reason` (a `not_stored_by` key), with `error`
    /// (an `errors` key).
    pub(crate) fn unsent(&mut self, reason: &str, error: &str, msg: &Msg) {
        let fate = self.tally.unsent(reason, error);
        self.write_out(fate, msg);
    }

    /// Records a message read but not published because the run was interrupted.
    pub(crate) fn interrupted(&mut self, msg: &Msg) {
        let fate = self.tally.interrupted();
        self.write_out(fate, msg);
    }

    fn write_out(&mut self, fate: Fate, msg: &Msg) {
        let out = match fate {
            Fate::NotStored => &mut self.failed_out,
            Fate::Unknown => &mut self.unknown_out,
        };
        if let Some(out) = out {
            out.write(&[&msg.body, &[self.delimiter]]);
        }
    }

    /// Puts the out files in place.
    ///
    /// # Errors
    ///
    /// Each out file that could not be written, with its path.
    pub(crate) fn close(self) -> Vec<(PathBuf, io::Error)> {
        [self.failed_out, self.unknown_out]
            .into_iter()
            .flatten()
            .filter_map(|out| out.commit().err())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    //! Every message ends in exactly one place: random runs entered in the books, checked
    //! against a model of where each message should be, and the report's totals (text and
    //! JSON) against what was read.

    use std::collections::BTreeMap;
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use nsq_producer::{NotSentReason, ServerError};
    use proptest::prelude::*;

    use super::*;
    use crate::report::{EXIT_INTERRUPTED, EXIT_NOT_STORED, EXIT_OK, EXIT_UNKNOWN, Report};
    use crate::tally::{End, INTERRUPTED, NO_NODE_UP};

    /// nsqd's codes for a rejected publish, as they come in the error frame.
    const CODES: [&str; 3] = ["E_BAD_MESSAGE", "E_BAD_TOPIC", "E_PUB_FAILED"];

    /// What becomes of the next messages of a chunk.
    #[derive(Debug, Clone)]
    enum Step {
        /// A publish of this many messages (one PUB, or one MPUB) acknowledged.
        Acked(usize),
        /// A publish of this many messages rejected by nsqd with one of [`CODES`].
        Rejected(usize, usize),
        /// A publish of this many messages whose fate is unknown, in one of three ways.
        Unknown(usize, usize),
        /// A publish of this many messages the producer never sent.
        NotSent(usize),
        /// One message not sent because no nsqd was up.
        NoNodeUp,
        /// One message over the size limit, refused before it was sent.
        TooLarge,
    }

    impl Step {
        fn len(&self) -> usize {
            match self {
                Self::Acked(n) | Self::Rejected(n, _) | Self::Unknown(n, _) | Self::NotSent(n) => {
                    *n
                }
                Self::NoNodeUp | Self::TooLarge => 1,
            }
        }
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            4 => (1..5usize).prop_map(Step::Acked),
            2 => (1..5usize, 0..CODES.len()).prop_map(|(n, c)| Step::Rejected(n, c)),
            2 => (1..5usize, 0..3usize).prop_map(|(n, k)| Step::Unknown(n, k)),
            1 => (1..5usize).prop_map(Step::NotSent),
            1 => Just(Step::NoNodeUp),
            1 => Just(Step::TooLarge),
        ]
    }

    /// A run: chunks of input (empty records skipped before each, and the steps of its
    /// messages), and maybe an interrupt after some steps of the last chunk, with the chunks
    /// read ahead by then.
    #[derive(Debug, Clone)]
    struct Run {
        chunks: Vec<(u64, Vec<Step>)>,
        interrupt: Option<(usize, Vec<usize>)>,
    }

    fn run() -> impl Strategy<Value = Run> {
        (
            prop::collection::vec((0..3u64, prop::collection::vec(step(), 0..8)), 0..6),
            prop::option::of((0..8usize, prop::collection::vec(1..6usize, 0..3))),
        )
            .prop_map(|(chunks, interrupt)| Run { chunks, interrupt })
    }

    fn error(step: &Step) -> PublishError {
        let addr: Arc<str> = Arc::from("127.0.0.1:4150");
        match *step {
            Step::Rejected(_, code) => PublishError::Rejected {
                addr,
                error: ServerError::parse(Bytes::from(format!("{} PUB refused", CODES[code]))),
            },
            Step::Unknown(_, 0) => PublishError::TimedOut { addr },
            Step::Unknown(_, 1) => PublishError::Unknown { addr, cause: None },
            Step::Unknown(..) => PublishError::MaybeStored {
                addr,
                error: ServerError::parse(Bytes::from_static(b"E_MPUB_FAILED MPUB failed")),
            },
            Step::NotSent(_) => PublishError::NotSent(NotSentReason::QueueFull),
            Step::TooLarge => PublishError::Invalid(InvalidPublish::MessageTooLarge {
                index: None,
                size: 2_000_000,
                max: 1_048_576,
            }),
            Step::Acked(_) | Step::NoNodeUp => unreachable!("not an error"),
        }
    }

    /// Where the model puts each message.
    #[derive(Debug, Default)]
    struct Model {
        read: u64,
        skipped: u64,
        acknowledged: u64,
        bytes: u64,
        not_stored_by: BTreeMap<String, u64>,
        failed_out: Vec<String>,
        unknown_out: Vec<String>,
        last: Option<String>,
    }

    /// The input: numbered messages, alternately from two sources.
    struct Input {
        next: u64,
        records: [u64; 2],
    }

    impl Input {
        fn chunk(&mut self, len: usize, skipped: u64) -> Vec<Msg> {
            let source = (self.next % 2) as usize;
            self.records[source] += skipped;
            (0..len)
                .map(|_| {
                    self.next += 1;
                    self.records[source] += 1;
                    Msg {
                        body: Bytes::from(format!("message {}", self.next)),
                        source: source as u32,
                        record: self.records[source],
                    }
                })
                .collect()
        }
    }

    fn body(msg: &Msg) -> String {
        String::from_utf8(msg.body.to_vec()).unwrap()
    }

    /// Enters `run` in `books` as the publisher would; returns how it ended and the model.
    fn enter(books: &mut Books, run: &Run) -> (End, Model) {
        let names = ["a.txt", "b.txt"];
        let mut input = Input {
            next: 0,
            records: [0; 2],
        };
        let mut model = Model::default();
        let taken = |books: &mut Books, model: &mut Model, msgs: &[Msg], skipped: u64| {
            books.taken(msgs, skipped);
            model.read += msgs.len() as u64;
            model.skipped += skipped;
            if let Some(last) = msgs.last() {
                model.last = Some(format!("{}:{}", names[last.source as usize], last.record));
            }
        };
        let interrupted = |books: &mut Books, model: &mut Model, msg: &Msg| {
            books.interrupted(msg);
            *model
                .not_stored_by
                .entry(INTERRUPTED.to_owned())
                .or_default() += 1;
            model.failed_out.push(body(msg));
        };
        for (index, (skipped, steps)) in run.chunks.iter().enumerate() {
            let last_chunk = index + 1 == run.chunks.len();
            let len = steps.iter().map(Step::len).sum();
            let msgs = input.chunk(len, *skipped);
            taken(books, &mut model, &msgs, *skipped);
            let mut msgs = msgs.into_iter();
            for (done, step) in steps.iter().enumerate() {
                if let Some((cut, _)) = &run.interrupt {
                    if last_chunk && done == *cut {
                        break;
                    }
                }
                let mine: Vec<Msg> = msgs.by_ref().take(step.len()).collect();
                let publish = if mine.len() == 1 {
                    Msgs::One(mine[0].clone())
                } else {
                    Msgs::Many(mine.clone())
                };
                match step {
                    Step::Acked(_) => {
                        books.outcome(Ok(()), &publish);
                        model.acknowledged += mine.len() as u64;
                        model.bytes += mine.iter().map(|m| m.body.len() as u64).sum::<u64>();
                    }
                    Step::NoNodeUp => {
                        books.unsent(NO_NODE_UP, "not sent: no nsqd up", &mine[0]);
                        *model
                            .not_stored_by
                            .entry(NO_NODE_UP.to_owned())
                            .or_default() += 1;
                        model.failed_out.push(body(&mine[0]));
                    }
                    Step::TooLarge => {
                        books.failed(&error(step), &mine[0]);
                        *model
                            .not_stored_by
                            .entry("too_large".to_owned())
                            .or_default() += 1;
                        model.failed_out.push(body(&mine[0]));
                    }
                    Step::Unknown(..) => {
                        books.outcome(Err(error(step)), &publish);
                        model.unknown_out.extend(mine.iter().map(body));
                    }
                    Step::Rejected(_, code) => {
                        books.outcome(Err(error(step)), &publish);
                        *model
                            .not_stored_by
                            .entry(CODES[*code].to_owned())
                            .or_default() += mine.len() as u64;
                        model.failed_out.extend(mine.iter().map(body));
                    }
                    Step::NotSent(_) => {
                        books.outcome(Err(error(step)), &publish);
                        *model
                            .not_stored_by
                            .entry("not_sent".to_owned())
                            .or_default() += mine.len() as u64;
                        model.failed_out.extend(mine.iter().map(body));
                    }
                }
            }
            if last_chunk && run.interrupt.is_some() {
                // What the interrupt left of this chunk, then what was read ahead of it.
                for msg in msgs {
                    interrupted(books, &mut model, &msg);
                }
            }
        }
        let Some((_, read_ahead)) = &run.interrupt else {
            return (End::Complete, model);
        };
        for len in read_ahead {
            let msgs = input.chunk(*len, 0);
            taken(books, &mut model, &msgs, 0);
            for msg in &msgs {
                interrupted(books, &mut model, msg);
            }
        }
        (End::Interrupted, model)
    }

    /// The count on the text report's line that starts with `label`.
    fn text_count(text: &str, label: &str) -> u64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(label))
            .unwrap_or_else(|| panic!("no line {label:?} in\n{text}"));
        number(line[label.len()..].split_whitespace().next().unwrap())
    }

    fn number(text: &str) -> u64 {
        text.replace(',', "").parse().unwrap()
    }

    fn lines_of(path: &Path) -> Vec<String> {
        let mut lines: Vec<String> = std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        lines.sort();
        lines
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn every_message_ends_in_exactly_one_place(run in run()) {
            let dir = tempfile::tempdir().unwrap();
            let (failed_path, unknown_path) = (dir.path().join("failed"), dir.path().join("unknown"));
            let names = vec!["a.txt".to_owned(), "b.txt".to_owned()];
            let mut books =
                Books::new(Some(&failed_path), Some(&unknown_path), b'\n', names).unwrap();
            let (end, mut model) = enter(&mut books, &run);

            // The tally: each message counted once, where the model put it.
            let tally = books.tally();
            prop_assert_eq!(tally.acknowledged(), model.acknowledged);
            prop_assert_eq!(tally.bytes(), model.bytes);
            prop_assert_eq!(tally.not_stored_by(), &model.not_stored_by);
            prop_assert_eq!(tally.not_stored(), model.failed_out.len() as u64);
            prop_assert_eq!(tally.unknown(), model.unknown_out.len() as u64);
            prop_assert_eq!(tally.skipped_empty(), model.skipped);
            prop_assert_eq!(
                tally.acknowledged() + tally.not_stored() + tally.unknown(),
                model.read
            );
            prop_assert_eq!(
                tally.errors().values().sum::<u64>(),
                tally.not_stored() + tally.unknown()
            );

            // The JSON report adds up to what was read.
            let report = Report::new("t", tally, end, Some("SIGINT"), Duration::from_secs(1));
            let json = serde_json::to_value(&report).unwrap();
            let field = |name: &str| json[name].as_u64().unwrap();
            let sum = |name: &str| {
                json[name].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum::<u64>()
            };
            prop_assert_eq!(field("read"), model.read);
            prop_assert_eq!(
                field("acknowledged") + field("not_stored") + field("unknown"),
                field("read")
            );
            prop_assert_eq!(sum("not_stored_by"), field("not_stored"));
            prop_assert_eq!(sum("errors"), field("not_stored") + field("unknown"));
            prop_assert_eq!(field("skipped_empty"), model.skipped);
            let stopped_after = json["stopped_after"].as_str().map(str::to_owned);
            if end == End::Interrupted {
                prop_assert_eq!(stopped_after, model.last.clone());
            } else {
                prop_assert_eq!(stopped_after, None);
            }

            // So does the text report, its reasons and its errors.
            let text = report.to_string();
            let (acknowledged, not_stored, unknown, read) = (
                text_count(&text, "  acknowledged"),
                text_count(&text, "  not stored"),
                text_count(&text, "  unknown"),
                text_count(&text, "  read"),
            );
            prop_assert_eq!(read, model.read);
            prop_assert_eq!(acknowledged + not_stored + unknown, read);
            let reasons: u64 = model
                .not_stored_by
                .keys()
                .map(|reason| text_count(&text, &format!("    {reason}")))
                .sum();
            prop_assert_eq!(reasons, not_stored);
            let errors: u64 = text
                .lines()
                .filter_map(|l| l.trim_start().split_once(" x "))
                .map(|(n, _)| number(n))
                .sum();
            prop_assert_eq!(errors, not_stored + unknown);

            // The exit status is the worst case present.
            let only_interrupted =
                model.not_stored_by.get(INTERRUPTED).copied().unwrap_or(0) == not_stored;
            let expected = match () {
                () if unknown > 0 => EXIT_UNKNOWN,
                () if !only_interrupted => EXIT_NOT_STORED,
                () if end == End::Interrupted => EXIT_INTERRUPTED,
                () => EXIT_OK,
            };
            prop_assert_eq!(report.exit_code, expected);

            // The out files hold exactly the messages not acknowledged, each in one of them.
            prop_assert!(books.close().is_empty());
            model.failed_out.sort();
            model.unknown_out.sort();
            prop_assert_eq!(lines_of(&failed_path), model.failed_out);
            prop_assert_eq!(lines_of(&unknown_path), model.unknown_out);
        }
    }
}
