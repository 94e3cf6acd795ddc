//! From flags to subscribed consumers, one per topic: what is checked before anything is read.

use nsq_consumer::{Consumer, ConsumerConfig, Message};

use crate::args::Args;
use crate::opts;

/// nsq_tail's `--max-in-flight` default.
const DEFAULT_MAX_IN_FLIGHT: u32 = 200;

/// The checked flags: everything that can be refused without touching the network.
pub(crate) struct Plan {
    pub(crate) topics: Vec<String>,
    pub(crate) channel: String,
    pub(crate) config: ConsumerConfig,
    nsqd: Vec<String>,
    lookupd: Vec<String>,
}

impl Plan {
    /// Checks the flags.
    ///
    /// # Errors
    ///
    /// What is wrong, for a usage error.
    pub(crate) fn new(args: &Args) -> Result<Self, String> {
        if args.topic.is_empty() {
            return Err("--topic required".to_owned());
        }
        if args.nsqd.is_empty() && args.lookupd.is_empty() {
            return Err("--nsqd-tcp-address or --lookupd-http-address required".to_owned());
        }
        #[cfg(not(feature = "lookupd"))]
        if !args.lookupd.is_empty() {
            return Err(
                "--lookupd-http-address needs nsq-tail built with its `lookupd` feature".to_owned(),
            );
        }
        let channel = args.channel.clone().unwrap_or_else(ephemeral_channel);
        let mut topics: Vec<String> = Vec::with_capacity(args.topic.len());
        for topic in &args.topic {
            // nsq_tail reads a topic given twice twice; once is enough.
            if !topics.contains(topic) {
                topics.push(topic.clone());
            }
        }
        for topic in &topics {
            // The error says which name, topic or channel, is refused and why.
            Consumer::builder(topic, &channel).map_err(|e| e.to_string())?;
        }
        let mut config = ConsumerConfig::default();
        // Every message is shown, however often it was delivered, unless
        // `--consumer-opt max_attempts,N` asks otherwise.
        config.max_attempts = 0;
        config.conn = config
            .conn
            .user_agent(concat!("nsq-tail/", env!("CARGO_PKG_VERSION")));
        let mut max_in_flight = None;
        for opt in &args.consumer_opt {
            let (key, value) = opts::split(opt);
            config
                .set(key, value)
                .map_err(|e| format!("--consumer-opt {opt:?}: {e}"))?;
            if opts::is_max_in_flight(key) {
                max_in_flight = Some(config.max_in_flight);
            }
        }
        config.max_in_flight = args
            .max_in_flight
            .or(max_in_flight)
            .unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if config.max_in_flight == 0 {
            return Err("--max-in-flight must be at least 1".to_owned());
        }
        if let Some(n) = args.limit() {
            // Never ask for more than will be shown.
            config.max_in_flight = config
                .max_in_flight
                .min(u32::try_from(n).unwrap_or(u32::MAX));
        }
        config
            .validate()
            .map_err(|e| format!("--consumer-opt: {e}"))?;
        for name in config.ignored_options() {
            eprintln!(
                "nsq-tail: warning: --consumer-opt {name} does not apply to a consumer; ignored"
            );
        }
        Ok(Self {
            topics,
            channel,
            config,
            nsqd: args.nsqd.clone(),
            lookupd: args.lookupd.clone(),
        })
    }

    /// Subscribes to every topic.
    ///
    /// # Errors
    ///
    /// The first topic that could not be subscribed to, and why (naming the nsqd or
    /// nsqlookupd).
    pub(crate) async fn connect(&self) -> Result<Vec<(String, Consumer)>, String> {
        let connecting = self.topics.iter().map(|topic| async move {
            let mut builder = Consumer::builder(topic, &self.channel)
                .map_err(|e| format!("topic {topic:?}: {e}"))?
                .config(self.config.clone());
            for addr in &self.nsqd {
                builder = builder.nsqd(addr.clone());
            }
            #[cfg(feature = "lookupd")]
            for addr in &self.lookupd {
                builder = builder.lookupd(addr.clone());
            }
            if self.config.max_attempts > 0 {
                builder = builder.give_up(give_up);
            }
            match builder.connect().await {
                Ok(consumer) => Ok((topic.clone(), consumer)),
                Err(e) => Err(format!("topic {topic}: {e}")),
            }
        });
        let results = futures::future::join_all(connecting).await;
        let mut consumers = Vec::with_capacity(results.len());
        let mut failed = None;
        for result in results {
            match result {
                Ok(consumer) => consumers.push(consumer),
                Err(e) => {
                    failed.get_or_insert(e);
                }
            }
        }
        match failed {
            None => Ok(consumers),
            Some(e) => {
                for (_, consumer) in consumers {
                    consumer.drain().await;
                }
                Err(e)
            }
        }
    }
}

/// A message delivered more than `max_attempts` times: finished without being shown, and said
/// so.
async fn give_up(message: Message) -> Result<(), std::io::Error> {
    eprintln!(
        "nsq-tail: warning: message {} from nsqd {} finished unshown after {} attempts \
         (max_attempts)",
        message.id(),
        message.nsqd(),
        message.attempts()
    );
    Ok(())
}

/// `tail<6 digits>#ephemeral`, as nsq_tail names its channel.
fn ephemeral_channel() -> String {
    use std::hash::{BuildHasher, Hasher};
    // A randomly keyed hash of the time and the process id: random enough for a name.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("tail{:06}#ephemeral", hasher.finish() % 999_999)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        Plan::new(
            &Args::try_parse_from(std::iter::once("nsq-tail").chain(args.iter().copied())).unwrap(),
        )
    }

    #[test]
    fn the_default_channel_is_ephemeral_and_named_as_nsq_tail_names_it() {
        let plan = plan(&["--topic=t", "--nsqd-tcp-address=127.0.0.1:4150"]).unwrap();
        let digits = plan
            .channel
            .strip_prefix("tail")
            .and_then(|rest| rest.strip_suffix("#ephemeral"))
            .unwrap();
        assert_eq!(digits.len(), 6);
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        assert_eq!(plan.config.max_in_flight, DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(plan.config.max_attempts, 0);
    }

    #[test]
    fn in_flight_never_exceeds_n_and_the_flag_wins_over_the_option() {
        let base = ["--topic=t", "--nsqd-tcp-address=127.0.0.1:4150"];
        let with = |more: &[&str]| {
            let mut args = base.to_vec();
            args.extend_from_slice(more);
            plan(&args).unwrap().config.max_in_flight
        };
        assert_eq!(with(&["-n", "50"]), 50);
        assert_eq!(with(&["-n", "5000"]), DEFAULT_MAX_IN_FLIGHT);
        assert_eq!(with(&["--consumer-opt=max_in_flight,30"]), 30);
        assert_eq!(
            with(&["--consumer-opt=max_in_flight,30", "--max-in-flight=40"]),
            40
        );
    }

    #[test]
    fn usage_errors_name_the_flag() {
        let refused = |args: &[&str]| plan(args).err().unwrap();
        assert!(refused(&["--nsqd-tcp-address=127.0.0.1:4150"]).contains("--topic"));
        assert!(refused(&["--topic=t"]).contains("--nsqd-tcp-address"));
        assert!(refused(&["--topic=a b", "--nsqd-tcp-address=x:1"]).contains("topic name \"a b\""));
        assert!(
            refused(&["--topic=t", "--channel=c/d", "--nsqd-tcp-address=x:1"])
                .contains("channel name")
        );
        assert!(
            refused(&["--topic=t", "--nsqd-tcp-address=x:1", "--max-in-flight=0"])
                .contains("--max-in-flight")
        );
        assert!(
            refused(&[
                "--topic=t",
                "--nsqd-tcp-address=x:1",
                "--consumer-opt=bogus,1"
            ])
            .contains("bogus")
        );
    }
}
