//! Opens the exploration page and the run report in headless Chromium, takes a screenshot of
//! each and fails on console messages, failed loads or any image that does not decode (read back
//! from the DOM: a broken image logs nothing to the console). Also opens every kind of chart
//! `cilp_report::svg` draws as a standalone `.svg` file, and sorts and filters the runs table.
//!
//! Chromium: see `common/browser.rs`. If it is missing the tests are skipped with a message,
//! unless `$CI` is set, in which case they fail (Debian: `apt-get install -y chromium`). Set
//! `$CILP_SCREENSHOT_DIR` to keep the pages and screenshots for a look.

mod common;

use std::path::{Path, PathBuf};

use cilp_report::svg::{self, Series};
use cilp_report::{ExploreOptions, ReportOptions, explore, report};
use common::browser::{chromium_or_skip, files_that_fail_as_images, images_that_fail, problems, run_check, screenshot};
use common::*;

/// Every `<img>` has a non-empty PNG/SVG data URI whose payload decodes to an image.
fn check_images(html: &str) -> usize {
    let imgs: Vec<&str> = html.match_indices("<img").map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()]).collect();
    for tag in &imgs {
        let src = attr_values(tag, "src");
        assert_eq!(src.len(), 1, "<img> without exactly one src: {}", &tag[..tag.len().min(120)]);
        let src = src[0];
        let (head, payload) = src.split_once(";base64,").unwrap_or_else(|| panic!("not a base64 data URI: {}", &src[..src.len().min(60)]));
        assert!(head.starts_with("data:image/"), "{head}");
        assert!(payload.len() > 40, "empty image {head}");
        let bytes = decode_base64(payload);
        if head == "data:image/png" {
            let img = cilp_data::image::decode_png(&bytes, Path::new("<img>")).expect("img is a valid PNG");
            assert!(img.width >= 64 && img.height >= 64);
        } else if head == "data:image/svg+xml" {
            let text = String::from_utf8(bytes).unwrap();
            assert!(text.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""), "SVG image without the SVG namespace");
        }
    }
    imgs.len()
}

fn decode_base64(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("bad base64 byte {c}"),
    } as u32;
    let s = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    for ch in s.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in ch.iter().enumerate() {
            n |= val(c) << (18 - 6 * i);
        }
        out.extend_from_slice(&n.to_be_bytes()[1..ch.len()]);
    }
    out
}

/// The screenshot is a 1280-wide PNG with real content (many distinct colours).
fn check_screenshot(png: &Path) {
    let bytes = std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot at {}: {e}", png.display()));
    let img = cilp_data::image::decode_png(&bytes, png).unwrap();
    assert_eq!(img.width, 1280);
    let mut colours: Vec<[u8; 3]> = img.pixels.chunks_exact(4).step_by(7).map(|p| [p[0], p[1], p[2]]).collect();
    colours.sort_unstable();
    colours.dedup();
    assert!(colours.len() > 200, "screenshot looks blank ({} colours)", colours.len());
}

/// In-page check of the runs table: sorts by params (twice) and by name, filters, and returns
/// what it saw, one `key: value` per line.
const TABLE_CHECK: &str = r#"function check() {
  var t = document.getElementById("runs-table"), box = document.getElementById("runs-filter");
  var heads = t.tHead.rows[0].cells, out = [];
  function col(name) { return Array.prototype.findIndex.call(heads, function (h) { return h.textContent.replace(/[^a-z ]/g, "").trim() === name; }); }
  function column(i) { return Array.prototype.map.call(t.tBodies[0].rows, function (r) { return r.cells[i].textContent; }).join("|"); }
  var p = col("params"), n = col("name");
  heads[p].click(); out.push("params asc: " + column(p) + " " + heads[p].getAttribute("aria-sort"));
  heads[p].click(); out.push("params desc: " + column(p) + " " + heads[p].getAttribute("aria-sort"));
  heads[n].click(); out.push("name asc: " + column(n));
  box.value = "LATE  completed"; box.dispatchEvent(new Event("input"));
  var shown = Array.prototype.filter.call(t.tBodies[0].rows, function (r) { return !r.hidden; });
  out.push("filtered: " + shown.map(function (r) { return r.cells[n].textContent; }).join("|"));
  out.push("count: " + document.getElementById("runs-count").textContent);
  return out.join("\n");
}"#;

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no {key:?} in {text}"))
}

#[test]
fn pages_render_in_headless_chromium_without_errors() {
    let Some(chromium) = chromium_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let keep = std::env::var_os("CILP_SCREENSHOT_DIR").map(PathBuf::from);
    let dir = keep.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let work = tmp.path().join("work");
    let data = make_data(&work, 8);
    add_evil_unpaired(&data);
    let runs = make_runs(&work);
    let ex = dir.join("explore");
    explore(&data, &ex, &ExploreOptions { gallery_per_class: 3, ..Default::default() }).unwrap();
    let rep = dir.join("report.html");
    report(&runs, &rep, &ReportOptions { explore_dir: Some(ex.clone()), ..Default::default() }).unwrap();
    let profile = tmp.path().join("profile");

    for (page, n_img) in [(ex.join("index.html"), 18), (rep.clone(), 18 + 2)] {
        let html = std::fs::read_to_string(&page).unwrap();
        assert_self_contained(&html);
        assert_eq!(check_images(&html), n_img, "images on {}", page.display());
        let png = page.with_extension("png");
        let _ = std::fs::remove_file(&png);
        let log = screenshot(&chromium, &page, &png, &profile, (1280, 2000));
        let bad = problems(&log);
        assert!(bad.is_empty(), "console errors or failed loads on {}:\n{}", page.display(), bad.join("\n"));
        check_screenshot(&png);
        // Every image decodes in the browser (a broken one logs nothing to the console).
        let (n, broken, bad) = images_that_fail(&chromium, &page, &profile);
        assert_eq!(n, n_img, "images in the DOM of {}", page.display());
        assert!(broken.is_empty(), "images that do not decode on {}: {broken:?}", page.display());
        assert!(bad.is_empty(), "console problems on {}:\n{}", page.display(), bad.join("\n"));
        if keep.is_some() {
            eprintln!("kept {} and {}", page.display(), png.display());
        }
    }

    // The runs table sorts and filters (numbers by value, unknown last), without console output.
    let (text, log) = run_check(&chromium, &rep, &profile, TABLE_CHECK);
    assert!(problems(&log).is_empty(), "console problems:\n{}", problems(&log).join("\n"));
    assert_eq!(line(&text, "params asc: "), "13,015,952|13,147,202|13,147,202|- ascending", "{text}");
    assert_eq!(line(&text, "params desc: "), "13,147,202|13,147,202|13,015,952|- descending", "{text}");
    assert_eq!(line(&text, "name asc: "), format!("cilp_pretrain|fusion/{EVIL}|fusion/late|fusion/late-s52"), "{text}");
    assert_eq!(line(&text, "filtered: "), "fusion/late|fusion/late-s52", "{text}");
    assert_eq!(line(&text, "count: "), "2 of 4 runs", "{text}");
}

/// Every kind of chart opens on its own as an `.svg` file (as the studies write them and
/// `results.md` links them), not only inline in a page.
#[test]
fn every_chart_kind_opens_as_a_standalone_svg_file() {
    let Some(chromium) = chromium_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let se = |dashed| Series {
        name: format!("{SCRIPT} & co"),
        colour: svg::colour(1).into(),
        points: vec![(1.0, 0.5), (2.0, 0.25), (3.0, 0.2)],
        band: vec![(1.0, 0.4, 0.6), (2.0, 0.2, 0.3), (3.0, 0.1, 0.3)],
        dashed,
    };
    let mut charts = vec![
        ("line.svg", svg::line_chart(&format!("line {EVIL}"), &[se(false), se(true)], "epoch", "loss", 560.0, 280.0, false)),
        ("log.svg", svg::line_chart("log", &[se(false)], "epoch", "loss", 560.0, 280.0, true)),
        ("empty.svg", svg::line_chart("no data", &[], "epoch", "loss", 560.0, 280.0, false)),
        ("bar.svg", svg::bar_chart("bars", &[EVIL.to_owned(), "b".into()], &[1.0, 2.0], &[], "n", 400.0, 260.0)),
        ("hist.svg", svg::histogram("hist", &[("a".into(), "#111".into(), vec![1, 3, 2])], 0.0, 3.0, "v", 400.0, 260.0)),
        ("scatter.svg", svg::scatter("s", &[(0.5, 0.5, "#123".into())], (0.0, 1.0), (0.0, 1.0), "x", "y", 300.0, 200.0)),
    ];
    charts.extend(study_charts());
    let files: Vec<PathBuf> = charts
        .iter()
        .map(|(name, svg)| {
            let p = tmp.path().join(name);
            std::fs::write(&p, svg).unwrap();
            p
        })
        .collect();
    let broken = files_that_fail_as_images(&chromium, &files, tmp.path(), &tmp.path().join("profile"));
    assert!(broken.is_empty(), "SVG files that do not open as images: {broken:?}");
}

/// The check itself tells a broken image from a good one: an SVG without the SVG namespace
/// (what the charts were) fails, the same SVG with it passes.
#[test]
fn image_check_catches_an_svg_without_namespace() {
    let Some(chromium) = chromium_or_skip() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let good = svg::bar_chart("b", &["a".into()], &[1.0], &[], "n", 300.0, 200.0);
    let bad = good.replacen(&format!(" xmlns=\"{}\"", svg::SVG_NS), "", 1);
    assert_ne!(good, bad);
    let files: Vec<PathBuf> = [("good.svg", &good), ("bad.svg", &bad)]
        .iter()
        .map(|(n, t)| {
            let p = tmp.path().join(n);
            std::fs::write(&p, t).unwrap();
            p
        })
        .collect();
    let broken = files_that_fail_as_images(&chromium, &files, tmp.path(), &tmp.path().join("profile"));
    assert_eq!(broken, [files[1].display().to_string()]);
    let page = tmp.path().join("page.html");
    let uri = |t: &str| cilp_report::html::data_uri("image/svg+xml", t.as_bytes());
    std::fs::write(&page, format!("<!DOCTYPE html><img alt=\"good\" src=\"{}\"><img alt=\"bad\" src=\"{}\">", uri(&good), uri(&bad)))
        .unwrap();
    let (n, broken, _) = images_that_fail(&chromium, &page, &tmp.path().join("profile"));
    assert_eq!((n, broken), (2, vec!["bad".to_owned()]));
}
