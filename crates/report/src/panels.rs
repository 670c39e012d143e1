//! Small multiples: one latency CDF panel per model, each run a line.

use crate::cdf::{draw_panel, Fonts, Line};
use crate::render::{render, run_color, Figure, FONT_FAMILY};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use switchyard_core::records::RequestRecord;
use switchyard_core::Result;

/// Panel size in pixels, columns at most, and the title band height.
const PANEL: (u32, u32) = (520, 360);
const MAX_COLS: usize = 3;
const TITLE_H: u32 = 56;

struct PanelFigure<'a> {
    title: &'a str,
    /// (model, one line per run).
    panels: Vec<(String, Vec<Line>)>,
    log_x: bool,
}

impl PanelFigure<'_> {
    fn grid(&self) -> (usize, usize) {
        let n = self.panels.len().max(1);
        let cols = n.min(MAX_COLS);
        (n.div_ceil(cols), cols)
    }
}

impl Figure for PanelFigure<'_> {
    fn size(&self) -> (u32, u32) {
        let (rows, cols) = self.grid();
        (PANEL.0 * cols as u32, PANEL.1 * rows as u32 + TITLE_H)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        root.fill(&WHITE)?;
        let body = root.titled(self.title, (FONT_FAMILY, 28))?;
        let (rows, cols) = self.grid();
        let fonts = Fonts {
            caption: 20,
            axis: 15,
            ticks: 13,
            legend: 13,
        };
        for (i, (area, (model, lines))) in body
            .split_evenly((rows, cols))
            .iter()
            .zip(&self.panels)
            .enumerate()
        {
            draw_panel(area, model, lines, self.log_x, i == 0, fonts)?;
        }
        Ok(())
    }
}

/// Draws one latency CDF panel per model (models in name order, at most
/// three panels a row), each run (label, its records) a line of the same
/// colour in every panel, the legend in the first panel. x is latency in ms
/// (log scale if `log_x`). Writes `svg` and `png`, each atomically.
pub fn per_model_figure<S, R>(
    runs: &[(S, R)],
    title: &str,
    log_x: bool,
    svg: &Path,
    png: &Path,
) -> Result<()>
where
    S: AsRef<str>,
    R: AsRef<[RequestRecord]>,
{
    // Latencies of each run grouped by model, in one pass over the records.
    let grouped: Vec<BTreeMap<&str, Vec<f64>>> = runs
        .iter()
        .map(|(_, recs)| {
            let mut by_model: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
            for r in recs.as_ref() {
                by_model
                    .entry(r.model.as_str())
                    .or_default()
                    .push(r.latency_s);
            }
            by_model
        })
        .collect();
    let models: BTreeSet<&str> = grouped.iter().flat_map(|g| g.keys().copied()).collect();
    let panels = models
        .into_iter()
        .map(|model| {
            let lines = runs
                .iter()
                .zip(&grouped)
                .enumerate()
                .map(|(i, ((label, _), by_model))| {
                    let lat = by_model.get(model).map(Vec::as_slice).unwrap_or(&[]);
                    Line::from_seconds(label.as_ref(), run_color(i), lat)
                })
                .collect();
            (model.to_string(), lines)
        })
        .collect();
    render(
        &PanelFigure {
            title,
            panels,
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
    fn empty_runs_and_missing_models_still_draw() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |model: &str| RequestRecord {
            id: 0,
            model: model.into(),
            arrival_s: 0.0,
            start_s: 0.0,
            finish_s: 0.0,
            latency_s: 0.0,
            batch_size: 1,
            cold: false,
        };
        let runs = [("a", vec![rec("x")]), ("b", vec![rec("y")]), ("c", vec![])];
        for log_x in [false, true] {
            let (svg, png) = (dir.path().join("p.svg"), dir.path().join("p.png"));
            per_model_figure(&runs, "t", log_x, &svg, &png).unwrap();
            let text = std::fs::read_to_string(&svg).unwrap();
            assert!(text.contains("a (n=1)") && text.contains("c (n=0)"));
            let none: [(&str, Vec<f64>); 1] = [("none", vec![])];
            crate::cdf_figure(&none, "t", log_x, &svg, &png).unwrap();
        }
    }
}
