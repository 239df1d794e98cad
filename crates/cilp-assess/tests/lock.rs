//! The assessment folder lock.

/// A second assessment into an OUT folder that is being written is refused at once, naming the
/// holder's pid; nothing is written.
#[test]
fn a_locked_assessment_folder_is_refused() {
    use cilp_assess::{AssessConfig, AssessOptions, AssessPreset, run_assessment};
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("assess");
    let cfg = AssessConfig::preset(AssessPreset::Quick, tmp.path().join("nodata"));
    let opts =
        AssessOptions { out: out.clone(), force: true, resume: false, quiet: true, hooks: Default::default(), control: Default::default() };
    let held = cilp_track::FolderLock::acquire(&out, "assessment folder").unwrap();
    let err = run_assessment(&cfg, &opts).unwrap_err();
    assert!(matches!(&err, cilp_train::TrainError::Track(cilp_track::Error::Locked { .. })), "{err:?}");
    assert!(err.to_string().contains(&std::process::id().to_string()), "{err}");
    assert!(!out.exists());
    drop(held);
    let err = run_assessment(&cfg, &opts).unwrap_err();
    assert!(!matches!(err, cilp_train::TrainError::Track(cilp_track::Error::Locked { .. })), "{err:?}");
}
