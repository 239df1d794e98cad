//! Hand-written prost messages for the subset of TensorBoard's protobufs we write.
//!
//! Field numbers follow `tensorboard/compat/proto/{event,summary,tensor,
//! tensor_shape,types}.proto`, `tensorboard/plugins/hparams/{api,plugin_data}.proto`,
//! `tensorboard/plugins/text/plugin_data.proto` and `google/protobuf/struct.proto`.
//! Only the fields cilp uses are declared; prost skips unknown fields when decoding.

use std::collections::BTreeMap;

/// `tensorboard.Event` (event.proto).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Event {
    /// Seconds since the UNIX epoch.
    #[prost(double, tag = "1")]
    pub wall_time: f64,
    /// Global step (cilp: the epoch).
    #[prost(int64, tag = "2")]
    pub step: i64,
    /// Payload.
    #[prost(oneof = "event::What", tags = "3, 5, 7")]
    pub what: Option<event::What>,
}

/// Nested types of [`Event`].
pub mod event {
    /// `oneof what` of `Event`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum What {
        /// File header record: `"brain.Event:2"`.
        #[prost(string, tag = "3")]
        FileVersion(String),
        /// A set of summary values.
        #[prost(message, tag = "5")]
        Summary(super::Summary),
        /// Session start/stop markers (used to purge stale steps on resume).
        #[prost(message, tag = "7")]
        SessionLog(super::SessionLog),
    }
}

/// `tensorboard.SessionLog` (event.proto).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SessionLog {
    /// See [`SessionStatus`].
    #[prost(enumeration = "SessionStatus", tag = "1")]
    pub status: i32,
    /// Checkpoint path (unused).
    #[prost(string, tag = "2")]
    pub checkpoint_path: String,
    /// Free-form message.
    #[prost(string, tag = "3")]
    pub msg: String,
}

/// `SessionLog.SessionStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum SessionStatus {
    /// Unspecified.
    StatusUnspecified = 0,
    /// Session (re)started: TensorBoard discards data with `step >= event.step`.
    Start = 1,
    /// Session stopped.
    Stop = 2,
    /// Checkpoint written.
    Checkpoint = 3,
}

/// `tensorboard.Summary` (summary.proto).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Summary {
    /// Values.
    #[prost(message, repeated, tag = "1")]
    pub value: Vec<summary::Value>,
}

/// Nested types of [`Summary`].
pub mod summary {
    /// `Summary.Image`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Image {
        /// Height in pixels.
        #[prost(int32, tag = "1")]
        pub height: i32,
        /// Width in pixels.
        #[prost(int32, tag = "2")]
        pub width: i32,
        /// 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA.
        #[prost(int32, tag = "3")]
        pub colorspace: i32,
        /// Encoded image (PNG).
        #[prost(bytes = "vec", tag = "4")]
        pub encoded_image_string: Vec<u8>,
    }

    /// `Summary.Value`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Value {
        /// Tag, e.g. `train/loss`.
        #[prost(string, tag = "1")]
        pub tag: String,
        /// Plugin metadata.
        #[prost(message, optional, tag = "9")]
        pub metadata: Option<super::SummaryMetadata>,
        /// The value.
        #[prost(oneof = "value::Value", tags = "2, 4, 8")]
        pub value: Option<value::Value>,
    }

    /// Nested types of [`Value`].
    pub mod value {
        /// `oneof value` of `Summary.Value`.
        #[derive(Clone, PartialEq, ::prost::Oneof)]
        pub enum Value {
            /// Scalar (float32).
            #[prost(float, tag = "2")]
            SimpleValue(f32),
            /// Encoded image.
            #[prost(message, tag = "4")]
            Image(super::Image),
            /// Tensor (text, hparams null tensor).
            #[prost(message, tag = "8")]
            Tensor(super::super::TensorProto),
        }
    }
}

/// `tensorboard.SummaryMetadata`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SummaryMetadata {
    /// Plugin association.
    #[prost(message, optional, tag = "1")]
    pub plugin_data: Option<summary_metadata::PluginData>,
    /// Display name.
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// Markdown description.
    #[prost(string, tag = "3")]
    pub summary_description: String,
    /// See [`DataClass`].
    #[prost(enumeration = "DataClass", tag = "4")]
    pub data_class: i32,
}

/// Nested types of [`SummaryMetadata`].
pub mod summary_metadata {
    /// `SummaryMetadata.PluginData`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct PluginData {
        /// Plugin name, e.g. `"text"`, `"hparams"`.
        #[prost(string, tag = "1")]
        pub plugin_name: String,
        /// Plugin-specific serialized protobuf.
        #[prost(bytes = "vec", tag = "2")]
        pub content: Vec<u8>,
    }
}

/// `tensorboard.DataClass`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum DataClass {
    /// Legacy.
    Unknown = 0,
    /// Rank-0 float32 tensor.
    Scalar = 1,
    /// Arbitrary small tensor.
    Tensor = 2,
    /// Rank-1 bytestring tensor.
    BlobSequence = 3,
}

/// `tensorboard.DataType` values used here (types.proto).
pub mod dtype {
    /// `DT_FLOAT`.
    pub const DT_FLOAT: i32 = 1;
    /// `DT_STRING`.
    pub const DT_STRING: i32 = 7;
}

/// `tensorboard.TensorProto` (subset).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorProto {
    /// Element type, see [`dtype`].
    #[prost(int32, tag = "1")]
    pub dtype: i32,
    /// Shape.
    #[prost(message, optional, tag = "2")]
    pub tensor_shape: Option<TensorShapeProto>,
    /// Raw little-endian content.
    #[prost(bytes = "vec", tag = "4")]
    pub tensor_content: Vec<u8>,
    /// DT_FLOAT values.
    #[prost(float, repeated, tag = "5")]
    pub float_val: Vec<f32>,
    /// DT_STRING values.
    #[prost(bytes = "vec", repeated, tag = "8")]
    pub string_val: Vec<Vec<u8>>,
}

/// `tensorboard.TensorShapeProto`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TensorShapeProto {
    /// Dimensions (empty = scalar).
    #[prost(message, repeated, tag = "2")]
    pub dim: Vec<tensor_shape_proto::Dim>,
    /// Unknown rank.
    #[prost(bool, tag = "3")]
    pub unknown_rank: bool,
}

/// Nested types of [`TensorShapeProto`].
pub mod tensor_shape_proto {
    /// `TensorShapeProto.Dim`.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Dim {
        /// Size.
        #[prost(int64, tag = "1")]
        pub size: i64,
        /// Optional name.
        #[prost(string, tag = "2")]
        pub name: String,
    }
}

/// `tensorboard.TextPluginData` (plugins/text/plugin_data.proto).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct TextPluginData {
    /// Version, 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
}

// ---------------------------------------------------------------- struct.proto

/// `google.protobuf.Value` (scalar kinds only).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct PbValue {
    /// The value.
    #[prost(oneof = "pb_value::Kind", tags = "1, 2, 3, 4")]
    pub kind: Option<pb_value::Kind>,
}

/// Nested types of [`PbValue`].
pub mod pb_value {
    /// `oneof kind` of `google.protobuf.Value`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Kind {
        /// `NullValue` enum (always 0).
        #[prost(int32, tag = "1")]
        NullValue(i32),
        /// Number.
        #[prost(double, tag = "2")]
        NumberValue(f64),
        /// String.
        #[prost(string, tag = "3")]
        StringValue(String),
        /// Bool.
        #[prost(bool, tag = "4")]
        BoolValue(bool),
    }
}

// ------------------------------------------------------------ hparams protos

/// `tensorboard.hparams.HParamsPluginData` (plugin_data.proto).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HParamsPluginData {
    /// Schema version, 0.
    #[prost(int32, tag = "1")]
    pub version: i32,
    /// Payload.
    #[prost(oneof = "hparams_plugin_data::Data", tags = "2, 3, 4")]
    pub data: Option<hparams_plugin_data::Data>,
}

/// Nested types of [`HParamsPluginData`].
pub mod hparams_plugin_data {
    /// `oneof data` of `HParamsPluginData`.
    #[derive(Clone, PartialEq, ::prost::Oneof)]
    pub enum Data {
        /// Experiment description (tag `_hparams_/experiment`).
        #[prost(message, tag = "2")]
        Experiment(super::Experiment),
        /// Session start (tag `_hparams_/session_start_info`).
        #[prost(message, tag = "3")]
        SessionStartInfo(super::SessionStartInfo),
        /// Session end (tag `_hparams_/session_end_info`).
        #[prost(message, tag = "4")]
        SessionEndInfo(super::SessionEndInfo),
    }
}

/// `tensorboard.hparams.SessionStartInfo`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SessionStartInfo {
    /// Hyperparameter values.
    #[prost(btree_map = "string, message", tag = "1")]
    pub hparams: BTreeMap<String, PbValue>,
    /// Checkpoint location.
    #[prost(string, tag = "2")]
    pub model_uri: String,
    /// Monitoring URL.
    #[prost(string, tag = "3")]
    pub monitor_url: String,
    /// Session group (empty: the session is its own group).
    #[prost(string, tag = "4")]
    pub group_name: String,
    /// Start time, seconds since epoch.
    #[prost(double, tag = "5")]
    pub start_time_secs: f64,
}

/// `tensorboard.hparams.SessionEndInfo`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct SessionEndInfo {
    /// See [`HParamsStatus`].
    #[prost(enumeration = "HParamsStatus", tag = "1")]
    pub status: i32,
    /// End time, seconds since epoch.
    #[prost(double, tag = "2")]
    pub end_time_secs: f64,
}

/// `tensorboard.hparams.Status`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum HParamsStatus {
    /// Unknown.
    Unknown = 0,
    /// Finished successfully.
    Success = 1,
    /// Failed.
    Failure = 2,
    /// Still running.
    Running = 3,
}

/// `tensorboard.hparams.Experiment` (api.proto).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Experiment {
    /// Description (Markdown).
    #[prost(string, tag = "1")]
    pub description: String,
    /// Owner.
    #[prost(string, tag = "2")]
    pub user: String,
    /// Creation time, seconds since epoch.
    #[prost(double, tag = "3")]
    pub time_created_secs: f64,
    /// Hyperparameters.
    #[prost(message, repeated, tag = "4")]
    pub hparam_infos: Vec<HParamInfo>,
    /// Metrics.
    #[prost(message, repeated, tag = "5")]
    pub metric_infos: Vec<MetricInfo>,
    /// Experiment name.
    #[prost(string, tag = "6")]
    pub name: String,
}

/// `tensorboard.hparams.HParamInfo` (domain not set: the whole type domain).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct HParamInfo {
    /// Hyperparameter id.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Display name.
    #[prost(string, tag = "2")]
    pub display_name: String,
    /// Description.
    #[prost(string, tag = "3")]
    pub description: String,
    /// See [`HParamsDataType`].
    #[prost(enumeration = "HParamsDataType", tag = "4")]
    pub r#type: i32,
}

/// `tensorboard.hparams.DataType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum HParamsDataType {
    /// Unset.
    Unset = 0,
    /// String.
    String = 1,
    /// Bool.
    Bool = 2,
    /// Float64.
    Float64 = 3,
}

/// `tensorboard.hparams.MetricName`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricName {
    /// Group (run sub-directory), empty for the run itself.
    #[prost(string, tag = "1")]
    pub group: String,
    /// Scalar tag.
    #[prost(string, tag = "2")]
    pub tag: String,
}

/// `tensorboard.hparams.MetricInfo`.
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct MetricInfo {
    /// Name.
    #[prost(message, optional, tag = "1")]
    pub name: Option<MetricName>,
    /// Display name.
    #[prost(string, tag = "3")]
    pub display_name: String,
    /// Description.
    #[prost(string, tag = "4")]
    pub description: String,
    /// See [`DatasetType`].
    #[prost(enumeration = "DatasetType", tag = "5")]
    pub dataset_type: i32,
}

/// `tensorboard.hparams.DatasetType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
#[repr(i32)]
pub enum DatasetType {
    /// Unknown.
    DatasetUnknown = 0,
    /// Training split.
    DatasetTraining = 1,
    /// Validation split.
    DatasetValidation = 2,
}
