//! Small hand-written SVG charts (bar chart, histogram, line chart with optional bands, scatter
//! plot) with axes, ticks, labels and legends. Every chart is a complete SVG document (it carries
//! the SVG namespace), so the same string works inline in a page, as an `<img>` data URI and as a
//! standalone `.svg` file. It makes no network request and all text is escaped. Legends sit to
//! the right of the plot area, never over the data.
//!
//! Why not `plotters`: its SVG backend writes one element per glyph run with inline styles and no
//! `<title>` tooltips, places the series legend inside the plot area (the problem these charts
//! had), and adds a dependency tree to a crate that needs about 500 lines of SVG text.

use std::fmt::Write as _;

use crate::html::{escape_html, fmt_num};

/// Colours for series, in order (Tableau 10).
pub const PALETTE: [&str; 10] =
    ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"];

/// The `i`-th palette colour (wrapping).
pub fn colour(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

/// The SVG namespace, which a chart needs to open as an image or a file (not only inline).
pub const SVG_NS: &str = "http://www.w3.org/2000/svg";

/// One named series of (x, y) points.
#[derive(Debug, Clone, Default)]
pub struct Series {
    pub name: String,
    pub colour: String,
    pub points: Vec<(f64, f64)>,
    /// Draw dashed (e.g. training curves next to validation curves).
    pub dashed: bool,
    /// A shaded band (x, low, high) behind the line, e.g. the min-max over seeds of a mean
    /// curve; empty for none.
    pub band: Vec<(f64, f64, f64)>,
}

/// "Nice" tick values covering `[lo, hi]` (about `n` of them).
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
        return vec![lo];
    }
    let raw = (hi - lo) / n.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let start = (lo / step).ceil() * step;
    let mut t = Vec::new();
    let mut v = start;
    while v <= hi + step * 1e-9 {
        t.push(if v.abs() < step * 1e-9 { 0.0 } else { v });
        v += step;
    }
    t
}

fn tick_label(v: f64) -> String {
    fmt_num(v, 4)
}

/// Labels for evenly spaced ticks, all in one notation: fixed with the decimals the step needs
/// (up to 4: `0.0005, 0.0010, 0.0015`), else scientific with one exponent per tick and the
/// mantissa digits the step needs (`5.0e-6, 1.0e-5, 1.5e-5`); 0 is always "0". Mixing the two
/// (`0.0015, 0.001, 5.000e-4`) read badly and the longest label was clipped by the plot's margin.
fn tick_labels(ticks: &[f64]) -> Vec<String> {
    let step = match ticks {
        [a, b, ..] if (b - a).is_finite() && b > a => b - a,
        _ => return ticks.iter().map(|&v| tick_label(v)).collect(),
    };
    let amax = ticks.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    // Decimals that write the step exactly (steps are 1, 2, 2.5 or 5 times a power of ten).
    let decimals = (0..=12).find(|&d| {
        let x = step * 10f64.powi(d);
        (x - x.round()).abs() < 1e-6 * x.max(1.0)
    });
    let zero_or = |v: f64, f: &dyn Fn(f64) -> String| if v == 0.0 { "0".to_owned() } else { f(v) };
    match decimals {
        Some(d) if d <= 4 && amax < 1e6 => ticks.iter().map(|&v| zero_or(v, &|v| format!("{v:.*}", d as usize))).collect(),
        Some(d) => {
            let e = amax.log10().floor() as i32;
            let p = (d + e).clamp(1, 4) as usize;
            ticks.iter().map(|&v| zero_or(v, &|v| format!("{v:.p$e}"))).collect()
        }
        None => ticks.iter().map(|&v| tick_label(v)).collect(),
    }
}

/// Y ticks with their labels: `ticks` are values, or powers of ten on a log axis ("1e-3").
fn y_tick_pairs(ticks: Vec<f64>, log_y: bool) -> Vec<(f64, String)> {
    let labels = if log_y { ticks.iter().map(|&v| format!("1e{}", v as i64)).collect() } else { tick_labels(&ticks) };
    ticks.into_iter().zip(labels).collect()
}

/// The plot's left edge: at least `min`, and wide enough that the longest y tick label (right
/// aligned 5 px left of the axis) clears the rotated axis title (about 20 px from the edge).
fn left_for(y_ticks: &[(f64, String)], min: f64) -> f64 {
    let n = y_ticks.iter().map(|(_, l)| l.chars().count()).max().unwrap_or(0);
    min.max((25.0 + n as f64 * CHAR_W).ceil())
}

/// Plot area geometry and the data-to-pixel mapping.
struct Frame {
    w: f64,
    h: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    log_y: bool,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let span = if self.x1 > self.x0 { self.x1 - self.x0 } else { 1.0 };
        self.left + (x - self.x0) / span * (self.w - self.left - self.right)
    }
    fn py(&self, y: f64) -> f64 {
        let (y, y0, y1) = if self.log_y { (y.max(1e-300).log10(), self.y0, self.y1) } else { (y, self.y0, self.y1) };
        let span = if y1 > y0 { y1 - y0 } else { 1.0 };
        self.h - self.bottom - (y - y0) / span * (self.h - self.top - self.bottom)
    }
}

fn open(s: &mut String, w: f64, h: f64, title: &str) {
    let _ = write!(
        s,
        "<svg xmlns=\"{SVG_NS}\" class=\"chart\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" \
         font-family=\"system-ui,'DejaVu Sans',Arial,sans-serif\" font-size=\"11\" role=\"img\">\
         <title>{t}</title><rect width=\"{w}\" height=\"{h}\" fill=\"#fff\"/>\
         <text x=\"{cx}\" y=\"17\" text-anchor=\"middle\" font-size=\"13\" font-weight=\"600\" fill=\"#1d2330\">{t}</text>",
        t = escape_html(title),
        cx = w / 2.0
    );
}

/// Axes, grid lines, tick labels and axis titles. Ticks are (value, label) pairs; a log axis's
/// y values are exponents.
fn axes(s: &mut String, f: &Frame, x_ticks: &[(f64, String)], y_ticks: &[(f64, String)], x_label: &str, y_label: &str) {
    let (l, r, t, b) = (f.left, f.w - f.right, f.top, f.h - f.bottom);
    for &(v, ref lab) in y_ticks {
        let y = f.py(if f.log_y { 10f64.powf(v) } else { v });
        let _ = write!(
            s,
            "<line x1=\"{l}\" x2=\"{r}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e6e9ef\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"#5b6473\">{}</text>",
            l - 5.0,
            y + 3.5,
            escape_html(lab)
        );
    }
    for (v, lab) in x_ticks {
        let x = f.px(*v);
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{b}\" y2=\"{:.1}\" stroke=\"#5b6473\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#5b6473\">{}</text>",
            b + 4.0,
            b + 16.0,
            escape_html(lab)
        );
    }
    let _ = write!(
        s,
        "<line x1=\"{l}\" x2=\"{r}\" y1=\"{b}\" y2=\"{b}\" stroke=\"#5b6473\"/>\
         <line x1=\"{l}\" x2=\"{l}\" y1=\"{t}\" y2=\"{b}\" stroke=\"#5b6473\"/>\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>\
         <text transform=\"translate(13,{:.1}) rotate(-90)\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>",
        (l + r) / 2.0,
        f.h - 6.0,
        escape_html(x_label),
        (t + b) / 2.0,
        escape_html(y_label)
    );
}

/// A legend entry: name, colour, dashed line, shaded band.
type Item = (String, String, bool, bool);

const LEGEND_ROW: f64 = 16.0;
const CHAR_W: f64 = 6.4;

/// Width of the legend column right of the plot area (0 without items): the longest name, at
/// most 45% of the chart (longer names are shortened with an ellipsis, the full name is the
/// entry's tooltip).
fn legend_width(items: &[Item], w: f64) -> f64 {
    let longest = items.iter().map(|i| i.0.chars().count()).max();
    longest.map_or(0.0, |n| (n as f64 * CHAR_W + 38.0).min(w * 0.45))
}

/// Height a chart needs so that a legend of `items` starting at `top` fits beside the plot.
fn height_with_legend(items: &[Item], h: f64, top: f64, bottom: f64) -> f64 {
    h.max(top + 8.0 + items.len() as f64 * LEGEND_ROW + bottom)
}

/// The legend, one entry per row in the column right of the plot area (`f.right` wide).
fn legend(s: &mut String, f: &Frame, items: &[Item]) {
    let x = f.w - f.right + 12.0;
    let max_chars = (((f.right - 14.0 - 38.0) / CHAR_W + 1e-6).floor() as usize).max(4);
    for (i, (name, col, dashed, band)) in items.iter().enumerate() {
        let y = f.top + 12.0 + i as f64 * LEGEND_ROW;
        let col = escape_html(col);
        if *band {
            let _ = write!(s, "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"20\" height=\"10\" fill=\"{col}\" fill-opacity=\"0.2\"/>", y - 8.5);
        }
        let shown: String = if name.chars().count() > max_chars {
            name.chars().take(max_chars - 1).chain(std::iter::once('…')).collect()
        } else {
            name.clone()
        };
        let _ = write!(
            s,
            "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{col}\" stroke-width=\"2.5\"{}/>\
             <text x=\"{:.1}\" y=\"{y:.1}\" fill=\"#1d2330\"><title>{}</title>{}</text>",
            x + 20.0,
            y - 3.5,
            y - 3.5,
            if *dashed { " stroke-dasharray=\"4 3\"" } else { "" },
            x + 25.0,
            escape_html(name),
            escape_html(&shown)
        );
    }
}

/// A vertical bar chart, one bar per label, value printed above each bar.
pub fn bar_chart(title: &str, labels: &[String], values: &[f64], colours: &[String], y_label: &str, w: f64, h: f64) -> String {
    let mut s = String::new();
    open(&mut s, w, h, title);
    let ymax = values.iter().cloned().fold(0.0, f64::max);
    let ymax = if ymax > 0.0 { ymax * 1.15 } else { 1.0 };
    let ticks = y_tick_pairs(nice_ticks(0.0, ymax, 5), false);
    let f = Frame {
        w,
        h,
        left: left_for(&ticks, 56.0),
        right: 14.0,
        top: 28.0,
        bottom: 36.0,
        x0: 0.0,
        x1: labels.len().max(1) as f64,
        y0: 0.0,
        y1: ymax,
        log_y: false,
    };
    let xt: Vec<(f64, String)> = labels.iter().enumerate().map(|(i, l)| (i as f64 + 0.5, l.clone())).collect();
    axes(&mut s, &f, &xt, &ticks, "", y_label);
    let bw = (f.px(1.0) - f.px(0.0)) * 0.6;
    for (i, &v) in values.iter().enumerate() {
        let x = f.px(i as f64 + 0.5) - bw / 2.0;
        let y = f.py(v);
        let c = colours.get(i).map(String::as_str).unwrap_or(colour(i));
        let _ = write!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{}\"><title>{}: {}</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#1d2330\">{}</text>",
            (f.py(0.0) - y).max(0.0),
            escape_html(c),
            escape_html(labels.get(i).map(String::as_str).unwrap_or("")),
            fmt_num(v, 4),
            x + bw / 2.0,
            y - 4.0,
            fmt_num(v, 4)
        );
    }
    s.push_str("</svg>");
    s
}

/// Bin counts of `values` over `bins` equal bins spanning `[lo, hi]` (values outside are
/// clamped into the first/last bin; non-finite values are skipped).
pub fn bin_counts(values: impl IntoIterator<Item = f64>, lo: f64, hi: f64, bins: usize) -> Vec<usize> {
    let bins = bins.max(1);
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut c = vec![0usize; bins];
    for v in values {
        if v.is_finite() {
            let b = (((v - lo) / span) * bins as f64).floor().clamp(0.0, bins as f64 - 1.0) as usize;
            c[b] += 1;
        }
    }
    c
}

/// Histograms of several series (name, colour, bin counts) over shared equal bins spanning
/// `[lo, hi]`; the bars of one bin are drawn side by side.
pub fn histogram(title: &str, series: &[(String, String, Vec<usize>)], lo: f64, hi: f64, x_label: &str, w: f64, h: f64) -> String {
    let bins = series.iter().map(|s| s.2.len()).max().unwrap_or(1).max(1);
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 0.5, lo + 0.5) };
    let ymax = series.iter().flat_map(|s| s.2.iter()).copied().max().unwrap_or(0) as f64;
    let ymax = if ymax > 0.0 { ymax * 1.1 } else { 1.0 };
    let items: Vec<Item> = series.iter().map(|(n, c, _)| (n.clone(), c.clone(), false, false)).collect();
    let (top, bottom) = (28.0, 38.0);
    let h = height_with_legend(&items, h, top, bottom);
    let right = 14.0 + legend_width(&items, w);
    let mut s = String::new();
    open(&mut s, w, h, title);
    let f = Frame { w, h, left: 52.0, right, top, bottom, x0: lo, x1: hi, y0: 0.0, y1: ymax, log_y: false };
    let xt: Vec<(f64, String)> = nice_ticks(lo, hi, 6).into_iter().map(|v| (v, tick_label(v))).collect();
    axes(&mut s, &f, &xt, &y_tick_pairs(nice_ticks(0.0, ymax, 5), false), x_label, "samples");
    let bin_w = (hi - lo) / bins as f64;
    let k = series.len().max(1) as f64;
    for (si, (name, col, c)) in series.iter().enumerate() {
        for (b, &n) in c.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let xa = f.px(lo + bin_w * (b as f64 + 0.05 + 0.9 * si as f64 / k));
            let xb = f.px(lo + bin_w * (b as f64 + 0.05 + 0.9 * (si as f64 + 1.0) / k));
            let y = f.py(n as f64);
            let _ = write!(
                s,
                "<rect x=\"{xa:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{}\" fill-opacity=\"0.85\"><title>{}: {} in [{}, {})</title></rect>",
                (xb - xa).max(0.5),
                f.py(0.0) - y,
                escape_html(col),
                escape_html(name),
                n,
                fmt_num(lo + bin_w * b as f64, 4),
                fmt_num(lo + bin_w * (b + 1) as f64, 4)
            );
        }
    }
    legend(&mut s, &f, &items);
    s.push_str("</svg>");
    s
}

/// A line chart of several series with markers, each with its shaded band if it has one. With
/// `log_y` the y axis is logarithmic (non-positive values are dropped). The legend is right of
/// the plot; the chart grows taller than `h` when the legend needs the room.
pub fn line_chart(title: &str, series: &[Series], x_label: &str, y_label: &str, w: f64, h: f64, log_y: bool) -> String {
    let ok = |x: f64, y: f64| x.is_finite() && y.is_finite() && (!log_y || y > 0.0);
    let band_ok = |&&(x, lo, hi): &&(f64, f64, f64)| ok(x, lo) && ok(x, hi);
    let (mut x0, mut x1, mut y0, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, f64::INFINITY, f64::NEG_INFINITY);
    let points = series.iter().flat_map(|s| s.points.iter().copied());
    let band_ends = series.iter().flat_map(|s| s.band.iter().filter(band_ok).flat_map(|&(x, lo, hi)| [(x, lo), (x, hi)]));
    for (x, y) in points.chain(band_ends).filter(|&(x, y)| ok(x, y)) {
        let y = if log_y { y.log10() } else { y };
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    let items: Vec<Item> =
        series.iter().map(|s| (s.name.clone(), s.colour.clone(), s.dashed, s.band.iter().any(|b| band_ok(&b)))).collect();
    let (top, bottom) = (28.0, 38.0);
    let h = height_with_legend(&items, h, top, bottom);
    let mut s = String::new();
    open(&mut s, w, h, title);
    if !x0.is_finite() {
        let _ = write!(s, "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#5b6473\">no data</text></svg>", w / 2.0, h / 2.0);
        return s;
    }
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    let (y0, y1) = if log_y {
        (y0.floor(), if y1.ceil() > y0.floor() { y1.ceil() } else { y0.floor() + 1.0 })
    } else {
        let pad = if y1 > y0 { (y1 - y0) * 0.08 } else { y0.abs().max(1.0) * 0.1 };
        let lo = if y0 >= 0.0 && y0 - pad < 0.0 { 0.0 } else { y0 - pad };
        (lo, y1 + pad)
    };
    let right = 14.0 + legend_width(&items, w);
    let y_ticks = y_tick_pairs(if log_y { (y0 as i64..=y1 as i64).map(|v| v as f64).collect() } else { nice_ticks(y0, y1, 5) }, log_y);
    let left = left_for(&y_ticks, 58.0);
    let f = Frame { w, h, left, right, top, bottom, x0, x1, y0, y1, log_y };
    let integer_x = series.iter().flat_map(|s| &s.points).all(|(x, _)| x.fract() == 0.0);
    let mut xt: Vec<(f64, String)> = nice_ticks(x0, x1, 6).into_iter().map(|v| (v, tick_label(v))).collect();
    if integer_x {
        xt.retain(|(v, _)| v.fract() == 0.0);
    }
    axes(&mut s, &f, &xt, &y_ticks, x_label, y_label);
    // Bands first, so that no band hides another series' line.
    for se in series {
        let b: Vec<&(f64, f64, f64)> = se.band.iter().filter(band_ok).collect();
        if b.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (i, &&(x, _, hi)) in b.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, f.px(x), f.py(hi));
        }
        for &&(x, lo, _) in b.iter().rev() {
            let _ = write!(d, " L{:.1},{:.1}", f.px(x), f.py(lo));
        }
        let _ = write!(s, "<path d=\"{d} Z\" fill=\"{}\" fill-opacity=\"0.18\" stroke=\"none\"/>", escape_html(&se.colour));
    }
    for se in series {
        let p: Vec<(f64, f64)> = se.points.iter().copied().filter(|&(x, y)| ok(x, y)).collect();
        if p.is_empty() {
            continue;
        }
        let mut d = String::new();
        for (i, &(x, y)) in p.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1}", if i == 0 { "M" } else { " L" }, f.px(x), f.py(y));
        }
        let c = escape_html(&se.colour);
        let _ = write!(
            s,
            "<path d=\"{d}\" fill=\"none\" stroke=\"{c}\" stroke-width=\"2\"{}/>",
            if se.dashed { " stroke-dasharray=\"5 3\"" } else { "" }
        );
        if p.len() <= 60 {
            for &(x, y) in &p {
                let _ = write!(
                    s,
                    "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"2.6\" fill=\"{c}\"><title>{}: ({}, {})</title></circle>",
                    f.px(x),
                    f.py(y),
                    escape_html(&se.name),
                    fmt_num(x, 4),
                    fmt_num(y, 5)
                );
            }
        }
    }
    legend(&mut s, &f, &items);
    s.push_str("</svg>");
    s
}

/// A scatter plot; every point has its own colour (e.g. the object's mean colour).
#[allow(clippy::too_many_arguments)]
pub fn scatter(
    title: &str,
    points: &[(f64, f64, String)],
    (x0, x1): (f64, f64),
    (y0, y1): (f64, f64),
    x_label: &str,
    y_label: &str,
    w: f64,
    h: f64,
) -> String {
    let mut s = String::new();
    open(&mut s, w, h, title);
    let y_ticks = y_tick_pairs(nice_ticks(y0, y1, 5), false);
    let left = left_for(&y_ticks, 52.0);
    let f = Frame { w, h, left, right: 14.0, top: 28.0, bottom: 38.0, x0, x1, y0, y1, log_y: false };
    let xt: Vec<(f64, String)> = nice_ticks(x0, x1, 6).into_iter().map(|v| (v, tick_label(v))).collect();
    axes(&mut s, &f, &xt, &y_ticks, x_label, y_label);
    for (x, y, c) in points {
        if x.is_finite() && y.is_finite() {
            let _ = write!(
                s,
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{}\" stroke=\"#333\" stroke-width=\"0.4\"/>",
                f.px(*x),
                f.py(*y),
                escape_html(c)
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(nice_ticks(0.0, 10.0, 5), vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let t = nice_ticks(0.13, 0.87, 4);
        assert!(t.first().unwrap() >= &0.13 && t.last().unwrap() <= &0.87 && t.len() >= 3);
    }

    #[test]
    fn an_axis_labels_its_ticks_in_one_notation() {
        assert_eq!(tick_labels(&nice_ticks(0.0, 0.0015, 3)), ["0", "0.0005", "0.0010", "0.0015"]);
        assert_eq!(tick_labels(&nice_ticks(0.0, 1.0, 4)), ["0", "0.25", "0.50", "0.75", "1.00"]);
        assert_eq!(tick_labels(&nice_ticks(0.0, 400.0, 4)), ["0", "100", "200", "300", "400"]);
        assert_eq!(tick_labels(&[0.0, 5e-6, 1e-5, 1.5e-5]), ["0", "5.0e-6", "1.0e-5", "1.5e-5"]);
        assert_eq!(tick_labels(&[0.00025, 0.0005, 0.00075, 0.001]), ["2.50e-4", "5.00e-4", "7.50e-4", "1.00e-3"]);
        assert_eq!(tick_labels(&[3.0]), ["3"]);
    }

    #[test]
    fn long_tick_labels_move_the_plot_right_of_the_axis_title() {
        let x_of_first_bar = |svg: &str| attr_nums(svg, "rect", "x")[0];
        let small = bar_chart("b", &["a".into()], &[0.0013], &[], "loss", 300.0, 200.0);
        let large = bar_chart("b", &["a".into()], &[3.0], &[], "loss", 300.0, 200.0);
        // "0.0005", "0.0010": 6 characters, so the plot starts at 25 + 6 x 6.4 px, past the default 56.
        assert!(small.contains(">0.0010</text>"), "{small}");
        assert!(x_of_first_bar(&small) > x_of_first_bar(&large), "small {} large {}", x_of_first_bar(&small), x_of_first_bar(&large));
        assert_eq!(left_for(&y_tick_pairs(nice_ticks(0.0, 3.45, 5), false), 56.0), 56.0);
    }

    #[test]
    fn charts_escape_text() {
        let se = Series { name: "<x>".into(), colour: "#000".into(), points: vec![(1.0, 2.0), (2.0, 1.0)], ..Default::default() };
        let svg = line_chart("<t>", &[se], "epoch", "loss", 400.0, 300.0, false);
        assert!(svg.contains("&lt;t&gt;") && svg.contains("&lt;x&gt;") && !svg.contains("<x>"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        let svg = line_chart(
            "log",
            &[Series {
                name: "a".into(),
                colour: "#000".into(),
                points: vec![(1.0, 1e-3), (2.0, 0.5)],
                dashed: true,
                ..Default::default()
            }],
            "e",
            "l",
            400.0,
            300.0,
            true,
        );
        assert!(svg.contains("1e-3"));
        let svg = bar_chart("b", &["<c>".into()], &[3.0], &[], "n", 300.0, 200.0);
        assert!(svg.contains("&lt;c&gt;"));
        let c = bin_counts([1.0, 2.0, 2.5, f64::NAN], 0.0, 3.0, 3);
        assert_eq!(c, vec![0, 1, 2]);
        let svg = histogram("h", &[("a".into(), "#111".into(), c)], 0.0, 3.0, "v", 300.0, 200.0);
        assert_eq!(svg.matches("<rect x=").count(), 2); // 2 non-empty bins
    }

    /// The numbers of every `attr="..."` in `svg` inside elements named `tag`.
    fn attr_nums(svg: &str, tag: &str, attr: &str) -> Vec<f64> {
        let pat = format!(" {attr}=\"");
        svg.match_indices(&format!("<{tag} "))
            .filter_map(|(i, _)| {
                let el = &svg[i..i + svg[i..].find('>').unwrap()];
                let v = &el[el.find(&pat)? + pat.len()..];
                v[..v.find('"').unwrap()].parse().ok()
            })
            .collect()
    }

    #[test]
    fn every_chart_is_a_standalone_svg_document() {
        let se = Series { name: "a".into(), colour: "#000".into(), points: vec![(1.0, 2.0)], ..Default::default() };
        let charts = [
            line_chart("l", &[se], "x", "y", 300.0, 200.0, false),
            line_chart("empty", &[], "x", "y", 300.0, 200.0, false),
            bar_chart("b", &["c".into()], &[3.0], &[], "n", 300.0, 200.0),
            histogram("h", &[("a".into(), "#111".into(), vec![1, 2])], 0.0, 2.0, "v", 300.0, 200.0),
            scatter("s", &[(0.5, 0.5, "#123".into())], (0.0, 1.0), (0.0, 1.0), "x", "y", 300.0, 200.0),
        ];
        for c in charts {
            // Without the namespace a browser renders the SVG inline in HTML only: as an <img>
            // or a file it is a broken image.
            assert!(c.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" "), "{}", &c[..c.len().min(80)]);
            assert!(c.ends_with("</svg>") && c.matches("<svg").count() == 1);
        }
    }

    #[test]
    fn legend_is_right_of_the_plot_and_bands_are_drawn() {
        let series: Vec<Series> = (0..12)
            .map(|i| Series {
                name: format!("model-{i} with a long name"),
                colour: colour(i).into(),
                points: (1..=5).map(|e| (e as f64, 1.0 / (e + i) as f64)).collect(),
                band: (1..=5).map(|e| (e as f64, 0.5 / (e + i) as f64, 2.0 / (e + i) as f64)).collect(),
                ..Default::default()
            })
            .collect();
        let svg = line_chart("t", &series, "epoch", "loss", 600.0, 200.0, false);
        // 12 legend rows do not fit in 200 px beside the plot: the chart grows instead of
        // stacking the legend over the data.
        let h = attr_nums(&svg, "svg", "height")[0];
        assert!(h >= 28.0 + 12.0 * 16.0 + 38.0, "height {h}");
        let data_x = attr_nums(&svg, "circle", "cx");
        let plot_right = data_x.iter().cloned().fold(0.0, f64::max);
        assert_eq!(data_x.len(), 60);
        let legend_x: Vec<f64> = attr_nums(&svg, "line", "x1").into_iter().filter(|&x| x > plot_right).collect();
        assert_eq!(legend_x.len(), 12, "every legend entry right of the data");
        // The band's top (2 / 1) sets the y range: the axis goes above the highest mean (1.0).
        assert_eq!(svg.matches("fill-opacity=\"0.18\"").count(), 12);
        assert!(svg.contains("text-anchor=\"end\" fill=\"#5b6473\">2.0</text>"), "y ticks reach the band's top");
        // One band rectangle per legend entry.
        assert_eq!(svg.matches("fill-opacity=\"0.2\"").count(), 12);
    }
}
