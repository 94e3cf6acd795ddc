//! An NSQ producer for tokio: pipelined, bounded, with typed delivery outcomes.
//!
//! A [`Pool`] publishes to many nsqd, given by address or found through nsqlookupd, and fails
//! over without storing a message twice: the way to deploy against more than one nsqd (see
//! [Pools](#pools)). A [`Producer`] publishes to one nsqd over one connection. Clones share that connection; many
//! tasks can publish at once. Each publish resolves exactly once, and its error says what is
//! known about delivery: [`PublishError::delivery`] and [`PublishError::is_retry_safe`].
//!
//! It never sends nsqd a request that nsqd would refuse for its shape (a bad topic name, an
//! empty body, a message above the configured size limits, a defer out of range): nsqd closes the
//! connection on any publish error, which would fail every other request in flight, so these are
//! refused locally with [`PublishError::Invalid`] or [`PublishError::InvalidTopic`].
//!
//! # Example
//!
//! ```no_run
//! use nsq_producer::{Producer, ProducerConfig, Topic};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::connect("127.0.0.1:4150", ProducerConfig::default()).await?;
//! let topic = Topic::new("events")?;
//!
//! producer.publish(&topic, "hello").await?;
//! producer.multi_publish(&topic, ["a", "b", "c"]).await?;
//!
//! // Queue without waiting for the reply, keep the result for later.
//! let pending = producer.publish_async(&topic, b"later".to_vec()).await?;
//! pending.await?;
//!
//! let report = producer.close().await;
//! println!("{} acknowledged", report.acked);
//! # Ok(())
//! # }
//! ```
//!
//! # Pools
//!
//! ```no_run
//! use nsq_producer::{Pool, PoolConfig, ProducerConfig, Strategy, Topic};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = PoolConfig::new(ProducerConfig::default()).strategy(Strategy::RoundRobin);
//! let pool = Pool::connect(["10.0.0.1:4150", "10.0.0.2:4150"], config).await?;
//! let topic = Topic::new("events")?;
//! pool.publish(&topic, "hello").await?; // the same API as a Producer
//! pool.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Both types implement [`GenericPublisher`], which holds that API once: code that publishes
//! can take either (`async fn send<P: GenericPublisher>(to: &P)`), and a program moves from one
//! nsqd to a pool by changing its constructor.
//!
//! A pool runs one [`Producer`] per nsqd and sends each publish to one node that is up, picked
//! by its [`Strategy`]: round-robin, ordered failover (the first node that is up, failing back
//! to a recovered node once it has stayed up for a while), or the less loaded of two nodes
//! picked at random. `Strategy::FanOut { copies }` sends each message to that many distinct
//! nodes instead, for durability (nsqd does not replicate): `Ok` when every copy is
//! acknowledged, else [`PublishError::Copies`] with each node's outcome. A node is down while its producer waits to redial after a failure; it
//! redials in the background, at most every 0.5 s once the backoff has grown that far, and
//! gets publishes again once connected. A connected node is out of rotation too while it is
//! slow: it has answered nothing for far longer than its silences usually last (a frozen
//! nsqd), or answers far more slowly than the fastest node (see [`PoolConfig::slow_after`]).
//! What such a node has not written moves to the other nodes; what it has written ends on its
//! own deadline; it gets publishes again once it has answered what was written to it.
//!
//! What failover guarantees, precisely:
//!
//! - A publish that was never written to nsqd is never lost to a node's failure: when a node's
//!   connection is lost or cannot be made, every request it has not written moves at once to
//!   another node that is up, within the publish's deadline and up to
//!   [`PoolConfig::max_attempts`] nodes. Such a request cannot be stored twice: no nsqd saw it.
//! - A publish nsqd certainly did not store after it was written is sent again on another
//!   node: one nsqd aborted behind a rejected request (nsqd stops reading at its first error),
//!   and one nsqd failed with a transient `E_PUB_FAILED` or `E_DPUB_FAILED`. A rejection of the
//!   message itself is returned. Sending written publishes again spends a [`RetryBudget`]
//!   (filled by acknowledgements and time), so that failover during a broad outage cannot
//!   multiply traffic; without a token a publish ends with the outcome it had.
//! - A publish whose outcome is unknown (written, then the node failed before its reply, or
//!   part of an MPUB nsqd answered `E_MPUB_FAILED`) is not sent again: nsqd may have stored it.
//!   It ends [`PublishError::Unknown`] (or [`PublishError::TimedOut`], or
//!   [`PublishError::MaybeStored`]), as on a lone producer. [`PoolConfig::retry_unknown`] sends
//!   those again too, for at-least-once delivery where a message may be stored twice.
//! - With no node up, a publish is queued in the pool until a node comes up (queuing it does not
//!   wait: [`Pool::publish_async`] returns at once), or fails at its deadline with
//!   [`NotSentReason::NoNodeUp`], which lists each node's last connection error. A fan-out's
//!   publish is queued the same way until `copies` nodes are up, or fails at its deadline with
//!   [`NotSentReason::TooFewNodesUp`], which says how many copies were possible and each node's
//!   state. The pool holds at most one
//!   node's queue of such publishes; beyond that, queuing waits for room, as on a producer whose
//!   queue is full.
//! - Order across nodes is not kept; NSQ does not promise order anyway.
//!
//! With the `lookupd` feature, `PoolConfig::lookupd` names nsqlookupd HTTP addresses whose
//! `/nodes` are polled (`PoolConfig::lookupd_poll_interval`, with jitter). The lists of all
//! nsqlookupds are merged (a node is known by its broadcast address and TCP port); nodes that
//! appear join the pool, a topic that any nsqlookupd lists as tombstoned on a node is not sent
//! there, and while every nsqlookupd fails the last good list is kept. A node no longer listed
//! leaves the pool (what it has not written moves, what is in flight is answered, then it
//! closes) when it is down, or once it has gone unlisted for `PoolConfig::lookupd_grace_period`
//! (60 s by default): a restarted nsqlookupd lists no node until each nsqd registers again (up
//! to 30 s), and a node that is connected and acknowledging is never removed for that.
//! Addresses given to the pool directly stay in it whatever nsqlookupd says; a pool with no
//! address of its own is built with `Pool::new_lookupd` or `Pool::connect_lookupd`. An address
//! that is one of nsqd's ports rather than nsqlookupd's HTTP port is named as such in the
//! errors (the client is the [`nsq-lookupd`](https://docs.rs/nsq-lookupd) crate).
//!
//! Round-robin gives the turn of a node that is down to the nodes that are up in turn, so they
//! share its traffic evenly.
//!
//! [`Pool::nodes`] shows each node: its address, whether it is up, its connection state and its
//! counters; [`Pool::stats`] adds them up ([`Stats::handed_back`] counts requests moved between
//! nodes). Each node's metrics and tracing events carry its address.
//!
//! # Behavior
//!
//! **Ordering.** One producer writes requests in the order they enter its queue; for one task
//! publishing one after another, that is call order. nsqd executes one connection's commands in
//! order and answers each publish with exactly one frame, so replies are matched to requests
//! first in, first out. Across tasks the order is the order in which their publishes were
//! queued. After a reconnect, requests still queued keep their order.
//!
//! **Backpressure.** The queue is bounded in requests ([`ProducerConfig::queue_capacity`]) and in
//! bytes ([`ProducerConfig::queue_capacity_bytes`]), and at most
//! [`ProducerConfig::max_pipelined`] requests are written and unanswered at once. When the queue
//! is full, `publish` and `publish_async` wait for room, which goes to waiting publishers in the
//! order they started waiting; with [`ProducerConfig::fail_fast`] they fail at once with
//! [`NotSentReason::QueueFull`] instead. Memory therefore stays bounded however fast callers
//! publish. A caller that never looks at its result holds up nobody: results are stored for it,
//! not pushed through a channel.
//!
//! **Batching.** With [`ProducerConfig::batching`] (on by default), consecutive queued PUBs to
//! the same topic are written as one MPUB, within the MPUB size limit. Without
//! [`ProducerConfig::batch_linger`] only what is already queued is batched, so a lone publish
//! goes out at once and batching adds no latency; under load, it cuts nsqd's per-command work.
//! Each publish still resolves on its own. nsqd answers an MPUB once, for all of it: every
//! message in a batch already passed the size checks, so nsqd can only refuse a batch for
//! reasons that concern all of it (authorisation) or because its `--max-msg-size` is below the
//! configured limit; then every publish in the batch is [`PublishError::Rejected`] with nsqd's
//! error, and none of them was stored. A storage failure is different: nsqd stores an MPUB's
//! messages one at a time and answers `E_MPUB_FAILED` at the first that fails, so the ones
//! before it are stored; then every publish in the batch is [`PublishError::MaybeStored`] with
//! nsqd's error, and a retry may duplicate some of them. DPUBs and a caller's own MPUBs are
//! never merged, and the wire order is always the queue order.
//!
//! **Timeouts.** [`ProducerConfig::publish_timeout`] (default 30 s) bounds a publish from the
//! call to nsqd's answer. One publish can have a deadline of its own instead, the same way for
//! every kind: `producer.publish(&topic, body).timeout(d).await`, or
//! [`deadline`](Publishing::deadline) or [`no_timeout`](Publishing::no_timeout), on the futures
//! that [`Producer::publish`], [`Producer::multi_publish`], [`Producer::deferred_publish`]
//! ([`Publishing`]) and their `_async` forms ([`Enqueuing`]) return. Either way the deadline
//! holds in every state. If it passes while the publisher waits for room in the queue, while the
//! request waits for a connection or behind a full in-flight window, the request is withdrawn
//! and the publish fails with [`NotSentReason::DeadlineExpired`] (or
//! [`NotSentReason::Unavailable`], see below). If the request was already written, the publish
//! fails with [`PublishError::TimedOut`] at its deadline, and nsqd's late reply is still
//! consumed. While dialling, handshaking or waiting to redial, queued requests fail at their
//! deadline, not when the attempt ends. The router keeps these deadlines, so a pending publish
//! holds no timer of its own.
//!
//! Whether nsqd is too slow is judged by the configured timeout alone. When the oldest written
//! request is past its deadline and the configured timeout has passed since it was written,
//! nothing more is written on that connection: if nsqd's reply comes within
//! [`ProducerConfig::stall_grace`], writing resumes; if not, the connection is dropped and
//! redialled, and the requests held back meanwhile, never written, go out on the next connection
//! untouched. A caller's short deadline of its own therefore never costs other publishes their
//! connection, and a long one (or none) is waited for.
//!
//! **Fire and forget, and cancellation.** A [`Publish`] handle is like a task handle: dropping
//! it detaches, and the message is still sent; its outcome is only counted in [`Stats`]. So
//! `drop(producer.publish_async(&topic, body).await?);` delivers, like go-nsq's
//! `PublishAsync` without a done channel. [`Publish::cancel`] withdraws a message that is not
//! written yet (and says whether it did); withdrawn requests are counted in
//! [`Stats::withdrawn`]. The futures of [`Producer::publish`], [`Producer::multi_publish`] and
//! [`Producer::deferred_publish`] are cancel-safe instead: dropping one before its bytes are
//! written (as `select!` and `timeout` do) withdraws the request. After the bytes are written
//! nothing un-publishes; the reply is still consumed so later replies stay matched.
//!
//! **Reconnection.** [`Producer::new`] does not connect; the first publish or
//! [`Producer::ping`] does ([`Producer::connect`] connects before returning, and fails if it
//! cannot: the way to fail at start-up). Before the first connection and after a lost one the
//! rule is the same: queued publishes wait for a connection until their deadline, then fail with
//! [`NotSentReason::Unavailable`] carrying the last connection error (or
//! [`NotSentReason::DeadlineExpired`] when no attempt has failed yet, say while a handshake
//! hangs). So a service may start before its nsqd. With [`ProducerConfig::fail_fast`], every
//! queued publish fails at once when an attempt fails instead.
//!
//! Attempts are spaced by exponential backoff with jitter
//! ([`ProducerConfig::reconnect_backoff_min`] to [`ProducerConfig::reconnect_backoff_max`]): the
//! delay grows with each failed attempt in a row, whether or not the producer was ever
//! connected, and a connection that ends before it is healthy (before nsqd answered a publish on
//! it or it lasted 5 seconds) counts as a failed attempt. Only losing a healthy connection
//! redials at once and starts the backoff over. While publishes are queued the delay is capped
//! at 0.5 s (or `reconnect_backoff_min`, if larger), so that they go out within about half a
//! second of nsqd's return, at 2 to 4 dials a second while it is away; a publish that arrives
//! during a longer wait cuts it short. A lost connection is redialled in the background even
//! when nothing is queued, with the full backoff; only one dial runs at a time, however many
//! callers wait. Queued
//! requests are written untouched on the new connection. [`Producer::watch_state`] shows the
//! state: the attempt number, the last error and when the next attempt is due.
//!
//! **Outcomes and retrying.**
//!
//! | outcome | meaning | retry? |
//! |---|---|---|
//! | `Ok(())` | nsqd acknowledged: the message is in its memory or disk queue | — |
//! | [`PublishError::Rejected`] | nsqd answered with an error frame; not stored | only nsqd's transient `E_PUB_FAILED`/`E_DPUB_FAILED` |
//! | [`PublishError::MaybeStored`] | nsqd answered an MPUB with `E_MPUB_FAILED`: it stopped at a message it could not store, so the ones before it are stored | may duplicate |
//! | [`PublishError::NotSent`] | never written, or written behind a rejected request (nsqd stops at its first error, so it never executed it); not stored | safe |
//! | [`PublishError::Unknown`] | written, then the connection failed before the reply | may duplicate |
//! | [`PublishError::TimedOut`] | written, no reply within the timeout | may duplicate |
//! | [`PublishError::Invalid`], [`PublishError::InvalidTopic`] | refused locally, nothing sent | no: fix the request |
//! | [`PublishError::Closed`] | the producer or pool was closed | no |
//!
//! An outcome that happened on one nsqd (rejected, maybe stored, unknown, timed out) carries
//! its address, which [`PublishError::addr`] returns and the error's text includes, so a pool's
//! errors say which node failed.
//!
//! A rejection or an `E_MPUB_FAILED` ends the connection (nsqd closes it after any error).
//! Requests written behind the failed one are reported as not sent; requests still queued go
//! out on the next connection.
//!
//! **Closing.** [`Producer::close`] stops taking publishes, writes everything queued, waits for
//! every reply (at most [`ProducerConfig::close_timeout`]), closes the connection and returns
//! the final [`Stats`]. What is still unanswered at the timeout is reported as unknown, what is
//! still queued as not sent. [`Producer::close_now`] does not wait: what is queued fails at
//! once as not sent, what is in flight as unknown, and the connection is dropped (for a service
//! that must exit while nsqd is down). Dropping every handle without closing lets the router
//! finish what is queued and outstanding, then exit.
//!
//! **Flushing.** [`Producer::flush`] waits until every publish queued before the call has its
//! outcome, detached ones included, so a batch job can publish fire-and-forget and wait once;
//! [`Producer::flush_timeout`] bounds that wait. Publishes queued during the flush are not
//! waited for.
//!
//! **Exiting.** Fire-and-forget publishes are sent by the producer's task, which runs only as
//! long as the runtime does: a program that returns from `main` without [`Producer::flush`] or
//! [`Producer::close`] loses whatever is still queued or in flight. It is never lost without a
//! word: dropping the last handle of a producer (or a [`Pool`]) with publishes queued or in
//! flight logs a warning with their count, and a runtime that shuts down while the task still
//! holds publishes logs another with how many were not sent and how many were written with
//! no reply.
//!
//! # Configuration
//!
//! [`ProducerConfig`] takes go-nsq's option names through [`ProducerConfig::set`] (and, with the
//! `serde` feature, from a deserialized map of the same names), so a configuration written for
//! go-nsq, or shared with go-nsq consumers, loads as it is. Options that only concern consumers
//! (`max_in_flight`, `max_attempts`, `lookupd_*`, backoff, requeue and RDY settings) are
//! accepted and ignored, and [`Producer::new`] names them in one warning. This producer's own
//! limit on unanswered requests is [`ProducerConfig::max_pipelined`], not `max_in_flight`.
//!
//! [`PoolConfig::set`] takes the pool's own options by name as well (`strategy`, `copies`,
//! `lookupd`, `max_attempts`, `retry_unknown`, ...) and passes the others to
//! [`ProducerConfig::set`]; go-nsq's `max_attempts` and `lookupd_poll_interval` set the pool's
//! options of the same meaning instead of being ignored, and [`Pool::new`] names the ignored
//! options in one warning for the whole pool. [`Strategy`] reads and writes its names
//! (`round-robin`, `failover`, `least-outstanding`, `fan-out`) through `FromStr` and `Display`.
//! With the `serde` feature, [`PoolConfig`] deserializes from one map of both kinds of names,
//! and an error names the option at fault.
//!
//! TLS is off until `tls_v1` is true ([`ConnConfigBuilder::enable_tls`]); the `tls_*` options
//! and [`TlsConfig`] only say how it is set up, and edit the same settings. Options may be set
//! in any order: what involves several of them (`tls_cert` with `tls_key`, say) is checked when
//! the producer is created. Every configuration error is a [`ConfigError`], whose
//! [`option`](ConfigError::option) names the option at fault.
//!
//! # Metrics
//!
//! With the `metrics` feature (off by default) the producer reports through the
//! [`metrics`](https://docs.rs/metrics) facade: it records, and the application installs the
//! recorder or exporter it wants (Prometheus, StatsD, ...). The library ships no exporter.
//! Handles are registered once, when [`Producer::new`] runs, with the recorder installed at that
//! moment, so install the recorder before creating producers; publishing only increments them.
//! Without the feature the `metrics` crate is not a dependency and the counting code is compiled
//! out: what remains are the [`Stats`] counters, which are always kept.
//!
//! Every metric carries an `addr` label, the nsqd address the producer was created with, so that
//! several producers in one service stay apart. Requests are counted, not messages (an MPUB is
//! one request), as in [`Stats`].
//!
//! | name | type | labels | meaning |
//! |---|---|---|---|
//! | `nsq_producer_publishes_total` | counter | `addr`, `outcome`, and `code` or `reason` (below) | publish requests by their outcome on the wire: [`Stats::acked`], [`Stats::rejected`], [`Stats::not_sent`], [`Stats::unknown`], [`Stats::withdrawn`] |
//! | `nsq_producer_messages_total` | counter | `addr`, `outcome` (`acked`) | messages nsqd acknowledged, each message of an MPUB counted: [`Stats::acked_messages`], what a topic's depth grows by |
//! | `nsq_producer_timed_out_total` | counter | `addr` | written requests whose caller stopped waiting at the publish timeout ([`Stats::timed_out`]); each is also counted under the outcome it still reaches |
//! | `nsq_producer_queued` | gauge | `addr` | requests waiting in the queue, not written yet ([`Stats::queued`]) |
//! | `nsq_producer_in_flight` | gauge | `addr` | requests written and waiting for nsqd's reply ([`Stats::in_flight`]) |
//! | `nsq_producer_publish_duration_seconds` | histogram | `addr`, `outcome` | seconds from the publish call, waiting for room in the queue included, to the result its caller gets; `outcome` is `acked`, `rejected`, `not_sent`, `unknown` (also for [`PublishError::MaybeStored`]) or `timed_out` |
//! | `nsq_producer_batch_size` | histogram | `addr` | publishes per command written by automatic batching (1 when a batch went out as a lone PUB); publishes that were not batched are not recorded |
//! | `nsq_producer_bytes_written_total` | counter | `addr` | command bytes handed to the connection, before TLS or compression ([`Stats::bytes_written`]) |
//! | `nsq_producer_reconnects_total` | counter | `addr` | successful connections after the first ([`Stats::reconnects`]) |
//! | `nsq_producer_connect_failures_total` | counter | `addr` | connection attempts that failed: the dial, the handshake, TLS or AUTH ([`Stats::connect_failures`]) |
//!
//! The outcomes of `nsq_producer_publishes_total`: every request that leaves the queue ends in
//! exactly one of them, and their sums equal the fields of [`Stats`]. A caller who stopped
//! waiting at the publish timeout got [`PublishError::TimedOut`] whatever the outcome.
//!
//! | `outcome` | second label | the caller got |
//! |---|---|---|
//! | `acked` | — | `Ok(())` |
//! | `rejected` | `code`: nsqd's error code, such as `E_BAD_MESSAGE` | [`PublishError::Rejected`] |
//! | `not_sent` | `reason`: `aborted`, `deadline_expired`, `queue_full`, `unavailable`, `closed`, `no_node_up` or `too_few_nodes_up`, after [`NotSentReason`] (`cancelled` stays at 0: withdrawn requests count as `withdrawn`) | [`PublishError::NotSent`] |
//! | `withdrawn` | — | [`NotSentReason::Cancelled`] after [`Publish::cancel`], or nothing (a dropped `publish` future) |
//! | `handed_back` | — | none yet: a [`Pool`] moved the request to another node, where its outcome is counted ([`Stats::handed_back`]) |
//! | `unknown` | `reason`: `connection_lost` (the connection failed or was dropped before the reply), `mpub_failed` (nsqd answered `E_MPUB_FAILED`) or `closed` (the close timeout passed before the reply) | [`PublishError::Unknown`], or [`PublishError::MaybeStored`] for `mpub_failed` |
//!
//! The `rejected` series of a code is registered at the first rejection with that code; all the
//! others exist from the start. Publishes refused before they were queued
//! ([`PublishError::Invalid`], [`PublishError::InvalidTopic`], [`PublishError::Closed`]) are not
//! counted.
//!
//! # Tracing
//!
//! The producer logs through [`tracing`](https://docs.rs/tracing). Targets are module paths
//! under `nsq_producer` and `nsq_conn`, so a filter such as `nsq_producer=info,nsq_conn=warn`
//! selects them. Every event carries the producer's nsqd address as `addr`: the producer's own
//! events as a field, the connection's through the `nsq_conn` span they are emitted in, and
//! `publish resolved` through its `publish` span.
//!
//! Spans:
//!
//! | span | level | fields | covers |
//! |---|---|---|---|
//! | `publish` | DEBUG | `addr`, `command` (`PUB`, `MPUB`, `DPUB`), `topic`, `bytes` (encoded size), `outcome` (`acknowledged` or the error, recorded at the result) | one publish, from the call to its result |
//! | `nsq_conn` | INFO | `addr` | one connection, from the dial through the handshake to its end |
//!
//! Events of `nsq_producer`:
//!
//! | level | message | fields |
//! |---|---|---|
//! | INFO | `connected to nsqd` | `addr` |
//! | WARN | `connecting to nsqd failed` | `addr`, `attempt` (failed attempts in a row, this one included), `error` |
//! | INFO | `nsqd rejected a request and closes the connection; reconnecting` | `addr` |
//! | WARN | `protocol violation; dropping the connection` | `addr`, `violation` |
//! | WARN | `no reply within the stall grace after a publish deadline; dropping the connection` | `addr` |
//! | WARN | `connection to nsqd lost` | `addr`, `error` |
//! | DEBUG | `write failed; reading nsqd's last replies` | `addr`, `error` |
//! | INFO | `closing producer` | `addr` |
//! | INFO | `producer closed` | `addr` |
//! | DEBUG | `publish resolved` | none of its own; in the `publish` span |
//!
//! Events of `nsq_conn`, each in the connection's `nsq_conn` span:
//!
//! | level | message | fields |
//! |---|---|---|
//! | DEBUG | `connecting` | `peer` (one resolved address of `addr`) |
//! | DEBUG | `connect failed` | `peer`, `error` |
//! | INFO | `TCP connected` | `peer`, `local` |
//! | WARN | `handshake timed out` | `timeout` |
//! | DEBUG | `IDENTIFY reply` | `identify` |
//! | WARN | `IDENTIFY rejected` | `error` |
//! | INFO | `TLS established` | `version`, `cipher_suite` |
//! | INFO | `compression enabled` | `compression`, `carried_bytes` |
//! | INFO | `authenticated` | `identity`, `identity_url`, `permission_count` |
//! | WARN | `AUTH rejected` | `error` |
//! | DEBUG | `handshake complete` | — |
//! | TRACE | `heartbeat` | — |
//! | WARN | `heartbeat timeout` | `silent_for` |
//! | WARN | `write stalled` | `timeout` |
//! | DEBUG | `write failed; reading what nsqd sent` | `error` |
//! | INFO | `nsqd closed the connection` | — |
//! | WARN | `connection failed` | `error` |
//! | INFO | `connection closed` | — |
//!
//! # Recipes
//!
//! ## Graceful shutdown on ctrl-c
//!
//! [`Producer::close`] stops taking publishes, writes what is queued and waits for nsqd's
//! replies (at most [`ProducerConfig::close_timeout`]), so nothing acknowledged is lost and
//! nothing stored is reported as failed. Tasks still publishing get [`PublishError::Closed`]
//! from then on, which is their cue to stop.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use nsq_producer::{Producer, ProducerConfig, PublishError, Topic};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let producer = Producer::connect("127.0.0.1:4150", ProducerConfig::default()).await?;
//! let topic = Topic::new("ticks")?;
//!
//! let worker = tokio::spawn({
//!     let producer = producer.clone();
//!     async move {
//!         for n in 0u64.. {
//!             match producer.publish(&topic, n.to_string()).await {
//!                 Ok(()) => {}
//!                 Err(PublishError::Closed(_)) => break,
//!                 Err(err) => eprintln!("tick {n}: {err}"),
//!             }
//!             tokio::time::sleep(Duration::from_millis(100)).await;
//!         }
//!     }
//! });
//!
//! tokio::signal::ctrl_c().await?;
//! let stats = producer.close().await;
//! worker.await?;
//! println!(
//!     "acknowledged {}, not sent {}, outcome unknown {}",
//!     stats.acked, stats.not_sent, stats.unknown
//! );
//! # Ok(())
//! # }
//! ```
//!
//! ## Retrying by outcome
//!
//! [`PublishError::is_retry_safe`] is true when publishing the same message again cannot store
//! it twice: it was never sent, or nsqd refused to store it for a passing reason.
//! [`PublishError::delivery`] says whether the failed message may be stored. Whether to retry
//! a [`Delivery::Unknown`] depends on the consumers: NSQ delivers at least once anyway, so
//! consumers that tolerate duplicates make that retry harmless too. Errors that are neither
//! (an invalid request, a closed producer) do not get better by trying again.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use bytes::Bytes;
//! use nsq_producer::{Delivery, Producer, PublishError, Topic};
//!
//! /// Publishes `body`, trying up to five times with a growing pause in between.
//! async fn publish_with_retry(
//!     producer: &Producer,
//!     topic: &Topic,
//!     body: Bytes,
//!     duplicates_ok: bool,
//! ) -> Result<(), PublishError> {
//!     let mut pause = Duration::from_millis(100);
//!     let mut attempts = 1;
//!     loop {
//!         // A `Bytes` clone shares the buffer, it does not copy the message.
//!         let err = match producer.publish(topic, body.clone()).await {
//!             Ok(()) => return Ok(()),
//!             Err(err) => err,
//!         };
//!         let retry = err.is_retry_safe()
//!             || (duplicates_ok && err.delivery() == Delivery::Unknown);
//!         if !retry || attempts == 5 {
//!             return Err(err);
//!         }
//!         tokio::time::sleep(pause).await;
//!         pause *= 2;
//!         attempts += 1;
//!     }
//! }
//! ```
//!
//! ## JSON bodies
//!
//! A message body is bytes, so anything that serialises to bytes can be published; with serde,
//! `serde_json::to_vec` gives a `Vec<u8>`, which every publish method takes without copying.
//!
//! ```no_run
//! use nsq_producer::{Producer, Topic};
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Order<'a> {
//!     id: u64,
//!     item: &'a str,
//! }
//!
//! # async fn run(producer: Producer) -> Result<(), Box<dyn std::error::Error>> {
//! let topic = Topic::new("orders")?;
//! producer
//!     .publish(&topic, serde_json::to_vec(&Order { id: 1, item: "tea" })?)
//!     .await?;
//!
//! // Several at once, in one MPUB.
//! let orders = [Order { id: 2, item: "milk" }, Order { id: 3, item: "bread" }];
//! let bodies = orders
//!     .iter()
//!     .map(serde_json::to_vec)
//!     .collect::<Result<Vec<_>, _>>()?;
//! producer.multi_publish(&topic, bodies).await?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Fire and forget, then wait once
//!
//! A batch job that does not need each message's own result drops the [`Publish`] handles (the
//! messages still go) and waits once with [`Producer::flush`]; [`Stats`] then tells how they
//! ended. The queue's backpressure still applies: `publish_async` waits when the queue is full.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use nsq_producer::{Producer, Topic};
//!
//! # async fn run(producer: Producer, lines: Vec<String>) -> Result<(), Box<dyn std::error::Error>> {
//! let topic = Topic::new("lines")?;
//! let before = producer.stats();
//! for line in lines {
//!     drop(producer.publish_async(&topic, line).await?);
//! }
//! producer.flush_timeout(Duration::from_secs(60)).await?;
//! let after = producer.stats();
//! let failed = (after.rejected_total() - before.rejected_total())
//!     + (after.not_sent - before.not_sent)
//!     + (after.unknown - before.unknown);
//! println!("{} acknowledged, {failed} failed", after.acked - before.acked);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `tls` | yes | TLS through rustls (`tls_v1` and the `tls_*` options) |
//! | `snappy` | yes | snappy compression |
//! | `deflate` | yes | deflate compression |
//! | `serde` | no | `Deserialize` for [`ProducerConfig`], from a map of go-nsq option names |
//! | `metrics` | no | reporting through the `metrics` facade (see [Metrics](#metrics)) |
//! | `lookupd` | no | discovery of a [`Pool`]'s nodes through nsqlookupd (`PoolConfig::lookupd`), with the [`nsq-lookupd`](https://docs.rs/nsq-lookupd) client (hyper) |
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod backoff;
mod batch;
mod completion;
mod config;
mod counters;
mod deadline_set;
mod error;
mod gate;
mod generic;
#[cfg(feature = "metrics")]
mod metrics;
mod policy;
mod pool;
mod producer;
mod publish_futures;
mod publish_handle;
mod request;
mod router;
mod shared;
mod stats;
mod tag;
mod transactions;
mod unwritten;

pub use config::ProducerConfig;
pub use error::{
    Copies, Delivery, LookupdsFailed, NodeDown, NodesDown, NotSentReason, PingFailure,
    PublishError, Publisher, TooFewNodes,
};
pub use generic::GenericPublisher;
pub use pool::{NodeStatus, Pool, PoolConfig, RetryBudget, Strategy};
pub use producer::{ConnectError, FlushTimedOut, Producer};
pub use publish_futures::{Enqueuing, Publishing};
pub use publish_handle::Publish;
pub use stats::{ProducerState, Stats};

pub use nsq_conn::{ConfigError, ConnConfig, ConnConfigBuilder, ConnError};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use nsq_conn::{TlsConfig, TlsVersion};
pub use nsq_proto::{
    Channel, ErrorCode, InvalidName, InvalidPublish, PublishLimits, ServerError, Topic,
};

/// The examples of the crate's README, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
