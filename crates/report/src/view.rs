//! What a report shows, read out of a record envelope. Reading is lenient about the scan
//! result's inner shape (a missing field shows as absent) and strict about the record itself.

use aqiqat_evidence::record::{AnalyserId, Context, Envelope, RecordBody, SignedRecord};
use aqiqat_evidence::verify::{Check, Inputs, verify_envelope};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub start_s: f64,
    pub end_s: f64,
    pub probability: f64,
    pub counted: bool,
}

#[derive(Debug, Clone)]
pub struct RecordView {
    pub verdict: String,
    pub probability: Option<f64>,
    pub reason: Option<String>,
    /// The detector's stable reason code (`no_sign_found`, `too_noisy`, …); absent in records
    /// made before codes existed.
    pub reason_code: Option<String>,
    /// Noise, music and overlapping voices as measured: `(snr_db, music_share, overlap_share)`.
    pub conditions: Option<(f64, f64, f64)>,
    /// How many families of synthesis the detector learnt, and those it was measured on but
    /// never learnt.
    pub reach: Option<(usize, Vec<String>)>,
    /// `(human_below, synthetic_from)`.
    pub thresholds: Option<(f64, f64)>,
    pub segments: Vec<Segment>,
    pub file_name: Option<String>,
    pub sha256: String,
    pub size_bytes: u64,
    pub format: String,
    pub duration_s: Option<f64>,
    pub speech_s: Option<f64>,
    pub created_at: String,
    pub tool: String,
    pub context: Context,
    pub analysers: Vec<AnalyserId>,
    pub leaf_hash: String,
    pub log_index: u64,
    pub tree_size: u64,
    pub tree_head_time: String,
    pub root_hash: String,
    pub key_id: String,
    /// The checks `aqiqat verify` makes, run when the view was built.
    pub checks: Vec<Check>,
    /// What the verdict rests on (`voice_detector`, `content_credentials`, `watermark`,
    /// `metadata`, `nothing`); absent in records made before provenance existed.
    pub verdict_basis: Option<String>,
    /// The subject is a still image (no timeline, no speech).
    pub is_image: bool,
    pub provenance: ProvenanceView,
    /// The speaker check against a claimed voiceprint and the joint answer; `None` when no
    /// voiceprint was claimed.
    pub claim: Option<ClaimView>,
    /// The link the input was fetched from, and how its media was found.
    pub link: Option<LinkView>,
    /// The image detector's finding; `None` for audio and for records made before it existed.
    pub image: Option<ImageView>,
}

/// The image detector's part of the record (`image` in the scan result).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageView {
    /// `synthetic` or `inconclusive`.
    pub verdict: String,
    /// `signs_of_generation`, `no_sign_found`, `too_small`, `palette`, `heavily_compressed`,
    /// `flat`, `not_decoded`.
    pub reason_code: String,
    /// The analyser's own sentence (evidence: kept as recorded).
    pub reason: String,
    pub score: Option<f64>,
    pub threshold: f64,
    pub generators: Vec<String>,
    /// The heat map averaged to at most 24 columns: columns, rows, cell logits (row-major).
    pub heatmap: Option<(usize, usize, Vec<f32>)>,
    /// The threshold the map's cells compare with: the network's own (`aqiqat.scan/6`), the
    /// finding's in older records, where the network also decided.
    pub map_threshold: f64,
    /// The deciding model's name.
    pub model: String,
}

/// Columns a report's heat map shows at most.
pub const HEATMAP_COLUMNS: usize = 24;

impl ImageView {
    fn read(image: &Value) -> Option<Self> {
        let heatmap = (|| {
            let map = &image["heatmap"];
            let cols = map["cols"].as_u64()? as usize;
            let rows = map["rows"].as_u64()? as usize;
            let logits: Vec<f32> = map["logits"]
                .as_array()?
                .iter()
                .map(|v| v.as_f64().map(|v| v as f32))
                .collect::<Option<_>>()?;
            if cols == 0 || logits.len() != cols * rows {
                return None;
            }
            // Averaged into at most HEATMAP_COLUMNS columns, rows in proportion.
            let step = cols.div_ceil(HEATMAP_COLUMNS);
            let (c, r) = (cols.div_ceil(step), rows.div_ceil(step));
            let mut sums = vec![(0.0f32, 0u32); c * r];
            for (i, v) in logits.iter().enumerate() {
                let cell = &mut sums[(i / cols / step) * c + i % cols / step];
                cell.0 += v;
                cell.1 += 1;
            }
            Some((
                c,
                r,
                sums.iter().map(|&(s, n)| s / n.max(1) as f32).collect(),
            ))
        })();
        Some(Self {
            verdict: image["verdict"].as_str()?.to_owned(),
            reason_code: image["reason_code"].as_str().unwrap_or_default().to_owned(),
            reason: image["reason"].as_str().unwrap_or_default().to_owned(),
            score: image["score"].as_f64(),
            threshold: image["threshold"].as_f64().unwrap_or_default(),
            map_threshold: image["heatmap"]["threshold"]
                .as_f64()
                .or(image["threshold"].as_f64())
                .unwrap_or_default(),
            model: image["model"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            generators: image["generators_seen"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|g| g.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
            heatmap,
        })
    }
}

/// A link's part of the record (`source` in the scan result).
#[derive(Debug, Clone)]
pub struct LinkView {
    pub url: String,
    /// URLs followed from the link (to the media, or to the post's page).
    pub followed: Vec<String>,
    pub retrieved_at: String,
    /// `direct`, `page` or `yt-dlp VERSION`.
    pub resolved_by: String,
    pub page_sha256: Option<String>,
    /// For a post: the media's own URL, the URLs followed from it, and its place (n of count).
    pub media_url: Option<String>,
    pub media_followed: Vec<String>,
    pub item: Option<(u64, u64)>,
}

impl LinkView {
    fn read(source: &Value) -> Option<Self> {
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let list = |v: &Value| {
            v.as_array()
                .map(|a| a.iter().filter_map(text).collect())
                .unwrap_or_default()
        };
        Some(Self {
            url: text(&source["url"])?,
            followed: list(&source["redirects"]),
            retrieved_at: text(&source["retrieved_at"]).unwrap_or_default(),
            resolved_by: text(&source["resolved_by"]).unwrap_or_else(|| "direct".into()),
            page_sha256: text(&source["page_sha256"]),
            media_url: text(&source["media_url"]),
            media_followed: list(&source["media_redirects"]),
            item: source["item"].as_u64().zip(source["items"].as_u64()),
        })
    }

    /// The rows a report shows, in order: (label, value, monospaced).
    pub(crate) fn rows(&self, t: &crate::i18n::Texts) -> Vec<(String, String, bool)> {
        let mut rows = vec![(t.get("field-link"), self.url.clone(), true)];
        for hop in &self.followed {
            rows.push((t.get("field-link-followed"), hop.clone(), true));
        }
        if let Some(page) = &self.page_sha256 {
            rows.push((t.get("field-page-sha256"), page.clone(), true));
        }
        if let Some(media) = &self.media_url {
            let (n, count) = self.item.unwrap_or((1, 1));
            rows.push((
                t.with(
                    "field-link-media",
                    &[("n", n.to_string()), ("count", count.to_string())],
                ),
                media.clone(),
                true,
            ));
            for hop in &self.media_followed {
                rows.push((t.get("field-link-followed"), hop.clone(), true));
            }
            rows.push((
                t.get("field-link-found-by"),
                self.resolved_by.clone(),
                false,
            ));
        }
        rows.push((t.get("field-retrieved"), self.retrieved_at.clone(), false));
        rows
    }
}

/// The speaker check and the joint answer about the claimed person, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimView {
    /// `consistent_with_claimed`, `clone_of_claimed`, `not_claimed_person`, `inconclusive`.
    pub verdict: String,
    /// The analyser's own sentence (evidence: kept as recorded).
    pub reason: Option<String>,
    pub name: String,
    pub voiceprint_id: String,
    /// `same_speaker`, `different_speaker`, `inconclusive`.
    pub decision: String,
    pub reason_code: Option<String>,
    pub similarity: Option<f64>,
    /// `(different_below, same_from)`.
    pub thresholds: Option<(f64, f64)>,
    pub speech_s: Option<f64>,
    pub enrolled_speech_s: Option<f64>,
    /// SHA-256 of each enrolment recording.
    pub enrolment: Vec<String>,
}

impl ClaimView {
    fn read(r: &Value) -> Option<Self> {
        let (claim, s) = (&r["claim"], &r["speaker"]);
        Some(Self {
            verdict: claim["verdict"].as_str()?.to_owned(),
            reason: claim["reason"].as_str().map(str::to_owned),
            name: s["claimed"]["name"].as_str().unwrap_or_default().to_owned(),
            voiceprint_id: s["claimed"]["id"].as_str().unwrap_or_default().to_owned(),
            decision: s["decision"].as_str().unwrap_or_default().to_owned(),
            reason_code: s["reason_code"].as_str().map(str::to_owned),
            similarity: s["similarity"].as_f64(),
            thresholds: s["thresholds"]["different_speaker"]
                .as_f64()
                .zip(s["thresholds"]["same_speaker"].as_f64()),
            speech_s: s["speech_s"].as_f64(),
            enrolled_speech_s: s["claimed"]["enrolled_speech_s"].as_f64(),
            enrolment: s["claimed"]["enrolment"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|f| f["sha256"].as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The provenance findings a report shows. Codes, names and the analysers' own sentences stay
/// as recorded (they are evidence); the report translates only its own words around them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProvenanceView {
    /// `none`, `trusted`, `valid`, `invalid`, `unreadable`, `unsupported`; `None` when the
    /// record has no provenance at all.
    pub credentials: Option<String>,
    pub digital_source_type: Option<String>,
    /// Signer's common name, and its issuer.
    pub signer: Option<String>,
    pub generator: Option<String>,
    /// `code: meaning` for each validation failure.
    pub failures: Vec<String>,
    /// `location: meaning` for each metadata marker, with whether it declares AI.
    pub markers: Vec<(String, bool)>,
    /// Bit agreement of the SD watermark, when checked, and whether it was found.
    pub watermark: Option<(f64, bool)>,
    /// The strongest label declaring AI, in the analyser's words.
    pub declared: Option<String>,
}

impl ProvenanceView {
    fn read(p: &Value) -> Self {
        if p.is_null() {
            return Self::default();
        }
        let c = &p["content_credentials"];
        let credentials = match c["status"].as_str() {
            Some("found") => c["state"].as_str().map(str::to_owned),
            Some("absent") => Some("none".to_owned()),
            Some(other) => Some(other.to_owned()),
            None => None,
        };
        let signer =
            c["signer"]["common_name"]
                .as_str()
                .map(|cn| match c["signer"]["issuer"].as_str() {
                    Some(issuer) => format!("{cn} ({issuer})"),
                    None => cn.to_owned(),
                });
        let generator = c["actions"].as_array().and_then(|actions| {
            actions
                .iter()
                .find(|a| a["action"] == "c2pa.created")
                .and_then(|a| a["software_agent"].as_str())
                .map(str::to_owned)
        });
        let failures = c["failures"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .filter_map(|f| {
                        Some(format!(
                            "{}: {}",
                            f["code"].as_str()?,
                            f["meaning"].as_str()?
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let markers = p["metadata"]["markers"]
            .as_array()
            .map(|ms| {
                ms.iter()
                    .filter_map(|m| {
                        Some((
                            format!("{}: {}", m["location"].as_str()?, m["meaning"].as_str()?),
                            m["declares_ai"].as_bool().unwrap_or(false),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let w = &p["watermark"];
        let watermark = (w["status"] == "checked")
            .then(|| Some((w["bit_agreement"].as_f64()?, w["detected"].as_bool()?)))
            .flatten();
        Self {
            credentials,
            digital_source_type: c["digital_source_type"].as_str().map(str::to_owned),
            signer,
            generator,
            failures,
            markers,
            watermark,
            declared: p["declares_ai"]["says"].as_str().map(str::to_owned),
        }
    }
}

#[derive(Debug, Clone)]
pub struct CaseView {
    pub id: String,
    pub title: String,
    pub note: Option<String>,
    pub created_at: String,
    pub records: Vec<RecordView>,
}

impl RecordView {
    /// Reads and verifies an envelope (as `aqiqat scan --record` writes it).
    pub fn from_envelope_text(text: &str) -> Result<Self, String> {
        let envelope: Envelope =
            serde_json::from_str(text).map_err(|e| format!("not an evidence record file: {e}"))?;
        let checks = verify_envelope(text, &Inputs::default()).checks;
        let record = SignedRecord::from_value(envelope.record.clone());
        let body: RecordBody = record
            .body()
            .map_err(|e| format!("not a well-formed evidence record: {e}"))?;
        let r = &body.result;
        let f64_at = |v: &Value| v.as_f64();
        let segments = r["segments"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|w| {
                        Some(Segment {
                            start_s: w["start_s"].as_f64()?,
                            end_s: w["end_s"].as_f64()?,
                            probability: w["probability_synthetic"].as_f64()?,
                            counted: w["counted"].as_bool().unwrap_or(true),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        let thresholds = match (
            f64_at(&r["voice"]["thresholds"]["human_below"]),
            f64_at(&r["voice"]["thresholds"]["synthetic_above"]),
        ) {
            (Some(h), Some(s)) => Some((h, s)),
            _ => None,
        };
        let media = &body.subject.media;
        let format = [media["container"].as_str(), media["codec"].as_str()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" / ");
        let key_id = envelope.record["signature"]["key_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        Ok(Self {
            verdict: body.verdict.clone(),
            probability: f64_at(&r["probability_synthetic"]),
            reason: r["reason"].as_str().map(str::to_owned),
            reason_code: r["reason_code"].as_str().map(str::to_owned),
            conditions: {
                let c = &r["voice"]["conditions"];
                match (
                    f64_at(&c["snr_db"]),
                    f64_at(&c["music_share"]),
                    f64_at(&c["overlap_share"]),
                ) {
                    (Some(s), Some(m), Some(o)) => Some((s, m, o)),
                    _ => None,
                }
            },
            reach: {
                let reach = &r["voice"]["reach"];
                let names = |key: &str| -> Option<Vec<String>> {
                    reach[key].as_array().map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_owned))
                            .collect()
                    })
                };
                names("families_heard")
                    .zip(names("families_not_heard"))
                    .map(|(heard, not)| (heard.len(), not))
            },
            thresholds,
            segments,
            file_name: body.subject.name.clone(),
            sha256: body.subject.sha256.clone(),
            size_bytes: body.subject.size_bytes,
            format,
            duration_s: f64_at(&media["duration_s"]),
            speech_s: f64_at(&r["voice"]["speech_s"]),
            created_at: body.created_at.clone(),
            tool: format!("{} {}", body.tool.name, body.tool.version),
            context: body.context.clone(),
            analysers: body.analysers.clone(),
            leaf_hash: hex::encode(record.leaf_hash()),
            log_index: envelope.inclusion.leaf_index,
            tree_size: envelope.tree_head.tree_size,
            tree_head_time: envelope.tree_head.timestamp.clone(),
            root_hash: envelope.tree_head.root_hash.clone(),
            key_id,
            checks,
            verdict_basis: r["verdict_basis"].as_str().map(str::to_owned),
            is_image: media["kind"] == "image",
            provenance: ProvenanceView::read(&r["provenance"]),
            claim: ClaimView::read(r),
            link: LinkView::read(&r["source"]),
            image: ImageView::read(&r["image"]),
        })
    }

    pub fn verified(&self) -> bool {
        self.checks
            .iter()
            .all(|c| c.outcome != aqiqat_evidence::verify::Outcome::Fail)
    }
}
