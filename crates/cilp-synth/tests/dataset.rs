//! End-to-end checks of the generator: determinism, on-disk format, geometry, sensor relation,
//! statistics against REFERENCE §1, and the harder-data knobs.

use std::path::Path;

use cilp_synth::geom::Vec3;
use cilp_synth::render::{angles, render_depth};
use cilp_synth::scene::{NO_RETURN, SceneKnobs, build_scene};
use cilp_synth::stats::sample_stats;
use cilp_synth::{GenerateOptions, ObjectClass, SynthError, generate, name_width, render_sample};

fn small(per_class: usize, seed: u64) -> GenerateOptions {
    GenerateOptions { per_class, seed, ..GenerateOptions::default() }
}

/// All files under `dir`, relative path -> bytes, sorted.
fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.strip_prefix(dir).unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn same_seed_same_bytes_regardless_of_threads_and_different_seed_differs() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    generate(&a, &GenerateOptions { threads: Some(1), ..small(12, 51) }).unwrap();
    generate(&b, &GenerateOptions { threads: Some(3), ..small(12, 51) }).unwrap();
    generate(&c, &GenerateOptions { threads: Some(2), ..small(12, 52) }).unwrap();
    let (ta, tb, tc) = (tree(&a), tree(&b), tree(&c));
    // The manifest records the thread option; everything else must be byte-identical.
    let strip = |t: &[(String, Vec<u8>)]| t.iter().filter(|(n, _)| n != "manifest.json").cloned().collect::<Vec<_>>();
    assert_eq!(strip(&ta), strip(&tb));
    assert_eq!(ta.len(), 2 * (2 + 2 * 12) + 1);
    let differing = strip(&ta).iter().zip(strip(&tc)).filter(|((_, x), (_, y))| x != y).count();
    assert!(differing >= 2 * 2 * 12 - 2, "a different seed changes (nearly) every sample, got {differing}");
}

#[test]
fn layout_and_formats_are_what_the_reader_expects() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    let report = generate(&out, &small(5, 51)).unwrap();
    assert_eq!(report.samples, 10);
    let want_angles = angles();
    for class in ["cubes", "spheres"] {
        let dir = out.join(class);
        for name in ["azimuth.npy", "zenith.npy"] {
            let a = cilp_data::npy::read_npy(&dir.join(name)).unwrap();
            assert_eq!(a.shape, vec![64]);
            assert_eq!(a.data, want_angles);
            assert!((a.data[0] - -0.279_252_68).abs() < 1e-7 && (a.data[63] - 0.270_526_02).abs() < 1e-7);
            assert_eq!(a.data[32], 0.0);
        }
        for i in 0..5 {
            let stem = format!("{i:04}");
            let d = cilp_data::npy::read_npy(&dir.join("lidar").join(format!("{stem}.npy"))).unwrap();
            assert_eq!(d.shape, vec![64, 64]);
            assert!(d.data.iter().all(|v| v.is_finite() && *v > 0.0 && *v <= 50.0));
            let png = std::fs::read(dir.join("rgb").join(format!("{stem}.png"))).unwrap();
            let img = cilp_data::image::decode_png(&png, Path::new("x.png")).unwrap();
            assert_eq!((img.width, img.height, img.pixels.len()), (64, 64, 64 * 64 * 4));
            assert!(img.pixels.chunks_exact(4).all(|p| p[3] == 255));
        }
        assert_eq!(std::fs::read_dir(dir.join("lidar")).unwrap().count(), 5);
        assert_eq!(std::fs::read_dir(dir.join("rgb")).unwrap().count(), 5);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 51);
    assert_eq!(manifest["options"]["classes"], serde_json::json!(["cubes", "spheres"]));
    assert!(manifest["generator"].as_str().unwrap().starts_with("cilp-synth"));
}

#[test]
fn refuses_non_empty_directory_unless_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("data");
    generate(&out, &small(4, 1)).unwrap();
    let err = generate(&out, &small(2, 1)).unwrap_err();
    assert!(matches!(err, SynthError::NotEmpty { .. }));
    assert!(err.to_string().contains(&out.display().to_string()), "{err}");
    // Overwrite replaces the samples: no stale 0002/0003 survive.
    generate(&out, &GenerateOptions { overwrite: true, ..small(2, 1) }).unwrap();
    assert_eq!(std::fs::read_dir(out.join("cubes/lidar")).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(out.join("spheres/rgb")).unwrap().count(), 2);
    // An existing empty directory is fine.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    generate(&empty, &small(1, 1)).unwrap();
}

/// A new dataset is written beside its destination and renamed into place, so an interrupted run
/// leaves only a hidden `.NAME.partial` folder, which the next run replaces.
#[test]
fn a_new_dataset_appears_whole_and_replaces_an_interrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("nested/data");
    // What an interrupted run leaves: a half-written staging folder with a stray sample.
    let partial = tmp.path().join("nested/.data.partial");
    std::fs::create_dir_all(partial.join("cubes/rgb")).unwrap();
    std::fs::write(partial.join("cubes/rgb/0007.png"), b"truncated").unwrap();
    let report = generate(&out, &small(3, 1)).unwrap();
    assert_eq!(report.out, out);
    assert_eq!(report.samples, 6);
    assert!(!partial.exists(), "the staging folder is renamed away");
    let files = tree(&out);
    assert_eq!(files.len(), report.files);
    assert_eq!(files.iter().map(|(_, b)| b.len() as u64).sum::<u64>(), report.bytes);
    assert!(files.iter().all(|(n, _)| !n.contains("0007")), "nothing of the interrupted run survives");
    let names: Vec<_> = std::fs::read_dir(tmp.path().join("nested")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["data"], "only the finished dataset is left");
    // The same bytes as a dataset written straight into an existing empty folder.
    let other = tmp.path().join("other");
    std::fs::create_dir(&other).unwrap();
    generate(&other, &small(3, 1)).unwrap();
    assert_eq!(tree(&other), files);
}

#[test]
fn name_width_grows_past_10000() {
    assert_eq!(name_width(9999), 4);
    assert_eq!(name_width(10_000), 4);
    assert_eq!(name_width(10_001), 5);
    assert_eq!(name_width(1), 4);
}

#[test]
fn depth_converted_back_to_xyz_lies_on_the_object_surface() {
    // The XYZA convention of REFERENCE §1, evaluated with the f32 angle arrays a reader loads.
    let a = angles();
    let mut checked = 0;
    for class in ObjectClass::ALL {
        for index in 0..12 {
            let scene = build_scene(class, 51, index, &SceneKnobs::default());
            let depth = render_depth(&scene);
            let obj = scene.objects[0].object;
            for r in 0..64 {
                for c in 0..64 {
                    let d = depth[r * 64 + c];
                    if d >= NO_RETURN {
                        continue;
                    }
                    let (az, ze) = (f64::from(a[r]), f64::from(a[c]));
                    let d = f64::from(d);
                    let p = Vec3::new(d * (-az).sin() * (-ze).cos(), d * (-az).cos() * (-ze).cos(), d * (-ze).sin());
                    let err = obj.surface_distance(p);
                    assert!(err < 1e-3, "{class} {index} ({r},{c}): {err} m off the surface");
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 5000, "{checked}");
}

#[test]
fn rgb_and_lidar_positions_follow_the_reference_relation() {
    // RGB column ~ 31.5 - 0.64 (LiDAR row - 31.5), RGB row ~ 31.5 + 0.64 (LiDAR column - 31.5).
    // Only lit pixels show in RGB (the lit side is towards the upper left), so fit the slope over
    // many samples and allow a small constant offset.
    let opts = GenerateOptions { supersample: 2, ..GenerateOptions::default() };
    let (mut xs_r, mut ys_c, mut xs_c, mut ys_r) = (vec![], vec![], vec![], vec![]);
    for class in [ObjectClass::Cubes, ObjectClass::Spheres] {
        for i in 0..120 {
            let s = sample_stats(&render_sample(class, i, &opts));
            let (Some((lr, lc)), Some((rr, rc))) = (s.lidar_centroid, s.rgb_centroid) else { continue };
            // Skip objects cut by the LiDAR frame (their centroid is biased).
            let d = render_sample(class, i, &opts).depth;
            let touches = (0..64).any(|k| d[k] < 50.0 || d[63 * 64 + k] < 50.0 || d[k * 64] < 50.0 || d[k * 64 + 63] < 50.0);
            if touches || s.lit_pixels < 5 {
                continue;
            }
            xs_r.push(lr - 31.5);
            ys_c.push(rc - 31.5);
            xs_c.push(lc - 31.5);
            ys_r.push(rr - 31.5);
            let (pc, pr) = (31.5 - 0.64 * (lr - 31.5), 31.5 + 0.64 * (lc - 31.5));
            // A cube may show only a lit strip along one edge, up to its projected radius away.
            let tol = if class == ObjectClass::Spheres { 3.5 } else { 6.0 };
            assert!((rc - pc).abs() < tol && (rr - pr).abs() < tol, "{class} {i}: rgb ({rr:.1},{rc:.1}) predicted ({pr:.1},{pc:.1})");
        }
    }
    let fit = |x: &[f64], y: &[f64]| {
        let n = x.len() as f64;
        let (mx, my) = (x.iter().sum::<f64>() / n, y.iter().sum::<f64>() / n);
        let sxy: f64 = x.iter().zip(y).map(|(a, b)| (a - mx) * (b - my)).sum();
        let sxx: f64 = x.iter().map(|a| (a - mx) * (a - mx)).sum();
        let slope = sxy / sxx;
        (slope, my - slope * mx)
    };
    assert!(xs_r.len() > 150, "{}", xs_r.len());
    let (s1, o1) = fit(&xs_r, &ys_c);
    let (s2, o2) = fit(&xs_c, &ys_r);
    assert!((s1 + 0.64).abs() < 0.03, "RGB column vs LiDAR row slope {s1}");
    assert!((s2 - 0.64).abs() < 0.03, "RGB row vs LiDAR column slope {s2}");
    // The lit side is up and to the left, so lit centroids sit a little left of / above centre.
    assert!((-2.0..0.5).contains(&o1) && (-2.0..0.5).contains(&o2), "offsets {o1} {o2}");
}

#[test]
fn pixel_statistics_match_the_reference() {
    let opts = GenerateOptions::default();
    let n = 200;
    let mut rgb_mean = 0.0;
    for class in [ObjectClass::Cubes, ObjectClass::Spheres] {
        let st: Vec<_> = (0..n).map(|i| sample_stats(&render_sample(class, i, &opts))).collect();
        let lit = st.iter().map(|s| s.lit_pixels as f64).sum::<f64>() / n as f64;
        let hits: Vec<usize> = st.iter().map(|s| s.hit_pixels).collect();
        let mean_hits = hits.iter().sum::<usize>() as f64 / n as f64;
        rgb_mean += st.iter().map(|s| s.rgb_mean.iter().sum::<f64>() / 3.0).sum::<f64>() / n as f64 / 2.0;
        let (lo, hi) = (*hits.iter().min().unwrap(), *hits.iter().max().unwrap());
        match class {
            // REFERENCE §1: spheres 18-47 lit pixels (mean ~29), 110-160 LiDAR pixels.
            ObjectClass::Spheres => {
                assert!((24.0..=42.0).contains(&lit), "sphere lit mean {lit}");
                assert!((120.0..=170.0).contains(&mean_hits), "sphere hits mean {mean_hits}");
                assert!(lo >= 70 && hi <= 260, "sphere hits {lo}..{hi}");
            }
            // REFERENCE §1: cubes 20-145 lit pixels, 110-435 LiDAR pixels.
            _ => {
                assert!((50.0..=95.0).contains(&lit), "cube lit mean {lit}");
                assert!((220.0..=340.0).contains(&mean_hits), "cube hits mean {mean_hits}");
                assert!(lo >= 100 && hi <= 600, "cube hits {lo}..{hi}");
            }
        }
    }
    // REFERENCE §1: per-channel means about 0.0052.
    assert!((0.0035..=0.0070).contains(&rgb_mean), "rgb mean {rgb_mean}");
}

#[test]
fn lidar_noise_and_dropout_only_touch_returns() {
    let base = GenerateOptions::default();
    let noisy = GenerateOptions { lidar_noise_sigma: 0.05, lidar_dropout: 0.1, ..base.clone() };
    let (mut dropped, mut hits, mut sq) = (0usize, 0usize, 0.0f64);
    for i in 0..20 {
        let a = render_sample(ObjectClass::Cubes, i, &base);
        let b = render_sample(ObjectClass::Cubes, i, &noisy);
        assert_eq!(a.rgba, b.rgba);
        for (x, y) in a.depth.iter().zip(&b.depth) {
            if *x >= 50.0 {
                assert_eq!(*y, 50.0);
            } else {
                hits += 1;
                if *y >= 50.0 {
                    dropped += 1;
                } else {
                    sq += f64::from(y - x).powi(2);
                }
            }
        }
    }
    let rate = dropped as f64 / hits as f64;
    let sigma = (sq / (hits - dropped) as f64).sqrt();
    assert!((0.08..0.12).contains(&rate), "dropout {rate}");
    assert!((0.045..0.055).contains(&sigma), "sigma {sigma}");
    // Deterministic.
    assert_eq!(render_sample(ObjectClass::Cubes, 3, &noisy), render_sample(ObjectClass::Cubes, 3, &noisy));
}

#[test]
fn image_noise_and_blur_change_only_the_image() {
    let base = GenerateOptions::default();
    let a = render_sample(ObjectClass::Spheres, 5, &base);
    let blurred = render_sample(ObjectClass::Spheres, 5, &GenerateOptions { image_blur_radius: 1, ..base.clone() });
    let noisy = render_sample(ObjectClass::Spheres, 5, &GenerateOptions { image_noise_sigma: 0.05, ..base.clone() });
    assert_eq!(a.depth, blurred.depth);
    assert_eq!(a.depth, noisy.depth);
    let sum = |v: &[u8]| v.chunks_exact(4).map(|p| u64::from(p[0]) + u64::from(p[1]) + u64::from(p[2])).sum::<u64>();
    let nonzero = |v: &[u8]| v.chunks_exact(4).filter(|p| p[0].max(p[1]).max(p[2]) > 0).count();
    assert!(nonzero(&blurred.rgba) > nonzero(&a.rgba), "blur spreads the object");
    // Blur roughly preserves total light (up to rounding).
    let (s0, s1) = (sum(&a.rgba) as f64, sum(&blurred.rgba) as f64);
    assert!((s1 / s0 - 1.0).abs() < 0.05, "{s0} {s1}");
    assert!(nonzero(&noisy.rgba) > 1000, "noise reaches the background");
    assert!(noisy.rgba.chunks_exact(4).all(|p| p[3] == 255));
}

#[test]
fn extra_classes_and_scene_knobs() {
    let opts = GenerateOptions::default().with_class_names(&["cylinders", "cones"]).unwrap();
    assert_eq!(opts.classes, vec![ObjectClass::Cylinders, ObjectClass::Cones]);
    assert!(matches!(GenerateOptions::default().with_class_names(&["pyramids"]), Err(SynthError::UnknownClass(_))));
    for class in [ObjectClass::Cylinders, ObjectClass::Cones] {
        for i in 0..10 {
            let s = sample_stats(&render_sample(class, i, &opts));
            assert!(s.hit_pixels > 50, "{class} {i}: {} hits", s.hit_pixels);
        }
    }
    // Occluders and distractors add returns in front of / beside the object.
    let hard = GenerateOptions { occluder_probability: 1.0, max_distractors: 3, ..GenerateOptions::default() };
    let mut closer = 0;
    let mut more = 0;
    for i in 0..20 {
        let a = render_sample(ObjectClass::Spheres, i, &GenerateOptions::default());
        let b = render_sample(ObjectClass::Spheres, i, &hard);
        let scene = build_scene(ObjectClass::Spheres, 51, i, &SceneKnobs { occluder_probability: 1.0, max_distractors: 3 });
        let obj_dist = scene.objects[0].object.centre.norm() - 1.5;
        if b.depth.iter().any(|&d| d < obj_dist as f32 - 1.0) {
            closer += 1;
        }
        if b.depth.iter().filter(|&&d| d < 50.0).count() > a.depth.iter().filter(|&&d| d < 50.0).count() {
            more += 1;
        }
    }
    assert!(closer >= 15, "occluder in front in {closer}/20");
    assert!(more >= 15, "extra returns in {more}/20");
}

#[test]
fn presets_and_validation() {
    let d = GenerateOptions::preset("default").unwrap();
    assert_eq!(d, GenerateOptions::default());
    assert_eq!((d.per_class, d.seed), (9999, 51));
    let h = GenerateOptions::preset("hard").unwrap();
    assert!(h.lidar_noise_sigma > 0.0 && h.lidar_dropout > 0.0 && h.occluder_probability > 0.0);
    assert_eq!(h.classes, d.classes);
    assert!(matches!(GenerateOptions::preset("easy"), Err(SynthError::UnknownPreset(_))));
    let bad = GenerateOptions { lidar_dropout: 1.5, ..d.clone() };
    assert!(matches!(bad.validate(), Err(SynthError::InvalidOptions(_))));
    let dup = GenerateOptions { classes: vec![ObjectClass::Cubes, ObjectClass::Cubes], ..d };
    assert!(dup.validate().is_err());
}

/// A dataset that cannot fit on the disk is refused before anything is written, without an
/// allocation proportional to its size (10^9 per class used to abort on a 32 GB job list; 10^8
/// started writing 3 TB); zero samples per class is refused too.
#[test]
fn impossible_sizes_are_refused_before_writing() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("huge");
    let mut opts = GenerateOptions::preset("default").unwrap();
    for per_class in [100_000_000usize, 1_000_000_000, usize::MAX / 4] {
        opts.per_class = per_class;
        let e = cilp_synth::generate(&out, &opts).unwrap_err();
        assert!(matches!(e, cilp_synth::SynthError::NoSpace { .. } | cilp_synth::SynthError::InvalidOptions(_)), "{e:?}");
        if per_class <= 1_000_000_000 {
            let msg = e.to_string();
            assert!(msg.contains("huge") && msg.contains("need at least") && msg.contains("free"), "{msg}");
        }
        assert!(!out.exists(), "nothing is written");
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "no staging folder left: {left:?}");
    }
    opts.per_class = 0;
    let e = cilp_synth::generate(&out, &opts).unwrap_err().to_string();
    assert!(e.contains("per_class must be at least 1"), "{e}");
    assert!(!out.exists());
}
