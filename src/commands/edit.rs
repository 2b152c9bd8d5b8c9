//! Edits of the manifest's two files (SPEC §11.1), shared by `new`, `rm`, `import`,
//! `share` and `unshare`. Made under the lock, compare-and-swap: each file is read again
//! right before it is written, the edit is made on that text (so an edit saved meanwhile,
//! in an editor or by another tool, is kept), the result is validated as a whole, and it
//! is written only while the files still hold what was read; otherwise it starts over.
//! toml_edit keeps every comment, the header and the `#:schema` line included.

use std::path::Path;

use super::Error;
use crate::manifest::{Layer, Manifest};

/// How often an edit starts over when the files keep changing under it.
const ATTEMPTS: usize = 5;

/// One file's edit: its new text from its current one (`""` for a local layer not written
/// yet); `None` leaves the file as it is.
pub(crate) type Change<'a> = &'a dyn Fn(&str) -> Result<Option<String>, Error>;

/// Both files' texts: the committed one and the local layer's (`None`: no such file; the
/// committed file may be missing only in a manifest that has none, SPEC §11.1).
type Texts = (Option<String>, Option<String>);

/// Carry out `changes` on the current files and return the manifest they now declare
/// (with what the repository told `manifest`: the default base, `{repo}`).
pub(crate) fn edit(manifest: &Manifest, common_dir: &Path, changes: &[(Layer, Change<'_>)]) -> Result<Manifest, Error> {
    for attempt in 0..ATTEMPTS {
        let read = read_texts(manifest)?;
        let mut next = read.clone();
        for (layer, change) in changes {
            let current = match layer {
                Layer::Shared => next.0.as_deref().unwrap_or_default(),
                Layer::Local => next.1.as_deref().unwrap_or_default(),
            };
            if let Some(text) = change(current)? {
                match layer {
                    Layer::Shared => next.0 = Some(text),
                    Layer::Local => next.1 = Some(text),
                }
            }
        }
        let edited = manifest.with_texts(next.0.clone(), next.1.clone())?;
        if attempt == 0 {
            test_hook();
        }
        if read_texts(manifest)? != read {
            continue;
        }
        write(manifest, common_dir, &read, &next)?;
        return Ok(edited);
    }
    Err(Error::ManifestBusy {
        file: manifest.relative(&manifest.path),
    })
}

fn read_texts(manifest: &Manifest) -> Result<Texts, Error> {
    let committed = crate::manifest::read_text(&manifest.path)?;
    if committed.is_none() && !manifest.committed_absent {
        return Err(crate::manifest::ManifestError::unreadable(&manifest.path, None).into());
    }
    let local = crate::manifest::read_text(&manifest.layer_path(Layer::Local))?;
    Ok((committed, local))
}

/// Write the files that changed; the local layer is listed in `info/exclude` before it
/// is first written, so that it never shows up as a file to commit.
fn write(manifest: &Manifest, common_dir: &Path, read: &Texts, next: &Texts) -> Result<(), Error> {
    // A read-only file is refused before either file is written (a replacement would
    // write past its mode, and drop it).
    for (layer, changed) in [(Layer::Local, next.1 != read.1), (Layer::Shared, next.0 != read.0)] {
        if changed {
            check_writable(manifest, layer)?;
        }
    }
    // A Ctrl-C waits for the writes to finish.
    let _critical = crate::store::lock::Critical::enter();
    if let Some(local) = &next.1
        && next.1 != read.1
    {
        let path = manifest.layer_path(Layer::Local);
        if let Some(line) = local_exclude_line(common_dir, &path) {
            crate::store::exclude::ensure_line(common_dir, &line)?;
        }
        crate::fsutil::write_atomic(&path, local.as_bytes())?;
    }
    if let Some(committed) = &next.0
        && next.0 != read.0
    {
        crate::fsutil::write_atomic(&manifest.path, committed.as_bytes())?;
    }
    Ok(())
}

/// Refuse, before anything is removed or landed, a command whose last step would edit
/// `layer` when that file is read-only: the session would go and its declaration stay
/// (the next apply would make it again).
pub(crate) fn check_writable(manifest: &Manifest, layer: Layer) -> Result<(), Error> {
    let path = manifest.layer_path(layer);
    if read_only(&path) {
        return Err(Error::ManifestReadOnly {
            file: manifest.relative(&path),
        });
    }
    Ok(())
}

/// Whether the file at `path` has no write permission for its owner (root included, whom
/// the kernel would let write).
fn read_only(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o200 == 0)
}

/// The `info/exclude` line for the local layer at `path`, when it lies in the main
/// worktree (the common dir's parent).
fn local_exclude_line(common_dir: &Path, path: &Path) -> Option<String> {
    let top = common_dir.parent()?;
    let rel = path.strip_prefix(top).ok()?;
    let parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    Some(format!("/{}", parts.join("/")))
}

/// Debug builds only (the tests' binary): `FLOWLOOM_TEST_BEFORE_MANIFEST_EDIT=<shell
/// command>` runs the command between reading the files and writing them, to prove that an
/// edit saved meanwhile is kept.
fn test_hook() {
    #[cfg(debug_assertions)]
    if let Ok(command) = std::env::var("FLOWLOOM_TEST_BEFORE_MANIFEST_EDIT") {
        let _ = std::process::Command::new("sh").arg("-c").arg(command).status();
    }
}
