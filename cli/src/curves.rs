//! Line plots as PNG: the learning-rate finder's curve, fonts and PNG writing shared with
//! [`super::panels`].

use std::path::Path;

use plotters::prelude::*;

const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

/// Registers a system font for labels once; false when none is found (plots then have no text).
pub fn font_available() -> bool {
    static FONT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FONT.get_or_init(|| {
        for f in FONTS {
            if let Ok(bytes) = std::fs::read(f) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return true;
                }
            }
        }
        false
    })
}

/// A single line plot of `points` (x, y) into `out`, with a logarithmic x axis when `log_x`,
/// and an optional vertical marker at `mark_x`.
pub fn plot_line(
    points: &[(f64, f64)],
    out: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    log_x: bool,
    mark_x: Option<f64>,
) -> Result<(), String> {
    let (w, h) = (800u32, 450u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let text = font_available();
    let tx = |x: f64| if log_x { x.log10() } else { x };
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let finite: Vec<(f64, f64)> = points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        let (x0, x1) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), (x, _)| {
            (a.min(tx(*x)), b.max(tx(*x)))
        });
        let (y0, y1) = finite.iter().fold((f64::MAX, f64::MIN), |(a, b), (_, y)| {
            (a.min(*y), b.max(*y))
        });
        let (x0, x1) = if x0 < x1 { (x0, x1) } else { (0.0, 1.0) };
        let (y0, y1) = if y0 < y1 { (y0, y1) } else { (0.0, 1.0) };
        let mut b = ChartBuilder::on(&root);
        b.margin(15);
        if text {
            b.caption(title, ("sans-serif", 20))
                .x_label_area_size(35)
                .y_label_area_size(50);
        }
        let mut chart = b
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(|e| e.to_string())?;
        let mut mesh = chart.configure_mesh();
        if text {
            let xd = if log_x {
                format!("log10({x_desc})")
            } else {
                x_desc.to_string()
            };
            mesh.x_desc(xd).y_desc(y_desc);
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(
                finite.iter().map(|(x, y)| (tx(*x), *y)),
                BLUE.stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        if let Some(m) = mark_x {
            chart
                .draw_series(LineSeries::new(
                    [(tx(m), y0), (tx(m), y1)],
                    RED.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    save_png(buf, w, h, out)
}

pub fn save_png(buf: Vec<u8>, w: u32, h: u32, out: &Path) -> Result<(), String> {
    image::RgbImage::from_raw(w, h, buf)
        .expect("buffer size")
        .save(out)
        .map_err(|e| e.to_string())
}
