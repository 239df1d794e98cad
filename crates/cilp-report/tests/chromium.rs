//! Opens the exploration page and the run report in headless Chromium, takes a screenshot of
//! each and fails on console errors, failed loads or missing images.
//!
//! Chromium is `$CILP_CHROMIUM`, else the first of `chromium`, `chromium-browser`,
//! `google-chrome` on `PATH`. If none is found the test is skipped with a message, unless `$CI`
//! is set, in which case it fails (Debian: `apt-get install -y chromium`). Set
//! `$CILP_SCREENSHOT_DIR` to keep the pages and screenshots for a look.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cilp_report::{ExploreOptions, ReportOptions, explore, report};
use common::*;

fn find_chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CILP_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// Runs headless Chromium on `page`, writing `png`; returns its stderr.
fn screenshot(chromium: &Path, page: &Path, png: &Path, profile: &Path) -> String {
    let url = format!("file://{}", page.canonicalize().unwrap().display());
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || std::io::read_to_string(stderr).unwrap_or_default());
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 120 s on {url}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let err = reader.join().unwrap();
    assert!(status.success(), "chromium failed ({status}) on {url}:\n{err}");
    err
}

/// Console errors and failed loads in Chromium's log. The pages have no scripts, so any
/// console message at all is unexpected and reported.
fn problems(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| {
            l.contains("CONSOLE")
                || l.contains("net::ERR_")
                || l.contains("Failed to load resource")
                || l.contains("Refused to")
                || l.contains("Uncaught")
        })
        .collect()
}

/// Every `<img>` has a non-empty PNG/SVG data URI whose payload decodes to an image.
fn check_images(html: &str) -> usize {
    let imgs: Vec<&str> = html.match_indices("<img").map(|(i, _)| &html[i..i + html[i..].find('>').unwrap()]).collect();
    for tag in &imgs {
        let src = attr_values(tag, "src");
        assert_eq!(src.len(), 1, "<img> without exactly one src: {}", &tag[..tag.len().min(120)]);
        let src = src[0];
        let (head, payload) = src
            .split_once(";base64,")
            .unwrap_or_else(|| panic!("not a base64 data URI: {}", &src[..src.len().min(60)]));
        assert!(head.starts_with("data:image/"), "{head}");
        assert!(payload.len() > 40, "empty image {head}");
        let bytes = decode_base64(payload);
        if head == "data:image/png" {
            let img = cilp_data::image::decode_png(&bytes, Path::new("<img>")).expect("img is a valid PNG");
            assert!(img.width >= 64 && img.height >= 64);
        } else if head == "data:image/svg+xml" {
            assert!(String::from_utf8(bytes).unwrap().contains("<svg"));
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

#[test]
fn pages_render_in_headless_chromium_without_errors() {
    let Some(chromium) = find_chromium() else {
        let msg = "Chromium not found (set CILP_CHROMIUM or install it: Debian `apt-get install -y chromium`)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
        return;
    };
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

    for (page, n_img) in [(ex.join("index.html"), 18), (rep.clone(), 18 + 1)] {
        let html = std::fs::read_to_string(&page).unwrap();
        assert_self_contained(&html);
        assert_eq!(check_images(&html), n_img, "images on {}", page.display());
        let png = page.with_extension("png");
        let _ = std::fs::remove_file(&png);
        let log = screenshot(&chromium, &page, &png, &tmp.path().join("profile"));
        let bad = problems(&log);
        assert!(bad.is_empty(), "console errors or failed loads on {}:\n{}", page.display(), bad.join("\n"));
        check_screenshot(&png);
        if keep.is_some() {
            eprintln!("kept {} and {}", page.display(), png.display());
        }
    }
}
