//! Publishes over a pool of nsqd: each message to the less loaded of two nodes that are up,
//! with what a failing node has not written moved to another one. Prints each node's share.
//!
//! ```sh
//! cargo run -p nsq-producer --example pool -- 127.0.0.1:4150 127.0.0.1:4152
//! ```

use std::time::Duration;

use nsq_producer::{Pool, PoolConfig, ProducerConfig, Strategy, Topic};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut nsqd: Vec<String> = std::env::args().skip(1).collect();
    if nsqd.is_empty() {
        nsqd.push("127.0.0.1:4150".into());
    }
    let mut producer = ProducerConfig::default();
    producer.publish_timeout = Some(Duration::from_secs(5));
    let config = PoolConfig::new(producer).strategy(Strategy::LeastOutstanding);
    // Fails unless at least one node connects.
    let pool = Pool::connect(nsqd, config).await?;
    let topic = Topic::new("example")?;

    // Many publishes at once: each waits for its own acknowledgement.
    let publishes = (0..1000).map(|i| {
        let (pool, topic) = (pool.clone(), topic.clone());
        tokio::spawn(async move { pool.publish(&topic, format!("message {i}")).await })
    });
    let mut failed = 0;
    for publish in publishes.collect::<Vec<_>>() {
        if let Err(err) = publish.await? {
            failed += 1;
            eprintln!("{err}");
        }
    }

    for node in pool.nodes() {
        let state = if node.up { "up" } else { "down" };
        println!("{}: {state}, {} acknowledged", node.addr, node.stats.acked);
    }
    let stats = pool.close().await;
    println!("{} acknowledged, {failed} failed", stats.acked);
    Ok(())
}
