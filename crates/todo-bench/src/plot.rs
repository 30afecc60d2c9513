//! SVG line charts (plotters' SVG backend: no system fonts needed).

use std::path::Path;

use plotters::prelude::*;

use crate::error::{Error, Result};

/// One line: its legend and its points.
pub struct Series {
    /// Legend text.
    pub label: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series from a label and points.
    pub fn new(label: &str, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.to_owned(),
            points,
        }
    }
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(90, 90, 90),
];

fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Plot(path.display().to_string(), e.to_string())
}

/// Draws `series` as lines into the SVG file `path`; `log_y` puts y on a
/// log scale (from the decade below the smallest value, at least 0.01).
pub fn line_chart(
    path: &Path,
    title: &str,
    x_desc: &str,
    y_desc: &str,
    series: &[Series],
    log_y: bool,
) -> Result<()> {
    let series: Vec<&Series> = series.iter().filter(|s| !s.points.is_empty()).collect();
    let x_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .fold(1.0f64, f64::max);
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .filter(|y| y.is_finite())
        .fold(1.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (900, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70);
    macro_rules! draw {
        ($chart:expr, $clamp:expr) => {{
            let mut chart = $chart;
            chart
                .configure_mesh()
                .x_desc(x_desc)
                .y_desc(y_desc)
                .draw()
                .map_err(|e| err(path, e))?;
            for (i, s) in series.iter().enumerate() {
                let color = COLORS[i % COLORS.len()];
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().map(|&(x, y)| (x, $clamp(y))),
                        color.stroke_width(2),
                    ))
                    .map_err(|e| err(path, e))?
                    .label(s.label.clone())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| err(path, e))?;
        }};
    }
    if log_y {
        // From a decade below the smallest value (at least 0.01).
        let y_min = series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|y| y.is_finite() && *y > 0.0)
            .fold(f64::INFINITY, f64::min);
        let y_min = if y_min.is_finite() {
            10f64.powf(y_min.log10().floor()).max(0.01)
        } else {
            0.01
        };
        let chart = builder
            .build_cartesian_2d(0f64..x_max, (y_min..y_max).log_scale())
            .map_err(|e| err(path, e))?;
        draw!(chart, |y: f64| y.max(y_min));
    } else {
        let chart = builder
            .build_cartesian_2d(0f64..x_max, 0f64..y_max)
            .map_err(|e| err(path, e))?;
        draw!(chart, |y: f64| y.max(0.0));
    }
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}
