//! Classifying files with a trained (or PyTorch-imported) model.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use cilp_data::image::read_dataset_png;
use cilp_data::npy::read_npy_shape;
use cilp_data::tensorize::{XyzaConvention, depth_chw, depth_to_xyza, rgb_chw};
use cilp_models::{Classifier, InputKind, ModelInputs, build_classifier};
use serde::Serialize;

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

/// Where the weights come from.
#[derive(Debug, Clone)]
pub enum WeightsSource {
    /// A run directory (its `checkpoints/best.bpk` and `config.toml`) or a `.bpk` file.
    Checkpoint(PathBuf),
    /// A PyTorch state dict (`.pt`), read without executing any code from it.
    PyTorch(PathBuf),
}

/// One line of `cilp predict --json`.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionRecord {
    pub input: String,
    pub logits: Vec<f32>,
    pub prediction: String,
    pub probability: f32,
}

/// Class names by label.
pub const CLASS_NAMES: [&str; 2] = ["cubes", "spheres"];

/// Loads a classifier: returns it with the XYZA convention to feed it.
pub fn load_classifier(model: Option<&str>, source: &WeightsSource, device: &Device) -> Result<(Classifier, String, XyzaConvention)> {
    match source {
        WeightsSource::PyTorch(path) => {
            let name = model.unwrap_or("nvidia-lidar-classifier");
            let c = build_classifier(name, device)?;
            let c = cilp_models::load_pytorch_weights(c, path)?;
            Ok((c, name.to_string(), XyzaConvention::default()))
        }
        WeightsSource::Checkpoint(path) => {
            let (file, cfg) = if path.is_dir() {
                (path.join("checkpoints").join("best.bpk"), Some(read_run_config(path)?))
            } else {
                (path.clone(), None)
            };
            let name = match (&cfg, model) {
                (Some(c), Some(m)) if c.model != m => {
                    return Err(TrainError::Config(format!("{}: the run trained {:?}, not {m:?}", path.display(), c.model)));
                }
                (Some(c), _) => c.model.clone(),
                (None, Some(m)) => m.to_string(),
                (None, None) => {
                    return Err(TrainError::Config(format!(
                        "{}: a checkpoint file needs --model NAME (or pass the run directory)",
                        path.display()
                    )));
                }
            };
            let xyza = cfg.as_ref().map(|c| c.data.xyza).unwrap_or_default();
            let c = build_classifier(&name, device)?;
            let c = load_record_file(c, &file)?;
            Ok((c, name, xyza))
        }
    }
}

/// The training config of a run directory (its `config.toml`, bounded read).
pub fn read_run_config(run_dir: &Path) -> Result<TrainConfig> {
    let cfg_path = run_dir.join(cilp_track::run::CONFIG_TOML);
    let text = cilp_data::io::read_bounded_to_string(&cfg_path, cilp_track::run::MAX_RUN_FILE_BYTES, "the run's config (TOML)")
        .map_err(|e| TrainError::Checkpoint { path: cfg_path.clone(), reason: e.to_string() })?;
    toml::from_str(&text).map_err(|e| TrainError::Checkpoint { path: cfg_path, reason: format!("not a training config: {e}") })
}

/// Which of a run's checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEpoch {
    /// `best.bpk`: the epoch the run's best-model rule chose.
    Best,
    /// The last committed epoch (`last.json`'s model file).
    Last,
}

impl RunEpoch {
    /// `best` or `last`.
    pub fn name(self) -> &'static str {
        match self {
            RunEpoch::Best => "best",
            RunEpoch::Last => "last",
        }
    }
}

/// A run's classifier at one of its checkpoints.
#[derive(Debug)]
pub struct RunCheckpoint {
    pub model: Classifier,
    /// The run's config (its zoo model, XYZA convention, ...).
    pub config: TrainConfig,
    /// The epoch whose weights these are (1-based; 0: the untrained model of a run that
    /// validates before training).
    pub epoch: usize,
    /// The checkpoint file read.
    pub file: PathBuf,
}

/// Loads the classifier of the training run in `run_dir` at its best or last epoch (files
/// checked against the checksums the run recorded).
pub fn load_run_checkpoint(run_dir: &Path, which: RunEpoch, device: &Device) -> Result<RunCheckpoint> {
    let config = read_run_config(run_dir)?;
    let ckpt = crate::checkpoint::Checkpoints::new(run_dir.join(cilp_track::run::CHECKPOINTS_DIR));
    let state = ckpt.load_state()?.ok_or_else(|| TrainError::Checkpoint {
        path: ckpt.dir().join("last.json"),
        reason: "no committed checkpoint: the run has not finished an epoch".into(),
    })?;
    let model = build_classifier(&config.model, device)?;
    let (file, bytes, epoch) = match which {
        RunEpoch::Best => {
            let file = ckpt.best_model();
            (file.clone(), crate::checkpoint::read_checkpoint_file(&file)?, state.best_epoch)
        }
        RunEpoch::Last => (ckpt.dir().join(&state.model_file), ckpt.read(&state.model_file)?, state.epoch),
    };
    let model = load_record_bytes(model, bytes, &file)?;
    Ok(RunCheckpoint { model, config, epoch, file })
}

/// Loads a burnpack model record from a file into `model`.
pub fn load_record_file<M: Module>(model: M, file: &Path) -> Result<M> {
    load_record_bytes(model, crate::checkpoint::read_checkpoint_file(file)?, file)
}

/// Loads a burnpack model record read from `file` into `model`.
fn load_record_bytes<M: Module>(model: M, bytes: Vec<u8>, file: &Path) -> Result<M> {
    let record = burn::store::ModuleRecord::from_bytes(burn::tensor::Bytes::from_bytes_vec(bytes))
        .map_err(|e| TrainError::Checkpoint { path: file.to_path_buf(), reason: format!("not a cilp checkpoint: {e}") })?;
    model
        .try_load_record(record)
        .map_err(|e| TrainError::Checkpoint { path: file.to_path_buf(), reason: format!("does not fit this model: {e}") })
}

/// For `CLASS/rgb/STEM.png` or `CLASS/lidar/STEM.npy`, the other modality's file and the class
/// folder (which holds `azimuth.npy` and `zenith.npy`).
fn twin(input: &Path, want_ext: &str) -> Option<(PathBuf, PathBuf)> {
    let stem = input.file_stem()?;
    let modality_dir = input.parent()?;
    let class_dir = modality_dir.parent()?;
    let other = if want_ext == "png" { "rgb" } else { "lidar" };
    let mut f = class_dir.join(other).join(stem);
    f.set_extension(want_ext);
    Some((f, class_dir.to_path_buf()))
}

fn is_png(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// Builds the model inputs for one file (and its twin where the model needs both modalities).
fn inputs_for(path: &Path, kinds: &[InputKind], xyza: XyzaConvention, device: &Device) -> Result<ModelInputs> {
    let mut inputs = ModelInputs::default();
    let find = |ext: &str| -> Result<(PathBuf, Option<PathBuf>)> {
        let this_is = if is_png(path) { "png" } else { "npy" };
        if this_is == ext {
            let class_dir = path.parent().and_then(Path::parent).map(Path::to_path_buf);
            return Ok((path.to_path_buf(), class_dir));
        }
        let (f, class_dir) =
            twin(path, ext).ok_or_else(|| TrainError::Config(format!("{}: cannot find its paired file", path.display())))?;
        if !f.exists() {
            return Err(TrainError::Config(format!(
                "{}: this model also needs the paired {} file, expected at {}",
                path.display(),
                if ext == "png" { "RGB" } else { "LiDAR" },
                f.display()
            )));
        }
        Ok((f, Some(class_dir)))
    };
    for &kind in kinds {
        match kind {
            InputKind::Rgb => {
                let (f, _) = find("png")?;
                let img = read_dataset_png(&f)?;
                let mut buf = vec![0f32; 4 * 64 * 64];
                rgb_chw(&img.pixels, &mut buf);
                inputs.rgb = Some(Tensor::from_data(TensorData::new(buf, [1, 4, 64, 64]), device));
            }
            InputKind::Depth => {
                let (f, _) = find("npy")?;
                let arr = read_npy_shape(&f, &[64, 64])?;
                cilp_data::dataset::check_depth(&f, &arr.data)?;
                let mut buf = vec![0f32; 64 * 64];
                depth_chw(&arr.data, &mut buf);
                inputs.depth = Some(Tensor::from_data(TensorData::new(buf, [1, 1, 64, 64]), device));
            }
            InputKind::Xyza => {
                let (f, class_dir) = find("npy")?;
                let arr = read_npy_shape(&f, &[64, 64])?;
                cilp_data::dataset::check_depth(&f, &arr.data)?;
                let class_dir =
                    class_dir.ok_or_else(|| TrainError::Config(format!("{}: cannot locate azimuth.npy/zenith.npy", f.display())))?;
                let az = read_npy_shape(&class_dir.join("azimuth.npy"), &[64])?;
                let ze = read_npy_shape(&class_dir.join("zenith.npy"), &[64])?;
                let mut buf = vec![0f32; 4 * 64 * 64];
                depth_to_xyza(&arr.data, &az.data, &ze.data, xyza, &mut buf);
                inputs.xyza = Some(Tensor::from_data(TensorData::new(buf, [1, 4, 64, 64]), device));
            }
            InputKind::ImageEmbedding => {
                return Err(TrainError::Config("this model takes embeddings, not files".into()));
            }
        }
    }
    Ok(inputs)
}

/// Classifies each input file.
pub fn predict_files(model: &Classifier, xyza: XyzaConvention, files: &[PathBuf], device: &Device) -> Result<Vec<PredictionRecord>> {
    let kinds = model.inputs();
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let inputs = inputs_for(f, &kinds, xyza, device)?;
        let logits: Vec<f32> = model.forward(&inputs).into_data().try_to_vec().expect("f32 logits");
        let p_sphere = if logits.len() == 1 {
            1.0 / (1.0 + (-logits[0]).exp())
        } else {
            let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
            let e: Vec<f32> = logits.iter().map(|v| (v - m).exp()).collect();
            e[1] / e.iter().sum::<f32>()
        };
        let class = (p_sphere > 0.5) as usize;
        out.push(PredictionRecord {
            input: f.display().to_string(),
            logits,
            prediction: CLASS_NAMES[class].to_string(),
            probability: if class == 1 { p_sphere } else { 1.0 - p_sphere },
        });
    }
    Ok(out)
}
