//! Reports as PDF, laid out here (A4, one column) and written by krilla with DejaVu fonts
//! (compiled into aqiqat) embedded (subset), which cover Kazakh, Russian and English. Layout first
//! produces pages of drawing operations, so that page breaks and "page n of N" are decided
//! before anything is drawn.

use krilla::Document;
use krilla::color::rgb;
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, Stroke, StrokeDash};
use krilla::text::{Font, TextDirection};
use skrifa::MetadataProvider;
use skrifa::instance::{LocationRef, Size};
use std::path::PathBuf;

use crate::chart::{self, Rgb};
use crate::html::num;
use crate::i18n::{Lang, Texts};
use crate::view::{CaseView, RecordView};
use aqiqat_evidence::verify::Outcome;

#[derive(Debug, thiserror::Error)]
pub enum PdfError {
    #[error(
        "AQIQAT_FONT_DIR is {0}, which lacks {1}: it must hold DejaVuSans.ttf, DejaVuSans-Bold.ttf and DejaVuSansMono.ttf (or another face under those names); unset it to use the DejaVu fonts built into aqiqat"
    )]
    FontDir(String, &'static str),
    #[error("PDF writer: {0}")]
    Writer(String),
}

impl PdfError {
    /// The user's to fix (exit 2): a font folder that lacks the faces.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, PdfError::FontDir(..))
    }
}

const PAGE_W: f32 = 595.0;
const PAGE_H: f32 = 842.0;
const MARGIN: f32 = 50.0;
const TEXT_W: f32 = PAGE_W - 2.0 * MARGIN;
const KEY_W: f32 = 165.0;
const INK: Rgb = (34, 34, 34);
const MUTED: Rgb = (90, 90, 90);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Face {
    Regular,
    Bold,
    Mono,
}

enum Op {
    Text {
        x: f32,
        y: f32,
        face: Face,
        size: f32,
        text: String,
        color: Rgb,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
        color: Rgb,
        width: f32,
        dashed: bool,
    },
}

struct FontFiles {
    regular: Vec<u8>,
    bold: Vec<u8>,
    mono: Vec<u8>,
}

/// DejaVu (Sans, Sans Bold, Sans Mono) is compiled in, so a copied binary writes Kazakh,
/// Russian and English reports on a machine without fonts; `AQIQAT_FONT_DIR` puts other faces
/// under the same three names in their place.
fn load_fonts() -> Result<FontFiles, PdfError> {
    let Some(dir) = std::env::var_os("AQIQAT_FONT_DIR") else {
        return Ok(FontFiles {
            regular: dejavu::sans::regular().to_vec(),
            bold: dejavu::sans::bold().to_vec(),
            mono: dejavu::sans_mono::regular().to_vec(),
        });
    };
    let dir = PathBuf::from(dir);
    let read = |name: &'static str| {
        std::fs::read(dir.join(name))
            .map_err(|_| PdfError::FontDir(dir.display().to_string(), name))
    };
    Ok(FontFiles {
        regular: read("DejaVuSans.ttf")?,
        bold: read("DejaVuSans-Bold.ttf")?,
        mono: read("DejaVuSansMono.ttf")?,
    })
}

struct Layout<'f> {
    fonts: &'f FontFiles,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl<'f> Layout<'f> {
    fn new(fonts: &'f FontFiles) -> Self {
        Self {
            fonts,
            pages: vec![Vec::new()],
            y: MARGIN,
        }
    }

    fn bytes(&self, face: Face) -> &'f [u8] {
        match face {
            Face::Regular => &self.fonts.regular,
            Face::Bold => &self.fonts.bold,
            Face::Mono => &self.fonts.mono,
        }
    }

    fn width(&self, face: Face, size: f32, text: &str) -> f32 {
        let Ok(font) = skrifa::FontRef::new(self.bytes(face)) else {
            return text.chars().count() as f32 * size * 0.6;
        };
        let charmap = font.charmap();
        let metrics = font.glyph_metrics(Size::new(size), LocationRef::default());
        text.chars()
            .map(|c| {
                charmap
                    .map(c)
                    .and_then(|g| metrics.advance_width(g))
                    .unwrap_or(size * 0.6)
            })
            .sum()
    }

    /// Greedy line breaking at spaces; a word longer than the line breaks anywhere (hashes).
    fn wrap(&self, face: Face, size: f32, text: &str, width: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            for word in paragraph.split(' ') {
                let candidate = if line.is_empty() {
                    word.to_owned()
                } else {
                    format!("{line} {word}")
                };
                if self.width(face, size, &candidate) <= width {
                    line = candidate;
                    continue;
                }
                if !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                }
                let mut piece = String::new();
                for ch in word.chars() {
                    piece.push(ch);
                    if self.width(face, size, &piece) > width {
                        piece.pop();
                        lines.push(std::mem::take(&mut piece));
                        piece.push(ch);
                    }
                }
                line = piece;
            }
            lines.push(line);
        }
        lines
    }

    fn ops(&mut self) -> &mut Vec<Op> {
        self.pages.last_mut().expect("at least one page")
    }

    fn ensure(&mut self, height: f32) {
        if self.y + height > PAGE_H - MARGIN - 14.0 {
            self.new_page();
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = MARGIN;
    }

    fn text_at(&mut self, x: f32, y: f32, face: Face, size: f32, text: &str, color: Rgb) {
        self.ops().push(Op::Text {
            x,
            y,
            face,
            size,
            text: text.to_owned(),
            color,
        });
    }

    fn para(&mut self, text: &str, face: Face, size: f32, color: Rgb) {
        let lead = size * 1.35;
        for line in self.wrap(face, size, text, TEXT_W) {
            self.ensure(lead);
            self.y += lead;
            let y = self.y - size * 0.3;
            self.text_at(MARGIN, y, face, size, &line, color);
        }
        self.y += size * 0.4;
    }

    fn heading(&mut self, text: &str, size: f32) {
        self.ensure(size * 3.0 + 40.0);
        self.y += size * 0.8;
        self.para(text, Face::Bold, size, INK);
        let y = self.y;
        self.ops().push(Op::Line {
            x1: MARGIN,
            y1: y,
            x2: PAGE_W - MARGIN,
            y2: y,
            color: (200, 200, 200),
            width: 0.6,
            dashed: false,
        });
        self.y += 4.0;
    }

    fn kv(&mut self, key: &str, value: &str, mono: bool) {
        let size = 9.0;
        let lead = size * 1.4;
        let vface = if mono { Face::Mono } else { Face::Regular };
        let keys = self.wrap(Face::Regular, size, key, KEY_W - 8.0);
        let values = self.wrap(vface, if mono { 8.0 } else { size }, value, TEXT_W - KEY_W);
        let n = keys.len().max(values.len());
        self.ensure(n as f32 * lead);
        let top = self.y;
        for (i, k) in keys.iter().enumerate() {
            let y = top + (i + 1) as f32 * lead - size * 0.3;
            self.text_at(MARGIN, y, Face::Regular, size, k, MUTED);
        }
        for (i, v) in values.iter().enumerate() {
            let y = top + (i + 1) as f32 * lead - size * 0.3;
            let vs = if mono { 8.0 } else { size };
            self.text_at(MARGIN + KEY_W, y, vface, vs, v, INK);
        }
        self.y = top + n as f32 * lead + 1.5;
    }

    fn verdict_box(&mut self, lines: &[(String, Face, f32)], color: Rgb, background: Rgb) {
        let mut wrapped = Vec::new();
        for (text, face, size) in lines {
            for l in self.wrap(*face, *size, text, TEXT_W - 20.0) {
                wrapped.push((l, *face, *size));
            }
        }
        let height: f32 = wrapped.iter().map(|(_, _, s)| s * 1.4).sum::<f32>() + 12.0;
        self.ensure(height + 6.0);
        let top = self.y + 4.0;
        self.ops().push(Op::Rect {
            x: MARGIN,
            y: top,
            w: TEXT_W,
            h: height,
            color: background,
        });
        self.ops().push(Op::Rect {
            x: MARGIN,
            y: top,
            w: 5.0,
            h: height,
            color,
        });
        let mut y = top + 6.0;
        for (text, face, size) in wrapped {
            y += size * 1.4;
            self.text_at(MARGIN + 14.0, y - size * 0.35, face, size, &text, INK);
        }
        self.y = top + height + 8.0;
    }

    fn heatmap(&mut self, image: &crate::view::ImageView) {
        let Some((bars, height)) = chart::heatmap(image) else {
            return;
        };
        self.ensure(height + 10.0);
        let (ox, oy) = (MARGIN, self.y + 4.0);
        for b in &bars {
            self.ops().push(Op::Rect {
                x: ox + b.x,
                y: oy + b.y,
                w: b.w,
                h: b.h,
                color: b.color,
            });
        }
        self.y = oy + height + 6.0;
    }

    fn timeline(&mut self, view: &RecordView) {
        let c = chart::layout(view);
        let scale = TEXT_W / chart::W;
        let h = chart::H * scale;
        self.ensure(h + 10.0);
        let (ox, oy) = (MARGIN, self.y + 4.0);
        for b in &c.bars {
            self.ops().push(Op::Rect {
                x: ox + b.x * scale,
                y: oy + b.y * scale,
                w: b.w * scale,
                h: b.h * scale,
                color: b.color,
            });
        }
        for (y, color) in &c.thresholds {
            self.ops().push(Op::Line {
                x1: ox + chart::LEFT * scale,
                y1: oy + y * scale,
                x2: ox + (chart::W - chart::RIGHT) * scale,
                y2: oy + y * scale,
                color: *color,
                width: 0.7,
                dashed: true,
            });
        }
        let base = oy + (chart::H - chart::BOTTOM) * scale;
        let left = ox + chart::LEFT * scale;
        for (x1, y1, x2, y2) in [
            (left, base, ox + (chart::W - chart::RIGHT) * scale, base),
            (left, oy + chart::TOP * scale, left, base),
        ] {
            self.ops().push(Op::Line {
                x1,
                y1,
                x2,
                y2,
                color: chart::INK,
                width: 0.7,
                dashed: false,
            });
        }
        for (x, label) in &c.x_ticks {
            let w = self.width(Face::Regular, 7.5, label);
            self.text_at(
                ox + x * scale - w / 2.0,
                base + 11.0,
                Face::Regular,
                7.5,
                label,
                MUTED,
            );
        }
        for (y, label) in &c.y_ticks {
            let w = self.width(Face::Regular, 7.5, label);
            self.text_at(
                left - 4.0 - w,
                oy + y * scale + 3.0,
                Face::Regular,
                7.5,
                label,
                MUTED,
            );
        }
        self.y = oy + h + 6.0;
    }

    fn footers(&mut self, t: &Texts, generated: &str) {
        let total = self.pages.len();
        for n in 0..total {
            let label = t.with(
                "page",
                &[("n", (n + 1).to_string()), ("total", total.to_string())],
            );
            let w = self.width(Face::Regular, 7.5, &label);
            self.pages[n].push(Op::Text {
                x: PAGE_W - MARGIN - w,
                y: PAGE_H - MARGIN / 2.0,
                face: Face::Regular,
                size: 7.5,
                text: label,
                color: MUTED,
            });
            self.pages[n].push(Op::Text {
                x: MARGIN,
                y: PAGE_H - MARGIN / 2.0,
                face: Face::Regular,
                size: 7.5,
                text: generated.to_owned(),
                color: MUTED,
            });
        }
    }

    fn render(self) -> Result<Vec<u8>, PdfError> {
        let font = |bytes: &[u8]| {
            Font::new(bytes.to_vec().into(), 0)
                .ok_or_else(|| PdfError::Writer("the font cannot be read".into()))
        };
        let regular = font(&self.fonts.regular)?;
        let bold = font(&self.fonts.bold)?;
        let mono = font(&self.fonts.mono)?;
        let mut document = Document::new();
        for ops in &self.pages {
            let settings = PageSettings::from_wh(PAGE_W, PAGE_H)
                .ok_or_else(|| PdfError::Writer("page size".into()))?;
            let mut page = document.start_page_with(settings);
            let mut surface = page.surface();
            for op in ops {
                match op {
                    Op::Text {
                        x,
                        y,
                        face,
                        size,
                        text,
                        color,
                    } => {
                        surface.set_stroke(None);
                        surface.set_fill(Some(fill(*color)));
                        let f = match face {
                            Face::Regular => regular.clone(),
                            Face::Bold => bold.clone(),
                            Face::Mono => mono.clone(),
                        };
                        surface.draw_text(
                            Point::from_xy(*x, *y),
                            f,
                            *size,
                            text,
                            false,
                            TextDirection::Auto,
                        );
                    }
                    Op::Rect { x, y, w, h, color } => {
                        let Some(rect) = Rect::from_xywh(*x, *y, w.max(0.1), h.max(0.1)) else {
                            continue;
                        };
                        let mut pb = PathBuilder::new();
                        pb.push_rect(rect);
                        if let Some(path) = pb.finish() {
                            surface.set_stroke(None);
                            surface.set_fill(Some(fill(*color)));
                            surface.draw_path(&path);
                        }
                    }
                    Op::Line {
                        x1,
                        y1,
                        x2,
                        y2,
                        color,
                        width,
                        dashed,
                    } => {
                        let mut pb = PathBuilder::new();
                        pb.move_to(*x1, *y1);
                        pb.line_to(*x2, *y2);
                        if let Some(path) = pb.finish() {
                            surface.set_fill(None);
                            surface.set_stroke(Some(Stroke {
                                paint: rgb::Color::new(color.0, color.1, color.2).into(),
                                width: *width,
                                dash: dashed.then(|| StrokeDash {
                                    array: vec![3.0, 2.0],
                                    offset: 0.0,
                                }),
                                ..Default::default()
                            }));
                            surface.draw_path(&path);
                        }
                    }
                }
            }
            surface.finish();
            page.finish();
        }
        document
            .finish()
            .map_err(|e| PdfError::Writer(format!("{e:?}")))
    }
}

fn fill(c: Rgb) -> Fill {
    Fill {
        paint: rgb::Color::new(c.0, c.1, c.2).into(),
        opacity: NormalizedF32::ONE,
        rule: Default::default(),
    }
}

fn record_body(l: &mut Layout, v: &RecordView, t: &Texts) {
    let lang = t.lang;
    let words = crate::html::verdict_words(v, t);
    let (color, background) = match v.verdict.as_str() {
        "synthetic" => (chart::RED, (251, 234, 234)),
        "human" => (chart::GREEN, (233, 245, 236)),
        "inconclusive" => (chart::AMBER, (253, 245, 226)),
        _ => (chart::GREY, (244, 244, 244)),
    };
    let mut lines = vec![
        (t.get("verdict-heading"), Face::Regular, 9.0),
        (words, Face::Bold, 12.0),
    ];
    if let Some(p) = v.probability {
        lines.push((
            t.with("probability", &[("p", num(lang, p, 2))]),
            Face::Regular,
            10.0,
        ));
    }
    if let Some(r) = crate::html::reason_text(v, t) {
        lines.push((t.with("reason", &[("reason", r)]), Face::Regular, 10.0));
    }
    if let Some((h, s)) = v.thresholds {
        lines.push((
            t.with(
                "thresholds",
                &[("human", num(lang, h, 2)), ("synthetic", num(lang, s, 2))],
            ),
            Face::Regular,
            8.0,
        ));
    }
    l.verdict_box(&lines, color, background);

    if let Some(c) = &v.claim {
        l.heading(&t.get("claim-heading"), 12.0);
        for (text, strong) in crate::html::claim_lines(c, t) {
            let face = if strong { Face::Bold } else { Face::Regular };
            l.para(&text, face, if strong { 10.5 } else { 9.5 }, INK);
        }
        for h in &c.enrolment {
            l.para(h, Face::Mono, 8.0, MUTED);
        }
        l.para(&t.get("claim-policy"), Face::Regular, 8.0, MUTED);
    }

    if !v.is_image {
        l.heading(&t.get("section-timeline"), 12.0);
        if v.segments.is_empty() {
            l.para(&t.get("timeline-empty"), Face::Regular, 9.5, INK);
        } else {
            l.timeline(v);
            l.para(&t.get("timeline-caption"), Face::Regular, 8.0, MUTED);
        }
    }

    if let Some(image) = &v.image {
        l.heading(&t.get("section-image"), 12.0);
        l.para(
            &crate::html::image_reason(image, t),
            Face::Regular,
            9.5,
            INK,
        );
        if let Some(score) = image.score {
            l.para(
                &t.with(
                    "image-score",
                    &[
                        ("score", num(t.lang, score, 2)),
                        ("threshold", num(t.lang, image.threshold, 2)),
                    ],
                ),
                Face::Regular,
                8.0,
                MUTED,
            );
        }
        if image.heatmap.is_some() {
            l.heatmap(image);
            l.para(&t.get("heatmap-caption"), Face::Regular, 8.0, MUTED);
        }
    }

    let provenance = crate::html::provenance_rows(&v.provenance, t);
    if !provenance.is_empty() {
        l.heading(&t.get("section-provenance"), 12.0);
        for (field, value, class) in &provenance {
            l.kv(field, value, class == "mono");
        }
        l.para(&t.get("provenance-caveat"), Face::Regular, 8.0, MUTED);
    }

    l.heading(&t.get("section-media"), 12.0);
    if let Some(n) = &v.file_name {
        l.kv(&t.get("field-file"), n, false);
    }
    if let Some(link) = &v.link {
        for (label, value, mono) in link.rows(t) {
            l.kv(&label, &value, mono);
        }
    }
    l.kv(&t.get("field-sha256"), &v.sha256, true);
    l.kv(
        &t.get("field-size"),
        &t.with("bytes", &[("n", v.size_bytes.to_string())]),
        false,
    );
    if !v.format.is_empty() {
        l.kv(&t.get("field-format"), &v.format, false);
    }
    if let Some(d) = v.duration_s {
        l.kv(
            &t.get("field-duration"),
            &t.with("seconds", &[("s", num(lang, d, 1))]),
            false,
        );
    }
    if let Some(s) = v.speech_s {
        l.kv(
            &t.get("field-speech"),
            &t.with("seconds", &[("s", num(lang, s, 1))]),
            false,
        );
    }
    l.kv(&t.get("field-created"), &v.created_at, false);
    for (key, value) in [
        ("field-case", &v.context.case_id),
        ("field-operator", &v.context.operator),
        ("field-note", &v.context.note),
    ] {
        if let Some(value) = value {
            l.kv(&t.get(key), value, false);
        }
    }

    l.heading(&t.get("section-analysers"), 12.0);
    for a in &v.analysers {
        l.kv(
            &t.get("field-analyser"),
            &format!("{} {}", a.name, a.version),
            false,
        );
        if let Some(w) = &a.weights_sha256 {
            l.kv(&t.get("field-weights"), w, true);
        }
    }
    l.kv(&t.get("field-tool"), &v.tool, false);

    l.heading(&t.get("section-integrity"), 12.0);
    l.kv(&t.get("field-record-hash"), &v.leaf_hash, true);
    l.kv(
        &t.get("field-log-index"),
        &t.with(
            "log-position",
            &[
                ("index", v.log_index.to_string()),
                ("size", v.tree_size.to_string()),
            ],
        ),
        false,
    );
    l.kv(&t.get("field-tree-head"), &v.tree_head_time, false);
    l.kv("", &v.root_hash, true);
    l.kv(&t.get("field-key-id"), &v.key_id, true);
    l.para(&t.get("checks-heading"), Face::Bold, 9.0, INK);
    for c in &v.checks {
        let (word, color) = match c.outcome {
            Outcome::Pass => (t.get("check-pass"), chart::GREEN),
            Outcome::Fail => (t.get("check-fail"), chart::RED),
            Outcome::Skipped => (t.get("check-skipped"), MUTED),
        };
        l.para(&format!("• {} — {word}", c.name), Face::Bold, 8.5, color);
        l.para(&c.detail, Face::Regular, 7.5, MUTED);
    }
    l.para(&t.get("verify-how"), Face::Regular, 8.0, MUTED);
}

fn meaning(l: &mut Layout, t: &Texts) {
    l.heading(&t.get("section-meaning"), 12.0);
    l.para(&t.get("meaning-body"), Face::Regular, 9.5, INK);
    l.heading(&t.get("section-limits"), 12.0);
    l.para(&t.get("limits-body"), Face::Regular, 9.5, INK);
}

fn generated(t: &Texts, at: &str) -> String {
    t.with(
        "generated",
        &[
            ("time", at.to_owned()),
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ],
    )
}

pub fn record_pdf(view: &RecordView, lang: Lang, generated_at: &str) -> Result<Vec<u8>, PdfError> {
    let fonts = load_fonts()?;
    let t = Texts::new(lang);
    let mut l = Layout::new(&fonts);
    l.para(&t.get("report-title"), Face::Bold, 20.0, INK);
    if let Some(n) = &view.file_name {
        l.para(n, Face::Regular, 12.0, MUTED);
    }
    record_body(&mut l, view, &t);
    meaning(&mut l, &t);
    l.footers(&t, &generated(&t, generated_at));
    l.render()
}

pub fn case_pdf(case: &CaseView, lang: Lang, generated_at: &str) -> Result<Vec<u8>, PdfError> {
    let fonts = load_fonts()?;
    let t = Texts::new(lang);
    let mut l = Layout::new(&fonts);
    l.para(&t.get("case-report-title"), Face::Bold, 20.0, INK);
    l.para(
        &format!("{} — {}", case.id, case.title),
        Face::Regular,
        12.0,
        MUTED,
    );
    l.kv(&t.get("case-opened"), &case.created_at, false);
    if let Some(n) = &case.note {
        l.kv(&t.get("field-note"), n, false);
    }
    let count = |v: &str| case.records.iter().filter(|r| r.verdict == v).count();
    l.heading(&t.get("case-records"), 13.0);
    l.para(
        &t.with(
            "case-summary",
            &[
                ("n", case.records.len().to_string()),
                ("synthetic", count("synthetic").to_string()),
                ("human", count("human").to_string()),
                ("inconclusive", count("inconclusive").to_string()),
            ],
        ),
        Face::Regular,
        9.5,
        INK,
    );
    for r in &case.records {
        let p = r.probability.map_or("—".into(), |p| num(lang, p, 2));
        l.kv(
            &format!("#{} {}", r.log_index, r.file_name.as_deref().unwrap_or("")),
            &format!(
                "{} · p = {p} · {}",
                crate::html::verdict_word(&t, &r.verdict),
                r.created_at
            ),
            false,
        );
    }
    for r in &case.records {
        l.new_page();
        l.para(
            &format!("#{} {}", r.log_index, r.file_name.as_deref().unwrap_or("")),
            Face::Bold,
            15.0,
            INK,
        );
        record_body(&mut l, r, &t);
    }
    meaning(&mut l, &t);
    l.footers(&t, &generated(&t, generated_at));
    l.render()
}
