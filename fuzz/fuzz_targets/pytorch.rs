//! PyTorch state-dict loader (`cilp_models::pytorch::StateDict`: the pickle safety scan, the
//! ZIP/legacy/pickle container and burn's pytorch-reader): any bytes must give `Ok` or a
//! `ModelError` naming the file, never a panic, a hang or a huge allocation; a file that
//! opens must answer `keys`/`shape` consistently and read its small tensors without panicking.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

/// One scratch file per fuzzing process (the reader is path based). Under /dev/shm when it
/// exists so the disk is not hammered.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = if std::path::Path::new("/dev/shm").is_dir() {
            PathBuf::from("/dev/shm")
        } else {
            std::env::temp_dir()
        };
        dir.join(format!("cilp-fuzz-{}.pt", std::process::id()))
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("write scratch file");
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    match cilp_models::pytorch::StateDict::open(path) {
        Ok(sd) => {
            for key in sd.keys() {
                let shape = sd.shape(&key).expect("a listed key has a shape");
                let numel = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
                // Only read tensors whose size is small; huge claims are the reader's to refuse.
                if numel.is_some_and(|n| n <= 1 << 16) {
                    match sd.read_f32(&key, &shape) {
                        Ok(v) => assert_eq!(Some(v.len()), numel),
                        Err(e) => assert!(e.to_string().contains(&name), "{e}"),
                    }
                }
                // A wrong shape is an error naming the file, never a read.
                let mut wrong = shape.clone();
                wrong.push(1);
                let e = sd
                    .read_f32(&key, &wrong)
                    .expect_err("wrong shape must be refused");
                assert!(e.to_string().contains(&name), "{e}");
            }
        }
        Err(e) => assert!(e.to_string().contains(&name), "{e}"),
    }
});
