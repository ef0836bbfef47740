//! The timeline chart's geometry, shared by the SVG (HTML) and PDF renderers so that both
//! draw the same picture.

use crate::view::RecordView;

pub const W: f32 = 480.0;
pub const H: f32 = 120.0;
/// Left margin for the y labels, bottom margin for the x labels.
pub const LEFT: f32 = 28.0;
pub const BOTTOM: f32 = 16.0;
/// Room for the top label and the last x label.
pub const TOP: f32 = 6.0;
pub const RIGHT: f32 = 8.0;

pub type Rgb = (u8, u8, u8);
pub const RED: Rgb = (192, 40, 40);
pub const AMBER: Rgb = (214, 150, 20);
pub const GREEN: Rgb = (40, 140, 70);
pub const GREY: Rgb = (200, 200, 200);
pub const INK: Rgb = (60, 60, 60);

pub struct Bar {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub color: Rgb,
}

pub struct Chart {
    pub bars: Vec<Bar>,
    /// Horizontal threshold lines: y and color.
    pub thresholds: Vec<(f32, Rgb)>,
    /// x tick positions and labels (seconds).
    pub x_ticks: Vec<(f32, String)>,
    /// y tick positions and labels.
    pub y_ticks: Vec<(f32, String)>,
}

pub fn color_for(view: &RecordView, p: f64) -> Rgb {
    match view.thresholds {
        Some((_, synthetic)) if p >= synthetic => RED,
        Some((human, _)) if p < human => GREEN,
        Some(_) => AMBER,
        None if p >= 0.5 => RED,
        None => GREEN,
    }
}

/// Bars are drawn one per window, centred on it, one hop wide, so overlapping windows read as
/// a step curve over time.
pub fn layout(view: &RecordView) -> Chart {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = H - BOTTOM - TOP;
    let end = view
        .segments
        .iter()
        .map(|s| s.end_s)
        .fold(view.duration_s.unwrap_or(0.0), f64::max)
        .max(1.0);
    let sx = |t: f64| LEFT + (t / end) as f32 * plot_w;
    let sy = |p: f64| TOP + plot_h - p.clamp(0.0, 1.0) as f32 * plot_h;
    let hop = if view.segments.len() >= 2 {
        (view.segments[1].start_s - view.segments[0].start_s).max(0.05)
    } else {
        view.segments.first().map_or(1.0, |s| s.end_s - s.start_s)
    };
    let bars = view
        .segments
        .iter()
        .map(|s| {
            let mid = (s.start_s + s.end_s) / 2.0;
            let x0 = sx(mid - hop / 2.0).max(LEFT);
            let x1 = sx(mid + hop / 2.0).min(W - RIGHT);
            let y = sy(s.probability);
            Bar {
                x: x0,
                y,
                w: (x1 - x0 - 0.5).max(0.5),
                h: (TOP + plot_h - y).max(0.5),
                color: if s.counted {
                    color_for(view, s.probability)
                } else {
                    GREY
                },
            }
        })
        .collect();
    let thresholds = view
        .thresholds
        .map(|(h, s)| vec![(sy(h), GREEN), (sy(s), RED)])
        .unwrap_or_default();
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ]
    .into_iter()
    .find(|s| end / s <= 8.0)
    .unwrap_or(3600.0);
    let mut x_ticks = Vec::new();
    let mut t = 0.0;
    while t <= end + 1e-9 {
        x_ticks.push((sx(t), format!("{t:.0}")));
        t += step;
    }
    let y_ticks = [0.0, 0.5, 1.0]
        .into_iter()
        .map(|p| (sy(p), format!("{p:.1}")))
        .collect();
    Chart {
        bars,
        thresholds,
        x_ticks,
        y_ticks,
    }
}

/// The width of the image detector's heat map.
pub const MAP_W: f32 = 240.0;

/// The heat map's cells as bars (red above the network's threshold, amber within one unit of
/// it, greys below), and the map's height; `None` without a map.
pub fn heatmap(image: &crate::view::ImageView) -> Option<(Vec<Bar>, f32)> {
    let (cols, rows, cells) = image.heatmap.as_ref()?;
    let side = MAP_W / *cols as f32;
    let threshold = image.map_threshold as f32;
    let bars = cells
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let color = if v > threshold {
                RED
            } else if v > threshold - 1.0 {
                AMBER
            } else {
                // Lighter the further below: 3 units below and more is the lightest.
                let t = ((threshold - 1.0 - v) / 2.0).clamp(0.0, 1.0);
                let g = (170.0 + 75.0 * t) as u8;
                (g, g, g)
            };
            Bar {
                x: (i % cols) as f32 * side,
                y: (i / cols) as f32 * side,
                w: side,
                h: side,
                color,
            }
        })
        .collect();
    Some((bars, *rows as f32 * side))
}
