//! cilp's data layer (no tensors, no burn): the on-disk dataset of paired RGB PNGs and LiDAR
//! depth maps, `.npy`/PNG codecs, depth-to-XYZA conversion, splits and seeded batching.
//!
//! * [`dataset`]: [`Dataset::open`](dataset::Dataset::open) reads `root/{class}/{azimuth.npy,
//!   zenith.npy, rgb/*.png, lidar/*.npy}` into memory in parallel, pairs RGB and LiDAR files by
//!   stem and returns a [`LoadReport`](dataset::LoadReport) of everything unpaired or ignored.
//!   Classes are ordered cubes (0), spheres (1), then others alphabetically.
//! * [`tensorize`]: one sample to channels-first `f32` buffers: RGB `[4,64,64]` in `[0,1]`,
//!   raw depth `[1,64,64]`, XYZA `[4,64,64]` in one of three documented conventions
//!   ([`XyzaConvention`](tensorize::XyzaConvention)).
//! * [`split`]: NVIDIA's per-class index split (19,358 / 640 on the full data) and a seeded,
//!   stratified ratio split ([`DEFAULT_SEED`](split::DEFAULT_SEED) = 51).
//! * [`batch`]: mini-batches whose shuffle depends only on (seed, epoch), so resumed runs see
//!   the same order as uninterrupted ones.
//! * [`stats`]: per-class counts, depth ranges, hit ratios, lit pixels and colours.
//! * [`npy`], [`image`]: strict codecs; every error is a [`DataError`] naming the file.
//! * [`io`]: bounded reads ([`io::read_bounded`], [`io::check_regular_file`]): special files
//!   (FIFOs, devices, sockets) and files larger than their format allows are refused by name
//!   before anything is read or allocated. Every reader of cilp goes through them.
//!
//! ```no_run
//! use cilp_data::dataset::{Dataset, LoadOptions};
//! use cilp_data::split::{ratio_split, DEFAULT_SEED};
//! use cilp_data::batch::Batches;
//! use cilp_data::tensorize::{depth_to_xyza, rgb_chw, XyzaConvention};
//!
//! # fn main() -> cilp_data::Result<()> {
//! let (ds, report) = Dataset::open("data".as_ref(), &LoadOptions::default())?;
//! if !report.is_clean() {
//!     eprintln!("{report}");
//! }
//! let split = ratio_split(&ds, 0.2, DEFAULT_SEED);
//! let (mut rgb, mut xyza) = (vec![0f32; 4 * 64 * 64], vec![0f32; 4 * 64 * 64]);
//! for batch in &Batches::new(&split.train, 32, Some(DEFAULT_SEED), 1, true) {
//!     for &i in batch {
//!         let s = ds.sample(i);
//!         let (az, ze) = ds.angles(s.class);
//!         rgb_chw(s.rgb, &mut rgb);
//!         depth_to_xyza(s.depth, az, ze, XyzaConvention::Seed, &mut xyza);
//!     }
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod batch;
pub mod dataset;
pub mod error;
pub mod image;
pub mod io;
pub mod npy;
mod rng;
pub mod split;
pub mod stats;
pub mod tensorize;
#[cfg(test)]
mod testutil;

pub use error::{DataError, Result};
