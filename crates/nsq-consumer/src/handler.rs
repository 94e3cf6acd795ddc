//! Handlers: the trait, the worker pool that runs them, and the give-up hook's runner.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::handle::ConsumerHandle;
use crate::message::Message;
use crate::stats::DrainReport;

/// The error a handler returns: anything that converts into a boxed error (`std::io::Error`,
/// `String`, `anyhow::Error`, ...).
pub type HandlerError = Box<dyn std::error::Error + Send + Sync>;

/// Handles one message at a time; many run at once.
///
/// Implemented for every `Fn(Message) -> impl Future<Output = Result<(), E>>` with `E:
/// Into<HandlerError>`, so an async closure works:
///
/// ```
/// # async fn example(consumer: nsq_consumer::Consumer) {
/// let report = consumer
///     .run(64, |msg: nsq_consumer::Message| async move {
///         println!("{} bytes from {}", msg.body().len(), msg.nsqd());
///         Ok::<(), std::io::Error>(())
///     })
///     .await;
/// # }
/// ```
pub trait Handler: Send + Sync + 'static {
    /// Handles `message`. The result answers it (see
    /// [`Consumer::run`](crate::Consumer::run)) unless it was answered already.
    fn handle(&self, message: Message) -> impl Future<Output = Result<(), HandlerError>> + Send;
}

impl<F, Fut, E> Handler for F
where
    F: Fn(Message) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send,
    E: Into<HandlerError>,
{
    fn handle(&self, message: Message) -> impl Future<Output = Result<(), HandlerError>> + Send {
        let fut = self(message);
        async move { fut.await.map_err(Into::into) }
    }
}

/// Runs `handler` with `concurrency` workers until a stop, then drains.
pub(crate) async fn run<H: Handler>(
    messages: async_channel::Receiver<Message>,
    handle: ConsumerHandle,
    concurrency: usize,
    handler: H,
) -> DrainReport {
    let handler = Arc::new(handler);
    let auto = handle.auto_response();
    let mut workers = JoinSet::new();
    for _ in 0..concurrency {
        let messages = messages.clone();
        let handler = Arc::clone(&handler);
        let handle = handle.clone();
        workers.spawn(async move {
            loop {
                if handle.is_stopping() {
                    break;
                }
                let message = tokio::select! {
                    biased;
                    () = handle.stopping() => break,
                    received = messages.recv() => match received {
                        Ok(message) => message,
                        Err(_) => break,
                    },
                };
                handle_one(&*handler, message, auto).await;
            }
        });
    }
    drop(messages.clone());
    handle.stopping().await;
    // Messages not yet handed to a worker are requeued by being dropped.
    messages.close();
    while messages.try_recv().is_ok() {}
    let deadline = tokio::time::Instant::now() + handle.drain_timeout();
    while !workers.is_empty() {
        if tokio::time::timeout_at(deadline, workers.join_next())
            .await
            .is_err()
        {
            // The drain requeues what the remaining handlers hold; their answers come too late.
            workers.abort_all();
            while workers.join_next().await.is_some() {}
        }
    }
    handle.wait_report().await
}

async fn handle_one<H: Handler>(handler: &H, message: Message, auto: bool) {
    let kept = message.share();
    let result = handler.handle(message).await;
    if !auto || kept.is_answered() || kept.is_auto_response_disabled() {
        if let Err(error) = result {
            tracing::warn!(id = %kept.id(), nsqd = %kept.nsqd(), %error, "handler failed");
        }
        return;
    }
    let answered = match result {
        Ok(()) => kept.finish(),
        Err(error) => {
            tracing::warn!(id = %kept.id(), nsqd = %kept.nsqd(), attempts = kept.attempts(), %error, "handler failed: requeueing");
            kept.requeue(None)
        }
    };
    if let Err(error) = answered {
        tracing::debug!(%error, "could not answer a handled message");
    }
}

/// Hands each message past `max_attempts` to the give-up hook.
pub(crate) async fn run_give_ups<H: Handler>(
    mut messages: mpsc::UnboundedReceiver<Message>,
    hook: Arc<H>,
) {
    while let Some(message) = messages.recv().await {
        let hook = Arc::clone(&hook);
        tokio::spawn(async move {
            let kept = message.share();
            let result = hook.handle(message).await;
            if kept.is_answered() {
                return;
            }
            let answered = match result {
                Ok(()) => kept.give_up(),
                Err(error) => {
                    tracing::warn!(id = %kept.id(), nsqd = %kept.nsqd(), %error, "give-up hook failed: requeueing");
                    kept.requeue_without_backoff(None)
                }
            };
            if let Err(error) = answered {
                tracing::debug!(%error, "could not answer a given-up message");
            }
        });
    }
}
