//! # aqiqat-charts
//!
//! Charts as plain SVG text (so reports can embed them and a reader can inspect them), and PNG
//! rasterisation through resvg for places that want a picture file. Text is set in DejaVu Sans,
//! compiled in, so a PNG is the same on every machine, fonts installed or not.
//!
//! **Owns:** drawing. **Must not touch:** scores' computation or meaning, files other than the
//! one it is asked to write.

use std::fmt::Write;

/// A curve to draw: its legend and its points, both coordinates in `0..=1`.
pub struct Curve<'a> {
    pub label: &'a str,
    pub points: &'a [(f64, f64)],
}

const PALETTE: [&str; 6] = [
    "#1f5fa8", "#c8553d", "#2a9d8f", "#8d6cab", "#e9a23b", "#555555",
];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A ROC chart: false-positive rate (bonafide called synthetic) across, true-positive rate
/// (synthetic caught) up, with the equal-error line `tpr = 1 - fpr` dotted.
pub fn roc_svg(title: &str, curves: &[Curve]) -> String {
    let (w, h, left, top, size) = (640.0, 600.0, 80.0, 50.0, 480.0);
    let x = |v: f64| left + v * size;
    let y = |v: f64| top + (1.0 - v) * size;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, sans-serif">"#
    );
    let _ = write!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = write!(
        s,
        r#"<text x="{}" y="30" font-size="18" text-anchor="middle">{}</text>"#,
        left + size / 2.0,
        escape(title)
    );
    for i in 0..=10 {
        let v = i as f64 / 10.0;
        let _ = write!(
            s,
            r##"<line x1="{vx}" y1="{y0}" x2="{vx}" y2="{y1}" stroke="#e4e4e4"/><line x1="{x0}" y1="{vy}" x2="{x1}" y2="{vy}" stroke="#e4e4e4"/>"##,
            vx = x(v),
            vy = y(v),
            x0 = x(0.0),
            x1 = x(1.0),
            y0 = y(0.0),
            y1 = y(1.0),
        );
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{v:.1}</text><text x="{}" y="{}" font-size="12" text-anchor="end">{v:.1}</text>"#,
            x(v),
            y(0.0) + 18.0,
            x(0.0) - 8.0,
            y(v) + 4.0
        );
    }
    let _ = write!(
        s,
        r##"<rect x="{left}" y="{top}" width="{size}" height="{size}" fill="none" stroke="#333"/><line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
        x(0.0),
        y(1.0),
        x(1.0),
        y(0.0)
    );
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="14" text-anchor="middle">false-positive rate (human speech called synthetic)</text>"#,
        left + size / 2.0,
        y(0.0) + 42.0
    );
    let _ = write!(
        s,
        r#"<text transform="translate(24 {}) rotate(-90)" font-size="14" text-anchor="middle">true-positive rate (synthetic speech caught)</text>"#,
        top + size / 2.0
    );
    for (i, curve) in curves.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = curve
            .points
            .iter()
            .map(|&(fx, fy)| format!("{:.2},{:.2}", x(fx), y(fy)))
            .collect();
        let _ = write!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2.5"/>"#,
            path.join(" ")
        );
        let ly = y(0.0) - 20.0 - 22.0 * (curves.len() - 1 - i) as f64;
        let _ = write!(
            s,
            r#"<line x1="{}" y1="{ly}" x2="{}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{}" y="{}" font-size="13">{}</text>"#,
            x(0.45),
            x(0.52),
            x(0.54),
            ly + 4.0,
            escape(curve.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One window of a timeline: where it lies (seconds), its probability of synthetic speech,
/// and whether it counted towards the verdict.
pub struct Window {
    pub start_s: f64,
    pub end_s: f64,
    pub probability: f64,
    pub counted: bool,
}

/// The verdict timeline as bars, the web page's picture of it: red above the synthetic
/// threshold, green below the human one, amber between, grey for windows that did not count;
/// the thresholds dashed. `title` is drawn at the top, `seconds` labels the time axis.
pub fn timeline_svg(
    title: &str,
    seconds: &str,
    windows: &[Window],
    thresholds: Option<(f64, f64)>,
    duration_s: f64,
) -> String {
    let (w, h, left, right, top, bottom) = (640.0, 220.0, 40.0, 12.0, 34.0, 30.0);
    let end = windows
        .iter()
        .map(|w| w.end_s)
        .fold(duration_s.max(1.0), f64::max);
    let x = |t: f64| left + (w - left - right) * t / end;
    let y = |p: f64| top + (h - top - bottom) * (1.0 - p.clamp(0.0, 1.0));
    let hop = match windows {
        [a, b, ..] => b.start_s - a.start_s,
        [a] => a.end_s - a.start_s,
        [] => 1.0,
    }
    .max(1e-3);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="DejaVu Sans, sans-serif"><rect width="{w}" height="{h}" fill="white"/><text x="{left}" y="20" font-size="14">{}</text>"#,
        escape(title)
    );
    for win in windows {
        let colour = if !win.counted {
            "#c8c8c8"
        } else {
            match thresholds {
                Some((_, synthetic_above)) if win.probability >= synthetic_above => "#c02828",
                Some((human_below, _)) if win.probability < human_below => "#288c46",
                Some(_) => "#d69614",
                None if win.probability >= 0.5 => "#c02828",
                None => "#288c46",
            }
        };
        let mid = (win.start_s + win.end_s) / 2.0;
        let (x0, x1) = (x(mid - hop / 2.0), x(mid + hop / 2.0));
        let _ = write!(
            s,
            r#"<rect x="{x0:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"#,
            y(win.probability),
            (x1 - x0 - 1.0).max(1.0),
            (y(0.0) - y(win.probability)).max(1.0)
        );
    }
    let _ = write!(
        s,
        r##"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#444"/><line x1="{left}" y1="{top}" x2="{left}" y2="{0:.1}" stroke="#444"/>"##,
        y(0.0),
        w - right
    );
    if let Some((human_below, synthetic_above)) = thresholds {
        for (p, colour) in [(human_below, "#288c46"), (synthetic_above, "#c02828")] {
            let _ = write!(
                s,
                r#"<line x1="{left}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="{colour}" stroke-dasharray="4 3"/>"#,
                y(p),
                w - right
            );
        }
    }
    for p in [0.0, 0.5, 1.0] {
        let _ = write!(
            s,
            r#"<text x="{}" y="{:.1}" font-size="11" text-anchor="end">{p:.1}</text>"#,
            left - 4.0,
            y(p) + 4.0
        );
    }
    let step = [1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 600.0]
        .into_iter()
        .find(|s| end / s <= 8.0)
        .unwrap_or(1800.0);
    let mut t = 0.0;
    while t <= end + 1e-9 {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11" text-anchor="middle">{t}</text>"#,
            x(t),
            h - 12.0
        );
        t += step;
    }
    let _ = write!(
        s,
        r#"<text x="{}" y="{}" font-size="11" text-anchor="end">{}</text></svg>"#,
        w - right,
        h - 1.0,
        escape(seconds)
    );
    s.push('\n');
    s
}

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("invalid SVG: {0}")]
    Svg(String),
    #[error("cannot encode PNG: {0}")]
    Png(String),
}

/// Rasterises SVG text to PNG bytes at its own size.
pub fn png(svg: &str) -> Result<Vec<u8>, RenderError> {
    let mut options = resvg::usvg::Options::default();
    // The face the SVG names is compiled in: a chart looks the same on every machine, and one
    // without fonts still gets its labels.
    let fonts = options.fontdb_mut();
    fonts.load_font_data(dejavu::sans::regular().to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    let tree =
        resvg::usvg::Tree::from_str(svg, &options).map_err(|e| RenderError::Svg(e.to_string()))?;
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| RenderError::Svg("empty picture".into()))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .encode_png()
        .map_err(|e| RenderError::Png(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_renders_to_a_png_with_the_curve_drawn() {
        let points = [(0.0, 0.0), (0.0, 0.8), (0.2, 1.0), (1.0, 1.0)];
        let svg = roc_svg(
            "test <1>",
            &[Curve {
                label: "all",
                points: &points,
            }],
        );
        assert!(svg.contains("test &lt;1&gt;"));
        let bytes = png(&svg).unwrap();
        assert_eq!(&bytes[1..4], b"PNG");
        // Decode our own output: a pixel on the curve's vertical leg (fpr 0, tpr 0.5) carries
        // the curve colour, one in the empty lower right stays white.
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        let at = |px: u32, py: u32| pixmap.pixel(px, py).unwrap();
        let on_curve = at(81, 50 + 240);
        assert!(on_curve.blue() > on_curve.red(), "{on_curve:?}");
        let empty = at(80 + 400, 50 + 400);
        assert_eq!((empty.red(), empty.green(), empty.blue()), (255, 255, 255));
    }

    #[test]
    fn a_timeline_colours_each_window_by_the_thresholds() {
        let windows: Vec<Window> = [(0.9, true), (0.5, true), (0.05, true), (0.9, false)]
            .into_iter()
            .enumerate()
            .map(|(i, (p, counted))| Window {
                start_s: i as f64,
                end_s: i as f64 + 4.0,
                probability: p,
                counted,
            })
            .collect();
        let svg = timeline_svg("Timeline & <title>", "s", &windows, Some((0.2, 0.8)), 7.0);
        assert!(svg.contains("Timeline &amp; &lt;title&gt;"));
        for colour in ["#c02828", "#d69614", "#288c46", "#c8c8c8"] {
            assert!(svg.contains(&format!("fill=\"{colour}\"")), "{colour}");
        }
        let bytes = png(&svg).unwrap();
        let pixmap = resvg::tiny_skia::Pixmap::decode_png(&bytes).unwrap();
        // The first window's bar (p 0.9, red) at its foot, left of the second's.
        let (w, h) = (640.0, 220.0);
        let x = |t: f64| 40.0 + (w - 40.0 - 12.0) * t / 7.0;
        let foot = (h - 30.0 - 3.0) as u32;
        let red = pixmap.pixel(x(2.0) as u32, foot).unwrap();
        assert!(red.red() > 150 && red.green() < 80, "{red:?}");
        let green = pixmap.pixel(x(4.0) as u32, foot).unwrap();
        assert!(
            green.green() > red.green() && green.red() < 100,
            "{green:?}"
        );
    }
}
