//! Empirical latency CDF figures: one chart, one line per run.

use crate::render::{fmt_ms, render, run_color, Figure, FONT_FAMILY};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use switchyard_core::stats::ecdf_points;
use switchyard_core::Result;

/// Most points drawn per line; the CDF is thinned beyond this.
const MAX_POINTS: usize = 4000;

/// One line of a CDF chart: a label and ascending latencies in milliseconds.
pub(crate) struct Line {
    pub label: String,
    pub color: RGBColor,
    pub sorted_ms: Vec<f64>,
}

impl Line {
    /// A line from latencies in seconds (any order); non-finite values are dropped.
    pub fn from_seconds(label: &str, color: RGBColor, latencies_s: &[f64]) -> Line {
        let mut sorted_ms: Vec<f64> = latencies_s
            .iter()
            .filter(|v| v.is_finite())
            .map(|v| v * 1e3)
            .collect();
        sorted_ms.sort_unstable_by(f64::total_cmp);
        Line {
            label: label.to_string(),
            color,
            sorted_ms,
        }
    }
}

/// Font sizes of one chart.
#[derive(Clone, Copy)]
pub(crate) struct Fonts {
    pub caption: u32,
    pub axis: u32,
    pub ticks: u32,
    pub legend: u32,
}

/// The x range (ms) that shows every line: `[0, max]` padded, or on a log
/// axis `[min positive, max]` padded by a factor.
fn x_range(lines: &[Line], log_x: bool) -> (f64, f64) {
    let all = lines.iter().flat_map(|l| l.sorted_ms.iter().copied());
    let max = all.clone().fold(f64::NAN, f64::max);
    if log_x {
        let min_pos = all.filter(|v| *v > 0.0).fold(f64::NAN, f64::min);
        if !min_pos.is_finite() {
            return (0.1, 10.0);
        }
        let (lo, hi) = (min_pos / 1.25, max * 1.25);
        if hi / lo < 10.0 {
            let mid = (lo * hi).sqrt();
            return (mid / 3.2, mid * 3.2);
        }
        (lo, hi)
    } else if max.is_finite() && max > 0.0 {
        (0.0, max * 1.04)
    } else {
        (0.0, 1.0)
    }
}

/// Step points of the empirical CDF, x clamped to `x_lo` (log axes cannot show 0).
fn step_points(sorted_ms: &[f64], x_lo: f64) -> Vec<(f64, f64)> {
    let mut pts = Vec::new();
    let mut prev = 0.0;
    for (x, y) in ecdf_points(sorted_ms, MAX_POINTS) {
        let x = x.max(x_lo);
        pts.push((x, prev));
        pts.push((x, y));
        prev = y;
    }
    pts
}

/// Draws one CDF chart (axes, gridlines, lines, optional legend) in `area`.
pub(crate) fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    caption: &str,
    lines: &[Line],
    log_x: bool,
    legend: bool,
    fonts: Fonts,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let (lo, hi) = x_range(lines, log_x);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(caption, (FONT_FAMILY, fonts.caption))
        .margin(12)
        .x_label_area_size(fonts.axis * 5 / 2 + fonts.ticks)
        .y_label_area_size(fonts.axis * 3 / 2 + fonts.ticks * 3);
    if log_x {
        let chart = builder.build_cartesian_2d((lo..hi).log_scale(), 0.0..1.0)?;
        fill(chart, lines, lo, legend, fonts)
    } else {
        let chart = builder.build_cartesian_2d(lo..hi, 0.0..1.0)?;
        fill(chart, lines, lo, legend, fonts)
    }
}

fn fill<'a, DB, X>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    lines: &[Line],
    x_lo: f64,
    legend: bool,
    fonts: Fonts,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("latency (ms)")
        .y_desc("fraction of requests")
        .x_label_formatter(&|v| fmt_ms(*v))
        .y_label_formatter(&|v| format!("{v:.1}"))
        .x_labels(10)
        .y_labels(11)
        .max_light_lines(4)
        .axis_desc_style((FONT_FAMILY, fonts.axis))
        .label_style((FONT_FAMILY, fonts.ticks))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;
    for line in lines {
        let color = line.color;
        let series = chart.draw_series(LineSeries::new(
            step_points(&line.sorted_ms, x_lo),
            color.stroke_width(2),
        ))?;
        if legend {
            series
                .label(format!("{} (n={})", line.label, line.sorted_ms.len()))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
                });
        }
    }
    if legend && !lines.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .margin(12)
            .label_font((FONT_FAMILY, fonts.legend))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
    }
    Ok(())
}

struct CdfFigure<'a> {
    title: &'a str,
    lines: Vec<Line>,
    log_x: bool,
}

impl Figure for CdfFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (1000, 650)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let fonts = Fonts {
            caption: 28,
            axis: 20,
            ticks: 16,
            legend: 17,
        };
        draw_panel(root, self.title, &self.lines, self.log_x, true, fonts)
    }
}

/// Draws the empirical latency CDF of each run (label, latencies in seconds)
/// on one chart: x is latency in ms (log scale if `log_x`), y the fraction of
/// requests at or below it, one line per run with a legend. Writes `svg` and
/// `png` (1000x650), each atomically; non-finite latencies are left out.
pub fn cdf_figure<S, V>(
    runs: &[(S, V)],
    title: &str,
    log_x: bool,
    svg: &Path,
    png: &Path,
) -> Result<()>
where
    S: AsRef<str>,
    V: AsRef<[f64]>,
{
    let lines = runs
        .iter()
        .enumerate()
        .map(|(i, (label, lat))| Line::from_seconds(label.as_ref(), run_color(i), lat.as_ref()))
        .collect();
    render(
        &CdfFigure {
            title,
            lines,
            log_x,
        },
        svg,
        png,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_rise_at_each_sample() {
        let p = step_points(&[1.0, 2.0], 0.0);
        assert_eq!(p, vec![(1.0, 0.0), (1.0, 0.5), (2.0, 0.5), (2.0, 1.0)]);
    }

    #[test]
    fn log_range_covers_positive_values() {
        let l = Line::from_seconds("a", BLACK, &[0.0, 0.001, 0.1]);
        let (lo, hi) = x_range(&[l], true);
        assert!(lo > 0.0 && lo < 1.0 && hi > 100.0);
    }
}
