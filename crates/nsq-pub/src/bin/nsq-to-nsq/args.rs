//! The command line: nsq_to_nsq's flags with their meaning, and the few it lacks.

use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use nsq_consumer::ConsumerConfig;
use nsq_producer::{PoolConfig, ProducerConfig, Strategy, Topic};

/// Forwards the messages of NSQ topics to other nsqd: the source message is finished only once
/// a destination nsqd acknowledged it.
///
/// A drop-in replacement for nsq's `nsq_to_nsq`: the same flags with the same meaning. Beyond
/// it: a message nsqd certainly did not store is sent to another destination nsqd before the
/// source message is requeued; one whose fate is unknown is requeued (and counted as a
/// possible duplicate) or written to `--unknown-out`; publishes are batched into MPUBs; an
/// interrupt finishes what is in flight and prints a report.
#[derive(Debug, Parser)]
#[command(
    name = "nsq-to-nsq",
    version,
    about = "Forward NSQ topics to other nsqd, finishing each message once it is stored there",
    after_long_help = AFTER_HELP,
)]
pub(crate) struct Args {
    /// A topic to read (repeatable).
    #[arg(long, value_name = "TOPIC", required = true)]
    pub(crate) topic: Vec<String>,

    /// The channel to read the topics through.
    #[arg(long, default_value = "nsq_to_nsq", value_name = "CHANNEL")]
    pub(crate) channel: String,

    /// The topic to publish to [default: each message's own topic].
    #[arg(long, value_name = "TOPIC")]
    pub(crate) destination_topic: Option<String>,

    /// A source nsqd TCP address to read from (repeatable).
    #[arg(long = "nsqd-tcp-address", value_name = "HOST:PORT")]
    pub(crate) nsqd: Vec<String>,

    /// A source nsqlookupd HTTP address to find the topics' nsqd through (repeatable).
    #[arg(long = "lookupd-http-address", value_name = "HOST:PORT")]
    pub(crate) lookupd: Vec<String>,

    /// A destination nsqd TCP address (repeatable, at least one).
    #[arg(
        long = "destination-nsqd-tcp-address",
        value_name = "HOST:PORT",
        required = true
    )]
    pub(crate) destination: Vec<String>,

    /// How a destination nsqd is picked for each message: `round-robin` and `hostpool` take
    /// each nsqd that is up in turn, `epsilon-greedy` the less loaded of two picked at random;
    /// `failover` and `least-outstanding` are accepted too.
    #[arg(long, default_value = "hostpool", value_name = "MODE")]
    pub(crate) mode: String,

    /// A consumer option as `key,value`, with go-nsq's option names (repeatable); a bare `key`
    /// means `key,true`.
    #[arg(long = "consumer-opt", value_name = "KEY,VALUE")]
    pub(crate) consumer_opt: Vec<String>,

    /// A producer option as `key,value`, with go-nsq's option names or the pool's
    /// (repeatable); a bare `key` means `key,true`.
    #[arg(long = "producer-opt", value_name = "KEY,VALUE")]
    pub(crate) producer_opt: Vec<String>,

    /// How many source messages may be in flight at once.
    #[arg(long, default_value_t = 200, value_name = "N")]
    pub(crate) max_in_flight: u32,

    /// Print a status line every N messages forwarded; 0 for none.
    #[arg(long, default_value_t = 250, value_name = "N")]
    pub(crate) status_every: u64,

    /// For JSON messages: forward only those that have this field.
    #[arg(long, value_name = "FIELD")]
    pub(crate) require_json_field: Option<String>,

    /// For JSON messages: forward only those whose --require-json-field has this value (a
    /// string, or a number).
    #[arg(long, value_name = "VALUE", requires = "require_json_field")]
    pub(crate) require_json_value: Option<String>,

    /// For JSON messages: forward only this field of each (repeatable).
    #[arg(long, value_name = "FIELD")]
    pub(crate) whitelist_json_field: Vec<String>,

    /// Write the messages whose fate at the destination is unknown to FILE, each followed by a
    /// newline, and finish them at the source, instead of requeueing them (which may store
    /// them twice).
    #[arg(long, value_name = "FILE")]
    pub(crate) unknown_out: Option<PathBuf>,

    /// Write the final report to FILE as JSON.
    #[arg(long, value_name = "FILE")]
    pub(crate) report_json: Option<PathBuf>,

    /// No status lines and no report (errors are still printed).
    #[arg(long, short)]
    pub(crate) quiet: bool,

    /// Show the consumer's and the producer's log: `-v` information, `-vv` debugging
    /// detail. `RUST_LOG` chooses more precisely.
    #[arg(long, short, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
}

const AFTER_HELP: &str = "\
Guarantees:
  A source message is finished (FIN) only after a destination nsqd acknowledged it. A message
  the destination certainly did not store is tried on another destination nsqd within its
  publish deadline, then requeued at the source. A message whose fate is unknown (the
  connection failed after it was written, or the reply timed out) is requeued and counted as
  unknown: it may reach the destination twice. With --unknown-out it is written to that file
  and finished instead.

Examples:
  nsq-to-nsq --topic=events --nsqd-tcp-address=127.0.0.1:4150 \\
      --destination-nsqd-tcp-address=10.0.0.1:4150 --destination-nsqd-tcp-address=10.0.0.2:4150

Exit status:
  2    usage error (bad flag or option)
  4    could not start (no source nsqd reachable, a file not writable)
  130  interrupted (SIGINT, SIGTERM, SIGHUP): the report shows what was forwarded";

impl Args {
    /// Parses the process's arguments, Go-style spellings included (see `goflags`).
    pub(crate) fn parse_go_style() -> Self {
        let mut args = std::env::args_os();
        let program = args.next().unwrap_or_else(|| "nsq-to-nsq".into());
        let mut command = Self::command();
        match crate::goflags::normalise(&command, args) {
            Ok(args) => Self::parse_from(std::iter::once(program).chain(args)),
            Err(message) => command
                .error(clap::error::ErrorKind::InvalidValue, message)
                .exit(),
        }
    }
}

/// The checked flags.
pub(crate) struct Plan {
    /// Each source topic and the topic its messages go to.
    pub(crate) routes: Vec<(String, Topic)>,
    pub(crate) consumer: ConsumerConfig,
    pub(crate) pool: PoolConfig,
    /// The distinct destination nsqd.
    pub(crate) destination: Vec<String>,
}

impl Plan {
    /// Checks the flags.
    ///
    /// # Errors
    ///
    /// What is wrong, for a usage error.
    pub(crate) fn new(args: &Args) -> Result<Self, String> {
        if args.nsqd.is_empty() && args.lookupd.is_empty() {
            return Err("--nsqd-tcp-address or --lookupd-http-address required".to_owned());
        }
        #[cfg(not(feature = "lookupd"))]
        if !args.lookupd.is_empty() {
            return Err(
                "--lookupd-http-address needs nsq-to-nsq built with its `lookupd` feature"
                    .to_owned(),
            );
        }
        if !args.nsqd.is_empty() && !args.lookupd.is_empty() {
            return Err("use --nsqd-tcp-address or --lookupd-http-address, not both".to_owned());
        }
        let destination_topic = args
            .destination_topic
            .as_deref()
            .map(|t| Topic::new(t).map_err(|e| format!("--destination-topic {t:?}: {e}")))
            .transpose()?;
        let mut routes = Vec::new();
        for topic in &args.topic {
            let to = match &destination_topic {
                Some(to) => to.clone(),
                None => {
                    Topic::new(topic.as_str()).map_err(|e| format!("--topic {topic:?}: {e}"))?
                }
            };
            if !routes
                .iter()
                .any(|(from, _): &(String, Topic)| from == topic)
            {
                routes.push((topic.clone(), to));
            }
        }
        for topic in &args.topic {
            nsq_consumer::Consumer::builder(topic, &args.channel)
                .map_err(|e| format!("--topic {topic:?} --channel {:?}: {e}", args.channel))?;
        }
        let mut consumer = consumer_config(args)?;
        let pool = pool_config(args)?;
        // A drain waits for the publishes under way to end on their own deadline.
        if let Some(timeout) = pool.producer.publish_timeout {
            consumer.drain_timeout = consumer.drain_timeout.max(timeout + Duration::from_secs(5));
        }
        let mut destination: Vec<String> = Vec::new();
        for addr in &args.destination {
            if !destination.contains(addr) {
                destination.push(addr.clone());
            }
        }
        Ok(Self {
            routes,
            consumer,
            pool,
            destination,
        })
    }
}

/// The pool's strategy for nsq_to_nsq's `--mode`.
///
/// nsq_to_nsq's `hostpool` sends to each nsqd in turn and skips one that failed until a retry
/// finds it up: the pool's round-robin, which skips nodes that are down or slow. Its
/// `epsilon-greedy` prefers the nsqd that answers fastest: the pool's least-outstanding picks
/// the less loaded of two nodes, and a slow node holds more requests.
pub(crate) fn strategy(mode: &str) -> Result<Strategy, String> {
    match mode {
        "round-robin" | "hostpool" => Ok(Strategy::RoundRobin),
        "epsilon-greedy" => Ok(Strategy::LeastOutstanding),
        "fan-out" => Err(
            "--mode fan-out is not offered: each message must end at one destination".to_owned(),
        ),
        other => other.parse().map_err(|_| {
            format!(
                "--mode {other:?}: expected round-robin, hostpool, epsilon-greedy, failover or \
                 least-outstanding"
            )
        }),
    }
}

/// A `--consumer-opt` or `--producer-opt` as go-nsq's flag reads it: `key,value`, or a bare
/// `key` for `key,true`.
fn split_opt(text: &str) -> (&str, &str) {
    match text.split_once(',') {
        Some((key, value)) => (key, value),
        None => (text, "true"),
    }
}

fn consumer_config(args: &Args) -> Result<ConsumerConfig, String> {
    let mut config = ConsumerConfig::default();
    // A message is never given up: it stays at the source until a destination stores it.
    config.max_attempts = 0;
    config.conn = config.conn.user_agent(format!(
        "nsq-to-nsq/{} nsq-consumer",
        env!("CARGO_PKG_VERSION")
    ));
    for opt in &args.consumer_opt {
        let (key, value) = split_opt(opt);
        config
            .set(key, value)
            .map_err(|e| format!("--consumer-opt {opt:?}: {e}"))?;
    }
    for name in config.ignored_options() {
        eprintln!("nsq-to-nsq: warning: --consumer-opt {name}: no use in a consumer, ignored");
    }
    // As nsq_to_nsq: --max-in-flight decides, whatever --consumer-opt said.
    config.max_in_flight = args.max_in_flight.max(1);

    config
        .validate()
        .map_err(|e| format!("--consumer-opt: {e}"))?;
    Ok(config)
}

fn pool_config(args: &Args) -> Result<PoolConfig, String> {
    let mut producer = ProducerConfig::default();
    producer.conn = producer.conn.user_agent(format!(
        "nsq-to-nsq/{} nsq-producer",
        env!("CARGO_PKG_VERSION")
    ));
    let mut pool = PoolConfig::new(producer).strategy(strategy(&args.mode)?);
    for opt in &args.producer_opt {
        let (key, value) = split_opt(opt);
        pool.set(key, value)
            .map_err(|e| format!("--producer-opt {opt:?}: {e}"))?;
    }
    for name in pool.ignored_options() {
        eprintln!("nsq-to-nsq: warning: --producer-opt {name}: no use in a producer, ignored");
    }
    if matches!(pool.strategy, Strategy::FanOut { .. }) {
        return Err("--producer-opt strategy: fan-out is not offered here".to_owned());
    }
    pool.validate()
        .map_err(|e| format!("--producer-opt: {e}"))?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_map_to_strategies() {
        assert_eq!(strategy("hostpool"), Ok(Strategy::RoundRobin));
        assert_eq!(strategy("round-robin"), Ok(Strategy::RoundRobin));
        assert_eq!(strategy("epsilon-greedy"), Ok(Strategy::LeastOutstanding));
        assert!(strategy("fan-out").is_err());
        assert!(strategy("random").unwrap_err().contains("random"));
    }

    #[test]
    fn options_split_as_go_nsq_does() {
        assert_eq!(split_opt("max_attempts,3"), ("max_attempts", "3"));
        assert_eq!(split_opt("snappy"), ("snappy", "true"));
    }
}
