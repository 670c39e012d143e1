//! Shared figure plumbing: the bundled font, the line palette, tick-label
//! formatting and atomic SVG + PNG output.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Once;
use switchyard_core::output::write_atomic;
use switchyard_core::{Error, Result};

/// DejaVu Sans (Bitstream Vera license, see `assets/DejaVuSans-LICENSE.txt`),
/// compiled in so that text renders without any system font library.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Font family every figure uses; the bundled font is registered under it.
pub const FONT_FAMILY: &str = "sans-serif";

/// Registers the bundled font with plotters (once per process).
pub fn ensure_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(FONT_FAMILY, FontStyle::Normal, FONT).is_err() {
            panic!("the bundled DejaVuSans.ttf is not a valid font");
        }
    });
}

/// Okabe-Ito colours (distinguishable with colour-blindness), black last.
const PALETTE: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Colour of the `i`-th run (the same run keeps its colour in every figure).
pub fn run_color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Formats a latency in milliseconds for a tick label: few digits, no
/// trailing zeros (`0.25`, `3`, `1.5`, `1200`).
pub fn fmt_ms(v: f64) -> String {
    let a = v.abs();
    let s = if a == 0.0 {
        return "0".to_string();
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else {
        return format!("{v:.1e}");
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A figure that can draw itself on any plotters backend.
pub(crate) trait Figure {
    /// Size in pixels (SVG user units and PNG pixels alike).
    fn size(&self) -> (u32, u32);
    /// Draws the whole figure on `root`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

fn draw_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::io(path, std::io::Error::other(format!("drawing failed: {e}")))
}

/// Renders `fig` to `svg` and to `png`, each atomically: the SVG is drawn
/// into memory and written with `write_atomic`; the PNG is encoded into a
/// temporary sibling and renamed into place, removed if anything fails.
pub(crate) fn render(fig: &impl Figure, svg: &Path, png: &Path) -> Result<()> {
    ensure_font();
    let size = fig.size();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, size).into_drawing_area();
        fig.draw(&root).map_err(|e| draw_error(svg, e))?;
        root.present().map_err(|e| draw_error(svg, e))?;
    }
    write_atomic(svg, text.as_bytes())?;

    if let Some(dir) = png.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let tmp = png_temp(png);
    let drawn = (|| {
        let root = BitMapBackend::new(&tmp, size).into_drawing_area();
        fig.draw(&root).map_err(|e| draw_error(png, e))?;
        root.present().map_err(|e| draw_error(png, e))
    })();
    match drawn {
        Ok(()) => std::fs::rename(&tmp, png).map_err(|e| Error::io(png, e)),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

/// Temporary sibling of `png`; it keeps the `.png` extension because the
/// encoder picks the format from it.
fn png_temp(png: &Path) -> PathBuf {
    let name = png
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    png.with_file_name(format!(".{name}.{}.tmp.png", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tick_labels_are_short() {
        assert_eq!(fmt_ms(0.0), "0");
        assert_eq!(fmt_ms(3.0), "3");
        assert_eq!(fmt_ms(1.5), "1.5");
        assert_eq!(fmt_ms(0.25), "0.25");
        assert_eq!(fmt_ms(12.34), "12.3");
        assert_eq!(fmt_ms(1200.0), "1200");
        assert_eq!(fmt_ms(0.001), "1.0e-3");
    }
}
