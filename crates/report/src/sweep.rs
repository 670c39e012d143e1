//! Sweep figures: panels of a metric against the swept variable, one line
//! per series (system, or system and policy), the line at the mean over
//! seeds and a band from the smallest to the largest seed's value.

use crate::render::{fmt_ms, render, run_color, Figure, FONT_FAMILY};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use switchyard_core::Result;

/// One line of a panel: per x value, the values of every seed.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSeries {
    /// Legend label.
    pub label: String,
    /// `(x, values over seeds)`, sorted by x.
    pub points: Vec<(f64, Vec<f64>)>,
}

/// One panel: a metric against the swept variable.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepPanel {
    /// Panel caption and y axis description, e.g. `p99 latency (ms)`.
    pub y_label: String,
    /// Log scale for y (latencies).
    pub log_y: bool,
    /// Lines, in legend order (a series keeps its colour in every panel).
    pub series: Vec<SweepSeries>,
}

struct SweepFigure<'a> {
    title: &'a str,
    x_label: &'a str,
    log_x: bool,
    panels: &'a [SweepPanel],
}

const PANEL: (u32, u32) = (620, 480);

impl Figure for SweepFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (PANEL.0 * self.panels.len().max(1) as u32, PANEL.1 + 56)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let body = root.titled(self.title, (FONT_FAMILY, 26))?;
        let areas = body.split_evenly((1, self.panels.len().max(1)));
        for (i, (area, panel)) in areas.iter().zip(self.panels).enumerate() {
            draw_panel(area, panel, self.x_label, self.log_x, i == 0)?;
        }
        Ok(())
    }
}

/// Axis transform: values are drawn as log10 on a log axis, ticks show the value.
fn tx(v: f64, log: bool) -> f64 {
    if log {
        v.max(1e-12).log10()
    } else {
        v
    }
}

fn range(values: impl Iterator<Item = f64>, log: bool) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
        let t = tx(v, log);
        lo = lo.min(t);
        hi = hi.max(t);
    }
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = if hi > lo { (hi - lo) * 0.05 } else { 0.5 };
    (lo - pad, hi + pad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &SweepPanel,
    x_label: &str,
    log_x: bool,
    legend: bool,
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let xs = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = panel
        .series
        .iter()
        .flat_map(|s| s.points.iter().flat_map(|p| p.1.iter().copied()));
    let (x0, x1) = range(xs, log_x);
    let (y0, y1) = range(ys, panel.log_y);
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.y_label, (FONT_FAMILY, 20))
        .margin(12)
        .x_label_area_size(50)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let (lx, ly) = (log_x, panel.log_y);
    let untx = move |v: f64, log: bool| if log { 10f64.powf(v) } else { v };
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(&panel.y_label)
        .x_label_formatter(&|v| fmt_ms(untx(*v, lx)))
        .y_label_formatter(&|v| fmt_ms(untx(*v, ly)))
        .axis_desc_style((FONT_FAMILY, 16))
        .label_style((FONT_FAMILY, 13))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = run_color(i);
        let stats: Vec<(f64, f64, f64, f64)> = s
            .points
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(x, v)| {
                let finite: Vec<f64> = v.iter().copied().filter(|y| y.is_finite()).collect();
                let mean = finite.iter().sum::<f64>() / finite.len().max(1) as f64;
                let lo = finite.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                (tx(*x, lx), tx(mean, ly), tx(lo, ly), tx(hi, ly))
            })
            .filter(|p| p.1.is_finite())
            .collect();
        if stats.len() > 1 {
            let mut band: Vec<(f64, f64)> = stats.iter().map(|p| (p.0, p.3)).collect();
            band.extend(stats.iter().rev().map(|p| (p.0, p.2)));
            chart.draw_series(std::iter::once(Polygon::new(
                band,
                color.mix(0.18).filled(),
            )))?;
        }
        let line = chart.draw_series(LineSeries::new(
            stats.iter().map(|p| (p.0, p.1)),
            color.stroke_width(2),
        ))?;
        if legend {
            line.label(s.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
        }
        chart.draw_series(
            stats
                .iter()
                .map(|p| Circle::new((p.0, p.1), 3, color.filled())),
        )?;
    }
    if legend && !panel.series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .margin(10)
            .label_font((FONT_FAMILY, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(160, 160, 160))
            .draw()?;
    }
    Ok(())
}

/// Draws `panels` side by side against `x_label` (log axis if `log_x`)
/// and writes `svg` and `png`, each atomically.
pub fn sweep_figure(
    title: &str,
    x_label: &str,
    log_x: bool,
    panels: &[SweepPanel],
    svg: &Path,
    png: &Path,
) -> Result<()> {
    render(
        &SweepFigure {
            title,
            x_label,
            log_x,
            panels,
        },
        svg,
        png,
    )
}
