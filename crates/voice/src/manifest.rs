//! Labelled manifests: tab-separated, a header naming at least `path` and `label`
//! (`bonafide` or `spoof`), paths relative to the manifest's folder. Other columns
//! (`generator`, `speaker`, `split`, …) are kept for breakdowns and filtering.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Label {
    Bonafide,
    Spoof,
}

impl Label {
    pub fn is_spoof(self) -> bool {
        self == Label::Spoof
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub label: Label,
    /// Every column of the row, by header name (including `path` and `label`).
    pub columns: BTreeMap<String, String>,
}

impl Entry {
    pub fn get(&self, column: &str) -> Option<&str> {
        self.columns.get(column).map(String::as_str)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not UTF-8 ({source})")]
    NotUtf8 {
        path: String,
        source: std::str::Utf8Error,
    },
    #[error("{path}: the header must name `path` and `label` columns")]
    Header { path: String },
    #[error("{path}:{line}: {problem}")]
    Row {
        path: String,
        line: usize,
        problem: String,
    },
}

pub fn read(manifest: &Path) -> Result<Vec<Entry>, ManifestError> {
    read_with_bytes(manifest).map(|(entries, _)| entries)
}

/// The entries of `manifest` and the very bytes they were parsed from: for a caller that
/// must record a hash of what it read.
pub fn read_with_bytes(manifest: &Path) -> Result<(Vec<Entry>, Vec<u8>), ManifestError> {
    let path = || manifest.display().to_string();
    let bytes = std::fs::read(manifest).map_err(|source| ManifestError::Io {
        path: path(),
        source,
    })?;
    let text = std::str::from_utf8(&bytes).map_err(|source| ManifestError::NotUtf8 {
        path: path(),
        source,
    })?;
    let entries = parse(text, manifest)?;
    Ok((entries, bytes))
}

/// The entries of `text`, a manifest read from `manifest` (its paths are relative to that
/// file's folder).
fn parse(text: &str, manifest: &Path) -> Result<Vec<Entry>, ManifestError> {
    let name = manifest.display().to_string();
    let base = manifest.parent().unwrap_or(Path::new("."));
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split('\t').map(str::trim).collect())
        .unwrap_or_default();
    if !header.contains(&"path") || !header.contains(&"label") {
        return Err(ManifestError::Header { path: name });
    }
    lines
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            if fields.len() != header.len() {
                return Err(ManifestError::Row {
                    path: name.clone(),
                    line: i + 1,
                    problem: format!("{} fields, header has {}", fields.len(), header.len()),
                });
            }
            let columns: BTreeMap<String, String> = header
                .iter()
                .zip(&fields)
                .map(|(h, f)| (h.to_string(), f.trim().to_string()))
                .collect();
            let label = match columns["label"].as_str() {
                "bonafide" => Label::Bonafide,
                "spoof" => Label::Spoof,
                other => {
                    return Err(ManifestError::Row {
                        path: name.clone(),
                        line: i + 1,
                        problem: format!("label {other:?} is neither bonafide nor spoof"),
                    });
                }
            };
            Ok(Entry {
                path: base.join(&columns["path"]),
                label,
                columns,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_comes_back_with_the_bytes_it_was_parsed_from() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.tsv");
        let text = "path\tlabel\tsplit\na.wav\tbonafide\ttrain\nb.wav\tspoof\ttest\n";
        std::fs::write(&path, text).unwrap();
        let (entries, bytes) = read_with_bytes(&path).unwrap();
        assert_eq!(bytes, text.as_bytes());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].path, dir.path().join("b.wav"));
        assert!(entries[1].label.is_spoof());
        assert_eq!(entries[0].get("split"), Some("train"));
    }

    #[test]
    fn a_manifest_that_is_not_utf8_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("manifest.tsv");
        std::fs::write(&path, b"path\tlabel\n\xff.wav\tbonafide\n").unwrap();
        let err = read(&path).unwrap_err();
        assert!(matches!(err, ManifestError::NotUtf8 { .. }), "{err}");
        assert!(err.to_string().contains("manifest.tsv: not UTF-8"), "{err}");
    }
}
