//! Consumes a topic and moves every message that failed `max_attempts` times to a dead-letter
//! topic, published with nsq-producer, where it can be inspected and replayed. Stops and drains
//! on Ctrl-C.
//!
//! ```sh
//! cargo run -p nsq-consumer --example dead_letter -- 127.0.0.1:4150 orders orders.dead
//! ```

use std::time::Duration;

use nsq_consumer::{Consumer, ConsumerConfig, Message};
use nsq_producer::{Producer, ProducerConfig, Topic};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let nsqd = args.next().unwrap_or_else(|| "127.0.0.1:4150".into());
    let topic = args.next().unwrap_or_else(|| "orders".into());
    let dead_letters = Topic::new(args.next().unwrap_or_else(|| format!("{topic}.dead")))?;

    let producer = Producer::connect(nsqd.clone(), ProducerConfig::default()).await?;
    let mut config = ConsumerConfig::default();
    config.max_in_flight = 100;
    // Handled three times; the fourth delivery goes to the hook instead of the handler.
    config.max_attempts = 3;
    config.default_requeue_delay = Duration::from_secs(1);
    let consumer = Consumer::builder(&topic, "worker")?
        .config(config)
        .nsqd(nsqd)
        // The hook gets the message with its id, attempts, timestamp and nsqd. `Ok` finishes it
        // at its source; an error requeues it there, so that nothing is lost when the
        // dead-letter topic cannot be written.
        .give_up({
            let producer = producer.clone();
            move |msg: Message| {
                let (producer, dead_letters) = (producer.clone(), dead_letters.clone());
                async move {
                    eprintln!(
                        "giving up on {} from {} after {} attempts",
                        msg.id(),
                        msg.nsqd(),
                        msg.attempts()
                    );
                    producer.publish(&dead_letters, msg.body().clone()).await
                }
            }
        })
        .connect()
        .await?;

    let handle = consumer.handle();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        handle.stop();
    });
    let report = consumer
        .run(16, |msg: Message| async move {
            // Stands for real work that can fail: an `Err` requeues the message with backoff.
            if msg.body().is_empty() {
                return Err("empty message");
            }
            println!("{}", String::from_utf8_lossy(msg.body()));
            Ok(())
        })
        .await;
    println!("{report}");
    producer.close().await;
    Ok(())
}
