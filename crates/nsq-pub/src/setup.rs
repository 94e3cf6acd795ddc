//! From flags to a connected pool: what is checked before anything is published.

use std::time::Duration;

use nsq_producer::{Pool, PoolConfig, ProducerConfig, ProducerState, Strategy, Topic};

use crate::args::{Args, Batch, Mode, split_producer_opt};
use crate::books::Books;
use crate::console::Printer;
use crate::input::Sources;
use crate::publisher::Job;
use crate::report::{Report, Verified};
use crate::verify;

/// The checked flags: everything that can be refused without touching the network or a file.
pub(crate) struct Plan {
    topic: Topic,
    config: PoolConfig,
    copies: u64,
    /// The distinct nsqd addresses.
    nsqd: Vec<String>,
}

impl Plan {
    /// Checks the flags.
    ///
    /// # Errors
    ///
    /// What is wrong, for a usage error.
    pub(crate) fn new(args: &Args) -> Result<Self, String> {
        let topic = Topic::new(args.topic().to_owned())
            .map_err(|e| format!("--topic {:?}: {e}", args.topic()))?;
        let nsqd = args.nsqd_addresses();
        if nsqd.is_empty() && args.lookupd.is_empty() {
            return Err(
                "give at least one --nsqd-tcp-address or --lookupd-http-address".to_owned(),
            );
        }
        #[cfg(not(feature = "lookupd"))]
        if !args.lookupd.is_empty() {
            return Err(
                "--lookupd-http-address needs nsq-pub built with its `lookupd` feature".to_owned(),
            );
        }
        let mut producer = ProducerConfig::default();
        for opt in &args.producer_opt {
            let (key, value) = split_producer_opt(opt);
            producer
                .set(key, value)
                .map_err(|e| format!("--producer-opt {opt:?}: {e}"))?;
        }
        producer
            .validate()
            .map_err(|e| format!("--producer-opt: {e}"))?;
        if let Batch::Size(_) = args.batch {
            // Explicit MPUBs are formed here; one message per PUB needs no batching either.
            producer.batching = false;
        }
        let mode = args.mode.unwrap_or(if nsqd.len() > 1 {
            Mode::FanOut
        } else {
            Mode::RoundRobin
        });
        let (strategy, copies) = match mode {
            Mode::FanOut if nsqd.is_empty() => {
                return Err(
                    "--mode fan-out sends to every --nsqd-tcp-address: give them".to_owned(),
                );
            }
            Mode::FanOut => (Strategy::FanOut { copies: nsqd.len() }, nsqd.len() as u64),
            Mode::RoundRobin => (Strategy::RoundRobin, 1),
            Mode::Failover => (
                Strategy::Failover {
                    fail_back_after: Duration::from_secs(30),
                },
                1,
            ),
            Mode::LeastOutstanding => (Strategy::LeastOutstanding, 1),
        };
        let config = PoolConfig::new(producer).strategy(strategy);
        #[cfg(feature = "lookupd")]
        let config = config.lookupd(args.lookupd.iter().cloned());
        Ok(Self {
            topic,
            config,
            copies,
            nsqd,
        })
    }
}

/// A connected pool: ready to publish.
pub(crate) struct Prepared {
    pool: Pool,
    topic: Topic,
    names: Vec<String>,
    batch: Batch,
    rate: u64,
    copies: u64,
    /// For a generated run: each nsqd's HTTP address and the topic's count before the run.
    pub(crate) counts_before: Option<Vec<(String, u64)>>,
}

/// Opens the input and the out files (in the returned books).
///
/// # Errors
///
/// A file that cannot be opened or created.
pub(crate) fn open(args: &Args) -> Result<(Sources, Books), String> {
    let sources = match args.generate {
        Some(count) => Sources::Generate {
            count,
            size: args.size.max(1),
        },
        None => Sources::open(&args.files)
            .map_err(|(path, e)| format!("opening {}: {e}", path.display()))?,
    };
    let books = Books::new(
        args.failed_out.as_deref(),
        args.unknown_out.as_deref(),
        args.delimiter,
        sources.names(),
    )
    .map_err(|(path, e)| format!("creating {}: {e}", path.display()))?;
    Ok((sources, books))
}

/// Connects to nsqd.
///
/// # Errors
///
/// No nsqd to publish to (with fan-out, any nsqd not reachable).
pub(crate) async fn connect(
    args: &Args,
    plan: Plan,
    names: Vec<String>,
) -> Result<Prepared, String> {
    let pool = Pool::connect(plan.nsqd.iter().cloned(), plan.config)
        .await
        .map_err(|e| match plan.nsqd.as_slice() {
            [] => format!("no nsqd found through nsqlookupd: {e}"),
            _ => e.to_string(),
        })?;
    let down: Vec<String> = pool
        .nodes()
        .into_iter()
        .filter(|n| n.state != ProducerState::Connected)
        .map(|n| n.addr)
        .collect();
    if !down.is_empty() {
        if plan.copies > 1 {
            pool.close_now().await;
            return Err(format!(
                "could not connect to nsqd at {} (fan-out sends every message to every nsqd)",
                down.join(", ")
            ));
        }
        Printer.line(format_args!(
            "nsq-pub: warning: not connected to nsqd at {}; publishing to the others",
            down.join(", ")
        ));
    }
    let counts_before = match args.generate {
        Some(_) => Some(counts(&pool, args, plan.topic.as_str()).await),
        None => None,
    };
    Ok(Prepared {
        pool,
        topic: plan.topic,
        names,
        batch: args.batch,
        rate: args.rate(),
        copies: plan.copies,
        counts_before,
    })
}

/// Each nsqd's HTTP address and the topic's message count there (nodes that cannot be asked are
/// left out, with a warning).
async fn counts(pool: &Pool, args: &Args, topic: &str) -> Vec<(String, u64)> {
    let mut counts = Vec::new();
    for node in pool.nodes() {
        let given = args
            .nsqd
            .iter()
            .position(|a| *a == node.addr)
            .and_then(|i| args.nsqd_http.get(i));
        let Some(http) = verify::http_address(&node.addr, given) else {
            continue;
        };
        match verify::message_count(&http, topic).await {
            Ok(n) => counts.push((http, n)),
            Err(e) => Printer.line(format_args!(
                "nsq-pub: warning: the count will not be checked: {e}"
            )),
        }
    }
    counts
}

impl Prepared {
    /// What to publish and how.
    pub(crate) fn job(&self) -> Job<'_> {
        let limits = &self.pool.config().producer.limits;
        Job {
            pool: &self.pool,
            topic: self.topic.clone(),
            batch: self.batch,
            rate: self.rate,
            max_msg_size: limits.max_msg_size,
            max_body_size: limits.max_body_size,
            names: &self.names,
            copies: self.copies,
        }
    }

    /// The copies every nsqd acknowledged, each message of an MPUB counted.
    pub(crate) fn acked_messages(&self) -> u64 {
        self.pool.stats().acked_messages
    }

    /// nsqd's count after the run against the one before: the topic gained at least the
    /// acknowledged copies, and at most those and the unknown ones. `None` when some nsqd could
    /// not be asked.
    pub(crate) async fn verify(
        &self,
        before: Vec<(String, u64)>,
        report: &Report,
    ) -> Option<Verified> {
        let mut counted = 0;
        let mut asked_all = true;
        for (http, was) in &before {
            match verify::message_count(http, self.topic.as_str()).await {
                Ok(now) => counted += now.saturating_sub(*was),
                Err(e) => {
                    Printer.line(format_args!("nsq-pub: warning: {e}"));
                    asked_all = false;
                }
            }
        }
        if !asked_all || before.is_empty() {
            return None;
        }
        let least = report.acknowledged * self.copies;
        let most = (report.acknowledged + report.unknown) * self.copies;
        Some(Verified {
            counted,
            matches: (least..=most).contains(&counted),
        })
    }
}
