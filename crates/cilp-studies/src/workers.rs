//! A study trained by worker processes, several runs at once (`cilp fusion --jobs N`).
//!
//! A study's runs are independent (same split, one seed and arm each), and training is
//! bit-identical at any thread count, so `N` processes of `threads / N` compute threads each give
//! exactly the runs one process gives, sooner where one run cannot keep every core busy (small
//! batches, small models, checkpoint writes). Each run gets a process of its own, so its peak
//! memory is its own, as in a study trained run after run.
//!
//! The caller says how to start a worker (for the `cilp` binary: its hidden `cilp study-worker
//! --config FILE --out STUDY --name RUN --mode MODE`, which calls [`train_worker`]); this module plans the study, holds its folder lock, copies reusable
//! runs, starts at most `jobs` workers at a time with their output in `.workers/RUN.log`, stops
//! starting new ones after a failure or a stop request, and reads the finished runs back as
//! [`collect`](crate::runner::collect) does. A study stopped part way continues with `--resume`
//! (each run resumes from its last committed epoch), with any number of jobs.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cilp_track::run::CreateMode;
use cilp_train::error::{Result, TrainError};

use crate::runner::{
    PlannedRun, StudyOptions, StudyRuns, StudySettings, finish_study, load_data, open_study, prepare_run, read_back, reusable,
};

/// The folder inside the study folder that holds each worker's config and log while it runs
/// (removed when every worker succeeded; kept, with the failed ones' logs, otherwise).
pub const WORKERS_DIR: &str = ".workers";

/// How a study starts its workers.
pub struct Workers<'a> {
    /// Runs trained at once (at least 1).
    pub jobs: usize,
    /// Compute threads of each worker (`RAYON_NUM_THREADS` in its environment).
    pub threads_per_job: usize,
    /// The command that trains one planned run into the study folder: given the run, the file
    /// holding its config (TOML, as its `config.toml` will hold it) and how to open its folder.
    /// Its output goes to the worker's log; it must exit 0 only when the run is complete.
    pub command: &'a dyn Fn(&PlannedRun, &Path, CreateMode) -> Command,
    /// Another process sharing the machine (the main job's assessment): while it runs, the study
    /// starts at most `jobs - 1` workers (at least one).
    pub companion: Option<&'a Companion>,
}

impl Workers<'_> {
    /// Workers that may run now.
    fn capacity(&self) -> usize {
        let busy = self.companion.is_some_and(|c| c.running());
        self.jobs.max(1).saturating_sub(busy as usize).max(1)
    }
}

/// Process ids of the workers alive now (for a signal handler that passes a stop on).
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Calls `f` with the process id of each of this process's study workers that is running now,
/// and returns how many there were. A binary's SIGINT / SIGTERM handler passes the signal on
/// this way, so that each worker marks its run interrupted. No worker is reaped meanwhile, so
/// every id still names that worker.
pub fn for_each_live_worker(f: impl Fn(u32)) -> usize {
    let pids = live();
    pids.iter().for_each(|&p| f(p));
    pids.len()
}

/// How many study workers of this process are running now.
pub fn live_worker_count() -> usize {
    live().len()
}

/// Starts `cmd` with stdin `stdin` and stdout and stderr to `log`, spawned and put on the live
/// list under its lock (so that a signal handler never misses it); `what` names it in an error.
fn spawn_logged(mut cmd: Command, log: &Path, what: &str, stdin: Stdio) -> Result<Child> {
    let out = File::create(log).map_err(TrainError::io("create a log", log))?;
    let err = out.try_clone().map_err(TrainError::io("open a log", log))?;
    cmd.stdin(stdin).stdout(Stdio::from(out)).stderr(Stdio::from(err));
    let mut pids = live();
    let child = cmd.spawn().map_err(|e| TrainError::Config(format!("cannot start {what}: {e}")))?;
    pids.push(child.id());
    Ok(child)
}

/// `child`'s exit status if it has exited, reaped and taken off the live list under its lock (see
/// [`for_each_live_worker`]); `None` while it runs.
fn reap(child: &mut Child) -> std::io::Result<Option<ExitStatus>> {
    let mut pids = live();
    let status = child.try_wait()?;
    if status.is_some() {
        let id = child.id();
        pids.retain(|&p| p != id);
    }
    Ok(status)
}

struct Worker {
    index: usize,
    run: String,
    child: Child,
    log: PathBuf,
}

/// The last `lines` lines of a worker's log (what it printed before it failed).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = cilp_data::io::read_bounded_to_string(path, 1 << 20, "a worker log").unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(c) => format!("exit status {c}"),
        None => {
            #[cfg(unix)]
            {
                use std::os::unix::process::ExitStatusExt;
                if let Some(sig) = status.signal() {
                    return format!("killed by signal {sig}");
                }
            }
            "killed".into()
        }
    }
}

/// Trains every run of the study in worker processes, at most `workers.jobs` at once, then reads
/// them back: the same [`StudyRuns`] as [`run_models`](crate::run_models) (bit-identical runs),
/// with this study's wall time. Fails, naming each failed run and the end of its log, when a
/// worker fails; the runs that finished stay, and `--resume` continues the others.
pub fn run_models_in_workers(settings: &StudySettings, models: &[String], opts: &StudyOptions, workers: &Workers) -> Result<StudyRuns> {
    let start = Instant::now();
    let (planned, lock) = open_study(settings, models, opts)?;
    // Loaded here too: a bad dataset fails once, before any worker starts, and the summary
    // needs the split's sizes.
    let (data_cfg, data) = load_data(settings, opts)?;
    let dir = opts.out.join(WORKERS_DIR);
    std::fs::create_dir_all(&dir).map_err(TrainError::io("create the workers folder", &dir))?;
    let jobs = workers.jobs.max(1);
    if !opts.quiet {
        let beside = match workers.companion {
            Some(c) if jobs > 1 && c.running() => format!(" (one fewer while {} runs)", c.what),
            _ => String::new(),
        };
        eprintln!(
            "{} runs in worker processes, {jobs} at a time{beside}, {} compute thread(s) each; each worker's output: {}/RUN.log",
            planned.len(),
            workers.threads_per_job,
            dir.display()
        );
    }
    let elapsed = || start.elapsed().as_secs_f64();
    let mut queue = start_order(&planned, jobs).into_iter();
    let mut running: Vec<Worker> = Vec::new();
    let mut failed: Vec<String> = Vec::new();
    let mut stopped = false;
    let mut start_error: Option<TrainError> = None;
    loop {
        while running.len() < workers.capacity() && failed.is_empty() && !stopped && start_error.is_none() {
            if opts.control.stop_requested() {
                stopped = true;
                break;
            }
            let Some(p) = queue.next() else { break };
            // An error here (planning a run's folder, writing its config, starting its worker)
            // starts nothing more, and is returned once the workers already running have ended.
            let started = prepare_run(p, opts).and_then(|mode| {
                if mode == CreateMode::Resume && reusable(&opts.out.join(&p.run), &p.config) {
                    return Ok(None);
                }
                start_worker(p, mode, &dir, workers).map(Some)
            });
            match started {
                Ok(Some(w)) => {
                    if !opts.quiet {
                        eprintln!("[{}/{}] {} started ({:.0}s elapsed)", p.index + 1, planned.len(), p.run, elapsed());
                    }
                    running.push(w);
                }
                Ok(None) => {
                    if !opts.quiet {
                        eprintln!("[{}/{}] {}: finished before, read back ({:.0}s elapsed)", p.index + 1, planned.len(), p.run, elapsed());
                    }
                }
                Err(e) => {
                    if !opts.quiet && !running.is_empty() {
                        eprintln!("[{}/{}] {} could not start ({e}); waiting for the running workers", p.index + 1, planned.len(), p.run);
                    }
                    start_error = Some(e);
                }
            }
        }
        if running.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        let mut i = 0;
        while i < running.len() {
            let status = reap(&mut running[i].child)
                .map_err(|e| TrainError::Config(format!("cannot wait for the worker of {}: {e}", running[i].run)))?;
            let Some(status) = status else {
                i += 1;
                continue;
            };
            let w = running.swap_remove(i);
            if status.success() {
                if !opts.quiet {
                    eprintln!("[{}/{}] {} done ({:.0}s elapsed)", w.index + 1, planned.len(), w.run, elapsed());
                }
            } else {
                let tail = log_tail(&w.log, 12);
                if !opts.quiet {
                    eprintln!("[{}/{}] {} FAILED ({}); no new runs start", w.index + 1, planned.len(), w.run, describe(status));
                }
                failed.push(format!("{} ({}; log {}):\n{tail}", w.run, describe(status), w.log.display()));
            }
        }
    }
    if let Some(e) = start_error {
        return Err(e);
    }
    if !failed.is_empty() {
        return Err(TrainError::Config(format!(
            "{} of the study's workers failed; the finished runs stay, continue with --resume. {}",
            failed.len(),
            failed.join("\n")
        )));
    }
    if stopped {
        return Err(TrainError::Config("the study was stopped before every run started; continue with --resume".into()));
    }
    let _ = std::fs::remove_dir_all(&dir);
    let (done, missing) = read_back(&planned, opts)?;
    if let Some(m) = missing.first() {
        // Every worker said it finished: a run that reads otherwise is a bug, not a gap.
        return Err(TrainError::Config(format!(
            "{}: a worker exited 0 but its run is not a finished run of this study: {}",
            m.run, m.reason
        )));
    }
    finish_study(settings, models, (data_cfg, &data), (done, missing), start, lock)
}

/// The order in which workers start the runs. With one job, the plan's order. With more, the
/// costliest runs first (training FLOPs per sample times epochs, from the zoo's FLOP model; runs
/// of equal cost keep the plan's order; a model without a FLOP model counts as costliest), so the
/// last runs to start are the shortest and no core waits long at the study's end for one run
/// (a full fusion study in plan order ended with one core idle for 623 s of its 7,249 s,
/// docs/performance.md). The runs are bit-identical in any order.
fn start_order(planned: &[PlannedRun], jobs: usize) -> Vec<&PlannedRun> {
    let mut order: Vec<&PlannedRun> = planned.iter().collect();
    if jobs > 1 {
        let cost = |p: &PlannedRun| {
            cilp_models::ModelSpec::parse(&p.model)
                .ok()
                .and_then(|s| s.network())
                .map_or(u128::MAX, |n| u128::from(n.train_flops()) * p.config.epochs as u128)
        };
        // A stable sort (equal costs stay in the plan's order), each cost computed once.
        order.sort_by_cached_key(|p| std::cmp::Reverse(cost(p)));
    }
    order
}

/// Writes the planned run's config where its worker reads it and starts the worker, its output
/// going to the run's log in `dir`.
fn start_worker(p: &PlannedRun, mode: CreateMode, dir: &Path, workers: &Workers) -> Result<Worker> {
    let config = dir.join(format!("{}.toml", p.run));
    let text = toml::to_string(&p.config).map_err(|e| TrainError::Serialize { what: "a worker's run config", reason: e.to_string() })?;
    cilp_track::atomic::write_atomic(&config, text.as_bytes())?;
    let log = dir.join(format!("{}.log", p.run));
    let mut cmd = (workers.command)(p, &config, mode);
    cmd.env("RAYON_NUM_THREADS", workers.threads_per_job.max(1).to_string());
    let child = spawn_logged(cmd, &log, &format!("the worker for {}", p.run), Stdio::null())?;
    Ok(Worker { index: p.index, run: p.run.clone(), child, log })
}

/// A process that runs beside a study's workers and takes one of their jobs while it runs: the
/// main job's assessment (`cilp run` with two or more jobs). Its output goes to a log file; its
/// process id is on the live list, so a signal handler passes a stop on to it as to the
/// workers (see [`for_each_live_worker`]). Dropped while still running, it is killed (SIGKILL;
/// what it had committed stays, and it resumes from there).
///
/// Its stdin is a pipe that stays open until [`Companion::close_stdin`]: the main job closes it
/// when the studies have ended, and the assessment (started with `--start-threads`) then
/// computes on their core too.
pub struct Companion {
    what: String,
    log: PathBuf,
    state: Mutex<(Child, Option<ExitStatus>)>,
    stdin: Mutex<Option<ChildStdin>>,
}

impl std::fmt::Debug for Companion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Companion").field("what", &self.what).field("log", &self.log).finish_non_exhaustive()
    }
}

impl Companion {
    /// Starts `cmd` (stdin a pipe left open, stdout and stderr to `log`); `what` names it in
    /// messages.
    pub fn start(what: &str, cmd: Command, log: &Path) -> Result<Companion> {
        let mut child = spawn_logged(cmd, log, what, Stdio::piped())?;
        let stdin = Mutex::new(child.stdin.take());
        Ok(Companion { what: what.to_string(), log: log.to_path_buf(), state: Mutex::new((child, None)), stdin })
    }

    /// Closes its stdin (it reads end of file): for the main job's assessment, the sign that the
    /// studies have ended and their cores are free. Closing twice is a no-op.
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// The log its output goes to.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// Whether it is still running (an exited one is reaped and taken off the live list).
    pub fn running(&self) -> bool {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if st.1.is_some() {
            return false;
        }
        match reap(&mut st.0) {
            Ok(None) => true,
            Ok(Some(status)) => {
                st.1 = Some(status);
                false
            }
            Err(_) => true, // not known to have exited; `wait` asks again
        }
    }

    /// Waits until it exits: `Ok` when it exited 0, otherwise an error with its exit status
    /// and the end of its log.
    pub fn wait(&self) -> Result<()> {
        while self.running() {
            std::thread::sleep(Duration::from_millis(100));
        }
        let status = self.state.lock().unwrap_or_else(|e| e.into_inner()).1.expect("reaped by running()");
        if status.success() {
            return Ok(());
        }
        Err(TrainError::Config(format!(
            "{} failed ({}); its output is in {}; it ended with:\n{}",
            self.what,
            describe(status),
            self.log.display(),
            log_tail(&self.log, 12)
        )))
    }
}

impl Drop for Companion {
    fn drop(&mut self) {
        if self.running() {
            let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
            let _ = st.0.kill();
            // Reaped under the live list's lock, as in `reap`.
            let mut pids = live();
            let _ = st.0.wait();
            let id = st.0.id();
            pids.retain(|&p| p != id);
        }
    }
}

/// What a worker process does with one planned run: loads the run's data (the study's split:
/// the config carries its seed) and trains `config` into `out/name` opened as `mode`, exactly as
/// a study trained in one process trains that run. For the binary's hidden worker command.
pub fn train_worker(
    config: &cilp_train::config::TrainConfig,
    out: &Path,
    name: &str,
    mode: CreateMode,
    hooks: cilp_train::fit::TestHooks,
    control: cilp_train::fit::Control,
) -> Result<cilp_train::engine::TrainOutcome> {
    let (data, _) = cilp_train::data::prepare(&config.data, config.data.split_seed.unwrap_or(config.seed))?;
    let ropts = cilp_train::engine::RunOptions {
        runs_dir: out.to_path_buf(),
        name: Some(name.to_string()),
        mode,
        progress: false,
        quiet: false,
        hooks,
        control,
        init_loader: None,
    };
    cilp_train::engine::train(config, &data, &ropts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn several_jobs_start_the_costliest_runs_first() {
        let mut settings = StudySettings::preset(crate::StudyPreset::Full, "unused");
        settings.seeds = vec![1, 2];
        let models: Vec<String> = crate::FUSION_MODELS.iter().map(|m| m.to_string()).collect();
        let planned = crate::runner::plan(&settings, &models).unwrap();
        let names = |order: Vec<&PlannedRun>| order.iter().map(|p| p.run.clone()).collect::<Vec<_>>();
        // One job: the plan's order.
        assert_eq!(names(start_order(&planned, 1)), planned.iter().map(|p| p.run.clone()).collect::<Vec<_>>());
        // Two: by training FLOPs (late-fusion's two whole seed embedders, just above
        // intermediate-concat's 12,800-wide head; then add and hadamard, equal, in the plan's
        // order; early fusion last), seeds in the plan's order within a model.
        assert_eq!(
            names(start_order(&planned, 2)),
            [
                "late-fusion-s1",
                "late-fusion-s2",
                "intermediate-concat-s1",
                "intermediate-concat-s2",
                "intermediate-add-s1",
                "intermediate-add-s2",
                "intermediate-hadamard-s1",
                "intermediate-hadamard-s2",
                "early-fusion-s1",
                "early-fusion-s2",
            ]
        );
        // Epochs count, and a model without a FLOP model (the projector) comes first.
        let mut longer = planned.clone();
        longer[9].config.epochs = 100; // intermediate-hadamard-s2
        longer[0].model = "projector".into(); // early-fusion-s1
        let order = names(start_order(&longer, 2));
        assert_eq!(&order[..2], ["early-fusion-s1", "intermediate-hadamard-s2"]);
        assert_eq!(order.len(), planned.len());
    }

    #[test]
    fn a_companion_reads_end_of_file_only_once_its_stdin_is_closed() {
        let tmp = tempfile::tempdir().unwrap();
        let log = tmp.path().join("c.log");
        // `cat` ends at end of file: the companion runs until its stdin is closed.
        let c = Companion::start("the test companion", sh("cat; echo stdin closed"), &log).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert!(c.running(), "its stdin stays open until closed");
        c.close_stdin();
        c.close_stdin();
        c.wait().unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "stdin closed\n");
    }

    #[test]
    fn a_companion_takes_a_job_while_it_runs_and_reports_how_it_ended() {
        let tmp = tempfile::tempdir().unwrap();
        let no_worker = |_: &PlannedRun, _: &Path, _: CreateMode| Command::new("true");
        let before = live_worker_count();
        let c = Companion::start("the test companion", sh("echo first line; echo last line; sleep 0.5; exit 3"), &tmp.path().join("c.log"))
            .unwrap();
        assert!(c.running());
        assert!(live_worker_count() > before, "a running companion is on the live list");
        let w = Workers { jobs: 3, threads_per_job: 1, command: &no_worker, companion: Some(&c) };
        assert_eq!(w.capacity(), 2, "one job fewer while it runs");
        let err = c.wait().unwrap_err().to_string();
        assert!(err.contains("the test companion failed (exit status 3)") && err.contains("last line"), "{err}");
        assert!(err.contains(&tmp.path().join("c.log").display().to_string()), "{err}");
        assert_eq!(w.capacity(), 3, "every job once it ended");
        assert!(!c.running());

        let ok = Companion::start("ok", sh("exit 0"), &tmp.path().join("ok.log")).unwrap();
        ok.wait().unwrap();
        // Dropped while running: killed, not left behind.
        let long = Companion::start("long", sh("sleep 30"), &tmp.path().join("long.log")).unwrap();
        let t = Instant::now();
        drop(long);
        assert!(t.elapsed() < Duration::from_secs(10), "a dropped companion is killed, not waited for");
        let one = Workers { jobs: 1, threads_per_job: 1, command: &no_worker, companion: Some(&ok) };
        assert_eq!(one.capacity(), 1);
    }
}
