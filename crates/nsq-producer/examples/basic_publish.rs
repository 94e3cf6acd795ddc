//! Publishes a few messages and waits for each acknowledgement.
//!
//! ```sh
//! cargo run -p nsq-producer --example basic_publish -- 127.0.0.1:4150
//! ```

use nsq_producer::{Producer, ProducerConfig, Topic};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:4150".into());
    let producer = Producer::connect(addr, ProducerConfig::default()).await?;
    let topic = Topic::new("example")?;

    for i in 0..10 {
        producer.publish(&topic, format!("message {i}")).await?;
    }
    producer
        .multi_publish(&topic, ["one", "two", "three"])
        .await?;

    let stats = producer.close().await;
    println!("{} requests acknowledged", stats.acked);
    Ok(())
}
