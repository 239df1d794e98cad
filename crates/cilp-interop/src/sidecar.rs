//! The JSON sidecar written next to an export (`FILE.safetensors.json`): which model, how to
//! feed it (inputs, shapes, the XYZA convention and scaling cilp's data loader applies), what
//! its outputs mean, and where the weights come from.

use std::path::{Path, PathBuf};

use cilp_data::tensorize::XyzaConvention;
use cilp_models::{InputKind, ModelSpec, ModelTask};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keymap::{KeyMap, NameSource};
use crate::weights::ExportOptions;
use crate::{InteropError, Result};

/// Value of [`Sidecar::format`].
pub const SIDECAR_FORMAT: &str = "cilp-export/1";

/// The largest sidecar read (a few KB in practice).
const MAX_SIDECAR_BYTES: u64 = 1 << 20;
/// The largest run `config.toml` hashed: the run folder's own bound (`cilp_track::run::MAX_RUN_FILE_BYTES`).
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// The sidecar of `weights`: the same path with `.json` appended (`m.safetensors.json`).
pub fn sidecar_path(weights: &Path) -> PathBuf {
    let mut s = weights.as_os_str().to_owned();
    s.push(".json");
    PathBuf::from(s)
}

/// One model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// `rgb`, `xyza`, `depth` or `image-embedding`.
    pub name: String,
    /// Batch shape, `"N"` for the batch dimension, e.g. `["N", 4, 64, 64]`.
    pub shape: Vec<serde_json::Value>,
    /// Always `float32`.
    pub dtype: String,
    /// How cilp's data loader computes it from the files on disk.
    pub scaling: String,
    /// The XYZA convention (`xyza` inputs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convention: Option<XyzaConvention>,
}

/// Where exported weights come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunProvenance {
    /// The run directory.
    pub dir: PathBuf,
    /// `best` or `last`.
    pub which: String,
    /// The epoch whose weights these are (1-based).
    pub epoch: usize,
    /// SHA-256 of the run's `config.toml` (filled in by [`Sidecar::new`] when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
}

/// The sidecar's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    /// [`SIDECAR_FORMAT`].
    pub format: String,
    /// The zoo model (`cilp models`).
    pub model: String,
    /// The original study's class the keys follow (`LateFusionModel()`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pytorch_class: Option<String>,
    /// `original`, `nvidia` or `cilp` (see `docs/interop.md`).
    pub key_names: String,
    /// Every key with its shape, in PyTorch's `state_dict()` order (the file itself is sorted).
    pub state_dict: Vec<(String, Vec<usize>)>,
    /// The inputs, in the order the model's forward takes them.
    pub inputs: Vec<InputSpec>,
    /// What the output is.
    pub outputs: String,
    /// Class names by label index.
    pub class_names: Vec<String>,
    /// The cilp version that wrote the file.
    pub cilp_version: String,
    /// Where the weights come from, when exported from a run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunProvenance>,
    /// For an ONNX export (`cilp export --format onnx`): the opset and the graph's value names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub onnx: Option<crate::onnx::OnnxInfo>,
}

fn input_spec(kind: InputKind, xyza: XyzaConvention) -> InputSpec {
    let scaling = match kind {
        InputKind::Rgb => "the RGBA PNG's bytes / 255 as float32, channels first in the order R, G, B, A (torchvision's ToTensor)".into(),
        InputKind::Xyza => format!(
            "from the LiDAR depth d (metres, [64, 64], rows = azimuth, columns = zenith) and the class folder's azimuth.npy / \
             zenith.npy (radians), with a = 1 if d < 50 else 0: {}; channels X, Y, Z, A",
            match xyza {
                XyzaConvention::Nvidia => "x = d sin(-az), y = d cos(-az), z = d sin(-ze) (no rescaling)",
                XyzaConvention::Spherical => "x = d sin(-az) cos(-ze), y = d cos(-az) cos(-ze), z = d sin(-ze) (no rescaling)",
                XyzaConvention::Seed =>
                    "x = a d sin(-az) cos(-ze) / 50, y = a d cos(-az) cos(-ze) / 50, z = a d sin(-ze) / 50 (zero where there is no return)",
            }
        ),
        InputKind::Depth => "the raw LiDAR depth in metres (50 = no return), unscaled".into(),
        InputKind::ImageEmbedding => "a CILP image embedding (the image encoder's output)".into(),
    };
    let mut shape = vec![serde_json::Value::from("N")];
    shape.extend(kind.sample_shape().into_iter().map(serde_json::Value::from));
    InputSpec { name: kind.name().into(), shape, dtype: "float32".into(), scaling, convention: (kind == InputKind::Xyza).then_some(xyza) }
}

fn outputs_text(spec: &ModelSpec) -> String {
    match (spec.task(), spec.outputs()) {
        (ModelTask::Classification, 1) => "one logit per sample: > 0 means class 1 (spheres)".into(),
        (ModelTask::Classification, n) => format!("{n} logits per sample (softmax over class_names)"),
        (ModelTask::Contrastive, n) => format!("two {n}-d embeddings per sample (image, LiDAR)"),
        (ModelTask::Regression, n) => format!("{n} features per sample"),
    }
}

/// SHA-256 (hex) of a run's `config.toml`.
fn config_sha256(run_dir: &Path) -> Result<String> {
    let path = run_dir.join("config.toml");
    let bytes = cilp_data::io::read_bounded(&path, MAX_CONFIG_BYTES, "the run's config (TOML)")?;
    Ok(Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect())
}

impl Sidecar {
    /// The sidecar of an export of `spec` with the key `map` and PyTorch shapes `keys`.
    pub(crate) fn new(spec: &ModelSpec, map: &KeyMap, keys: &[(String, Vec<usize>)], opts: &ExportOptions) -> Result<Sidecar> {
        let xyza = opts.xyza.unwrap_or_default();
        let run = match &opts.run {
            Some(r) if r.config_sha256.is_none() => Some(RunProvenance { config_sha256: Some(config_sha256(&r.dir)?), ..r.clone() }),
            other => other.clone(),
        };
        Ok(Sidecar {
            format: SIDECAR_FORMAT.into(),
            model: spec.name(),
            pytorch_class: map.pytorch_class.map(str::to_string),
            key_names: match map.source {
                NameSource::Original => "original",
                NameSource::Nvidia => "nvidia",
                NameSource::Cilp => "cilp",
            }
            .into(),
            state_dict: keys.to_vec(),
            inputs: spec.inputs().into_iter().map(|k| input_spec(k, xyza)).collect(),
            outputs: outputs_text(spec),
            class_names: cilp_data::dataset::DEFAULT_CLASS_ORDER.iter().map(|s| s.to_string()).collect(),
            cilp_version: env!("CARGO_PKG_VERSION").into(),
            run,
            onnx: None,
        })
    }

    /// The XYZA convention of the model's `xyza` input, if it has one.
    pub fn xyza(&self) -> Option<XyzaConvention> {
        self.inputs.iter().find_map(|i| i.convention)
    }

    pub(crate) fn write(&self, path: &Path, overwrite: bool) -> Result<()> {
        let err = |message: String| InteropError::Write { path: path.to_path_buf(), message };
        let mut text = serde_json::to_string_pretty(self).map_err(|e| err(e.to_string()))?;
        text.push('\n');
        if !overwrite && std::fs::symlink_metadata(path).is_ok() {
            return Err(err("the file exists (pass --force to replace it)".into()));
        }
        // Beside the target, then renamed: a reader never sees half a sidecar.
        let tmp = sidecar_tmp(path);
        std::fs::write(&tmp, text).map_err(|e| err(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            err(e.to_string())
        })
    }
}

fn sidecar_tmp(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{}.tmp", std::process::id()));
    PathBuf::from(s)
}

/// Reads the sidecar of `weights` (`weights.json`), if there is one.
pub fn read_sidecar(weights: &Path) -> Result<Option<Sidecar>> {
    let path = sidecar_path(weights);
    if !path.exists() {
        return Ok(None);
    }
    let text = cilp_data::io::read_bounded_to_string(&path, MAX_SIDECAR_BYTES, "a cilp export sidecar (JSON)")?;
    let side: Sidecar = serde_json::from_str(&text).map_err(|e| InteropError::Sidecar { path: path.clone(), message: e.to_string() })?;
    if side.format != SIDECAR_FORMAT {
        return Err(InteropError::Sidecar { path, message: format!("format {:?}, expected {SIDECAR_FORMAT:?}", side.format) });
    }
    Ok(Some(side))
}
