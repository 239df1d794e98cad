//! [`EventWriter`]: appends TensorBoard events to an `events.out.tfevents.*` file.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use prost::Message;
use serde::Serialize;

use super::image::{encode_png_rgb8, png_info};
use super::proto::{
    self, DataClass, Event, HParamsStatus, SessionStatus, Summary, SummaryMetadata, event, hparams_plugin_data, pb_value, summary,
    summary_metadata,
};
use super::record::encode_record;
use crate::error::{Error, IoContext, Result};

/// `file_version` of the first event of every file.
pub const FILE_VERSION: &str = "brain.Event:2";
/// Suffix of event files written by cilp.
pub const EVENT_FILE_SUFFIX: &str = "cilp";
/// Plugin name of text summaries.
pub const TEXT_PLUGIN: &str = "text";
/// Plugin name of hparams summaries.
pub const HPARAMS_PLUGIN: &str = "hparams";
/// Tag of the hparams experiment summary.
pub const HPARAMS_EXPERIMENT_TAG: &str = "_hparams_/experiment";
/// Tag of the hparams session-start summary.
pub const HPARAMS_SESSION_START_TAG: &str = "_hparams_/session_start_info";
/// Tag of the hparams session-end summary.
pub const HPARAMS_SESSION_END_TAG: &str = "_hparams_/session_end_info";

/// Seconds since the UNIX epoch as `f64`.
pub fn now_secs() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// Host name for event file names (`/proc/sys/kernel/hostname`, `$HOSTNAME`, else `localhost`),
/// restricted to `[A-Za-z0-9._-]`.
pub fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let clean: String = raw.trim().chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect();
    if clean.is_empty() { "localhost".into() } else { clean }
}

/// True if `name` looks like a TensorBoard event file (contains `tfevents`).
pub fn is_event_file_name(name: &str) -> bool {
    name.contains("tfevents")
}

/// The `<secs>` field of `events.out.tfevents.<secs>.<host>...`, if present.
fn event_file_secs(name: &str) -> Option<u64> {
    name.strip_prefix("events.out.tfevents.")?.split('.').next()?.parse().ok()
}

/// Event files in `dir`, sorted the way TensorBoard reads them (by name).
pub fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io("list directory", dir, e)),
    };
    for entry in rd {
        let entry = entry.ctx("list directory", dir)?;
        if is_event_file_name(&entry.file_name().to_string_lossy()) && entry.path().is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// A hyperparameter value (TensorBoard supports strings, numbers and bools).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum HParamValue {
    /// String value.
    String(String),
    /// Numeric value (stored as float64).
    Number(f64),
    /// Boolean value.
    Bool(bool),
}

impl From<&str> for HParamValue {
    fn from(v: &str) -> Self {
        HParamValue::String(v.into())
    }
}
impl From<String> for HParamValue {
    fn from(v: String) -> Self {
        HParamValue::String(v)
    }
}
impl From<f64> for HParamValue {
    fn from(v: f64) -> Self {
        HParamValue::Number(v)
    }
}
impl From<f32> for HParamValue {
    fn from(v: f32) -> Self {
        HParamValue::Number(v as f64)
    }
}
impl From<i64> for HParamValue {
    fn from(v: i64) -> Self {
        HParamValue::Number(v as f64)
    }
}
impl From<usize> for HParamValue {
    fn from(v: usize) -> Self {
        HParamValue::Number(v as f64)
    }
}
impl From<bool> for HParamValue {
    fn from(v: bool) -> Self {
        HParamValue::Bool(v)
    }
}

impl HParamValue {
    fn to_proto(&self) -> proto::PbValue {
        let kind = match self {
            HParamValue::String(s) => pb_value::Kind::StringValue(s.clone()),
            HParamValue::Number(n) => pb_value::Kind::NumberValue(*n),
            HParamValue::Bool(b) => pb_value::Kind::BoolValue(*b),
        };
        proto::PbValue { kind: Some(kind) }
    }

    fn data_type(&self) -> proto::HParamsDataType {
        match self {
            HParamValue::String(_) => proto::HParamsDataType::String,
            HParamValue::Number(_) => proto::HParamsDataType::Float64,
            HParamValue::Bool(_) => proto::HParamsDataType::Bool,
        }
    }
}

/// Flatten any serializable config into hparams: nested tables become dotted
/// keys (`optimizer.lr`), arrays and nulls become their JSON text.
pub fn flatten_hparams<T: Serialize>(config: &T) -> BTreeMap<String, HParamValue> {
    fn walk(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, HParamValue>) {
        use serde_json::Value as J;
        let key = |k: &str| {
            if prefix.is_empty() { k.to_owned() } else { format!("{prefix}.{k}") }
        };
        match v {
            J::Object(m) => {
                for (k, v) in m {
                    walk(&key(k), v, out);
                }
            }
            J::Bool(b) => {
                out.insert(prefix.to_owned(), HParamValue::Bool(*b));
            }
            J::Number(n) => {
                out.insert(prefix.to_owned(), HParamValue::Number(n.as_f64().unwrap_or(f64::NAN)));
            }
            J::String(s) => {
                out.insert(prefix.to_owned(), HParamValue::String(s.clone()));
            }
            other => {
                out.insert(prefix.to_owned(), HParamValue::String(other.to_string()));
            }
        }
    }
    let mut out = BTreeMap::new();
    if let Ok(v) = serde_json::to_value(config) {
        walk("", &v, &mut out);
    }
    out
}

/// One training session's hyperparameters for the TensorBoard HParams dashboard.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct HParams {
    /// Hyperparameter values (see [`flatten_hparams`]).
    pub values: BTreeMap<String, HParamValue>,
    /// Scalar tags shown as metric columns (e.g. `val/loss`). If non-empty an
    /// experiment summary listing them (and the hparams) is written too.
    pub metrics: Vec<String>,
    /// Session group name (empty: the run is its own group).
    pub group_name: String,
    /// Where checkpoints live (shown verbatim by TensorBoard).
    pub model_uri: String,
    /// Start time in seconds since the epoch (0: now).
    pub start_time_secs: f64,
}

/// Writes TensorBoard events to one file.
///
/// Events are buffered; call [`EventWriter::flush`] (done by
/// [`crate::RunDir::log_epoch`] after every epoch) to make them visible to a
/// running TensorBoard. Dropping the writer flushes as well.
#[derive(Debug)]
pub struct EventWriter {
    path: PathBuf,
    out: BufWriter<File>,
    buf: Vec<u8>,
}

impl EventWriter {
    /// Create a new event file `events.out.tfevents.<secs>.<hostname>.<pid>.cilp`
    /// in `logdir` (created if needed). `<secs>` is the current time, bumped past
    /// any existing event file so that files sort in creation order.
    pub fn create(logdir: &Path) -> Result<Self> {
        fs::create_dir_all(logdir).ctx("create directory", logdir)?;
        let now = now_secs() as u64;
        let newest = event_files(logdir)?.iter().filter_map(|p| event_file_secs(&p.file_name()?.to_string_lossy())).max();
        let mut secs = match newest {
            Some(n) if n >= now => n + 1,
            _ => now,
        };
        let (host, pid) = (hostname(), std::process::id());
        loop {
            let path = logdir.join(format!("events.out.tfevents.{secs:010}.{host}.{pid}.{EVENT_FILE_SUFFIX}"));
            match Self::create_at(&path) {
                Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::AlreadyExists => secs += 1,
                other => return other,
            }
        }
    }

    /// Create an event file at exactly `path` (must not exist) and write the
    /// `brain.Event:2` header event.
    pub fn create_at(path: &Path) -> Result<Self> {
        let file = OpenOptions::new().write(true).create_new(true).open(path).ctx("create event file", path)?;
        let mut w = EventWriter { path: path.to_owned(), out: BufWriter::new(file), buf: Vec::new() };
        w.write_event(&Event { wall_time: now_secs(), step: 0, what: Some(event::What::FileVersion(FILE_VERSION.into())) })?;
        w.flush()?;
        Ok(w)
    }

    /// The event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one raw event.
    pub fn write_event(&mut self, ev: &Event) -> Result<()> {
        self.buf.clear();
        encode_record(&ev.encode_to_vec(), &mut self.buf);
        self.out.write_all(&self.buf).ctx("write event to", &self.path)
    }

    fn write_values(&mut self, values: Vec<summary::Value>, step: i64) -> Result<()> {
        self.write_event(&Event { wall_time: now_secs(), step, what: Some(event::What::Summary(Summary { value: values })) })
    }

    /// Log a scalar (stored as float32, like every TensorBoard scalar).
    pub fn add_scalar(&mut self, tag: &str, value: f64, step: i64) -> Result<()> {
        self.add_scalars(&[(tag, value)], step)
    }

    /// Log several scalars at the same step in one event.
    pub fn add_scalars(&mut self, scalars: &[(&str, f64)], step: i64) -> Result<()> {
        let values = scalars
            .iter()
            .map(|(tag, v)| summary::Value {
                tag: (*tag).to_owned(),
                metadata: None,
                value: Some(summary::value::Value::SimpleValue(*v as f32)),
            })
            .collect();
        self.write_values(values, step)
    }

    /// Log an already PNG-encoded image. `width`/`height` must match the PNG
    /// header; the colorspace is taken from the PNG colour type.
    pub fn add_image_png(&mut self, tag: &str, png_bytes: &[u8], width: u32, height: u32, step: i64) -> Result<()> {
        let info = png_info(png_bytes).map_err(|e| Error::Image { what: format!("tag {tag}"), message: e.to_string() })?;
        if (info.width, info.height) != (width, height) {
            return Err(Error::Image {
                what: format!("tag {tag}"),
                message: format!("declared {width}x{height} but the PNG is {}x{}", info.width, info.height),
            });
        }
        let image = summary::Image {
            height: height as i32,
            width: width as i32,
            colorspace: info.colorspace,
            encoded_image_string: png_bytes.to_vec(),
        };
        self.write_values(
            vec![summary::Value { tag: tag.to_owned(), metadata: None, value: Some(summary::value::Value::Image(image)) }],
            step,
        )
    }

    /// Encode row-major RGB8 pixels as PNG and log them as an image.
    pub fn add_image_rgb8(&mut self, tag: &str, rgb: &[u8], width: u32, height: u32, step: i64) -> Result<()> {
        let png = encode_png_rgb8(rgb, width, height)?;
        self.add_image_png(tag, &png, width, height, step)
    }

    /// Log a text (Markdown) summary, shown by TensorBoard's Text dashboard.
    pub fn add_text(&mut self, tag: &str, text: &str, step: i64) -> Result<()> {
        let metadata = SummaryMetadata {
            plugin_data: Some(summary_metadata::PluginData {
                plugin_name: TEXT_PLUGIN.into(),
                content: proto::TextPluginData { version: 0 }.encode_to_vec(),
            }),
            data_class: DataClass::Tensor as i32,
            ..Default::default()
        };
        let tensor = proto::TensorProto {
            dtype: proto::dtype::DT_STRING,
            tensor_shape: Some(proto::TensorShapeProto::default()),
            string_val: vec![text.as_bytes().to_vec()],
            ..Default::default()
        };
        self.write_values(
            vec![summary::Value { tag: tag.to_owned(), metadata: Some(metadata), value: Some(summary::value::Value::Tensor(tensor)) }],
            step,
        )
    }

    fn add_hparams_data(&mut self, tag: &str, data: hparams_plugin_data::Data) -> Result<()> {
        let content = proto::HParamsPluginData { version: 0, data: Some(data) }.encode_to_vec();
        let metadata = SummaryMetadata {
            plugin_data: Some(summary_metadata::PluginData { plugin_name: HPARAMS_PLUGIN.into(), content }),
            ..Default::default()
        };
        // Same null tensor as tensorboard.plugins.hparams.metadata.NULL_TENSOR.
        let null_tensor = proto::TensorProto {
            dtype: proto::dtype::DT_FLOAT,
            tensor_shape: Some(proto::TensorShapeProto {
                dim: vec![proto::tensor_shape_proto::Dim { size: 0, name: String::new() }],
                unknown_rank: false,
            }),
            ..Default::default()
        };
        self.write_values(
            vec![summary::Value { tag: tag.to_owned(), metadata: Some(metadata), value: Some(summary::value::Value::Tensor(null_tensor)) }],
            0,
        )
    }

    /// Log the session's hyperparameters (HParams dashboard): an experiment
    /// summary (if `hp.metrics` is non-empty) followed by a session-start summary.
    ///
    /// Note: TensorBoard uses the *first* experiment summary it finds in a
    /// logdir; runs of one kind share config keys, so this is harmless.
    pub fn add_hparams(&mut self, hp: &HParams) -> Result<()> {
        let start = if hp.start_time_secs > 0.0 { hp.start_time_secs } else { now_secs() };
        if !hp.metrics.is_empty() {
            let experiment = proto::Experiment {
                time_created_secs: start,
                hparam_infos: hp
                    .values
                    .iter()
                    .map(|(k, v)| proto::HParamInfo { name: k.clone(), r#type: v.data_type() as i32, ..Default::default() })
                    .collect(),
                metric_infos: hp
                    .metrics
                    .iter()
                    .map(|m| proto::MetricInfo {
                        name: Some(proto::MetricName { group: String::new(), tag: m.clone() }),
                        dataset_type: if m.starts_with("train/") {
                            proto::DatasetType::DatasetTraining as i32
                        } else if m.starts_with("val/") {
                            proto::DatasetType::DatasetValidation as i32
                        } else {
                            proto::DatasetType::DatasetUnknown as i32
                        },
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            self.add_hparams_data(HPARAMS_EXPERIMENT_TAG, hparams_plugin_data::Data::Experiment(experiment))?;
        }
        let ssi = proto::SessionStartInfo {
            hparams: hp.values.iter().map(|(k, v)| (k.clone(), v.to_proto())).collect(),
            model_uri: hp.model_uri.clone(),
            monitor_url: String::new(),
            group_name: hp.group_name.clone(),
            start_time_secs: start,
        };
        self.add_hparams_data(HPARAMS_SESSION_START_TAG, hparams_plugin_data::Data::SessionStartInfo(ssi))
    }

    /// Log the end of the hparams session (`end_time_secs` 0: now).
    pub fn add_hparams_end(&mut self, status: HParamsStatus, end_time_secs: f64) -> Result<()> {
        let end = if end_time_secs > 0.0 { end_time_secs } else { now_secs() };
        self.add_hparams_data(
            HPARAMS_SESSION_END_TAG,
            hparams_plugin_data::Data::SessionEndInfo(proto::SessionEndInfo { status: status as i32, end_time_secs: end }),
        )
    }

    /// Write a `SessionLog.START` marker at `step`. TensorBoard then discards
    /// all previously read data with `step >= step`, which is what a resumed
    /// run needs: resuming after epoch `e` calls this with `e + 1`.
    pub fn add_session_start(&mut self, step: i64) -> Result<()> {
        self.write_event(&Event {
            wall_time: now_secs(),
            step,
            what: Some(event::What::SessionLog(proto::SessionLog { status: SessionStatus::Start as i32, ..Default::default() })),
        })
    }

    /// Flush buffered events to the file and fsync it, so a running
    /// TensorBoard sees them and they survive a crash.
    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().ctx("flush", &self.path)?;
        self.out.get_ref().sync_data().ctx("fsync", &self.path)
    }
}

impl Drop for EventWriter {
    fn drop(&mut self) {
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::super::record::read_events;
    use super::*;

    #[test]
    fn writes_header_scalars_text_image_hparams() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        let name = w.path().file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("events.out.tfevents.") && name.ends_with(".cilp"), "{name}");
        w.add_scalar("train/loss", 0.5, 1).unwrap();
        w.add_text("notes", "hello *world*", 1).unwrap();
        w.add_image_rgb8("img", &[255, 0, 0, 0, 255, 0], 2, 1, 1).unwrap();
        let mut hp = HParams::default();
        hp.values.insert("lr".into(), 1e-3.into());
        hp.metrics.push("val/loss".into());
        w.add_hparams(&hp).unwrap();
        w.add_hparams_end(HParamsStatus::Success, 0.0).unwrap();
        w.flush().unwrap();

        // readable while the writer is still open
        let evs = read_events(w.path()).unwrap();
        assert_eq!(evs.len(), 7);
        assert_eq!(evs[0].what, Some(event::What::FileVersion(FILE_VERSION.into())));
        let Some(event::What::Summary(s)) = &evs[1].what else { panic!() };
        assert_eq!(s.value[0].tag, "train/loss");
        assert_eq!(s.value[0].value, Some(summary::value::Value::SimpleValue(0.5)));
        assert_eq!(evs[1].step, 1);
        let Some(event::What::Summary(s)) = &evs[3].what else { panic!() };
        let Some(summary::value::Value::Image(img)) = &s.value[0].value else { panic!() };
        assert_eq!((img.width, img.height, img.colorspace), (2, 1, 3));
    }

    #[test]
    fn image_dimension_mismatch_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = EventWriter::create(dir.path()).unwrap();
        let png = encode_png_rgb8(&[0; 12], 2, 2).unwrap();
        let err = w.add_image_png("x", &png, 3, 2, 0).unwrap_err().to_string();
        assert!(err.contains("declared 3x2"), "{err}");
    }

    #[test]
    fn second_file_sorts_after_first() {
        let dir = tempfile::tempdir().unwrap();
        let a = EventWriter::create(dir.path()).unwrap().path().to_owned();
        let b = EventWriter::create(dir.path()).unwrap().path().to_owned();
        assert!(a < b, "{a:?} {b:?}");
        assert_eq!(event_files(dir.path()).unwrap(), vec![a, b]);
    }

    #[test]
    fn flatten_nested_config() {
        #[derive(Serialize)]
        struct Opt {
            lr: f64,
            name: &'static str,
        }
        #[derive(Serialize)]
        struct Cfg {
            epochs: usize,
            amp: bool,
            optimizer: Opt,
            dims: Vec<u32>,
        }
        let m = flatten_hparams(&Cfg { epochs: 3, amp: false, optimizer: Opt { lr: 0.01, name: "adam" }, dims: vec![1, 2] });
        assert_eq!(m["epochs"], HParamValue::Number(3.0));
        assert_eq!(m["amp"], HParamValue::Bool(false));
        assert_eq!(m["optimizer.lr"], HParamValue::Number(0.01));
        assert_eq!(m["optimizer.name"], HParamValue::String("adam".into()));
        assert_eq!(m["dims"], HParamValue::String("[1,2]".into()));
    }
}
