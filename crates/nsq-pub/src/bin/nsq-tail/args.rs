//! The command line: nsq_tail's flags with their meaning, and the output framing it lacks.

use clap::{CommandFactory, Parser, ValueEnum};

/// Prints the messages of NSQ topics on standard output, as nsq's `nsq_tail` does.
///
/// Subscribes to a channel of each `--topic` (an ephemeral channel of its own unless
/// `--channel` names one), prints every message and finishes it once it is written. With `-n`
/// it exits after exactly that many messages, having taken no more from nsqd than it shows.
#[derive(Debug, Parser)]
#[command(
    name = "nsq-tail",
    about = "Print the messages of NSQ topics: nsq_tail with exact -n and JSON lines",
    after_long_help = AFTER_HELP,
    disable_version_flag = true
)]
pub(crate) struct Args {
    /// A topic to read (repeatable).
    #[arg(long, value_name = "TOPIC")]
    pub(crate) topic: Vec<String>,

    /// The channel to read from [default: tail, six random digits and #ephemeral: a channel
    /// nsqd deletes when the last reader leaves].
    #[arg(long, value_name = "CHANNEL")]
    pub(crate) channel: Option<String>,

    /// Exit after this many messages, each printed and finished; 0 (or less) for no limit.
    #[arg(
        short = 'n',
        long = "n",
        default_value_t = 0,
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub(crate) count: i64,

    /// Print the topic name before each message, as `TOPIC | BODY` (raw output only; JSON
    /// lines always name the topic).
    #[arg(long)]
    pub(crate) print_topic: bool,

    /// An nsqd TCP address to read from (repeatable).
    #[arg(long = "nsqd-tcp-address", value_name = "HOST:PORT")]
    pub(crate) nsqd: Vec<String>,

    /// An nsqlookupd HTTP address to find the topic's nsqd through (repeatable).
    #[arg(long = "lookupd-http-address", value_name = "HOST:PORT")]
    pub(crate) lookupd: Vec<String>,

    /// A consumer option as `key,value`, with go-nsq's option names (repeatable); a bare `key`
    /// means `key,true`.
    #[arg(long = "consumer-opt", value_name = "KEY,VALUE")]
    pub(crate) consumer_opt: Vec<String>,

    /// How many messages may be delivered and not yet finished, per topic [default: 200, or
    /// --consumer-opt max_in_flight].
    #[arg(long, value_name = "N")]
    pub(crate) max_in_flight: Option<u32>,

    /// How each message is written: `raw` is the body and a newline, as nsq_tail writes it;
    /// `json` is one JSON object per line with the body in base64.
    #[arg(long, value_enum, default_value_t = Output::Raw, value_name = "FRAMING")]
    pub(crate) output: Output,

    /// Show the consumer's log (connections, nsqlookupd failures): `-v` information, `-vv`
    /// debugging detail. `RUST_LOG` chooses more precisely.
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,

    /// Print the version and exit.
    #[arg(long)]
    pub(crate) version: bool,
}

/// How each message is written to standard output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// The body followed by a newline (a body holding newlines spans several lines).
    Raw,
    /// One JSON object per line: topic, nsqd, id, attempts, timestamp, body in base64.
    Json,
}

impl Args {
    /// Parses the command line, with nsq_tail's flag spellings (`-topic=x`, `-topic x`) as
    /// well as clap's; exits with usage status 2 on an error, as clap does.
    pub(crate) fn parse_go_style() -> Self {
        let mut args = std::env::args_os();
        let program = args.next().unwrap_or_else(|| "nsq-tail".into());
        let mut command = Self::command();
        match crate::goflags::normalise(&command, args) {
            Ok(args) => Self::parse_from(std::iter::once(program).chain(args)),
            Err(message) => command
                .error(clap::error::ErrorKind::InvalidValue, message)
                .exit(),
        }
    }

    /// The message limit; `None` for none.
    pub(crate) fn limit(&self) -> Option<u64> {
        u64::try_from(self.count).ok().filter(|&n| n > 0)
    }
}

const AFTER_HELP: &str = "\
Examples:
  # nsq_tail's own invocation works unchanged
  nsq-tail --topic events --nsqd-tcp-address 127.0.0.1:4150

  # the next 1000 messages of a durable channel, then exit: exactly 1000 are taken from it
  nsq-tail --topic events --channel audit --lookupd-http-address 127.0.0.1:4161 -n 1000

  # JSON lines, bodies decoded with jq and base64
  nsq-tail --topic events --nsqd-tcp-address 127.0.0.1:4150 --output json \\
    | jq -r .body | base64 -d

JSON lines:
  {\"topic\":\"events\",\"nsqd\":\"127.0.0.1:4150\",\"id\":\"0a1b2c3d4e5f6a7b\",\"attempts\":1,
   \"timestamp\":1733580000123456789,\"body\":\"aGVsbG8=\"}
  timestamp is when nsqd received the message, in nanoseconds since the Unix epoch; body is
  standard base64 with padding, so any bytes (newlines, binary) survive.

Exit status:
  0    -n messages were printed, or standard output was closed by its reader
  1    writing standard output failed, or the consumers stopped on their own
  2    usage error: bad flags, topic or channel name, or consumer option
  4    could not start: no nsqd could be subscribed to, or an nsqlookupd address is not usable
  130  interrupted (SIGINT, SIGTERM or SIGHUP)

A message is finished only after it was written to standard output; messages delivered and not
written are requeued at once when nsq-tail stops. The first SIGINT, SIGTERM or SIGHUP stops
reading and requeues what was not printed; a second exits at once (nsqd redelivers what was in
flight after its msg_timeout).

Migrating from nsq_tail: replace `nsq_tail` with `nsq-tail`; nothing else changes. Flags are read
as Go reads them: `-topic=x`, `-topic x`, `--topic=x` and `--topic x` are the same.";

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_go(args: &[&str]) -> Args {
        let command = Args::command();
        let args = crate::goflags::normalise(&command, args.iter().map(Into::into)).unwrap();
        Args::try_parse_from(std::iter::once("nsq-tail".into()).chain(args)).unwrap()
    }

    #[test]
    fn nsq_tail_invocations_parse_in_every_go_spelling() {
        let args = parse_go(&[
            "-topic=a",
            "--topic",
            "b",
            "-channel",
            "c#ephemeral",
            "-n",
            "1000",
            "-print-topic",
            "-nsqd-tcp-address=127.0.0.1:4150",
            "-max-in-flight",
            "7",
            "-consumer-opt",
            "snappy",
        ]);
        assert_eq!(args.topic, ["a", "b"]);
        assert_eq!(args.channel.as_deref(), Some("c#ephemeral"));
        assert_eq!(args.limit(), Some(1000));
        assert!(args.print_topic);
        assert_eq!(args.nsqd, ["127.0.0.1:4150"]);
        assert_eq!(args.max_in_flight, Some(7));
        assert_eq!(args.consumer_opt, ["snappy"]);
        assert_eq!(args.output, Output::Raw);
        assert!(!args.version);
    }

    #[test]
    fn n_takes_every_spelling_and_no_limit_below_one() {
        for spelling in [
            &["-n", "5"][..],
            &["-n=5"],
            &["--n=5"],
            &["--n", "5"],
            &["-n5"],
        ] {
            let mut args = vec!["-topic=t"];
            args.extend_from_slice(spelling);
            assert_eq!(parse_go(&args).limit(), Some(5), "{spelling:?}");
        }
        assert_eq!(parse_go(&["-topic=t", "-n", "-1"]).limit(), None);
        assert_eq!(parse_go(&["-topic=t"]).limit(), None);
    }

    #[test]
    fn version_and_output_parse() {
        assert!(parse_go(&["-version"]).version);
        assert_eq!(
            parse_go(&["-topic=t", "-output", "json"]).output,
            Output::Json
        );
    }

    #[test]
    fn the_command_is_consistent() {
        Args::command().debug_assert();
    }
}
