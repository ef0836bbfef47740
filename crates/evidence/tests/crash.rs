//! Kills a process with SIGKILL in the middle of appends, again and again, and shows that
//! every record it acknowledged is still in the log, the log verifies, and nothing
//! half-written is visible.

use aqiqat_evidence::{Log, Signer25519};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

fn appender() -> PathBuf {
    // target/<profile>/deps/crash-xxxx → target/<profile>/examples/appender
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("appender");
    assert!(path.exists(), "build the example first: {}", path.display());
    path
}

/// Runs the appender until it has acknowledged `kill_after` records, then SIGKILLs it after a
/// short, varying delay so that the kill lands inside a transaction as often as between them.
fn run_and_kill(db: &Path, seed: u64, kill_after: usize, acked: &mut BTreeMap<u64, String>) {
    let mut child = Command::new(appender())
        .arg(db)
        .arg(seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = 0;
    while seen < kill_after {
        let line = lines.next().expect("appender ended early").unwrap();
        let mut parts = line.split_whitespace();
        assert_eq!(parts.next(), Some("ack"));
        let index: u64 = parts.next().unwrap().parse().unwrap();
        let leaf = parts.next().unwrap().to_owned();
        assert!(
            acked.insert(index, leaf).is_none(),
            "index {index} acknowledged twice"
        );
        seen += 1;
    }
    std::thread::sleep(Duration::from_micros(seed * 397 % 3000));
    unsafe {
        libc::kill(child.id() as i32, libc::SIGKILL);
    }
    // Acks printed before the kill landed still count: read them all.
    for line in lines {
        let Ok(line) = line else { break };
        let mut parts = line.split_whitespace();
        if parts.next() != Some("ack") {
            continue;
        }
        let (Some(i), Some(h)) = (parts.next(), parts.next()) else {
            continue; // a line cut by the kill acknowledges nothing
        };
        acked.insert(i.parse().unwrap(), h.to_owned());
    }
    let status = child.wait().unwrap();
    assert!(!status.success(), "the appender should have been killed");
}

#[test]
fn acknowledged_records_survive_sigkill_and_the_log_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.sqlite");
    let mut acked = BTreeMap::new();
    for round in 0..8u64 {
        run_and_kill(&db, round + 1, 20 + (round as usize * 7) % 30, &mut acked);

        let log = Log::open(&db, Signer25519::from_seed([42; 32])).unwrap();
        let size = log.size().unwrap();
        assert!(
            size >= acked.len() as u64,
            "round {round}: {size} < {} acked",
            acked.len()
        );
        for (index, leaf) in &acked {
            let entry = log.find(&index.to_string()).unwrap();
            assert_eq!(
                &entry.leaf_hash, leaf,
                "round {round}: record {index} changed"
            );
        }
        let report = log.check().unwrap();
        assert!(
            report.problems.is_empty(),
            "round {round}: {:?}",
            report.problems
        );
        assert_eq!(report.tree_size, size);
        // Every case entry points at a record that exists (nothing half-filed).
        let case = log.case("crash").unwrap();
        assert!(case.records.iter().all(|e| e.index < size));
    }
    assert!(acked.len() >= 8 * 20);
}
