//! The command line: to_nsq's flags with their meaning, and the ones it lacks.

use std::path::PathBuf;

use clap::{CommandFactory, Parser, ValueEnum};

/// Publishes messages to an NSQ topic: the lines of standard input or of files, split on a
/// delimiter, or generated ones for a load test.
///
/// A drop-in replacement for nsq's `to_nsq`: the same flags with the same meaning, and with
/// several `--nsqd-tcp-address` every message goes to every nsqd, as to_nsq does. Beyond it:
/// pipelined and batched publishing, progress, a final report of what was stored, and files of
/// the messages that were not stored (`--failed-out`, safe to feed again) and of those whose
/// fate is unknown (`--unknown-out`).
#[derive(Debug, Parser)]
#[command(
    name = "nsq-pub",
    version,
    about = "Publish lines to an NSQ topic: a fast, resumable to_nsq",
    after_long_help = AFTER_HELP,
)]
pub(crate) struct Args {
    /// The topic to publish to.
    #[arg(long, value_name = "TOPIC", required_unless_present = "completions")]
    pub(crate) topic: Option<String>,

    /// An nsqd TCP address to publish to (repeatable).
    #[arg(long = "nsqd-tcp-address", value_name = "HOST:PORT")]
    pub(crate) nsqd: Vec<String>,

    /// An nsqlookupd HTTP address to discover nsqd through (repeatable).
    #[arg(long = "lookupd-http-address", value_name = "HOST:PORT")]
    pub(crate) lookupd: Vec<String>,

    /// Where each message goes when there are several nsqd [default: fan-out with several
    /// --nsqd-tcp-address, as to_nsq does; round-robin otherwise].
    #[arg(long, value_enum, value_name = "MODE")]
    pub(crate) mode: Option<Mode>,

    /// The byte that ends a message: one character, or an escape such as `\t`, `\0` or `\x1e`.
    #[arg(long, default_value = "\\n", value_parser = parse_delimiter, value_name = "BYTE")]
    pub(crate) delimiter: u8,

    /// At most this many messages per second; 0 (or less) for no limit.
    #[arg(
        long,
        default_value_t = 0,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub(crate) rate: i64,

    /// A producer option as `key,value`, with go-nsq's option names (repeatable); a bare `key`
    /// means `key,true`.
    #[arg(long = "producer-opt", value_name = "KEY,VALUE")]
    pub(crate) producer_opt: Vec<String>,

    /// How messages are grouped into MPUBs: `auto` sends what is queued together, `1` sends one
    /// PUB per message, N > 1 sends MPUBs of up to N messages.
    #[arg(long, default_value = "auto", value_parser = parse_batch, value_name = "auto|N")]
    pub(crate) batch: Batch,

    /// No progress and no report on standard error (errors are still printed).
    #[arg(long, short)]
    pub(crate) quiet: bool,

    /// Show the producer's log (reconnections, nsqlookupd failures): `-v` warnings and
    /// information, `-vv` debugging detail. `RUST_LOG` chooses more precisely.
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Write the final report to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) report_json: Option<PathBuf>,

    /// Write the messages that were certainly not stored to FILE, each followed by the
    /// delimiter: feeding it again completes the job without duplicates.
    #[arg(long, value_name = "FILE")]
    pub(crate) failed_out: Option<PathBuf>,

    /// Write the messages whose fate is unknown (written, then the connection failed or the
    /// answer did not come in time) to FILE, each followed by the delimiter.
    #[arg(long, value_name = "FILE")]
    pub(crate) unknown_out: Option<PathBuf>,

    /// Publish N generated messages instead of reading input, then check nsqd's count.
    #[arg(long, value_name = "N", conflicts_with = "files")]
    pub(crate) generate: Option<u64>,

    /// The HTTP address of each --nsqd-tcp-address, in the same order, for checking a generated
    /// run's count [default: the TCP port plus one].
    #[arg(
        long = "nsqd-http-address",
        value_name = "HOST:PORT",
        requires = "generate"
    )]
    pub(crate) nsqd_http: Vec<String>,

    /// The size in bytes of each generated message.
    #[arg(
        long,
        default_value_t = 100,
        requires = "generate",
        value_name = "BYTES"
    )]
    pub(crate) size: usize,

    /// Print a completion script for SHELL and exit.
    #[arg(long, value_enum, value_name = "SHELL", exclusive = true)]
    pub(crate) completions: Option<clap_complete::Shell>,

    /// Files to read, in order; `-` is standard input [default: standard input].
    #[arg(value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
}

impl Args {
    /// Parses the command line, with to_nsq's flag spellings (`-topic=x`, `-topic x`) as well
    /// as clap's; exits with usage status 2 on an error, as clap does.
    pub(crate) fn parse_go_style() -> Self {
        let mut args = std::env::args_os();
        let program = args.next().unwrap_or_else(|| "nsq-pub".into());
        let mut command = Self::command();
        match crate::goflags::normalise(&command, args) {
            Ok(args) => Self::parse_from(std::iter::once(program).chain(args)),
            Err(message) => command
                .error(clap::error::ErrorKind::InvalidValue, message)
                .exit(),
        }
    }

    /// The topic (present unless `--completions` was given).
    pub(crate) fn topic(&self) -> &str {
        self.topic.as_deref().unwrap_or_default()
    }

    /// The nsqd addresses, each once, in the order first given (to_nsq makes one producer per
    /// distinct address).
    pub(crate) fn nsqd_addresses(&self) -> Vec<String> {
        let mut distinct: Vec<String> = Vec::with_capacity(self.nsqd.len());
        for addr in &self.nsqd {
            if !distinct.contains(addr) {
                distinct.push(addr.clone());
            }
        }
        distinct
    }

    /// The rate limit in messages per second; 0 for none.
    pub(crate) fn rate(&self) -> u64 {
        u64::try_from(self.rate).unwrap_or(0)
    }
}

const AFTER_HELP: &str = "\
Examples:
  # to_nsq's own invocation works unchanged
  tail -F app.log | nsq-pub --topic logs --nsqd-tcp-address 127.0.0.1:4150

  # replay a file of tab-separated records, keeping what did not make it
  nsq-pub --topic events --nsqd-tcp-address 127.0.0.1:4150 --delimiter '\\t' \\
          --failed-out failed.txt --unknown-out unknown.txt events.tsv
  # ... and finish the job later (exit status 0 once everything is stored)
  nsq-pub --topic events --nsqd-tcp-address 127.0.0.1:4150 --delimiter '\\t' failed.txt

  # spread over the nsqd nsqlookupd knows, at most 5000 messages a second
  nsq-pub --topic events --lookupd-http-address 127.0.0.1:4161 --mode round-robin \\
          --rate 5000 events.txt

  # load test: a million messages of 200 bytes
  nsq-pub --topic load --nsqd-tcp-address 127.0.0.1:4150 --generate 1000000 --size 200

Exit status:
  0    every message was acknowledged (or there was none)
  1    some messages were certainly not stored (see --failed-out); none is unknown
  2    usage error: bad flags, topic name or producer option, or an out file that is an input
       or another out file; nothing was published and no file touched
  3    the fate of some messages is unknown (see --unknown-out)
  4    could not start: no nsqd reachable, or an input file cannot be opened
  130  interrupted (SIGINT, SIGTERM or SIGHUP): what was read and not published is in
       --failed-out; nothing was refused and nothing is unknown

The first SIGINT, SIGTERM or SIGHUP stops reading and waits for what was sent; a second stops
waiting. Out files are written whole when the run ends.

Empty messages are skipped, as to_nsq does. Messages larger than nsqd's message size limit
(--producer-opt max_msg_size,N when nsqd's --max-msg-size is not the default 1048576) are
reported, written to --failed-out, and do not stop the others.

Migrating from to_nsq: replace `to_nsq` with `nsq-pub`; nothing else changes. Flags are read
as Go reads them: `-topic=x`, `-topic x`, `--topic=x` and `--topic x` are the same.";

/// Where each message goes when there are several nsqd: the names of the producer's
/// strategies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// Every message to every nsqd given with --nsqd-tcp-address.
    #[value(name = "fan-out", alias = "fanout")]
    FanOut,
    /// Each message to the next nsqd in turn.
    RoundRobin,
    /// Every message to the first nsqd that is up.
    Failover,
    /// Each message to the nsqd with the fewest publishes waiting for an answer.
    #[value(name = "least-outstanding", alias = "least-loaded")]
    LeastOutstanding,
}

/// How messages are grouped into MPUBs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Batch {
    /// The producer's own batching: what is queued together goes as one MPUB.
    Auto,
    /// Explicit MPUBs of up to this many messages (1: one PUB per message, no batching).
    Size(usize),
}

fn parse_batch(text: &str) -> Result<Batch, String> {
    if text == "auto" {
        return Ok(Batch::Auto);
    }
    match text.parse::<usize>() {
        Ok(0) | Err(_) => Err(format!(
            "expected `auto` or a number of at least 1, got {text:?}"
        )),
        Ok(n) => Ok(Batch::Size(n)),
    }
}

/// One byte, given literally or as an escape.
fn parse_delimiter(text: &str) -> Result<u8, String> {
    let byte = match text {
        "\\n" => Some(b'\n'),
        "\\t" => Some(b'\t'),
        "\\r" => Some(b'\r'),
        "\\0" => Some(0),
        "\\\\" => Some(b'\\'),
        _ if text.len() == 1 => Some(text.as_bytes()[0]),
        _ => text
            .strip_prefix("\\x")
            .filter(|hex| hex.len() == 2)
            .and_then(|hex| u8::from_str_radix(hex, 16).ok()),
    };
    byte.ok_or_else(|| {
        format!("expected a single byte (or \\n, \\t, \\r, \\0, \\xHH), got {text:?}")
    })
}

/// A `--producer-opt` split into option and value.
pub(crate) fn split_producer_opt(text: &str) -> (&str, &str) {
    match text.split_once(',') {
        Some((key, value)) => (key, value),
        None => (text, "true"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every mode's name is the name of the library's strategy (`Strategy`'s `FromStr` and
    /// `Display`), so that the CLI and a configuration file use the same words.
    #[test]
    fn mode_names_are_the_strategy_names() {
        for mode in Mode::value_variants() {
            let name = mode.to_possible_value().unwrap().get_name().to_owned();
            let strategy: nsq_producer::Strategy = name.parse().unwrap();
            assert_eq!(strategy.to_string(), name);
        }
    }

    #[test]
    fn delimiters_are_one_byte_or_an_escape() {
        assert_eq!(parse_delimiter("\\n"), Ok(b'\n'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert_eq!(parse_delimiter("\t"), Ok(b'\t'));
        assert_eq!(parse_delimiter("\\x1e"), Ok(0x1e));
        assert_eq!(parse_delimiter("\\0"), Ok(0));
        assert!(parse_delimiter(";;").is_err());
        assert!(parse_delimiter("").is_err());
        assert!(parse_delimiter("\\x1").is_err());
        assert!(parse_delimiter("é").is_err());
    }

    #[test]
    fn batch_is_auto_or_a_positive_size() {
        assert_eq!(parse_batch("auto"), Ok(Batch::Auto));
        assert_eq!(parse_batch("1"), Ok(Batch::Size(1)));
        assert_eq!(parse_batch("250"), Ok(Batch::Size(250)));
        assert!(parse_batch("0").is_err());
        assert!(parse_batch("many").is_err());
    }

    #[test]
    fn a_bare_producer_opt_means_true() {
        assert_eq!(split_producer_opt("snappy"), ("snappy", "true"));
        assert_eq!(
            split_producer_opt("max_msg_size,1024"),
            ("max_msg_size", "1024")
        );
        assert_eq!(split_producer_opt("tls_config,a,b"), ("tls_config", "a,b"));
    }

    #[test]
    fn to_nsq_invocations_parse() {
        let args = Args::try_parse_from([
            "nsq-pub",
            "--topic",
            "t",
            "--nsqd-tcp-address",
            "127.0.0.1:4150",
            "--nsqd-tcp-address=127.0.0.1:5150",
            "--producer-opt",
            "snappy",
            "--rate",
            "10",
        ])
        .unwrap();
        assert_eq!(args.nsqd.len(), 2);
        assert_eq!(args.delimiter, b'\n');
        assert_eq!(args.rate, 10);
        assert_eq!(args.batch, Batch::Auto);
        assert!(args.files.is_empty());
    }

    fn parse_go(args: &[&str]) -> Args {
        let command = Args::command();
        let args = crate::goflags::normalise(&command, args.iter().map(Into::into)).unwrap();
        Args::try_parse_from(std::iter::once("nsq-pub".into()).chain(args)).unwrap()
    }

    #[test]
    fn go_spellings_of_every_kind_of_flag_parse() {
        let args = parse_go(&[
            "-topic=t",
            "-nsqd-tcp-address",
            "127.0.0.1:4150",
            "--nsqd-tcp-address=127.0.0.1:4150",
            "-rate",
            "-1",
            "-quiet=true",
            "-delimiter",
            ";",
            "-mode=least-loaded",
        ]);
        assert_eq!(args.topic(), "t");
        assert_eq!(args.nsqd_addresses(), ["127.0.0.1:4150"]);
        assert_eq!(args.rate(), 0);
        assert!(args.quiet);
        assert_eq!(args.delimiter, b';');
        assert_eq!(args.mode, Some(Mode::LeastOutstanding));
        let args = parse_go(&["-topic", "t", "-quiet=false", "-v", "--rate=7", "-", "f"]);
        assert!(!args.quiet);
        assert_eq!(args.verbose, 1);
        assert_eq!(args.rate(), 7);
        assert_eq!(args.files.len(), 2);
    }

    #[test]
    fn the_command_is_consistent() {
        use clap::CommandFactory;
        Args::command().debug_assert();
    }
}
