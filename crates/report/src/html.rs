//! Reports as one self-contained HTML file (inline CSS and SVG, no scripts, nothing fetched)
//! laid out for A4 printing.

use std::fmt::Write;

use crate::chart::{self, Rgb};
use crate::i18n::{Lang, Texts};
use crate::view::{CaseView, ClaimView, ProvenanceView, RecordView};
use aqiqat_evidence::verify::Outcome;

const CSS: &str = include_str!("report.css");

pub fn record_html(view: &RecordView, lang: Lang, generated_at: &str) -> String {
    let t = Texts::new(lang);
    let mut body = String::new();
    let title = t.get("report-title");
    let _ = write!(body, "<header><h1>{}</h1>", esc(&title));
    if let Some(name) = &view.file_name {
        let _ = write!(body, "<p class=\"subject\">{}</p>", esc(name));
    }
    body.push_str("</header>");
    record_section(&mut body, view, &t, 2);
    meaning(&mut body, &t);
    footer(&mut body, &t, generated_at);
    page(lang, &title, &body)
}

pub fn case_html(case: &CaseView, lang: Lang, generated_at: &str) -> String {
    let t = Texts::new(lang);
    let mut b = String::new();
    let title = t.get("case-report-title");
    let _ = write!(
        b,
        "<header><h1>{}</h1><p class=\"subject\">{} — {}</p></header>",
        esc(&title),
        esc(&case.id),
        esc(&case.title)
    );
    b.push_str("<table class=\"facts\">");
    row(&mut b, &t.get("case-opened"), &esc(&case.created_at), "");
    if let Some(note) = &case.note {
        row(&mut b, &t.get("field-note"), &esc(note), "");
    }
    b.push_str("</table>");
    let count = |v: &str| case.records.iter().filter(|r| r.verdict == v).count();
    let _ = write!(
        b,
        "<h2>{}</h2><p>{}</p><table class=\"list\"><tr><th>#</th><th>{}</th><th>{}</th><th>p</th><th>{}</th></tr>",
        esc(&t.get("case-records")),
        esc(&t.with(
            "case-summary",
            &[
                ("n", case.records.len().to_string()),
                ("synthetic", count("synthetic").to_string()),
                ("human", count("human").to_string()),
                ("inconclusive", count("inconclusive").to_string()),
            ]
        )),
        esc(&t.get("field-file")),
        esc(&t.get("verdict-heading")),
        esc(&t.get("field-created")),
    );
    for r in &case.records {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td class=\"v-{}\">{}</td><td>{}</td><td>{}</td></tr>",
            r.log_index,
            esc(r.file_name.as_deref().unwrap_or("—")),
            esc(&r.verdict),
            esc(&verdict_word(&t, &r.verdict)),
            r.probability.map_or("—".into(), |p| num(lang, p, 2)),
            esc(&r.created_at)
        );
    }
    b.push_str("</table>");
    for r in &case.records {
        let _ = write!(
            b,
            "<section class=\"record\"><h2>#{} {}</h2>",
            r.log_index,
            esc(r.file_name.as_deref().unwrap_or(""))
        );
        record_section(&mut b, r, &t, 3);
        b.push_str("</section>");
    }
    meaning(&mut b, &t);
    footer(&mut b, &t, generated_at);
    page(lang, &title, &b)
}

/// Why a record is inconclusive, or what its `human` verdict cannot rule out, in the report's
/// language. The detector states its reason in English with a stable code; the report words
/// each code itself from the figures the record holds. Records made before the codes existed
/// get their reason re-derived from those figures, and the detector's words for anything else.
pub(crate) fn reason_text(v: &RecordView, t: &Texts) -> Option<String> {
    let lang = t.lang;
    let pct = |share: f64| num(lang, share * 100.0, 0);
    let conditions = v.conditions.unwrap_or((0.0, 0.0, 0.0));
    if let Some(image) = v.image.as_ref().filter(|_| {
        matches!(
            v.verdict_basis.as_deref(),
            Some("image_detector" | "nothing")
        )
    }) {
        return Some(image_reason(image, t));
    }
    match v.reason_code.as_deref() {
        Some("no_sign_found") => {
            return Some(match &v.reach {
                Some((n, not_heard)) if !not_heard.is_empty() => t.with(
                    "reason-no-sign",
                    &[("n", n.to_string()), ("families", not_heard.join(", "))],
                ),
                _ => t.get("reason-no-sign-plain"),
            });
        }
        Some("too_noisy") => {
            return Some(t.with("reason-noisy", &[("snr", num(lang, conditions.0, 0))]));
        }
        Some("music") => return Some(t.with("reason-music", &[("share", pct(conditions.1))])),
        Some("several_voices") => {
            return Some(t.with("reason-voices", &[("share", pct(conditions.2))]));
        }
        Some("too_little_speech") => {
            let s = v.speech_s.unwrap_or(0.0);
            return Some(t.with("reason-short", &[("s", num(lang, s, 1))]));
        }
        Some("no_speech") => return Some(t.get("reason-no-speech")),
        _ => {}
    }
    if v.verdict != "inconclusive" {
        return v.reason.clone();
    }
    match (v.probability, v.speech_s) {
        (Some(p), _) => Some(t.with("reason-between", &[("p", num(lang, p, 2))])),
        (None, Some(s)) if s <= 0.0 => Some(t.get("reason-no-speech")),
        (None, Some(s)) if s < 1.5 => Some(t.with("reason-short", &[("s", num(lang, s, 1))])),
        _ => v.reason.clone(),
    }
}

/// The image detector's answer in the report's language.
pub(crate) fn image_reason(image: &crate::view::ImageView, t: &Texts) -> String {
    match image.reason_code.as_str() {
        "signs_of_generation" => t.get("image-reason-signs"),
        "no_sign_found" => t.with(
            "image-reason-no-sign",
            &[
                ("n", image.generators.len().to_string()),
                ("families", image.generators.join(", ")),
            ],
        ),
        "too_small" => t.get("image-reason-small"),
        "palette" => t.get("image-reason-palette"),
        "heavily_compressed" => t.get("image-reason-compressed"),
        "flat" => t.get("image-reason-flat"),
        "not_decoded" => t.get("image-reason-not-decoded"),
        _ => image.reason.clone(),
    }
}

/// The image detector's section: its score against its threshold, and the heat map.
fn image_section(b: &mut String, image: &crate::view::ImageView, t: &Texts, h: u8) {
    let _ = write!(
        b,
        "<section class=\"image\" data-image=\"{}\"><h{h}>{}</h{h}><p>{}</p>",
        esc(&image.reason_code),
        esc(&t.get("section-image")),
        esc(&image_reason(image, t))
    );
    if let Some(score) = image.score {
        let _ = write!(
            b,
            "<p class=\"small\">{}</p>",
            esc(&t.with(
                "image-score",
                &[
                    ("score", num(t.lang, score, 2)),
                    ("threshold", num(t.lang, image.threshold, 2))
                ]
            ))
        );
    }
    if let Some((bars, height)) = chart::heatmap(image) {
        let _ = write!(
            b,
            "<svg class=\"heatmap\" viewBox=\"0 0 {} {height:.2}\" width=\"{}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">",
            chart::MAP_W,
            chart::MAP_W
        );
        for bar in &bars {
            let _ = write!(
                b,
                "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
                bar.x,
                bar.y,
                bar.w,
                bar.h,
                rgb(bar.color)
            );
        }
        let _ = write!(
            b,
            "</svg><p class=\"small\">{}</p>",
            esc(&t.get("heatmap-caption"))
        );
    }
    b.push_str("</section>");
}

/// The claimed-person section as lines: `(text, emphasised)`. Shared by HTML and PDF.
pub(crate) fn claim_lines(c: &ClaimView, t: &Texts) -> Vec<(String, bool)> {
    let lang = t.lang;
    let name = || vec![("name", c.name.clone())];
    let headline = match c.verdict.as_str() {
        "clone_of_claimed" => t.with("claim-clone", &name()),
        "consistent_with_claimed" => t.with("claim-consistent", &name()),
        "not_claimed_person" => t.with("claim-not", &name()),
        _ => t.with("claim-inconclusive", &name()),
    };
    let mut lines = vec![(headline, true)];
    if c.verdict == "inconclusive" {
        let why = match (c.decision.as_str(), c.reason_code.as_deref()) {
            ("same_speaker", _) => t.get("claim-why-unjudged"),
            (_, Some("too_little_speech") | Some("no_speech")) => t.get("claim-why-short"),
            (_, Some("too_noisy") | Some("music") | Some("several_voices")) => {
                t.get("claim-why-unfit")
            }
            _ if c.similarity.is_some() => t.get("claim-why-between"),
            _ => c.reason.clone().unwrap_or_default(),
        };
        lines.push((t.with("reason", &[("reason", why)]), false));
    }
    if let (Some(sim), Some((diff, same))) = (c.similarity, c.thresholds) {
        lines.push((
            t.with(
                "claim-similarity",
                &[
                    ("sim", num(lang, sim, 3)),
                    ("diff", num(lang, diff, 3)),
                    ("same", num(lang, same, 3)),
                    ("speech", num(lang, c.speech_s.unwrap_or(0.0), 1)),
                ],
            ),
            false,
        ));
    }
    lines.push((
        t.with(
            "claim-enrolment",
            &[
                ("n", c.enrolment.len().to_string()),
                ("enrolled", num(lang, c.enrolled_speech_s.unwrap_or(0.0), 1)),
                ("id", c.voiceprint_id.clone()),
            ],
        ),
        false,
    ));
    lines
}

/// One word for a verdict, for tables.
pub(crate) fn verdict_word(t: &Texts, verdict: &str) -> String {
    match verdict {
        "synthetic" => t.get("word-synthetic"),
        "human" => t.get("word-human"),
        "inconclusive" => t.get("word-inconclusive"),
        other => other.to_owned(),
    }
}

fn page(lang: Lang, title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>{CSS}</style></head><body>{body}</body></html>\n",
        lang.code(),
        esc(title)
    )
}

fn record_section(b: &mut String, v: &RecordView, t: &Texts, h: u8) {
    let lang = t.lang;
    let class = match v.verdict.as_str() {
        "synthetic" | "human" | "inconclusive" => v.verdict.as_str(),
        _ => "unknown",
    };
    let words = verdict_words(v, t);
    let _ = write!(
        b,
        "<div class=\"verdict v-{class}\" data-verdict=\"{}\"><h{h}>{}</h{h}><p class=\"words\">{}</p>",
        esc(&v.verdict),
        esc(&t.get("verdict-heading")),
        esc(&words)
    );
    if let Some(p) = v.probability {
        let _ = write!(
            b,
            "<p>{}</p>",
            esc(&t.with("probability", &[("p", num(lang, p, 2))]))
        );
    }
    if let Some(reason) = reason_text(v, t) {
        let _ = write!(
            b,
            "<p>{}</p>",
            esc(&t.with("reason", &[("reason", reason)]))
        );
    }
    if let Some((hu, sy)) = v.thresholds {
        let _ = write!(
            b,
            "<p class=\"small\">{}</p>",
            esc(&t.with(
                "thresholds",
                &[("human", num(lang, hu, 2)), ("synthetic", num(lang, sy, 2))]
            ))
        );
    }
    b.push_str("</div>");

    if let Some(c) = &v.claim {
        let _ = write!(
            b,
            "<section class=\"claim\" data-claim=\"{}\"><h{h}>{}</h{h}>",
            esc(&c.verdict),
            esc(&t.get("claim-heading"))
        );
        for (text, strong) in claim_lines(c, t) {
            if strong {
                let _ = write!(b, "<p class=\"words\"><strong>{}</strong></p>", esc(&text));
            } else {
                let _ = write!(b, "<p>{}</p>", esc(&text));
            }
        }
        if !c.enrolment.is_empty() {
            b.push_str("<ul class=\"mono small\">");
            for h in &c.enrolment {
                let _ = write!(b, "<li>{}</li>", esc(h));
            }
            b.push_str("</ul>");
        }
        let _ = write!(
            b,
            "<p class=\"small\">{}</p></section>",
            esc(&t.get("claim-policy"))
        );
    }

    // A picture has no timeline: the section would only say there is no speech.
    if !v.is_image {
        let _ = write!(b, "<h{h}>{}</h{h}>", esc(&t.get("section-timeline")));
        if v.segments.is_empty() {
            let _ = write!(b, "<p>{}</p>", esc(&t.get("timeline-empty")));
        } else {
            b.push_str(&timeline_svg(v));
            let _ = write!(
                b,
                "<p class=\"small\">{}</p>",
                esc(&t.get("timeline-caption"))
            );
        }
    }

    if let Some(image) = &v.image {
        image_section(b, image, t, h);
    }
    provenance_section(b, &v.provenance, t, h);

    let _ = write!(
        b,
        "<h{h}>{}</h{h}><table class=\"facts\">",
        esc(&t.get("section-media"))
    );
    if let Some(name) = &v.file_name {
        row(b, &t.get("field-file"), &esc(name), "");
    }
    if let Some(link) = &v.link {
        for (label, value, mono) in link.rows(t) {
            row(b, &label, &esc(&value), if mono { "mono" } else { "" });
        }
    }
    row(b, &t.get("field-sha256"), &esc(&v.sha256), "mono");
    row(
        b,
        &t.get("field-size"),
        &esc(&t.with("bytes", &[("n", v.size_bytes.to_string())])),
        "",
    );
    if !v.format.is_empty() {
        row(b, &t.get("field-format"), &esc(&v.format), "");
    }
    if let Some(d) = v.duration_s {
        row(
            b,
            &t.get("field-duration"),
            &esc(&t.with("seconds", &[("s", num(lang, d, 1))])),
            "",
        );
    }
    if let Some(s) = v.speech_s {
        row(
            b,
            &t.get("field-speech"),
            &esc(&t.with("seconds", &[("s", num(lang, s, 1))])),
            "",
        );
    }
    row(b, &t.get("field-created"), &esc(&v.created_at), "");
    if let Some(c) = &v.context.case_id {
        row(b, &t.get("field-case"), &esc(c), "");
    }
    if let Some(o) = &v.context.operator {
        row(b, &t.get("field-operator"), &esc(o), "");
    }
    if let Some(n) = &v.context.note {
        row(b, &t.get("field-note"), &esc(n), "");
    }
    b.push_str("</table>");

    let _ = write!(
        b,
        "<h{h}>{}</h{h}><table class=\"facts\">",
        esc(&t.get("section-analysers"))
    );
    for a in &v.analysers {
        row(
            b,
            &t.get("field-analyser"),
            &esc(&format!("{} {}", a.name, a.version)),
            "",
        );
        if let Some(w) = &a.weights_sha256 {
            row(b, &t.get("field-weights"), &esc(w), "mono");
        }
    }
    row(b, &t.get("field-tool"), &esc(&v.tool), "");
    b.push_str("</table>");

    let _ = write!(
        b,
        "<h{h}>{}</h{h}><table class=\"facts\">",
        esc(&t.get("section-integrity"))
    );
    row(b, &t.get("field-record-hash"), &esc(&v.leaf_hash), "mono");
    row(
        b,
        &t.get("field-log-index"),
        &esc(&t.with(
            "log-position",
            &[
                ("index", v.log_index.to_string()),
                ("size", v.tree_size.to_string()),
            ],
        )),
        "",
    );
    row(
        b,
        &t.get("field-tree-head"),
        &format!(
            "{} · <span class=\"mono\">{}</span>",
            esc(&v.tree_head_time),
            esc(&v.root_hash)
        ),
        "",
    );
    row(b, &t.get("field-key-id"), &esc(&v.key_id), "mono");
    b.push_str("</table>");
    let _ = write!(
        b,
        "<p class=\"small\"><b>{}</b></p><ul class=\"checks\">",
        esc(&t.get("checks-heading"))
    );
    for c in &v.checks {
        let (class, word) = match c.outcome {
            Outcome::Pass => ("pass", t.get("check-pass")),
            Outcome::Fail => ("fail", t.get("check-fail")),
            Outcome::Skipped => ("skip", t.get("check-skipped")),
        };
        let _ = write!(
            b,
            "<li class=\"{class}\"><b>{}</b> — {}: <span class=\"small\">{}</span></li>",
            esc(c.name),
            esc(&word),
            esc(&c.detail)
        );
    }
    let _ = write!(
        b,
        "</ul><p class=\"small\">{}</p>",
        esc(&t.get("verify-how"))
    );
}

/// The provenance rows of a report, `(field, value, class)`, for HTML and PDF alike; empty
/// when the record has no provenance.
pub(crate) fn provenance_rows(p: &ProvenanceView, t: &Texts) -> Vec<(String, String, String)> {
    let Some(state) = &p.credentials else {
        return Vec::new();
    };
    let state_words = match state.as_str() {
        "trusted" => t.get("credentials-trusted"),
        "valid" => t.get("credentials-valid"),
        "invalid" => t.get("credentials-invalid"),
        "none" => t.get("credentials-none"),
        other => t.with("credentials-other", &[("status", other.to_owned())]),
    };
    let mut rows = vec![(
        t.get("field-credentials"),
        state_words,
        format!("c-{state}"),
    )];
    let mut push = |field: &str, value: &str, class: &str| {
        rows.push((t.get(field), value.to_owned(), class.to_owned()));
    };
    if let Some(d) = &p.digital_source_type {
        push("field-source-type", d, "mono");
    }
    if let Some(g) = &p.generator {
        push("field-generator", g, "");
    }
    if let Some(s) = &p.signer {
        push("field-signer", s, "");
    }
    for f in &p.failures {
        push("field-credential-failure", f, "");
    }
    for (m, ai) in &p.markers {
        push("field-marker", m, if *ai { "ai" } else { "" });
    }
    if let Some((agreement, found)) = p.watermark {
        let words = t.with(
            if found {
                "watermark-found"
            } else {
                "watermark-absent"
            },
            &[("p", num(t.lang, agreement * 100.0, 0))],
        );
        push("field-watermark", &words, "");
    }
    if let Some(d) = &p.declared {
        push("field-declared", d, "");
    }
    rows
}

/// The verdict in words, for HTML and PDF alike.
pub(crate) fn verdict_words(v: &RecordView, t: &Texts) -> String {
    let by_label = matches!(
        v.verdict_basis.as_deref(),
        Some("content_credentials" | "watermark" | "metadata")
    );
    match v.verdict.as_str() {
        "synthetic" if by_label => t.get("verdict-synthetic-label"),
        "synthetic" if v.is_image => t.get("verdict-synthetic-image"),
        "synthetic" => t.get("verdict-synthetic"),
        "inconclusive" if v.is_image => t.get("verdict-inconclusive-image"),
        "human" => t.get("verdict-human"),
        "inconclusive" => t.get("verdict-inconclusive"),
        _ => t.with("verdict-unknown", &[("verdict", v.verdict.clone())]),
    }
}

fn provenance_section(b: &mut String, p: &ProvenanceView, t: &Texts, h: u8) {
    let rows = provenance_rows(p, t);
    if rows.is_empty() {
        return;
    }
    let _ = write!(
        b,
        "<h{h}>{}</h{h}><table class=\"facts provenance\">",
        esc(&t.get("section-provenance"))
    );
    for (field, value, class) in rows {
        row(b, &field, &esc(&value), &class);
    }
    b.push_str("</table>");
    let _ = write!(
        b,
        "<p class=\"small\">{}</p>",
        esc(&t.get("provenance-caveat"))
    );
}

fn meaning(b: &mut String, t: &Texts) {
    let _ = write!(
        b,
        "<section class=\"meaning\"><h2>{}</h2><p>{}</p><h2>{}</h2><p>{}</p></section>",
        esc(&t.get("section-meaning")),
        esc(&t.get("meaning-body")),
        esc(&t.get("section-limits")),
        esc(&t.get("limits-body"))
    );
}

fn footer(b: &mut String, t: &Texts, generated_at: &str) {
    let _ = write!(
        b,
        "<footer>{}</footer>",
        esc(&t.with(
            "generated",
            &[
                ("time", generated_at.to_owned()),
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ]
        ))
    );
}

fn row(b: &mut String, key: &str, value_html: &str, class: &str) {
    let _ = write!(
        b,
        "<tr><th>{}</th><td class=\"{class}\">{value_html}</td></tr>",
        esc(key)
    );
}

fn rgb((r, g, b): Rgb) -> String {
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// The timeline as inline SVG.
pub fn timeline_svg(v: &RecordView) -> String {
    let c = chart::layout(v);
    let mut s = format!(
        "<svg class=\"timeline\" viewBox=\"0 0 {} {}\" role=\"img\" xmlns=\"http://www.w3.org/2000/svg\">",
        chart::W,
        chart::H
    );
    let base = chart::H - chart::BOTTOM;
    for b in &c.bars {
        let _ = write!(
            s,
            "<rect x=\"{:.2}\" y=\"{:.2}\" width=\"{:.2}\" height=\"{:.2}\" fill=\"{}\"/>",
            b.x,
            b.y,
            b.w,
            b.h,
            rgb(b.color)
        );
    }
    for (y, color) in &c.thresholds {
        let _ = write!(
            s,
            "<line x1=\"{}\" x2=\"{}\" y1=\"{y:.2}\" y2=\"{y:.2}\" stroke=\"{}\" stroke-dasharray=\"3 2\" stroke-width=\"0.7\"/>",
            chart::LEFT,
            chart::W - chart::RIGHT,
            rgb(*color)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{l}\" x2=\"{w}\" y1=\"{base}\" y2=\"{base}\" stroke=\"#444\" stroke-width=\"0.7\"/>\
         <line x1=\"{l}\" x2=\"{l}\" y1=\"{top}\" y2=\"{base}\" stroke=\"#444\" stroke-width=\"0.7\"/>",
        l = chart::LEFT,
        w = chart::W - chart::RIGHT,
        top = chart::TOP
    );
    for (x, label) in &c.x_ticks {
        let _ = write!(
            s,
            "<text x=\"{x:.2}\" y=\"{}\" font-size=\"8\" text-anchor=\"middle\" fill=\"#444\">{}</text>",
            chart::H - 4.0,
            esc(label)
        );
    }
    for (y, label) in &c.y_ticks {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{:.2}\" font-size=\"8\" text-anchor=\"end\" fill=\"#444\">{}</text>",
            chart::LEFT - 4.0,
            y + 3.0,
            esc(label)
        );
    }
    s.push_str("</svg>");
    s
}

/// Decimal comma for Kazakh and Russian, point for English.
pub(crate) fn num(lang: Lang, x: f64, decimals: usize) -> String {
    let s = format!("{x:.decimals$}");
    match lang {
        Lang::En => s,
        Lang::Kk | Lang::Ru => s.replace('.', ","),
    }
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
