//! # cilp-track — run directories, metrics, TensorBoard events, run comparison
//!
//! Experiment tracking for cilp without any external service: everything the
//! Python original sent to Weights & Biases / TensorBoard is written to plain
//! files in a *run directory*, plus TensorBoard event files that the real
//! `tensorboard --logdir runs/` reads (no TensorFlow needed on our side).
//! This crate does not depend on burn.
//!
//! ## Run-directory contract
//!
//! A run lives in `<runs_root>/<name>` where `name` is `run` or `group/run`:
//!
//! ```text
//! runs/<name>/
//! ├── config.toml        resolved config, written first (atomically)
//! ├── config.json        the same config as JSON
//! ├── metrics.jsonl      one JSON object per epoch and split (source of truth)
//! ├── metrics.csv        the same rows, fixed header (see below)
//! ├── summary.json       RunSummary: status, best epoch/val loss, final metrics, timing, git commit…
//! ├── checkpoints/       model/optimizer checkpoints (owned by the trainer)
//! └── events.out.tfevents.<secs>.<hostname>.<pid>.cilp   TensorBoard events (one file per session)
//! ```
//!
//! * **Creation** ([`RunDir::create`]): [`CreateMode::New`] refuses a directory
//!   that already holds a run (error names the path and suggests `--resume` /
//!   `--force`); [`CreateMode::Force`] deletes the old run first (it never
//!   deletes a non-empty directory that is not a run); [`CreateMode::Resume`]
//!   reopens an existing run. A directory "holds a run" if it contains
//!   `config.toml`, `summary.json`, `metrics.jsonl` or an event file.
//! * **Locking** ([`FolderLock`]): a run folder has one writer. [`RunDir::create`] (every
//!   mode) first takes an exclusive OS lock on `<runs_root>[/group]/.<run>.lock`, a hidden
//!   file *beside* the run folder, and keeps it for the `RunDir`'s lifetime; a second writer
//!   (another `train`, `--resume` or `--force`, in any process) is refused at once with
//!   [`Error::Locked`] naming the folder and the holder's pid, before anything is checked or
//!   deleted. Because the lock file is outside the folder, `--force` holds the lock while it
//!   deletes and re-creates the folder. The OS drops the lock when its process dies (SIGKILL
//!   included): no stale locks. Lock files are never deleted. [`RunDir::open`] only reads and
//!   takes no lock. Studies lock their folder the same way (`FolderLock::acquire(dir,
//!   "study folder")`).
//! * **Bounded reads**: `config.toml`, `summary.json` (16 MiB,
//!   [`run::MAX_RUN_FILE_BYTES`]), the metrics files (256 MiB,
//!   [`metrics::MAX_METRICS_BYTES`]) and event files (1 GiB) are read with
//!   [`cilp_data::io`]: FIFOs, devices and sockets are refused by name and a larger file is
//!   refused from its size, before anything is read.
//! * **Atomicity**: every file except the append-only logs (`metrics.*`, event
//!   files) is written with [`write_atomic`] (temp file in the same directory,
//!   fsync, rename), so readers never see a truncated `config.toml` or
//!   `summary.json`. Metrics appends are fsynced; a partial last line left by a
//!   crash is ignored on read and repaired on the next append/resume.
//! * **Metrics rows** ([`EpochMetrics`]): `epoch` (cilp counts from 1),
//!   `split` (`train`/`val`), `loss`, `accuracy?`, `lr?`, `epoch_seconds`,
//!   `samples_per_s`, `peak_memory_bytes?`, `extra` (map, e.g.
//!   `rgb_to_lidar/R@1`, `logit_scale`). Non-finite floats are stored as
//!   `"NaN"`/`"inf"`/`"-inf"` in JSON and `NaN`/`inf`/`-inf` in CSV.
//!   `metrics.csv` header: `epoch,split,loss,accuracy,lr,epoch_seconds,samples_per_s,peak_memory_bytes,extra`
//!   where empty cells mean "not recorded" and `extra` is `name=value` pairs
//!   joined by `;` (see [`metrics`]).
//! * **Interrupts** ([`interrupt`]): a `running` summary registers its run; the binary's
//!   SIGINT / SIGTERM handler calls [`interrupt::mark_interrupted`], which writes
//!   `status = "interrupted"` and a one-line `message` into each before the process exits.
//! * **Resume**: after loading the checkpoint of epoch `e`, call
//!   [`RunDir::resume_after`]`(e)`: metrics rows with `epoch > e` are removed (no
//!   duplicates after re-running) and a new event file starts with a
//!   `SessionLog.START` at step `e + 1`, which makes TensorBoard discard the
//!   stale points of the old session.
//! * **TensorBoard tags** (step = epoch; see [`names`]): `<split>/loss`,
//!   `<split>/accuracy`, `lr`, `<split>/epoch_seconds`, `<split>/samples_per_s`,
//!   `<split>/peak_memory_mb`, `<split>/<extra key>`; the config as hparams
//!   (HParams dashboard) and as text tag `config`; images (e.g. the similarity
//!   matrix heatmap) as PNG. Events are flushed after every epoch, so a running
//!   TensorBoard shows progress.
//! * **summary.json** ([`RunSummary`]): `name`, `kind` (`train`, `cilp`,
//!   `projector`, …), `model`, `parameters`, `best_epoch`, `best_val_loss`,
//!   `final_metrics` (tag → value), `total_seconds`, `git_commit`, `device`,
//!   `kernels` (on CPU: the GEMM kernel set of each kind of product), `seed`, `status` (`running` | `completed` | `failed`), `started_at`,
//!   `finished_at` (RFC 3339 UTC), `extra` (free JSON). Write it at start with
//!   status `running` and again at the end.
//!
//! ## Listing and comparing
//!
//! [`list_runs`] reads every run under a root (runs may be grouped one level
//! deep; broken runs are listed with their errors), [`render_table`] prints a
//! W&B-style run table, [`render_json`] the same as JSON and
//! [`render_comparison`] a `metric | run A | run B | difference` table.
//!
//! ## Studies
//!
//! A study folder (`cilp fusion`, `cilp ablation`) groups runs `<model>-s<seed>/` and holds a
//! `summary.json` with a `"study"` key ([`run::is_study_summary`]). Its records ([`study`]:
//! [`study::StudySummary`], per-model summaries, comparisons and verdicts, and how their
//! values are shown in tables) live here, between the crate that computes them (`cilp-train`)
//! and the one that writes the study's files (`cilp-report`).
//!
//! ## Example
//!
//! ```no_run
//! use cilp_track::{CreateMode, EpochMetrics, RunDir, RunStatus, RunSummary, names};
//! # fn main() -> cilp_track::Result<()> {
//! # #[derive(serde::Serialize)] struct Config { lr: f64 }
//! # let config = Config { lr: 1e-3 };
//! let mut run = RunDir::create("runs".as_ref(), "fusion/late", CreateMode::New)?;
//! run.write_config(&config)?;
//! run.log_hparams(&config, &[names::VAL_LOSS, names::VAL_ACCURACY])?;
//! let mut summary = RunSummary::started(run.name(), "train");
//! run.write_summary(&summary)?;
//! for epoch in 1..=10 {
//!     let mut train = EpochMetrics::new(epoch, names::TRAIN, 0.5);
//!     train.lr = Some(1e-3);
//!     let val = EpochMetrics::new(epoch, names::VAL, 0.6);
//!     run.log_epoch(&[train, val])?;
//! }
//! summary.update_from_metrics(&run.read_metrics()?);
//! summary.finish(RunStatus::Completed);
//! run.write_summary(&summary)?;
//! # Ok(()) }
//! ```

pub mod atomic;
pub mod compare;
pub mod error;
pub mod floats;
pub mod interrupt;
pub mod lock;
pub mod metrics;
pub mod names;
pub mod run;
pub mod study;
pub mod tb;

pub use atomic::{link_atomic, remove_stale_temp_files, write_atomic, write_atomic_str};
pub use compare::{Column, RunRecord, RunStats, list_runs, load_run, render_comparison, render_json, render_table};
pub use error::{Error, Result};
pub use lock::FolderLock;
pub use metrics::{CSV_HEADER, EpochMetrics, append_metrics, read_metrics, read_metrics_csv, truncate_metrics_after};
pub use run::{
    CreateMode, RunDir, RunStatus, RunSummary, git_commit, holds_run, read_config, read_summary, timestamp_utc, timestamp_utc_now,
};
pub use tb::{EventWriter, HParamValue, HParams, HParamsStatus, encode_png_rgb8};
