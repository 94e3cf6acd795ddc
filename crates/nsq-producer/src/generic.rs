//! The publish API that [`Producer`](crate::Producer) and [`Pool`](crate::Pool) share.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use nsq_proto::Topic;

use crate::publish_futures::{Enqueuing, Publishing, Starter};
use crate::request::Checks;
use crate::stats::Stats;

/// What a [`Producer`](crate::Producer) and a [`Pool`](crate::Pool) both do: publish, flush,
/// close and count. Code that publishes can take either through this trait, as code that
/// queries takes a client or a transaction through tokio-postgres's `GenericClient`.
///
/// The six publish methods are written here once, for both types; each type also has them as
/// inherent methods, so that calling them needs no import. The trait is sealed: only this
/// crate's types implement it.
///
/// ```no_run
/// use nsq_producer::{GenericPublisher, PublishError, Topic};
///
/// async fn publish_all<P: GenericPublisher>(
///     publisher: &P,
///     topic: &Topic,
///     bodies: &[&'static str],
/// ) -> Result<(), PublishError> {
///     for body in bodies {
///         publisher.publish(topic, *body).await?;
///     }
///     publisher.flush().await;
///     Ok(())
/// }
/// ```
pub trait GenericPublisher: Starter + Sized {
    /// Publishes one message and waits for nsqd's answer.
    ///
    /// The returned [`Publishing`] future takes a deadline of its own:
    /// `publisher.publish(&topic, body).timeout(d).await`. A pool publishes on a node that is
    /// up.
    ///
    /// # Errors
    ///
    /// A [`PublishError`](crate::PublishError) that says whether the message may have been
    /// stored.
    ///
    /// # Cancel safety
    ///
    /// Dropping the future before the message is written withdraws it; after that, the message
    /// may still be published.
    fn publish(&self, topic: &Topic, body: impl Into<Bytes>) -> Publishing<'_, Self> {
        Publishing::new(self.publish_async(topic, body))
    }

    /// Publishes several messages in one MPUB and waits for nsqd's answer, which covers them
    /// all: nsqd stores all of them or none.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish); also
    /// [`InvalidPublish::NoMessages`](crate::InvalidPublish::NoMessages) for an empty batch.
    fn multi_publish<I>(&self, topic: &Topic, bodies: I) -> Publishing<'_, Self>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        Publishing::new(self.multi_publish_async(topic, bodies))
    }

    /// Publishes one message that nsqd delivers after `delay`, and waits for nsqd's answer.
    ///
    /// # Errors
    ///
    /// As [`publish`](Self::publish); also
    /// [`InvalidPublish::DeferTooLong`](crate::InvalidPublish::DeferTooLong) for a delay above
    /// the configured maximum.
    fn deferred_publish(
        &self,
        topic: &Topic,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Publishing<'_, Self> {
        Publishing::new(self.deferred_publish_async(topic, delay, body))
    }

    /// Queues one message and returns once it is queued, with a [`Publish`](crate::Publish)
    /// future for its result. No I/O happens in the caller; waiting here is backpressure (a
    /// full queue). The returned [`Enqueuing`] future takes a deadline of its own, as
    /// [`publish`](Self::publish) does.
    ///
    /// While no node of a pool is up, the pool itself queues the publish (counted under
    /// `queued` in its stats, waited for by its `flush`) and returns at once: it goes to the
    /// first node to come up, or fails with
    /// [`NotSentReason::NoNodeUp`](crate::NotSentReason::NoNodeUp) at its deadline. A
    /// [`FanOut`](crate::Strategy::FanOut)'s publish is queued the same way until `copies`
    /// nodes are up. The pool holds as much as one node's queue (`queue_capacity` requests and
    /// `queue_capacity_bytes`); beyond that this waits for room, until the deadline, as on a
    /// producer whose queue is full.
    ///
    /// # Errors
    ///
    /// Errors found before queuing: invalid input, a closed producer, a full queue with
    /// `fail_fast`, or the publish deadline passing while waiting for room.
    fn publish_async(&self, topic: &Topic, body: impl Into<Bytes>) -> Enqueuing<'_, Self> {
        let payload = Checks(self.limits()).pub_payload(topic, body.into());
        Enqueuing::new(self, payload)
    }

    /// Queues one MPUB; see [`publish_async`](Self::publish_async).
    ///
    /// # Errors
    ///
    /// As [`publish_async`](Self::publish_async).
    fn multi_publish_async<I>(&self, topic: &Topic, bodies: I) -> Enqueuing<'_, Self>
    where
        I: IntoIterator,
        I::Item: Into<Bytes>,
    {
        let payload = Checks(self.limits()).mpub_payload(topic, bodies);
        Enqueuing::new(self, payload)
    }

    /// Queues one DPUB; see [`publish_async`](Self::publish_async).
    ///
    /// # Errors
    ///
    /// As [`publish_async`](Self::publish_async).
    fn deferred_publish_async(
        &self,
        topic: &Topic,
        delay: Duration,
        body: impl Into<Bytes>,
    ) -> Enqueuing<'_, Self> {
        let payload = Checks(self.limits()).dpub_payload(topic, delay, body.into());
        Enqueuing::new(self, payload)
    }

    /// Waits until every publish queued before this call has its outcome; see
    /// [`Producer::flush`](crate::Producer::flush) and [`Pool::flush`](crate::Pool::flush).
    fn flush(&self) -> impl Future<Output = ()> + Send + '_;

    /// Closes, waiting for outstanding replies (at most the close timeout), and returns the
    /// final counters; see [`Producer::close`](crate::Producer::close).
    fn close(&self) -> impl Future<Output = Stats> + Send + '_;

    /// A snapshot of the counters (for a pool, its totals).
    fn stats(&self) -> Stats;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProducerConfig;
    use nsq_proto::InvalidPublish;

    use crate::error::PublishError;
    use crate::pool::{Pool, PoolConfig};
    use crate::producer::Producer;

    /// Publishes through the trait alone: what a caller generic over both types does.
    async fn refused<P: GenericPublisher>(publisher: &P) -> Vec<PublishError> {
        let topic = Topic::new("generic").unwrap();
        let empty: Vec<Bytes> = Vec::new();
        let too_long = Duration::from_secs(365 * 24 * 3600);
        let mut errors = Vec::new();
        errors.push(
            publisher
                .multi_publish(&topic, empty.clone())
                .await
                .unwrap_err(),
        );
        errors.push(
            publisher
                .deferred_publish(&topic, too_long, "x")
                .await
                .unwrap_err(),
        );
        errors.push(
            publisher
                .multi_publish_async(&topic, empty)
                .await
                .unwrap_err(),
        );
        let stats = publisher.stats();
        assert_eq!(stats.acked + stats.queued + stats.in_flight, 0, "{stats:?}");
        errors
    }

    #[tokio::test]
    async fn producer_and_pool_check_publishes_alike_through_the_trait() {
        // Nothing listens there: a publish that reached the router would fail otherwise.
        let producer = Producer::new("127.0.0.1:1", ProducerConfig::default()).unwrap();
        let config = PoolConfig::new(ProducerConfig::default());
        let pool = Pool::new(["127.0.0.1:1"], config).unwrap();
        for errors in [refused(&producer).await, refused(&pool).await] {
            assert!(
                matches!(
                    errors.as_slice(),
                    [
                        PublishError::Invalid(InvalidPublish::NoMessages),
                        PublishError::Invalid(InvalidPublish::DeferTooLong { .. }),
                        PublishError::Invalid(InvalidPublish::NoMessages),
                    ]
                ),
                "{errors:?}"
            );
        }
        GenericPublisher::close(&producer).await;
        GenericPublisher::close(&pool).await;
    }
}
