//! Group commit: many threads append, one thread writes. Each transaction costs one fsync;
//! under concurrent load the writer takes every append waiting in its queue into one
//! transaction, so throughput grows with load while each caller still returns only once its
//! record is durable. A batch that fails (say, one duplicate record) is retried one append at
//! a time, so one bad record never fails its neighbours.

use std::sync::mpsc;
use std::thread;

use crate::EvidenceError;
use crate::log::{Append, Log, LogEntry};
use crate::record::SignedRecord;

/// The most appends one transaction takes.
const MAX_BATCH: usize = 1024;

type Reply = mpsc::SyncSender<Result<LogEntry, EvidenceError>>;

struct Request {
    record: SignedRecord,
    case: Option<String>,
    key: Option<String>,
    reply: Reply,
}

/// A handle to the writer thread; clone it freely.
#[derive(Clone)]
pub struct GroupCommit {
    queue: mpsc::SyncSender<Request>,
}

impl GroupCommit {
    /// Moves `log` onto a writer thread. The thread ends when every handle is dropped.
    pub fn start(log: Log) -> Self {
        let (queue, inbox) = mpsc::sync_channel::<Request>(MAX_BATCH * 4);
        thread::Builder::new()
            .name("evidence-writer".into())
            .spawn(move || writer(log, inbox))
            .expect("the writer thread starts");
        Self { queue }
    }

    /// Appends one record; returns once it is committed.
    pub fn append(
        &self,
        record: SignedRecord,
        case: Option<String>,
    ) -> Result<LogEntry, EvidenceError> {
        self.append_once(record, case, None)
    }

    /// Appends one record unless a record with the same `key` is in the log already (then its
    /// entry is returned, and nothing is appended); returns once it is committed.
    pub fn append_once(
        &self,
        record: SignedRecord,
        case: Option<String>,
        key: Option<String>,
    ) -> Result<LogEntry, EvidenceError> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.queue
            .send(Request {
                record,
                case,
                key,
                reply,
            })
            .map_err(|_| EvidenceError::Internal("the evidence writer has stopped".into()))?;
        answer
            .recv()
            .map_err(|_| EvidenceError::Internal("the evidence writer has stopped".into()))?
    }
}

fn item(r: &Request) -> Append<'_> {
    Append {
        record: &r.record,
        case: r.case.as_deref(),
        key: r.key.as_deref(),
    }
}

fn writer(mut log: Log, inbox: mpsc::Receiver<Request>) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        // Two appends with one key in one batch: the second must see the first.
        let mut keys = std::collections::HashSet::new();
        if batch
            .iter()
            .filter_map(|r| r.key.as_deref())
            .any(|k| !keys.insert(k))
        {
            for r in &batch {
                let _ = r
                    .reply
                    .send(log.append_keyed(&[item(r)]).map(|mut e| e.remove(0)));
            }
            continue;
        }
        let items: Vec<Append<'_>> = batch.iter().map(item).collect();
        match log.append_keyed(&items) {
            Ok(entries) => {
                for (request, entry) in batch.iter().zip(entries) {
                    let _ = request.reply.send(Ok(entry));
                }
            }
            Err(_) if batch.len() > 1 => {
                for r in &batch {
                    let _ = r
                        .reply
                        .send(log.append_keyed(&[item(r)]).map(|mut e| e.remove(0)));
                }
            }
            Err(e) => {
                let _ = batch[0].reply.send(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Signer25519;
    use crate::record::{AnalyserId, Context, RecordDraft, Subject, ToolId};

    fn record(n: u64) -> SignedRecord {
        let draft = RecordDraft {
            id: format!("test-{n}"),
            subject: Subject {
                sha256: format!("{n:064x}"),
                size_bytes: n,
                name: None,
                media: serde_json::json!({}),
            },
            analysers: vec![AnalyserId {
                name: "a".into(),
                version: "1".into(),
                weights_sha256: None,
            }],
            verdict: "human".into(),
            result: serde_json::json!({}),
            context: Context::default(),
            tool: ToolId {
                name: "t".into(),
                version: "0".into(),
            },
        };
        SignedRecord::sign(draft, "t".into(), &Signer25519::from_seed([2; 32]))
    }

    #[test]
    fn concurrent_appends_each_get_their_own_entry_and_a_bad_one_fails_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.sqlite");
        let group = GroupCommit::start(Log::open(&path, Signer25519::from_seed([2; 32])).unwrap());
        group.append(record(0), None).unwrap();
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let g = group.clone();
                thread::spawn(move || {
                    (0..50u64)
                        .map(|i| {
                            let n = 1 + t * 50 + i;
                            // Every tenth append repeats record 0, which is already logged.
                            let r = if i % 10 == 9 { record(0) } else { record(n) };
                            (n, g.append(r, None))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut ok = 0;
        let mut indices = std::collections::BTreeSet::new();
        for h in handles {
            for (n, result) in h.join().unwrap() {
                match result {
                    Ok(entry) => {
                        assert_eq!(entry.leaf_hash, hex::encode(record(n).leaf_hash()));
                        assert!(indices.insert(entry.index));
                        ok += 1;
                    }
                    Err(e) => assert!(e.is_bad_input() && (n - 1) % 50 % 10 == 9, "{e}"),
                }
            }
        }
        assert_eq!(ok, 8 * 45);
        drop(group);
        let log = Log::open(&path, Signer25519::from_seed([2; 32])).unwrap();
        assert_eq!(log.size().unwrap(), 1 + 8 * 45);
        assert!(log.check().unwrap().problems.is_empty());
    }
}
