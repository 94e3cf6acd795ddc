//! `nsq-bench producer`: this workspace's `nsq_producer::Producer` in cases a, b, c, c* and d.
//! The loops are generic over [`GenericPublisher`], so that `nsq-bench pool` runs the same
//! ones through a `Pool` of one node.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use nsq_producer::{GenericPublisher, Producer, ProducerConfig, PublishError, Topic};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::cpu::CpuClock;
use crate::flags::{ClientOptions, expired};
use crate::record::{RunResult, Tally};

/// The client's name in results.
pub(crate) const CLIENT: &str = "producer";

/// The option that turns automatic batching on, for case c*.
const BATCHING_OPTION: &str = "batching";

/// Runs one case with a lone producer and returns its result line.
pub(crate) async fn run(options: &ClientOptions) -> Result<RunResult, String> {
    let Some(config) = case_config(options)? else {
        return Ok(RunResult::unsupported(
            CLIENT,
            &options.case,
            options.n,
            "n/a (not implemented)",
        ));
    };
    let producer = connect(&options.addr, config).await?;
    measure(CLIENT, &producer, options).await
}

/// The configuration of a case: c is measured without automatic batching and c* with it; the
/// other cases use the default configuration. `None` when the producer has no batching option.
pub(crate) fn case_config(options: &ClientOptions) -> Result<Option<ProducerConfig>, String> {
    let mut config = ProducerConfig::default();
    let batching = match options.case.as_str() {
        "c" => Some(false),
        "cstar" => Some(true),
        _ => None,
    };
    if let Some(on) = batching {
        if !set_batching(&mut config, on)? && on {
            return Ok(None);
        }
    }
    Ok(Some(config))
}

/// Runs `options.case` through `publisher`, already connected, then closes it.
pub(crate) async fn measure<P: GenericPublisher + Clone + Send + 'static>(
    client: &str,
    publisher: &P,
    options: &ClientOptions,
) -> Result<RunResult, String> {
    let topic = Topic::new(options.topic.clone()).map_err(|e| e.to_string())?;
    let body = Bytes::from(vec![b'x'; options.size]);
    let mut result = RunResult::new(client, &options.case, options.n);

    let deadline = options.deadline();
    let cpu = CpuClock::start();
    let started = Instant::now();
    let tally = match options.case.as_str() {
        "a" => serial(publisher, &topic, &body, options.n, deadline).await,
        "b" => concurrent(publisher, &topic, &body, options, deadline).await,
        "c" | "cstar" => {
            pipelined(
                publisher,
                &topic,
                &body,
                options.n,
                options.window,
                deadline,
            )
            .await
        }
        "d" => batches(publisher, &topic, &body, options.n, options.batch, deadline).await,
        other => return Err(format!("unknown case `{other}`")),
    };
    let elapsed = started.elapsed();
    let cpu_s = cpu.seconds();
    publisher.close().await;
    result.fill(tally, elapsed);
    result.cpu_s = cpu_s;
    Ok(result)
}

/// Turns automatic batching on or off; `false` if the producer has no such option.
fn set_batching(config: &mut ProducerConfig, on: bool) -> Result<bool, String> {
    let value = if on { "true" } else { "false" };
    match config.set(BATCHING_OPTION, value) {
        Ok(()) => Ok(true),
        // A known boolean option takes either value; an unknown one refuses both.
        Err(_)
            if config
                .clone()
                .set(BATCHING_OPTION, if on { "false" } else { "true" })
                .is_err() =>
        {
            Ok(false)
        }
        Err(err) => Err(format!("setting {BATCHING_OPTION}={value}: {err}")),
    }
}

/// Connects with `config`, so that the clock starts with the connection ready.
pub(crate) async fn connect(addr: &str, config: ProducerConfig) -> Result<Producer, String> {
    Producer::connect(addr.to_owned(), config)
        .await
        .map_err(|e| format!("connecting to nsqd at {addr}: {e}"))
}

/// Case a: one caller publishes and waits for each acknowledgement.
async fn serial<P: GenericPublisher + Clone + Send + 'static>(
    producer: &P,
    topic: &Topic,
    body: &Bytes,
    n: u64,
    deadline: Option<Instant>,
) -> Tally {
    let mut tally = Tally::with_capacity(n as usize);
    for _ in 0..n {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        let began = Instant::now();
        let result = GenericPublisher::publish(producer, topic, body.clone()).await;
        tally.latency(began.elapsed());
        tally.record(result, 1);
    }
    tally
}

/// Case b: `callers` tasks share the producer, each publishing its share as in case a.
async fn concurrent<P: GenericPublisher + Clone + Send + 'static>(
    producer: &P,
    topic: &Topic,
    body: &Bytes,
    options: &ClientOptions,
    deadline: Option<Instant>,
) -> Tally {
    let callers = options.callers;
    let tasks: Vec<_> = (0..callers)
        .map(|caller| {
            let share = options.n / callers + u64::from(caller < options.n % callers);
            let (producer, topic, body) = (producer.clone(), topic.clone(), body.clone());
            tokio::spawn(async move { serial(&producer, &topic, &body, share, deadline).await })
        })
        .collect();
    let mut tally = Tally::with_capacity(options.n as usize);
    for task in tasks {
        match task.await {
            Ok(part) => tally.merge(part),
            Err(err) => tally.record(Err(format!("caller task failed: {err}")), 0),
        }
    }
    tally
}

/// Case c: `publish_async` with at most `window` publishes unanswered.
pub(crate) async fn pipelined<P: GenericPublisher + Clone + Send + 'static>(
    producer: &P,
    topic: &Topic,
    body: &Bytes,
    n: u64,
    window: usize,
    deadline: Option<Instant>,
) -> Tally {
    pipeline(n, window, deadline, || {
        GenericPublisher::publish_async(producer, topic, body.clone())
    })
    .await
}

/// Runs `n` calls of `queue` (a `publish_async`) with at most `window` of the returned results
/// pending. A collector task awaits the results in order (nsqd answers in order) and frees a
/// window slot for each, so that latency is measured when the answer arrives, not when the
/// publisher next looks. In steady state it allocates nothing per message.
pub(crate) async fn pipeline<Q, QF, P>(
    n: u64,
    window: usize,
    deadline: Option<Instant>,
    mut queue: Q,
) -> Tally
where
    Q: FnMut() -> QF,
    QF: Future<Output = Result<P, PublishError>>,
    P: Future<Output = Result<(), PublishError>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(window));
    let (queued, mut answers) = mpsc::unbounded_channel::<(Instant, P, OwnedSemaphorePermit)>();
    let capacity = n as usize;
    let collector = tokio::spawn(async move {
        let mut tally = Tally::with_capacity(capacity);
        while let Some((began, publish, slot)) = answers.recv().await {
            let result = publish.await;
            tally.latency(began.elapsed());
            tally.record(result, 1);
            drop(slot);
        }
        tally
    });

    let mut refused = Tally::default();
    for _ in 0..n {
        if expired(deadline) {
            refused.truncated = true;
            break;
        }
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let began = Instant::now();
        match queue().await {
            Ok(publish) => {
                if queued.send((began, publish, slot)).is_err() {
                    break;
                }
            }
            Err(err) => refused.record(Err(err), 1),
        }
    }
    drop(queued);
    let mut tally = collector.await.unwrap_or_else(|err| {
        let mut failed = Tally::default();
        failed.record(Err(format!("collector task failed: {err}")), 0);
        failed
    });
    tally.merge(refused);
    tally
}

/// Case d: one caller publishes MPUBs of `batch` messages and waits for each.
async fn batches<P: GenericPublisher + Clone + Send + 'static>(
    producer: &P,
    topic: &Topic,
    body: &Bytes,
    n: u64,
    batch: usize,
    deadline: Option<Instant>,
) -> Tally {
    let mut tally = Tally::with_capacity((n as usize).div_ceil(batch));
    let mut left = n;
    while left > 0 {
        if expired(deadline) {
            tally.truncated = true;
            break;
        }
        let size = left.min(batch as u64);
        let bodies = (0..size).map(|_| body.clone());
        let began = Instant::now();
        let result = GenericPublisher::multi_publish(producer, topic, bodies).await;
        tally.latency(began.elapsed());
        tally.record(result, size);
        left -= size;
    }
    tally
}
