//! Pictures of several named curves per panel, panels side by side (the experiments' figures).

use std::path::Path;

use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use super::curves::{font_available, save_png};

/// One panel: a title, axis labels and named (x, y) curves; a logarithmic y axis with `log_y`.
/// With `x_names`, x = 1, 2, ... are categories with these names, drawn as bars (one bar per
/// series at each), the y axis from 0.
#[derive(Default)]
pub struct Panel<'a> {
    pub title: String,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub log_y: bool,
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    pub x_names: Vec<String>,
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `panels` side by side into `out` (PNG), 500 px wide each.
pub fn plot_panels(panels: &[Panel], out: &Path) -> Result<(), String> {
    let (w, h) = (500 * panels.len().max(1) as u32, 420u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((1, panels.len().max(1)));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    save_png(buf, w, h, out)
}

fn bounds(panel: &Panel) -> (f64, f64, f64) {
    let pts = || {
        panel
            .series
            .iter()
            .flat_map(|(_, p)| p.iter())
            .filter(|p| p.1.is_finite())
    };
    let xmax =
        pts().map(|p| p.0).fold(1.0, f64::max) + f64::from(!panel.x_names.is_empty() as u8) * 0.5;
    let ymax = pts().map(|p| p.1).fold(f64::MIN_POSITIVE, f64::max);
    let ymin = pts()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(f64::MAX, f64::min);
    (xmax, ymin.min(ymax), ymax)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    panel: &Panel,
) -> Result<(), String> {
    let text = font_available();
    let (xmax, ymin, ymax) = bounds(panel);
    let mut b = ChartBuilder::on(area);
    b.margin(12);
    if text {
        b.caption(&panel.title, ("sans-serif", 18))
            .x_label_area_size(30)
            .y_label_area_size(55);
    }
    if panel.log_y {
        let range = (ymin / 2.0).max(1e-12)..ymax * 2.0;
        let chart = b
            .build_cartesian_2d(0.0..xmax, range.log_scale())
            .map_err(|e| e.to_string())?;
        finish(chart, panel, text)
    } else {
        let chart = b
            .build_cartesian_2d(0.0..xmax, 0.0..ymax * 1.05)
            .map_err(|e| e.to_string())?;
        finish(chart, panel, text)
    }
}

fn finish<'a, 'b, Y>(
    mut chart: ChartContext<'a, BitMapBackend<'b>, Cartesian2d<RangedCoordf64, Y>>,
    panel: &Panel,
    text: bool,
) -> Result<(), String>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
    'b: 'a,
{
    let mut mesh = chart.configure_mesh();
    let sci = |v: &f64| format!("{v:.0e}");
    let plain = |v: &f64| {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    };
    let name = |v: &f64| {
        let i = v.round();
        let named = (i - v).abs() < 1e-6 && i >= 1.0;
        let n = panel.x_names.get(i as usize - usize::from(i >= 1.0));
        n.filter(|_| named).cloned().unwrap_or_default()
    };
    if panel.x_names.is_empty() {
        mesh.x_label_formatter(&plain);
    } else {
        mesh.x_label_formatter(&name)
            .x_labels(panel.x_names.len() * 2 + 1);
    }
    mesh.y_label_formatter(if panel.log_y { &sci } else { &plain });
    if text {
        mesh.x_desc(panel.x_label).y_desc(panel.y_label);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(|e| e.to_string())?;
    // One series of bars needs no legend: the categories name the bars.
    let legend = text && (panel.x_names.is_empty() || panel.series.len() > 1);
    for (k, (name, points)) in panel.series.iter().enumerate() {
        let colour = COLOURS[k % COLOURS.len()];
        let pts: Vec<(f64, f64)> = points.iter().copied().filter(|p| p.1.is_finite()).collect();
        let s = if panel.x_names.is_empty() {
            chart.draw_series(LineSeries::new(pts, colour.stroke_width(2)))
        } else {
            // Bars side by side within each category's unit width.
            let w = 0.8 / panel.series.len() as f64;
            let left = |x: f64| x - 0.4 + w * k as f64;
            let bar = |(x, y): (f64, f64)| {
                Rectangle::new([(left(x), 0.0), (left(x) + w, y)], colour.filled())
            };
            chart.draw_series(pts.into_iter().map(bar))
        }
        .map_err(|e| e.to_string())?;
        if legend {
            s.label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour));
        }
    }
    if legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}
