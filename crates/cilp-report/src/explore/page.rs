//! The exploration page: its sections (tables, inline SVG charts) and the gallery, as HTML.

use std::fmt::Write as _;

use cilp_data::dataset::NameList;

use crate::html::{self, escape_html, table};
use crate::svg;

use super::{ClassExplore, ExploreStats, GalleryItem, Histogram, hsv, thousands};

/// The exploration page (self-contained HTML).
pub fn render_page(stats: &ExploreStats, gallery: &[GalleryItem]) -> String {
    let sub =
        format!("{} samples in {} classes from <code>{}</code>", thousands(stats.samples), stats.classes.len(), escape_html(&stats.root));
    let body = format!("{}{}", render_sections(stats, 2), render_gallery(gallery, 2));
    html::page(&stats.title, &sub, "", &body)
}

fn class_colour(i: usize) -> String {
    svg::colour(i).to_owned()
}

fn swatch(c: [u8; 3]) -> String {
    format!("<span class=\"swatch\" style=\"background:rgb({},{},{})\"></span>", c[0], c[1], c[2])
}

/// The statistics sections (observations, formats, counts and splits, LiDAR, RGB, colours,
/// unpaired files). `h` is the heading level of the section titles (2 on the exploration
/// page, 3 when nested in the run report).
pub fn render_sections(st: &ExploreStats, h: usize) -> String {
    let mut s = String::new();
    let hh = |t: &str| format!("<h{h}>{}</h{h}>", escape_html(t));
    // Observations first: they are the summary.
    let _ = write!(s, "<section>{}<ul class=\"obs\">", hh("Observations"));
    for ob in &st.observations {
        let _ = write!(s, "<li>{}</li>", escape_html(ob));
    }
    s.push_str("</ul></section>");

    // Formats.
    let rows: Vec<Vec<String>> = st
        .formats
        .iter()
        .map(|f| {
            vec![
                f.what.clone(),
                f.file.clone(),
                format!("({})", f.shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
                f.dtype.clone(),
                f.note.clone(),
            ]
        })
        .collect();
    let _ =
        write!(s, "<section>{}{}</section>", hh("Files, shapes and dtypes"), table(&["data", "file", "shape", "dtype", "notes"], &rows));

    // Counts and splits.
    let names: Vec<String> = st.classes.iter().map(|c| c.stats.name.clone()).collect();
    let counts: Vec<f64> = st.classes.iter().map(|c| c.stats.count as f64).collect();
    let colours: Vec<String> = (0..names.len()).map(class_colour).collect();
    let bar = svg::bar_chart("Samples per class", &names, &counts, &colours, "samples", 360.0, 260.0);
    let mut headers = vec!["split".to_owned(), "train".into(), "val".into()];
    for n in &names {
        headers.push(format!("{n} train/val"));
    }
    let rows: Vec<Vec<String>> = st
        .splits
        .iter()
        .map(|sp| {
            let mut r = vec![sp.name.clone(), thousands(sp.train), thousands(sp.val)];
            r.extend(sp.per_class.iter().map(|(t, v)| format!("{} / {}", thousands(*t), thousands(*v))));
            r
        })
        .collect();
    let hdr: Vec<&str> = headers.iter().map(String::as_str).collect();
    let count_rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            vec![
                c.stats.name.clone(),
                c.stats.label.to_string(),
                thousands(c.stats.count),
                thousands(c.rgb_files),
                thousands(c.lidar_files),
                thousands(c.rgb_without_lidar.count + c.lidar_without_rgb.count),
            ]
        })
        .collect();
    let _ = write!(
        s,
        "<section>{}<div class=\"charts\"><div>{bar}</div><div>{}<h4>Splits</h4>{}</div></div></section>",
        hh("Samples per class and splits"),
        table(&["class", "label", "pairs", "RGB files", "LiDAR files", "unpaired"], &count_rows),
        table(&hdr, &rows)
    );

    // LiDAR.
    let rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            let h = c.stats.hits_per_sample;
            vec![
                c.stats.name.clone(),
                c.stats.hit_depth_range.map(|(a, b)| format!("{a:.2} - {b:.2}")).unwrap_or_else(|| "-".into()),
                format!("{:.2}%", c.stats.hit_ratio * 100.0),
                format!("{:.0}", h.min),
                format!("{:.1}", h.mean),
                format!("{:.0}", h.max),
            ]
        })
        .collect();
    let hist = |title: &str, f: &dyn Fn(&ClassExplore) -> &Histogram, x: &str| {
        let series: Vec<(String, String, Vec<usize>)> =
            st.classes.iter().enumerate().map(|(i, c)| (c.stats.name.clone(), class_colour(i), f(c).counts.clone())).collect();
        let (lo, hi) = st.classes.first().map(|c| (f(c).lo, f(c).hi)).unwrap_or((0.0, 1.0));
        svg::histogram(title, &series, lo, hi, x, 520.0, 260.0)
    };
    let _ = write!(
        s,
        "<section>{}{}<div class=\"charts\">{}</div></section>",
        hh("LiDAR depth"),
        table(&["class", "hit depth range (m)", "hit ratio", "hits/sample min", "mean", "max"], &rows),
        hist("LiDAR hits per sample", &|c| &c.hits_histogram, "beams returning (of 4096)")
    );

    // RGB.
    let rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            let l = c.stats.lit_pixels_per_sample;
            vec![
                c.stats.name.clone(),
                format!("{:.0}", l.min),
                format!("{:.1}", l.mean),
                format!("{:.0}", l.max),
                format!("{:.2}%", c.black_fraction * 100.0),
                c.mean_pixel.iter().map(|v| format!("{v:.4}")).collect::<Vec<_>>().join(" / "),
                c.stats.mean_lit_colour.map(|m| m.iter().map(|v| format!("{v:.0}")).collect::<Vec<_>>().join(", ")).unwrap_or("-".into()),
            ]
        })
        .collect();
    let mut t = table(&["class", "lit px min", "mean", "max", "black pixels", "mean R / G / B (0-1)", "mean lit colour (0-255)"], &rows);
    // Colour swatches after the table (kept out of the escaped cells).
    let sw: Vec<String> = st
        .classes
        .iter()
        .filter_map(|c| c.stats.mean_lit_colour.map(|m| format!("{}{}", swatch(m.map(|v| v.round() as u8)), escape_html(&c.stats.name))))
        .collect();
    if !sw.is_empty() {
        let _ = write!(t, "<p class=\"small muted\">Mean lit colour: {}</p>", sw.join(" &nbsp; "));
    }
    let hue_series: Vec<(String, String, Vec<usize>)> =
        st.classes.iter().enumerate().map(|(i, c)| (c.stats.name.clone(), class_colour(i), c.hue_histogram.counts.clone())).collect();
    let pts: Vec<(f64, f64, String)> = st
        .classes
        .iter()
        .flat_map(|c| c.colour_samples.iter())
        .map(|&c| {
            let (h, sat, _) = hsv(c.map(f64::from));
            (h, sat, format!("rgb({},{},{})", c[0], c[1], c[2]))
        })
        .collect();
    let _ = write!(
        s,
        "<section>{}{t}<div class=\"charts\">{}{}{}</div></section>",
        hh("RGB images and object colours"),
        hist("Lit RGB pixels per image", &|c| &c.lit_histogram, "pixels with R, G or B > 0"),
        svg::histogram("Hue of the mean lit colour", &hue_series, 0.0, 360.0, "hue (degrees)", 520.0, 260.0),
        svg::scatter(
            "Object colours (mean lit colour per sample)",
            &pts,
            (0.0, 360.0),
            (0.0, 1.0),
            "hue (degrees)",
            "saturation",
            520.0,
            260.0
        )
    );

    // Unpaired files.
    let rows: Vec<Vec<String>> = st
        .classes
        .iter()
        .map(|c| {
            let ex = |n: &NameList| {
                if n.count == 0 {
                    "0".to_owned()
                } else {
                    format!("{} ({}{})", n.count, n.examples.join(", "), if n.count > n.examples.len() { ", ..." } else { "" })
                }
            };
            vec![
                c.stats.name.clone(),
                ex(&c.rgb_without_lidar),
                ex(&c.lidar_without_rgb),
                ex(&c.ignored_files),
                c.nested_dirs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            ]
        })
        .collect();
    let _ = write!(
        s,
        "<section>{}{}{}</section>",
        hh("Unpaired and ignored files"),
        table(&["class", "RGB without LiDAR", "LiDAR without RGB", "ignored files", "nested folders"], &rows),
        if st.warnings.is_empty() {
            "<p class=\"muted small\">The reader reported no problems.</p>".to_owned()
        } else {
            format!("<p class=\"small\">Reader warnings:</p>{}", html::list(&st.warnings))
        }
    );
    s
}

/// The gallery section: per sample RGB | LiDAR depth | LiDAR point cloud.
pub fn render_gallery(items: &[GalleryItem], h: usize) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut s = format!(
        "<section><h{h}>Gallery</h{h}><p class=\"small muted\">Per sample: the RGB image; the LiDAR depth as stored \
         (rows = azimuth, columns = zenith; viridis, near = yellow, far = purple, scaled per sample; no return = light grey); \
         the LiDAR hit points as a 3-D point cloud (oblique orthographic view, coloured by height z, same scale for every sample). \
         64x64 images are upscaled with nearest neighbour.</p><div class=\"gallery\">"
    );
    for it in items {
        let name = format!("{} / {}", it.class, it.stem);
        let fig = |uri: &str, what: &str| {
            // Only data URIs produced by this crate are accepted as image sources.
            let src = if uri.starts_with("data:image/png;base64,") { escape_html(uri) } else { String::new() };
            format!(
                "<figure><img class=\"px\" alt=\"{} {}\" src=\"{src}\"><figcaption>{}</figcaption></figure>",
                escape_html(&name),
                escape_html(what),
                escape_html(what)
            )
        };
        let _ = write!(
            s,
            "<div class=\"sample\"><div class=\"cap\"><b>{}</b> &middot; {} LiDAR hits &middot; {} lit pixels</div><div class=\"triple\">{}{}{}</div></div>",
            escape_html(&name),
            it.hits,
            it.lit,
            fig(&it.rgb, "RGB"),
            fig(&it.depth, "LiDAR depth"),
            fig(&it.cloud, "LiDAR point cloud")
        );
    }
    s.push_str("</div></section>");
    s
}
