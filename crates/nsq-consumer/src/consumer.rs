//! `Consumer`: the builder, the stream of messages, the handle, and the drain.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::Stream;
use nsq_proto::{Channel, InvalidName, Topic};
use tokio::sync::{mpsc, oneshot, watch};

use crate::config::ConsumerConfig;
use crate::conn::Outlets;
use crate::coordinator::Coordinator;
use crate::error::ConsumerError;
use crate::handle::ConsumerHandle;
use crate::handler::{Handler, run_give_ups};
use crate::message::Message;
use crate::shared::Shared;
use crate::stats::DrainReport;

/// Sets up a [`Consumer`]: what to read, from where, and how.
pub struct ConsumerBuilder {
    topic: Topic,
    channel: Channel,
    config: ConsumerConfig,
    nsqd: Vec<String>,
    lookupd: Vec<String>,
    give_up: Option<Box<dyn FnOnce(mpsc::UnboundedReceiver<Message>) + Send>>,
}

impl ConsumerBuilder {
    /// Replaces the configuration.
    pub fn config(mut self, config: ConsumerConfig) -> Self {
        self.config = config;
        self
    }

    /// Adds an nsqd TCP address (`host:port`) to subscribe to directly. A lost connection to it
    /// is dialled again with exponential backoff for as long as the consumer runs.
    pub fn nsqd(mut self, address: impl Into<String>) -> Self {
        self.nsqd.push(address.into());
        self
    }

    /// Adds an nsqlookupd HTTP address (`host:port` or `http://host:port`) to discover the
    /// topic's nsqd from.
    #[cfg(feature = "lookupd")]
    #[cfg_attr(docsrs, doc(cfg(feature = "lookupd")))]
    pub fn lookupd(mut self, address: impl Into<String>) -> Self {
        self.lookupd.push(address.into());
        self
    }

    /// Sets the give-up hook: a message delivered more than `max_attempts` times is handed to
    /// it instead of being handled. When the hook returns `Ok` the message is finished (and
    /// counted as given up); when it returns `Err`, the message is requeued without backoff
    /// (so a dead-letter topic that is down loses nothing). The hook may also answer the
    /// message itself. Without a hook, such a message is logged and finished.
    pub fn give_up<H: Handler>(mut self, hook: H) -> Self {
        self.give_up = Some(Box::new(move |rx| {
            tokio::spawn(run_give_ups(rx, Arc::new(hook)));
        }));
        self
    }

    /// Validates the configuration, subscribes to the nsqd given by address and polls every
    /// nsqlookupd once, then returns the running consumer. Nodes that fail are dialled again in
    /// the background.
    ///
    /// # Errors
    ///
    /// [`ConsumerError`]: an invalid option, no address at all, an nsqlookupd address that is
    /// not one (nsqd's port, say), or, when no nsqlookupd is given, no nsqd that could be
    /// subscribed to (each one's failure is listed).
    pub async fn connect(self) -> Result<Consumer, ConsumerError> {
        self.config.validate()?;
        if !self.config.ignored_options().is_empty() {
            tracing::warn!(
                options = %self.config.ignored_options().join(", "),
                "go-nsq options that do not apply to a consumer were ignored"
            );
        }
        #[cfg(feature = "metrics")]
        crate::metrics::describe();
        if self.nsqd.is_empty() && self.lookupd.is_empty() {
            return Err(ConsumerError::NoAddress);
        }
        for address in &self.nsqd {
            self.config.conn_config(address)?;
        }
        #[cfg(feature = "lookupd")]
        let discovery = if self.lookupd.is_empty() {
            None
        } else {
            Some(crate::discovery::Discovery::new(
                &self.lookupd,
                self.topic.as_str(),
                &self.config,
            )?)
        };
        let shared = Arc::new(Shared::new(self.config, self.topic, self.channel));
        let (messages_tx, messages) = async_channel::unbounded();
        let give_up = self.give_up.map(|start| {
            let (tx, rx) = mpsc::unbounded_channel();
            start(rx);
            tx
        });
        let outlets = Outlets {
            messages: messages_tx,
            give_up,
        };
        let (report_tx, report) = watch::channel(None);
        let coordinator = Coordinator::new(
            Arc::clone(&shared),
            outlets,
            &self.nsqd,
            report_tx,
            #[cfg(feature = "lookupd")]
            discovery,
        );
        let (ready_tx, ready) = oneshot::channel();
        tokio::spawn(coordinator.run(ready_tx));
        match ready.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => return Err(err),
            Err(_) => unreachable!("the coordinator always says whether it started"),
        }
        Ok(Consumer {
            _stop: StopOnDrop {
                shared: Arc::clone(&shared),
                messages: Box::new(messages.clone()),
            },
            messages: Box::pin(messages),
            handle: ConsumerHandle::new(shared, report),
        })
    }
}

/// A running consumer: a [`Stream`] of [`Message`]s.
///
/// Take messages from the stream and answer each, or hand them to a handler with
/// [`run`](Self::run). [`drain`](Self::drain) (or [`ConsumerHandle::stop`]) ends it cleanly;
/// dropping it stops taking messages and requeues those not yet taken.
pub struct Consumer {
    messages: Pin<Box<async_channel::Receiver<Message>>>,
    handle: ConsumerHandle,
    /// Dropping the consumer stops it.
    _stop: StopOnDrop,
}

/// Stops the consumer when it is dropped, and requeues the messages it had not handed out.
struct StopOnDrop {
    shared: Arc<Shared>,
    messages: Box<async_channel::Receiver<Message>>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.shared.request_stop();
        // Nobody takes these any more: dropping them requeues them.
        self.messages.close();
        while self.messages.try_recv().is_ok() {}
    }
}

impl Consumer {
    /// Starts building a consumer of `channel` on `topic`.
    ///
    /// # Errors
    ///
    /// [`InvalidName`] when a name is not one nsqd accepts.
    pub fn builder(topic: &str, channel: &str) -> Result<ConsumerBuilder, InvalidName> {
        Ok(ConsumerBuilder {
            topic: Topic::new(topic)?,
            channel: Channel::new(channel)?,
            config: ConsumerConfig::default(),
            nsqd: Vec::new(),
            lookupd: Vec::new(),
            give_up: None,
        })
    }

    /// A handle to change and watch the consumer from elsewhere.
    pub fn handle(&self) -> ConsumerHandle {
        self.handle.clone()
    }

    /// Stops taking messages (RDY 0 and `CLS` on every connection), requeues the messages
    /// delivered but not yet taken from the stream, waits until every message taken is
    /// answered or `drain_timeout` passes, requeues what is left, closes the connections and
    /// reports.
    pub async fn drain(self) -> DrainReport {
        self.handle.stop();
        // Messages nobody will take: dropping them requeues them.
        self.messages.close();
        while self.messages.try_recv().is_ok() {}
        self.handle.wait_report().await
    }

    /// Runs `handler` on every message with up to `concurrency` at once (independent of
    /// `max_in_flight`) until [`ConsumerHandle::stop`] is called, then drains: handlers under
    /// way finish (until `drain_timeout`), messages not yet handed out are requeued.
    ///
    /// With `auto_response` (the default), `Ok` finishes the message and `Err` requeues it with
    /// backoff, unless the handler answered it itself or called
    /// [`Message::disable_auto_response`].
    pub async fn run<H: Handler>(self, concurrency: usize, handler: H) -> DrainReport {
        let messages = (*self.messages).clone();
        crate::handler::run(messages, self.handle.clone(), concurrency.max(1), handler).await
    }
}

impl Stream for Consumer {
    type Item = Message;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Message>> {
        self.messages.as_mut().poll_next(cx)
    }
}
