//! Index format 4 as git writes it: flowloom's encoder against `git update-index
//! --index-version 4` on the same index (git is the oracle, byte for byte).

use crate::common::TestEnv;

#[test]
fn format_4_is_byte_for_byte_what_git_writes() {
    let env = TestEnv::new();
    // Paths that share prefixes, and one that is much longer than the one before it.
    for (i, name) in ["a/b/c/one.txt", "a/b/c/two.txt", "a/b/d.txt", "a/e.txt", "z.txt"]
        .iter()
        .enumerate()
    {
        env.write(name, &format!("{i}\n"));
    }
    env.write(&format!("deep/{}/{}/f.txt", "x".repeat(200), "y".repeat(200)), "long\n");
    env.commit("paths");
    // An entry with extended flags (intent to add) makes git write format 3 below.
    env.write("new.txt", "new\n");
    env.git(&["add", "-N", "new.txt"]);
    let index = env.path(".git/index");
    for extra in [&[][..], &["-c", "index.recordEndOfIndexEntries=true"][..]] {
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["update-index", "--index-version", "3"]);
        env.git(&args);
        let v3 = std::fs::read(&index).expect("index");
        let mut args: Vec<&str> = extra.to_vec();
        args.extend(["update-index", "--index-version", "4"]);
        env.git(&args);
        let v4 = std::fs::read(&index).expect("index");
        assert_eq!(&v4[4..8], &[0, 0, 0, 4]);
        let ours = flowloom::fsutil::index_v4::encode(&v3).expect("encodes");
        assert!(ours == v4, "differs from git's format 4 (extra config {extra:?})");
        // And git reads it.
        std::fs::write(&index, &ours).expect("write");
        assert!(env.git(&["ls-files", "--stage"]).contains("a/b/c/two.txt"));
        env.git(&["status", "--porcelain"]);
    }
}
