//! cilp's data layer (no tensors, no burn): the on-disk dataset of paired RGB PNGs and LiDAR
//! depth maps, `.npy`/PNG codecs, depth-to-XYZA conversion, splits and seeded batching.
#![forbid(unsafe_code)]

pub mod error;
pub mod image;
pub mod npy;

pub use error::{DataError, Result};
