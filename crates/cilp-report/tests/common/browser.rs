//! Headless Chromium for the page tests: screenshots, the console log, and checks that run in the
//! page and write their answer into the DOM (read back with `--dump-dom`), such as "every image
//! decodes". Only `std`, so that other crates' tests can include this file with `#[path]`
//! (the `cilp` crate's `tests/study_files.rs` does, to check the report as `cilp run` writes it).
//!
//! Chromium is `$CILP_CHROMIUM`, else the first of `chromium`, `chromium-browser`,
//! `google-chrome` on `PATH`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The Chromium binary, or `None` (the caller skips, or fails when `$CI` is set: see
/// [`chromium_or_skip`]).
pub fn find_chromium() -> Option<PathBuf> {
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

/// Chromium, or `None` after printing why the test is skipped; panics instead when `$CI` is set.
pub fn chromium_or_skip() -> Option<PathBuf> {
    let found = find_chromium();
    if found.is_none() {
        let msg = "Chromium not found (set CILP_CHROMIUM or install it: Debian `apt-get install -y chromium`)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("skipped: {msg}");
    }
    found
}

fn file_url(page: &Path) -> String {
    format!("file://{}", page.canonicalize().unwrap_or_else(|e| panic!("{}: {e}", page.display())).display())
}

/// Runs headless Chromium with `args` on `page`; returns (stdout, stderr).
fn run(chromium: &Path, page: &Path, profile: &Path, args: &[String]) -> (String, String) {
    let url = file_url(page);
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
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(&url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium.display()));
    let (out, err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let out = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
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
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    assert!(status.success(), "chromium failed ({status}) on {url}:\n{err}");
    (out, err)
}

/// Takes a `width` x `height` screenshot of `page` into `png`; returns Chromium's log.
pub fn screenshot(chromium: &Path, page: &Path, png: &Path, profile: &Path, (width, height): (u32, u32)) -> String {
    let args = [format!("--window-size={width},{height}"), format!("--screenshot={}", png.display())];
    run(chromium, page, profile, &args).1
}

/// Console messages, script errors and failed loads in Chromium's log. The pages log nothing,
/// so any console message at all is reported.
pub fn problems(log: &str) -> Vec<&str> {
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

const RESULT_ID: &str = "cilp-test-result";

/// Opens a copy of `page` (written next to it, `<stem>.check.html`) with `script` added at the
/// end of the body, and returns what the script's function `check()` returned (a string), which
/// runs after the page's `load` event (every image loaded or failed by then), and Chromium's log.
/// The page under test is otherwise unchanged.
pub fn run_check(chromium: &Path, page: &Path, profile: &Path, script: &str) -> (String, String) {
    let html = std::fs::read_to_string(page).unwrap();
    let at = html.rfind("</body>").unwrap_or(html.len());
    let probe = format!(
        "<script>{script}\nwindow.addEventListener(\"load\", function () {{ var p = document.createElement(\"pre\"); \
         p.id = \"{RESULT_ID}\"; p.textContent = String(check()); document.body.appendChild(p); }});</script>"
    );
    let copy = page.with_extension("check.html");
    std::fs::write(&copy, format!("{}{probe}{}", &html[..at], &html[at..])).unwrap();
    let (dom, log) = run(chromium, &copy, profile, &["--virtual-time-budget=10000".into(), "--dump-dom".into()]);
    let open = format!("<pre id=\"{RESULT_ID}\">");
    let start = dom.find(&open).unwrap_or_else(|| panic!("no check result in the DOM of {}:\n{log}", copy.display()));
    let text = &dom[start + open.len()..];
    let text = &text[..text.find("</pre>").unwrap()];
    let text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&nbsp;", "\u{a0}").replace("&amp;", "&");
    (text, log)
}

/// In-page check: one line per `<img>` that did not decode (its `alt`), after a first line with
/// the number of images.
pub const IMAGES_DECODE: &str = "function check() {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !i.complete || i.naturalWidth === 0 || i.naturalHeight === 0; });
  return [imgs.length].concat(bad.map(function (i) { return i.alt || i.src.slice(0, 60); })).join(\"\\n\");
}";

/// Loads `page` in Chromium and returns (number of `<img>`, the `alt` of each one that did not
/// decode, i.e. has `naturalWidth` 0), plus the console problems of that load.
pub fn images_that_fail(chromium: &Path, page: &Path, profile: &Path) -> (usize, Vec<String>, Vec<String>) {
    let (text, log) = run_check(chromium, page, profile, IMAGES_DECODE);
    let mut lines = text.lines();
    let n = lines.next().and_then(|l| l.trim().parse().ok()).unwrap_or_else(|| panic!("bad check output {text:?}"));
    (n, lines.map(str::to_owned).collect(), problems(&log).into_iter().map(str::to_owned).collect())
}

/// Opens every file of `files` on its own, as an `<img src="file://...">` of a wrapper page
/// written to `dir`, and returns the ones that do not decode (e.g. an SVG without the SVG
/// namespace, which only renders inline in HTML).
pub fn files_that_fail_as_images(chromium: &Path, files: &[PathBuf], dir: &Path, profile: &Path) -> Vec<String> {
    let mut html = String::from("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>files</title></head><body>");
    for f in files {
        let url = file_url(f);
        assert!(!url.contains(['"', '<', '>', '&']), "unusual path {url}");
        html.push_str(&format!("<img alt=\"{}\" src=\"{url}\">", f.display()));
    }
    html.push_str("</body></html>");
    let page = dir.join("standalone-files.html");
    std::fs::write(&page, html).unwrap();
    let (n, bad, problems) = images_that_fail(chromium, &page, profile);
    assert_eq!(n, files.len(), "images on the wrapper page");
    assert!(problems.is_empty(), "console problems opening the files:\n{}", problems.join("\n"));
    bad
}
