//! `cilp._cilp`: the Rust core of the `cilp` Python package (the Pythonic layer is
//! `python/cilp/__init__.py`). Configs cross the boundary as JSON text (the same serde types the
//! CLI writes to `config.toml`), arrays as numpy arrays.
//!
//! Long calls (training, studies, assessments) run on a worker thread while the calling thread
//! releases the GIL and wakes every 100 ms to forward progress to an optional Python callback and
//! to check for signals: Ctrl-C (KeyboardInterrupt) asks the training loop to stop before its next
//! step ([`cilp_train::fit::Control`]); the run is marked `interrupted`, keeps its last committed
//! epoch, and `resume=True` continues it. Rust errors become `cilp.CilpError` with the message
//! (which names the file and the problem).

use std::path::PathBuf;
use std::time::Duration;

use cilp_train::fit::Control;
use numpy::{PyArray1, PyArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyDict;

create_exception!(_cilp, CilpError, PyException, "An error of cilp's Rust core; the message names the file and the problem.");

fn err(e: impl std::fmt::Display) -> PyErr {
    CilpError::new_err(e.to_string())
}

fn from_json<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> PyResult<T> {
    serde_json::from_str(text).map_err(|e| err(format!("invalid {what}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> PyResult<String> {
    serde_json::to_string(v).map_err(err)
}

/// Runs `work` on a worker thread; the caller's thread releases the GIL, calls `callback` with
/// the progress every 100 ms and turns Ctrl-C into a stop of the loop (then re-raises it).
fn supervise<T: Send + 'static>(
    py: Python<'_>,
    control: Control,
    callback: Option<Py<PyAny>>,
    work: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> PyResult<T> {
    let handle = std::thread::Builder::new().name("cilp-worker".into()).spawn(work).map_err(err)?;
    let mut interrupted: Option<PyErr> = None;
    while !handle.is_finished() {
        py.detach(|| std::thread::sleep(Duration::from_millis(100)));
        if interrupted.is_none()
            && let Err(e) = py.check_signals()
        {
            control.stop();
            interrupted = Some(e);
        }
        if let Some(cb) = &callback {
            let p = control.progress();
            let d = PyDict::new(py);
            d.set_item("run", p.run)?;
            d.set_item("epoch", p.epoch)?;
            d.set_item("epochs", p.epochs)?;
            d.set_item("step", p.step)?;
            d.set_item("steps", p.steps)?;
            d.set_item("loss", p.loss)?;
            if let Err(e) = cb.call1(py, (d,)) {
                control.stop();
                interrupted.get_or_insert(e);
            }
        }
    }
    let result = handle.join().map_err(|_| err("the cilp worker thread panicked"))?;
    if let Some(e) = interrupted {
        return Err(e);
    }
    result.map_err(err)
}

/// Writes a synthetic dataset; returns the generation report as JSON.
#[pyfunction]
#[pyo3(signature = (out, per_class, seed, preset, force))]
fn generate(py: Python<'_>, out: PathBuf, per_class: usize, seed: u64, preset: &str, force: bool) -> PyResult<String> {
    let mut opts = cilp_synth::GenerateOptions::preset(preset).map_err(err)?;
    opts.per_class = per_class;
    opts.seed = seed;
    opts.overwrite = force;
    let report = py.detach(|| cilp_synth::generate(&out, &opts)).map_err(err)?;
    Ok(serde_json::json!({
        "out": report.out,
        "samples": report.samples,
        "per_class": report.per_class,
        "classes": report.classes.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "bytes": report.bytes,
    })
    .to_string())
}

/// Sample indices, int64 `(N,)`.
type Indices<'py> = Bound<'py, PyArray1<i64>>;

/// A dataset in memory (the Rust reader's; `cilp.load_dataset`).
#[pyclass(module = "cilp._cilp", frozen)]
struct Dataset {
    ds: cilp_data::dataset::Dataset,
    report: String,
}

#[pymethods]
impl Dataset {
    #[new]
    #[pyo3(signature = (path, limit_per_class=None))]
    fn new(py: Python<'_>, path: PathBuf, limit_per_class: Option<usize>) -> PyResult<Self> {
        let opts = cilp_data::dataset::LoadOptions { limit_per_class, ..Default::default() };
        let (ds, report) = py.detach(|| cilp_data::dataset::Dataset::open(&path, &opts)).map_err(err)?;
        let report = serde_json::to_string(&report).map_err(err)?;
        Ok(Dataset { ds, report })
    }

    fn __len__(&self) -> usize {
        self.ds.len()
    }

    /// Class names, by label.
    #[getter]
    fn classes(&self) -> Vec<String> {
        self.ds.classes().to_vec()
    }

    /// File stems, one per sample.
    #[getter]
    fn stems(&self) -> Vec<String> {
        self.ds.iter().map(|s| s.stem.to_owned()).collect()
    }

    /// Labels, int64 `(N,)`.
    #[getter]
    fn labels<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_vec(py, (0..self.ds.len()).map(|i| self.ds.label(i) as i64).collect())
    }

    /// The images as stored, RGBA uint8 `(N, 64, 64, 4)` (one copy, moved into numpy).
    #[getter]
    fn rgb<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut v = Vec::with_capacity(self.ds.len() * cilp_data::dataset::RGBA_LEN);
        for s in self.ds.iter() {
            v.extend_from_slice(s.rgb);
        }
        Ok(PyArray1::from_vec(py, v).reshape([self.ds.len(), 64, 64, 4])?.into_any())
    }

    /// LiDAR depth in metres, float32 `(N, 64, 64)` (`>= 50` = no return).
    #[getter]
    fn depth<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let mut v = Vec::with_capacity(self.ds.len() * cilp_data::dataset::DEPTH_LEN);
        for s in self.ds.iter() {
            v.extend_from_slice(s.depth);
        }
        Ok(PyArray1::from_vec(py, v).reshape([self.ds.len(), 64, 64])?.into_any())
    }

    /// XYZA point images, float32 `(N, 4, 64, 64)`, as the models get them.
    #[pyo3(signature = (convention="nvidia"))]
    fn xyza<'py>(&self, py: Python<'py>, convention: &str) -> PyResult<Bound<'py, PyAny>> {
        let conv: cilp_data::tensorize::XyzaConvention = from_json("XYZA convention", &format!("\"{convention}\""))?;
        let per = 4 * cilp_data::dataset::DEPTH_LEN;
        let mut v = vec![0f32; self.ds.len() * per];
        for (i, s) in self.ds.iter().enumerate() {
            let (az, ze) = self.ds.angles(s.class);
            cilp_data::tensorize::depth_to_xyza(s.depth, az, ze, conv, &mut v[i * per..(i + 1) * per]);
        }
        Ok(PyArray1::from_vec(py, v).reshape([self.ds.len(), 4, 64, 64])?.into_any())
    }

    /// What the loader found (pairs, unpaired files, problems), as JSON.
    #[getter]
    fn report_json(&self) -> String {
        self.report.clone()
    }

    /// Sample indices of a split: `ratio` (seeded, stratified, `val_fraction` held out) or
    /// `nvidia` (NVIDIA's per-class index split). Returns `(train, val)` int64 arrays.
    #[pyo3(signature = (kind="ratio", val_fraction=0.2, seed=51))]
    fn split<'py>(&self, py: Python<'py>, kind: &str, val_fraction: f64, seed: u64) -> PyResult<(Indices<'py>, Indices<'py>)> {
        let split = match kind {
            "ratio" => {
                if !(0.0..1.0).contains(&val_fraction) {
                    return Err(err(format!("val_fraction must be in [0, 1), not {val_fraction}")));
                }
                cilp_data::split::ratio_split(&self.ds, val_fraction, seed)
            }
            "nvidia" => cilp_data::split::nvidia_split(&self.ds),
            k => return Err(err(format!("unknown split kind {k:?} (ratio or nvidia)"))),
        };
        let idx = |v: &[usize]| PyArray1::from_vec(py, v.iter().map(|&i| i as i64).collect());
        Ok((idx(&split.train), idx(&split.val)))
    }
}

/// The default run config of `model` on `data`, as JSON (what `cilp train` would save).
#[pyfunction]
fn default_train_config(model: &str, data: PathBuf) -> PyResult<String> {
    cilp_models::model_info(model).map_err(err)?;
    to_json(&cilp_train::config::TrainConfig::new(model, data))
}

/// Trains one run from a JSON config; returns the run directory.
#[pyfunction]
#[pyo3(signature = (config_json, runs_dir, name, mode, callback=None))]
fn train(
    py: Python<'_>,
    config_json: &str,
    runs_dir: PathBuf,
    name: Option<String>,
    mode: &str,
    callback: Option<Py<PyAny>>,
) -> PyResult<String> {
    let cfg: cilp_train::config::TrainConfig = from_json("run config", config_json)?;
    cfg.validate().map_err(err)?;
    let mut opts = cilp_train::engine::RunOptions::new(runs_dir);
    opts.name = name;
    opts.mode = create_mode(mode)?;
    opts.progress = false;
    opts.quiet = true;
    let control = Control::default();
    opts.control = control.clone();
    supervise(py, control, callback, move || {
        let (data, _) = cilp_train::data::prepare(&cfg.data, cfg.seed).map_err(|e| e.to_string())?;
        let outcome = cilp_train::engine::train(&cfg, &data, &opts).map_err(|e| e.to_string())?;
        Ok(outcome.run_dir.display().to_string())
    })
}

fn create_mode(mode: &str) -> PyResult<cilp_track::run::CreateMode> {
    use cilp_track::run::CreateMode;
    Ok(match mode {
        "new" => CreateMode::New,
        "force" => CreateMode::Force,
        "resume" => CreateMode::Resume,
        m => return Err(err(format!("unknown mode {m:?} (new, force or resume)"))),
    })
}

/// Predicts image/LiDAR files with a run's best (or last) checkpoint; returns JSON records.
#[pyfunction]
#[pyo3(signature = (run_dir, files, which="best"))]
fn predict(py: Python<'_>, run_dir: PathBuf, files: Vec<PathBuf>, which: &str) -> PyResult<String> {
    let which = match which {
        "best" => cilp_train::predict::RunEpoch::Best,
        "last" => cilp_train::predict::RunEpoch::Last,
        w => return Err(err(format!("unknown checkpoint {w:?} (best or last)"))),
    };
    py.detach(|| {
        let device = cilp_models::cpu_device();
        let ck = cilp_train::predict::load_run_checkpoint(&run_dir, which, &device).map_err(err)?;
        let records = cilp_train::predict::predict_files(&ck.model, ck.config.data.xyza, &files, &device).map_err(err)?;
        to_json(&records)
    })
}

/// Every run under `root` (one level, and one level inside group folders), as JSON records.
#[pyfunction]
fn runs(root: PathBuf) -> PyResult<String> {
    to_json(&cilp_track::compare::list_runs(&root).map_err(err)?)
}

/// A study's settings for `preset` (`quick` or `full`) on `data`, as JSON.
#[pyfunction]
fn study_settings(preset: &str, data: PathBuf) -> PyResult<String> {
    let p: cilp_studies::StudyPreset = from_json("study preset", &format!("\"{preset}\""))?;
    to_json(&cilp_studies::StudySettings::preset(p, data))
}

fn study_options(out: PathBuf, mode: &str, control: &Control) -> PyResult<cilp_studies::StudyOptions> {
    let mut o = cilp_studies::StudyOptions::new(out);
    o.mode = match mode {
        "new" => cilp_studies::StudyMode::New,
        "force" => cilp_studies::StudyMode::Force,
        "resume" => cilp_studies::StudyMode::Resume,
        m => return Err(err(format!("unknown mode {m:?} (new, force or resume)"))),
    };
    o.progress = false;
    o.quiet = true;
    o.control = control.clone();
    Ok(o)
}

/// Runs a fusion study (`kind` = "fusion") or an ablation ("ablation": `models` = [the MaxPool2d
/// model]) and writes its files; returns the summary as JSON.
#[pyfunction]
#[pyo3(signature = (kind, settings_json, models, out, mode, reuse_from=None, callback=None))]
#[allow(clippy::too_many_arguments)]
fn study(
    py: Python<'_>,
    kind: &str,
    settings_json: &str,
    models: Vec<String>,
    out: PathBuf,
    mode: &str,
    reuse_from: Option<PathBuf>,
    callback: Option<Py<PyAny>>,
) -> PyResult<String> {
    let settings: cilp_studies::StudySettings = from_json("study settings", settings_json)?;
    let control = Control::default();
    let mut opts = study_options(out.clone(), mode, &control)?;
    opts.reuse_from = reuse_from;
    let models = match kind {
        "fusion" if models.is_empty() => cilp_studies::FUSION_MODELS.iter().map(|m| m.to_string()).collect(),
        "fusion" => models,
        "ablation" => cilp_studies::ablation_models(models.first().map_or("late-fusion", String::as_str)).map_err(err)?,
        k => return Err(err(format!("unknown study {k:?} (fusion or ablation)"))),
    };
    let summarise: fn(&cilp_studies::runner::StudyRuns) -> cilp_studies::StudySummary =
        if kind == "fusion" { cilp_studies::fusion_summary } else { cilp_studies::ablation_summary };
    supervise(py, control, callback, move || {
        let st = cilp_studies::run_models(&settings, &models, &opts).map_err(|e| e.to_string())?;
        let mut summary = summarise(&st);
        cilp_report::study_files::write(&out, &mut summary).map_err(|e| e.to_string())?;
        drop(st);
        serde_json::to_string(&summary).map_err(|e| e.to_string())
    })
}

/// An assessment's config for `preset` and `variant` (`nvidia` or `seed`) on `data`, as JSON.
#[pyfunction]
fn assess_config(preset: &str, variant: &str, data: PathBuf) -> PyResult<String> {
    let p: cilp_assess::config::AssessPreset = from_json("assessment preset", &format!("\"{preset}\""))?;
    match variant {
        "nvidia" => to_json(&cilp_assess::AssessConfig::preset(p, data)),
        "seed" => to_json(&cilp_assess::seed::SeedAssessConfig::preset(p, data)),
        v => Err(err(format!("unknown variant {v:?} (nvidia or seed)"))),
    }
}

/// Runs an assessment from its JSON config into `out`; returns its summary as JSON.
#[pyfunction]
#[pyo3(signature = (variant, config_json, out, mode, callback=None))]
fn assess(py: Python<'_>, variant: &str, config_json: &str, out: PathBuf, mode: &str, callback: Option<Py<PyAny>>) -> PyResult<String> {
    let control = Control::default();
    let opts = cilp_assess::AssessOptions {
        out: out.clone(),
        force: mode == "force",
        resume: mode == "resume",
        quiet: true,
        hooks: Default::default(),
        control: control.clone(),
    };
    let summary = out.join(cilp_track::run::SUMMARY_JSON);
    let run: Box<dyn FnOnce() -> Result<(), String> + Send> = match variant {
        "nvidia" => {
            let cfg: cilp_assess::AssessConfig = from_json("assessment config", config_json)?;
            Box::new(move || cilp_assess::run_assessment(&cfg, &opts).map(drop).map_err(|e| e.to_string()))
        }
        "seed" => {
            let cfg: cilp_assess::seed::SeedAssessConfig = from_json("assessment config", config_json)?;
            Box::new(move || cilp_assess::seed::run_seed_assessment(&cfg, &opts).map(drop).map_err(|e| e.to_string()))
        }
        v => return Err(err(format!("unknown variant {v:?} (nvidia or seed)"))),
    };
    supervise(py, control, callback, move || {
        run()?;
        std::fs::read_to_string(&summary).map_err(|e| format!("{}: {e}", summary.display()))
    })
}

/// The zoo: every model's name, inputs, outputs and exact parameter count, as JSON.
#[pyfunction]
fn models() -> PyResult<String> {
    to_json(&cilp_models::catalog())
}

#[pymodule]
fn _cilp(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("CilpError", m.py().get_type::<CilpError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<Dataset>()?;
    m.add_function(wrap_pyfunction!(generate, m)?)?;
    m.add_function(wrap_pyfunction!(default_train_config, m)?)?;
    m.add_function(wrap_pyfunction!(train, m)?)?;
    m.add_function(wrap_pyfunction!(predict, m)?)?;
    m.add_function(wrap_pyfunction!(runs, m)?)?;
    m.add_function(wrap_pyfunction!(study_settings, m)?)?;
    m.add_function(wrap_pyfunction!(study, m)?)?;
    m.add_function(wrap_pyfunction!(assess_config, m)?)?;
    m.add_function(wrap_pyfunction!(assess, m)?)?;
    m.add_function(wrap_pyfunction!(models, m)?)?;
    Ok(())
}
