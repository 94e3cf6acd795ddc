//! Queues many publishes without waiting, then collects each message's own result.
//!
//! ```sh
//! cargo run -p nsq-producer --example async_results -- 127.0.0.1:4150
//! ```

use nsq_producer::{Delivery, Producer, ProducerConfig, Topic};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4150".into());
    let producer = Producer::connect(addr, ProducerConfig::default()).await?;
    let topic = Topic::new("example")?;

    // `publish_async` returns once the request is queued; the caller keeps whatever context it
    // needs next to the returned future (here, the message number).
    let mut pending = Vec::new();
    for i in 0..1000 {
        let publish = producer
            .publish_async(&topic, format!("message {i}"))
            .await?;
        pending.push((i, publish));
    }

    let mut failed = 0;
    for (i, publish) in pending {
        if let Err(err) = publish.await {
            failed += 1;
            let retry = match err.delivery() {
                Delivery::NotStored if err.is_retry_safe() => "safe to retry",
                Delivery::NotStored => "not stored",
                Delivery::Unknown => "may have been stored",
            };
            eprintln!("message {i}: {err} ({retry})");
        }
    }
    println!("{} published, {failed} failed", 1000 - failed);
    producer.close().await;
    Ok(())
}
