//! The written observations of an exploration: what its numbers say, in sentences.

use super::{ClassExplore, ExploreStats, thousands};

/// Written observations derived from the statistics.
pub fn observations(st: &ExploreStats) -> Vec<String> {
    let mut o = Vec::new();
    let cl = &st.classes;
    if cl.is_empty() {
        return o;
    }
    // Balance.
    let counts: Vec<usize> = cl.iter().map(|c| c.stats.count).collect();
    let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
    let list = cl.iter().map(|c| format!("{} {}", thousands(c.stats.count), c.stats.name)).collect::<Vec<_>>().join(", ");
    if min == max {
        o.push(format!("The classes are balanced: {list} ({} samples in all).", thousands(st.samples)));
    } else {
        o.push(format!(
            "The classes are imbalanced: {list} (the largest has {:.1}x the smallest); accuracy alone can mislead.",
            max as f64 / min.max(1) as f64
        ));
    }
    // LiDAR coverage.
    let hits = |c: &ClassExplore| {
        let h = c.stats.hits_per_sample;
        format!("mean {:.0}, range {:.0}-{:.0}", h.mean, h.min, h.max)
    };
    if cl.len() == 2 {
        let (a, b) = (&cl[0], &cl[1]);
        let (ma, mb) = (a.stats.hits_per_sample.mean, b.stats.hits_per_sample.mean);
        let (small, large) = if ma <= mb { (a, b) } else { (b, a) };
        o.push(format!(
            "{} cover fewer LiDAR pixels than {} ({} vs {}).",
            capitalise(&small.stats.name),
            large.stats.name,
            hits(small),
            hits(large)
        ));
    } else {
        o.push(format!(
            "LiDAR pixels on the object per sample: {}.",
            cl.iter().map(|c| format!("{} {}", c.stats.name, hits(c))).collect::<Vec<_>>().join("; ")
        ));
    }
    let ratio = cl.iter().map(|c| c.stats.hit_ratio * c.stats.count as f64).sum::<f64>() / st.samples.max(1) as f64;
    let (dlo, dhi) = cl
        .iter()
        .filter_map(|c| c.stats.hit_depth_range)
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), (lo, hi)| (a.min(lo), b.max(hi)));
    if dlo.is_finite() {
        o.push(format!(
            "Only {:.1}% of LiDAR beams return; every other beam reads the 50 m maximum (no return). Returns lie between {:.1} m and {:.1} m.",
            ratio * 100.0,
            dlo,
            dhi
        ));
    } else {
        o.push("No LiDAR beam returns in any sample: every depth is 50 m (no return).".into());
    }
    // RGB darkness.
    o.push(format!(
        "Images are {:.1}% black: mean pixel value {:.4} (on a 0-1 scale); only the lit faces of the object are visible.",
        st.black_fraction * 100.0,
        st.mean_pixel_value
    ));
    o.push(format!(
        "Lit RGB pixels per image: {}.",
        cl.iter()
            .map(|c| {
                let l = c.stats.lit_pixels_per_sample;
                format!("{} mean {:.0} ({:.0}-{:.0})", c.stats.name, l.mean, l.min, l.max)
            })
            .collect::<Vec<_>>()
            .join(", ")
    ));
    // Colours.
    let with_colour: usize = cl.iter().map(|c| c.hue_histogram.counts.iter().sum::<usize>()).sum();
    if with_colour > 0 {
        let low: usize = cl.iter().map(|c| c.low_saturation).sum();
        let mut bins = [0usize; 12];
        for c in cl {
            for (b, n) in bins.iter_mut().zip(&c.hue_histogram.counts) {
                *b += n;
            }
        }
        let used = bins.iter().filter(|&&n| n * 50 >= with_colour).count();
        o.push(format!(
            "Object colours vary: the mean lit colour's hue covers {used} of 12 hue bins (30 degrees each, counting bins with at least 2% of samples); {:.0}% of objects look grey or white (saturation < 0.15).",
            low as f64 / with_colour as f64 * 100.0
        ));
    }
    // Unpaired and ignored files.
    if st.unpaired_total > 0 {
        let parts: Vec<String> = cl
            .iter()
            .filter(|c| c.rgb_without_lidar.count + c.lidar_without_rgb.count > 0)
            .map(|c| {
                format!(
                    "{}: {} RGB without LiDAR, {} LiDAR without RGB",
                    c.stats.name, c.rgb_without_lidar.count, c.lidar_without_rgb.count
                )
            })
            .collect();
        o.push(format!("{} unpaired files were skipped ({}).", thousands(st.unpaired_total), parts.join("; ")));
    } else {
        o.push("Every RGB file has a LiDAR partner: no unpaired files.".into());
    }
    let ignored: usize = cl.iter().map(|c| c.ignored_files.count).sum();
    if ignored > 0 {
        o.push(format!("{ignored} files with other extensions were ignored."));
    }
    let nested: usize = cl.iter().map(|c| c.nested_dirs.len()).sum();
    if nested > 0 {
        o.push(format!("{nested} nested folder(s) inside rgb/ or lidar/ (e.g. a duplicate lidar/lidar/) were not read."));
    }
    o
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}
