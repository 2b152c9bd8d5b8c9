//! The new worktree's `config.worktree` as `git worktree add` leaves it.
//!
//! With `extensions.worktreeConfig`, git and gix copy the main worktree's `config.worktree`
//! to the new worktree without `core.bare` (when true) and `core.worktree`. git's unset
//! removes a section it empties; gix leaves an empty `[core]` behind. In the bare-clone
//! layout with `core.bare` in `config.worktree`, that is the whole file.

use std::path::Path;

use crate::error::RepoError;

/// Drops the `[core]` sections gix's copy emptied, so the file is byte for byte git's.
pub(crate) fn as_git_writes_it(admin: &Path) -> Result<(), RepoError> {
    let path = admin.join("config.worktree");
    let Ok(bytes) = std::fs::read(&path) else {
        return Ok(());
    };
    let meta = gix::config::file::Metadata::from(gix::config::Source::Worktree);
    let Ok(mut config) = gix::config::File::from_bytes_no_includes(&bytes, meta, Default::default()) else {
        return Ok(());
    };
    let emptied: Vec<_> = config
        .sections_and_ids_by_name("core")
        .into_iter()
        .flatten()
        .filter(|(section, _)| section.header().subsection_name().is_none() && section.value_names().next().is_none())
        .map(|(_, id)| id)
        .collect();
    if emptied.is_empty() {
        return Ok(());
    }
    for id in emptied {
        config.remove_section_by_id(id);
    }
    crate::fsutil::write_atomic(&path, &config.to_bstring())
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_emptied_core_section_goes_and_the_rest_stays() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.worktree");
        std::fs::write(&path, "[core]\n\t\n").expect("write");
        super::as_git_writes_it(dir.path()).expect("rewrite");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "");
        std::fs::write(&path, "[core]\n\tautocrlf = true\n").expect("write");
        super::as_git_writes_it(dir.path()).expect("rewrite");
        assert_eq!(
            std::fs::read_to_string(&path).expect("read"),
            "[core]\n\tautocrlf = true\n"
        );
    }
}
