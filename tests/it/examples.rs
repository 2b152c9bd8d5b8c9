//! Every manifest in `examples/` (and the project's own) stays valid.

#[test]
fn examples_validate() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut manifests: Vec<_> = std::fs::read_dir(dir.join("examples"))
        .expect("examples/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    manifests.push(dir.join("flowloom.toml"));
    assert!(manifests.len() >= 4);
    for path in manifests {
        let env = crate::common::TestEnv::empty();
        let (code, _, err) = crate::common::run(env.flowloom_in(env.tmp.path()).args([
            "validate",
            "--manifest",
            path.to_str().expect("utf8"),
        ]));
        assert_eq!(code, 0, "{} does not validate:\n{err}", path.display());
    }
}
