//! The job queue across machines: a NATS JetStream work-queue stream. `serve --queue` publishes
//! a job's id once its row and upload are committed in PostgreSQL; `aqiqat worker` processes
//! (any number, anywhere) pull ids, scan, log, store the result, and only then acknowledge.
//!
//! - The stream keeps messages in files, so a restarted `nats-server` loses none; it holds at
//!   most `capacity` waiting jobs and refuses more (`discard: new`), which the API turns into
//!   `503` with `Retry-After`.
//! - The consumer is durable and explicit-ack: a job whose worker dies is delivered again after
//!   `ack_wait`; long scans send in-progress acks so they are not. After `max_deliver`
//!   deliveries the job is given up on and marked `failed` with the last reason.
//! - Publishing carries the job id as `Nats-Msg-Id`, so a retried publish is one message.
//!
//! PostgreSQL, not the stream, is the system of record: a message is only a pointer to a job
//! row, and the worker acts on what the row says (a `done` job delivered again is acknowledged
//! and left alone; its record is appended once, keyed by the job id).

use async_nats::jetstream::{self, consumer, stream};
use std::time::Duration;

pub const STREAM: &str = "AQIQAT_JOBS";
pub const SUBJECT: &str = "aqiqat.jobs";
pub const CONSUMER: &str = "aqiqat-workers";

/// How the stream and its consumer are set up.
#[derive(Debug, Clone)]
pub struct QueueSettings {
    /// `nats://host:port` (several, comma-separated, for a cluster).
    pub url: String,
    /// Jobs waiting at most; beyond that uploads get `503`.
    pub capacity: usize,
    /// A delivery not acknowledged (nor reported in progress) within this is delivered again.
    pub ack_wait: Duration,
    /// Deliveries before a job is given up on.
    pub max_deliver: i64,
    /// Copies of the stream across a NATS cluster (3 on a 3-node cluster: one node may fail).
    pub replicas: usize,
}

impl QueueSettings {
    pub fn new(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            capacity: 10_000,
            ack_wait: Duration::from_secs(30),
            max_deliver: 4,
            replicas: 1,
        }
    }
}

/// Why a job could not be queued.
#[derive(Debug)]
pub enum PublishError {
    /// The stream holds `capacity` jobs already.
    Full,
    Other(String),
}

pub struct JobQueue {
    client: async_nats::Client,
    js: jetstream::Context,
    settings: QueueSettings,
}

impl JobQueue {
    /// Connects, and makes the stream and the consumer where they do not exist yet.
    pub async fn connect(settings: QueueSettings) -> Result<Self, String> {
        let client = async_nats::ConnectOptions::new()
            .name("aqiqat")
            .retry_on_initial_connect()
            .connect(settings.url.as_str())
            .await
            .map_err(|e| format!("cannot reach NATS at {}: {e}", settings.url))?;
        let js = jetstream::new(client.clone());
        let queue = Self {
            client,
            js,
            settings,
        };
        queue.stream().await?;
        Ok(queue)
    }

    async fn stream(&self) -> Result<stream::Stream, String> {
        self.js
            .get_or_create_stream(stream::Config {
                name: STREAM.into(),
                subjects: vec![SUBJECT.into()],
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                discard: stream::DiscardPolicy::New,
                max_messages: self.settings.capacity as i64,
                duplicate_window: Duration::from_secs(120),
                num_replicas: self.settings.replicas.max(1),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("the job stream: {e}"))
    }

    /// The durable consumer workers pull from.
    pub async fn consumer(&self) -> Result<consumer::Consumer<consumer::pull::Config>, String> {
        self.stream()
            .await?
            .get_or_create_consumer(
                CONSUMER,
                consumer::pull::Config {
                    durable_name: Some(CONSUMER.into()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.settings.ack_wait,
                    max_deliver: self.settings.max_deliver,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| format!("the workers' consumer: {e}"))
    }

    /// Queues `job`; returns once the stream has stored it.
    pub async fn publish(&self, job: &str) -> Result<(), PublishError> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", job);
        let ack = self
            .js
            .publish_with_headers(SUBJECT, headers, job.to_owned().into())
            .await
            .map_err(|e| PublishError::Other(e.to_string()))?;
        ack.await.map(|_| ()).map_err(|e| {
            let text = e.to_string();
            if text.contains("maximum messages") || text.contains("10077") {
                PublishError::Full
            } else {
                PublishError::Other(text)
            }
        })
    }

    /// Jobs waiting in the stream (delivered but not yet acknowledged ones included).
    pub async fn depth(&self) -> Result<u64, String> {
        let mut stream = self.stream().await?;
        let info = stream.info().await.map_err(|e| e.to_string())?;
        Ok(info.state.messages)
    }

    /// The workers' side of the queue: `(in flight, redelivered, workers waiting for work)`;
    /// `None` before any worker has connected (the consumer is theirs to make).
    pub async fn workers(&self) -> Option<(usize, usize, usize)> {
        let stream = self.stream().await.ok()?;
        let consumer: consumer::Consumer<consumer::pull::Config> =
            stream.get_consumer(CONSUMER).await.ok()?;
        let info = consumer.get_info().await.ok()?;
        Some((info.num_ack_pending, info.num_redelivered, info.num_waiting))
    }

    /// Whether another job fits now.
    pub async fn has_room(&self) -> bool {
        self.depth()
            .await
            .is_ok_and(|d| d < self.settings.capacity as u64)
    }

    /// Job ids NATS gave up on: delivered `max_deliver` times without an answer (a job that
    /// stops its worker every time). Each is taken out of the stream, so it no longer holds a
    /// place in it. The caller marks the job failed.
    pub async fn given_up(
        &self,
    ) -> Result<impl futures_util::Stream<Item = String> + use<>, String> {
        use futures_util::StreamExt;
        let subject = format!("$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{STREAM}.{CONSUMER}");
        let advisories = self
            .client
            .subscribe(subject)
            .await
            .map_err(|e| e.to_string())?;
        let stream = self.stream().await?;
        Ok(advisories.filter_map(move |m| {
            let stream = stream.clone();
            async move {
                let advisory: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
                let sequence = advisory["stream_seq"].as_u64()?;
                let message = stream.get_raw_message(sequence).await.ok()?;
                let _ = stream.delete_message(sequence).await;
                Some(String::from_utf8_lossy(&message.payload).into_owned())
            }
        }))
    }

    pub fn settings(&self) -> &QueueSettings {
        &self.settings
    }
}
