//! A small TensorBoard event-file writer (and reader, for tests and tools).
//!
//! Event files are TFRecord streams ([`record`]) of `tensorboard.Event`
//! protobufs ([`proto`], hand-written prost structs). The first event holds
//! `file_version = "brain.Event:2"`. [`EventWriter`] supports scalars
//! (`simple_value`), PNG images, text (plugin `text`) and hparams (plugin
//! `hparams`), plus `SessionLog.START` markers for resumed runs.

pub mod image;
pub mod proto;
pub mod record;
mod writer;

pub use image::{PngInfo, encode_png_gray8, encode_png_rgb8, heatmap_rgb8, png_info, viridis};
pub use proto::HParamsStatus;
pub use record::{masked_crc32c, read_events, read_records};
pub use writer::{
    EVENT_FILE_SUFFIX, EventWriter, FILE_VERSION, HPARAMS_EXPERIMENT_TAG, HPARAMS_PLUGIN, HPARAMS_SESSION_END_TAG,
    HPARAMS_SESSION_START_TAG, HParamValue, HParams, TEXT_PLUGIN, event_files, flatten_hparams, hostname, is_event_file_name, now_secs,
};
