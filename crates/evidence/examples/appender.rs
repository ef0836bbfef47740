//! Appends records to a log until killed, printing `ack INDEX LEAF_HASH` after each commit.
//! The crash test (`tests/crash.rs`) kills it with SIGKILL mid-append and checks that every
//! acknowledged record survived; it is also a quick way to fill a log by hand.
//!
//! Usage: `appender DB SEED [COUNT]`

use aqiqat_evidence::record::{AnalyserId, Context, RecordDraft, SignedRecord, Subject, ToolId};
use aqiqat_evidence::{Log, Signer25519};
use std::io::Write;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let db = std::path::PathBuf::from(&args[1]);
    let seed: u64 = args[2].parse().expect("seed");
    let count: u64 = args.get(3).map_or(u64::MAX, |c| c.parse().expect("count"));
    let mut log = Log::open(&db, Signer25519::from_seed([42; 32])).expect("open log");
    let _ = log.case_new(Some("crash"), "crash test", None);
    let signer = Signer25519::from_seed([42; 32]);
    let stdout = std::io::stdout();
    let mut n = 0u64;
    while n < count {
        // Alternate single appends and batches of 1..=8, some filed under the case.
        let batch = 1 + (seed.wrapping_mul(31).wrapping_add(n) % 8) as usize;
        let records: Vec<SignedRecord> = (0..batch)
            .map(|i| {
                SignedRecord::sign(
                    draft(seed, n + i as u64),
                    aqiqat_evidence::utc_now(),
                    &signer,
                )
            })
            .collect();
        let case = n.is_multiple_of(3).then_some("crash");
        let entries = log.append_all(&records, case).expect("append");
        let mut out = stdout.lock();
        for e in entries {
            writeln!(out, "ack {} {}", e.index, e.leaf_hash).expect("stdout");
        }
        out.flush().expect("stdout");
        n += batch as u64;
    }
}

fn draft(seed: u64, n: u64) -> RecordDraft {
    RecordDraft {
        id: format!("crash-{seed}-{n}"),
        subject: Subject {
            sha256: format!("{:064x}", (seed << 32) ^ n),
            size_bytes: 1000 + n,
            name: Some(format!("call-{seed}-{n}.wav")),
            media: serde_json::json!({"container": "wav", "duration_s": 10.0}),
        },
        analysers: vec![AnalyserId {
            name: "voice-synthetic".into(),
            version: "1".into(),
            weights_sha256: Some("0".repeat(64)),
        }],
        verdict: "human".into(),
        result: serde_json::json!({"verdict": "human", "probability_synthetic": (n % 100) as f64 / 100.0}),
        context: Context::default(),
        tool: ToolId {
            name: "appender".into(),
            version: "0".into(),
        },
    }
}
