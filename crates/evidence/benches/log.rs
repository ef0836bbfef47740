//! Evidence log speed: appends per second (one transaction each, and batched), inclusion and
//! consistency proof generation at a large size, proof verification. Each figure comes with a
//! baseline measured in the same run on the same disk: a bare SQLite insert of the same bytes
//! (what durability costs without the tree), and an in-memory tree (what the store adds to a
//! proof).
//!
//! `cargo bench -p aqiqat-evidence --bench log` — `AQIQAT_BENCH_RECORDS` sets the log size
//! (default 1,000,000), `AQIQAT_BENCH_DIR` where the database goes (default: a temp folder).

use aqiqat_evidence::log::Durability;
use aqiqat_evidence::merkle::{self, MemoryTree};
use aqiqat_evidence::record::{AnalyserId, Context, RecordDraft, SignedRecord, Subject, ToolId};
use aqiqat_evidence::{Log, Signer25519};
use std::time::{Duration, Instant};

fn record(n: u64, signer: &Signer25519) -> SignedRecord {
    // The shape and size of a real 10 s voice-message record (about 1.6 kB canonical).
    let segments: Vec<serde_json::Value> = (0..7)
        .map(|i| {
            serde_json::json!({"start_s": i as f64, "end_s": i as f64 + 4.0,
                "probability_synthetic": ((n + i) % 97) as f64 / 97.0, "speech_fraction": 0.93, "counted": true})
        })
        .collect();
    let draft = RecordDraft {
        id: format!("bench-{n}"),
        subject: Subject {
            sha256: format!("{:064x}", n.wrapping_mul(0x9e3779b97f4a7c15)),
            size_bytes: 160_000 + n % 1000,
            name: Some(format!("voice-{n}.ogg")),
            media: serde_json::json!({"container": "ogg", "codec": "opus", "sample_rate": 48000,
                "channels": 1, "duration_s": 10.0, "bitrate_bps": 128000, "decode_errors": 0, "audio_tracks": 1}),
        },
        analysers: vec![AnalyserId {
            name: "voice-tdnn-mfm".into(),
            version: "0.1.0".into(),
            weights_sha256: Some("9c".repeat(32)),
        }],
        verdict: "human".into(),
        result: serde_json::json!({"schema": "aqiqat.scan/6", "verdict": "human",
            "probability_synthetic": (n % 100) as f64 / 100.0, "segments": segments}),
        context: Context {
            case_id: None,
            operator: Some("bench".into()),
            note: None,
        },
        tool: ToolId {
            name: "aqiqat".into(),
            version: "0.1.0".into(),
        },
    };
    SignedRecord::sign(draft, "2026-11-26T12:00:00.000Z".into(), signer)
}

fn rate(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let total: u64 = std::env::var("AQIQAT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let tmp = tempfile::tempdir().unwrap();
    let dir = std::env::var_os("AQIQAT_BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let signer = Signer25519::from_seed([5; 32]);
    let start = Instant::now();
    let sample: Vec<SignedRecord> = (0..2000).map(|n| record(n, &signer)).collect();
    println!(
        "build, canonicalise and sign a record: {:.1} µs",
        (start.elapsed() / 2000).as_secs_f64() * 1e6
    );
    println!(
        "record size: {} bytes canonical; log size for the proof figures: {total}",
        sample[0].canonical.len()
    );

    // Baseline: the same bytes into a bare SQLite table, one transaction each, same pragmas.
    for (label, sync) in [("FULL", "FULL"), ("NORMAL", "NORMAL")] {
        let path = dir.join(format!("bare-{label}.sqlite"));
        let _ = std::fs::remove_file(&path);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "synchronous", sync).unwrap();
        conn.execute_batch("CREATE TABLE t (idx INTEGER PRIMARY KEY, h BLOB UNIQUE, data BLOB)")
            .unwrap();
        let start = Instant::now();
        for (i, r) in sample.iter().enumerate() {
            conn.execute(
                "INSERT INTO t VALUES (?1, ?2, ?3)",
                rusqlite::params![i as i64, &r.leaf_hash()[..], &r.canonical],
            )
            .unwrap();
        }
        let bare = rate(sample.len() as u64, start.elapsed());

        let log_path = dir.join(format!("log-{label}.sqlite"));
        let _ = std::fs::remove_file(&log_path);
        let durability = if sync == "FULL" {
            Durability::Full
        } else {
            Durability::Normal
        };
        let mut log =
            Log::open_with(&log_path, Signer25519::from_seed([5; 32]), durability).unwrap();
        let start = Instant::now();
        for r in &sample {
            log.append(r, None).unwrap();
        }
        let ours = rate(sample.len() as u64, start.elapsed());
        println!(
            "append, one transaction each, synchronous={label}: {ours:>9.0} records/s   (bare SQLite insert {bare:.0}/s; ratio {:.2})",
            ours / bare
        );
    }

    // Batched appends (group commit), fsync on every commit.
    for batch in [10usize, 100, 1000] {
        let path = dir.join(format!("batch-{batch}.sqlite"));
        let _ = std::fs::remove_file(&path);
        let mut log = Log::open(&path, Signer25519::from_seed([5; 32])).unwrap();
        let start = Instant::now();
        for chunk in sample.chunks(batch) {
            log.append_all(chunk, None).unwrap();
        }
        println!(
            "append, batches of {batch:>4}, synchronous=FULL:     {:>9.0} records/s",
            rate(sample.len() as u64, start.elapsed())
        );
    }

    // Fill a log to `total` records (batched; records signed as they go).
    let big = dir.join("big.sqlite");
    let reuse = Log::open_with(&big, Signer25519::from_seed([5; 32]), Durability::Normal)
        .map(|l| l.size().unwrap())
        .unwrap_or(0);
    let mut log =
        Log::open_with(&big, Signer25519::from_seed([5; 32]), Durability::Normal).unwrap();
    let start = Instant::now();
    let mut n = reuse;
    while n < total {
        let end = (n + 5000).min(total);
        let records: Vec<SignedRecord> = (n..end).map(|i| record(i, &signer)).collect();
        log.append_all(&records, None).unwrap();
        n = end;
    }
    if reuse < total {
        println!(
            "filled {} records (signing included) in {:.1} s: {:.0} records/s",
            total - reuse,
            start.elapsed().as_secs_f64(),
            rate(total - reuse, start.elapsed())
        );
    }
    let size = log.size().unwrap();
    // Appends at that size, one transaction each, FULL durability, after a warm-up that
    // brings the index pages a long-running server would hold into the cache.
    drop(log);
    let mut log = Log::open(&big, Signer25519::from_seed([5; 32])).unwrap();
    log.checkpoint().unwrap();
    let extra: Vec<SignedRecord> = (size..size + 3500).map(|i| record(i, &signer)).collect();
    for r in &extra[..500] {
        log.append(r, None).unwrap();
    }
    let start = Instant::now();
    for r in &extra[500..] {
        log.append(r, None).unwrap();
    }
    println!(
        "append at {size} records, one transaction each, FULL: {:.0} records/s",
        rate(3000, start.elapsed())
    );

    // The same, from concurrent callers through group commit (what the server does).
    drop(log);
    let size = size + 3500;
    for callers in [4u64, 16, 64] {
        let log = Log::open(&big, Signer25519::from_seed([5; 32])).unwrap();
        let group = aqiqat_evidence::group::GroupCommit::start(log);
        let base = size + 100_000 * callers;
        let per = 8000 / callers;
        let batches: Vec<Vec<SignedRecord>> = (0..callers)
            .map(|c| {
                (0..per)
                    .map(|i| record(base + c * per + i, &signer))
                    .collect()
            })
            .collect();
        let start = Instant::now();
        std::thread::scope(|scope| {
            for batch in batches {
                let g = group.clone();
                scope.spawn(move || {
                    for r in batch {
                        g.append(r, None).unwrap();
                    }
                });
            }
        });
        println!(
            "append at ~{size} records, {callers:>2} concurrent callers, group commit, FULL: {:.0} records/s",
            rate(per * callers, start.elapsed())
        );
    }
    let mut log = Log::open(&big, Signer25519::from_seed([5; 32])).unwrap();
    let size = log.size().unwrap();
    let head = log.tree_head().unwrap();
    let root = head.root().unwrap();

    // Inclusion proofs against the head of `size`, at random leaves.
    let mut x = 0x2545f4914f6cdd1du64;
    let mut times = Vec::with_capacity(20_000);
    let mut verify_times = Vec::with_capacity(20_000);
    for _ in 0..20_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let index = x % size;
        let t = Instant::now();
        let proof = log.inclusion(index, size).unwrap();
        times.push(t.elapsed());
        let path: Vec<merkle::Hash> = proof
            .path
            .iter()
            .map(|h| aqiqat_evidence::record::parse_hash(h).unwrap())
            .collect();
        let leaf = aqiqat_evidence::record::parse_hash(&proof.leaf_hash).unwrap();
        let t = Instant::now();
        assert!(merkle::verify_inclusion(index, size, &leaf, &path, &root));
        verify_times.push(t.elapsed());
    }
    let mean = times.iter().sum::<Duration>() / times.len() as u32;

    // Baseline: the same proofs from a tree held in memory.
    let mut mem = MemoryTree::default();
    for i in 0..size {
        mem.push(merkle::leaf_hash(&i.to_le_bytes()));
    }
    let start = Instant::now();
    for i in 0..20_000u64 {
        std::hint::black_box(merkle::inclusion_path(&mut mem, (i * 7919) % size, size).unwrap());
    }
    let mem_mean = start.elapsed() / 20_000;
    println!(
        "inclusion proof at {size} records: mean {:.1} µs, p50 {:.1} µs, p99 {:.1} µs   (in-memory tree {:.2} µs; ratio {:.1})",
        mean.as_secs_f64() * 1e6,
        percentile(times.clone(), 0.5).as_secs_f64() * 1e6,
        percentile(times, 0.99).as_secs_f64() * 1e6,
        mem_mean.as_secs_f64() * 1e6,
        mean.as_secs_f64() / mem_mean.as_secs_f64()
    );
    println!(
        "inclusion proof verification: mean {:.1} µs",
        (verify_times.iter().sum::<Duration>() / verify_times.len() as u32).as_secs_f64() * 1e6
    );

    let mut ctimes = Vec::new();
    for k in 1..=2000u64 {
        let old = (k * 499) % (size - 1) + 1;
        let t = Instant::now();
        std::hint::black_box(log.consistency(old, size).unwrap());
        ctimes.push(t.elapsed());
    }
    println!(
        "consistency proof to {size} records: p50 {:.1} µs, p99 {:.1} µs",
        percentile(ctimes.clone(), 0.5).as_secs_f64() * 1e6,
        percentile(ctimes, 0.99).as_secs_f64() * 1e6
    );
    let start = Instant::now();
    for i in 0..200 {
        std::hint::black_box(log.envelope(i * 4999 % size).unwrap());
    }
    println!(
        "record + proof + head (an envelope): {:.1} µs",
        (start.elapsed() / 200).as_secs_f64() * 1e6
    );
    let bytes = std::fs::metadata(&big).map(|m| m.len()).unwrap_or(0);
    println!("database size: {:.0} MB", bytes as f64 / 1e6);
}
