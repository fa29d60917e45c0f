//! strom-client: a Kafka client in Rust that needs no C library. It follows the Kafka protocol,
//! not Strom's internals, so it works against Apache Kafka as well as Strom. Settings use
//! Kafka's names (`bootstrap.servers`, `acks`, `linger.ms`, `group.id`, ...).
//!
//! ```text
//!  Producer ──▶ partitioner ──▶ accumulator (per-partition batches) ──▶ sender ──┐
//!  Consumer ──▶ group membership (assignors) + fetcher ───────────────────────────┼─▶ Cluster
//!  Admin ─────────────────────────────────────────────────────────────────────────┘   (metadata, one
//!                                                                                       pipelined connection
//!                                                                                       per broker)
//! ```
//!
//! # Sending: synchronously, and asynchronously with a callback
//! ```no_run
//! # async fn demo() -> strom_client::Result<()> {
//! use strom_client::producer::{Producer, ProducerRecord};
//! use strom_client::Properties;
//! let producer = Producer::new(&Properties::new()
//!     .set("bootstrap.servers", "localhost:9092")
//!     .set("acks", "all")
//!     .set("linger.ms", "5"))
//!     .await?;
//! // Synchronous send: wait for the broker's answer.
//! let meta = producer.send_and_wait(ProducerRecord::new("orders").key("order-1").value("42 EUR")).await?;
//! println!("order-1 is at {}-{} offset {}", meta.topic, meta.partition, meta.offset);
//! // Asynchronous send with a callback.
//! producer
//!     .send_with_callback(ProducerRecord::new("orders").key("order-2").value("7 EUR"), |result| match result {
//!         Ok(meta) => println!("stored at offset {}", meta.offset),
//!         Err(e) => eprintln!("failed: {e}"),
//!     })
//!     .await?;
//! producer.close().await?; // delivers what is queued
//! # Ok(()) }
//! ```
//!
//! # Consuming: manual commit after processing a batch
//! ```no_run
//! # async fn process(_: &strom_client::consumer::ConsumerRecord) {}
//! # async fn demo() -> strom_client::Result<()> {
//! use strom_client::consumer::Consumer;
//! use strom_client::Properties;
//! use std::time::Duration;
//! let mut consumer = Consumer::new(&Properties::new()
//!     .set("bootstrap.servers", "localhost:9092")
//!     .set("group.id", "billing")
//!     .set("enable.auto.commit", "false"))
//!     .await?;
//! consumer.subscribe(&["orders"])?;
//! loop {
//!     let records = consumer.poll(Duration::from_millis(500)).await?;
//!     for r in &records {
//!         process(r).await;
//!     }
//!     if !records.is_empty() {
//!         consumer.commit_sync().await?;
//!     }
//! #   break;
//! }
//! # Ok(()) }
//! ```
//!
//! # Seeking to a stored offset on assignment
//! ```no_run
//! use strom_client::consumer::{RebalanceContext, RebalanceListener};
//! use strom_client::TopicPartition;
//! use std::collections::HashMap;
//! /// Offsets kept in the application's own database, next to the results they produced.
//! struct SeekToStored(HashMap<TopicPartition, i64>);
//! impl RebalanceListener for SeekToStored {
//!     fn on_partitions_assigned(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
//!         for tp in partitions {
//!             if let Some(offset) = self.0.get(tp) {
//!                 ctx.seek(tp, *offset);
//!             }
//!         }
//!     }
//!     fn on_partitions_revoked(&mut self, ctx: &mut RebalanceContext<'_>, partitions: &[TopicPartition]) {
//!         ctx.commit_positions(partitions); // the next owner starts here
//!     }
//! }
//! ```
//!
//! # Graceful shutdown with wakeup
//! ```no_run
//! # async fn demo() -> strom_client::Result<()> {
//! use strom_client::consumer::Consumer;
//! use strom_client::{ClientError, Properties};
//! use std::time::Duration;
//! let mut consumer = Consumer::new(&Properties::new()
//!     .set("bootstrap.servers", "localhost:9092")
//!     .set("group.id", "billing"))
//!     .await?;
//! consumer.subscribe(&["orders"])?;
//! let wakeup = consumer.wakeup_handle();
//! tokio::spawn(async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     wakeup.wakeup(); // poll() returns Err(Wakeup)
//! });
//! loop {
//!     match consumer.poll(Duration::from_secs(1)).await {
//!         Ok(records) => println!("{} records", records.len()),
//!         Err(ClientError::Wakeup) => break,
//!         Err(e) => return Err(e),
//!     }
//! }
//! consumer.close().await // commits (auto-commit) and leaves the group
//! # }
//! ```

pub mod admin;
pub mod config;
pub mod conn;
pub mod consumer;
pub mod error;
pub mod producer;
pub mod types;

pub use config::Properties;
pub use error::{ClientError, Result};
pub use types::TopicPartition;
