//! The housekeeping steps of a plan (`Housekeeping`), carried out before any change:
//! flowloom's `info/exclude` block, leftovers, trash to empty, moves and links to finish,
//! ownership entries to drop.

use super::{Executor, HousekeepError};
use crate::plan::Housekeeping;

impl Executor<'_> {
    pub(super) fn housekeep(&mut self, step: &Housekeeping) -> Result<(), HousekeepError> {
        match step {
            Housekeeping::Excludes { new, legacy, .. } => {
                Ok(crate::store::exclude::write(&self.common_dir, new, legacy)?)
            }
            Housekeeping::Leftover(leftover) => Ok(crate::store::recover::remove(leftover)?),
            Housekeeping::EmptyTrash { path } if self.record.deleting.contains(path) => {
                // A deletion that started: finished, whatever is left of the folder (it was
                // checked before anything of it was deleted). Only in a real trash folder.
                let in_trash = path.parent().is_some_and(|t| {
                    t.file_name() == Some(crate::names::TRASH_DIR.as_ref())
                        && std::fs::symlink_metadata(t).is_ok_and(|m| m.is_dir())
                });
                if !in_trash {
                    return Err(HousekeepError::NotInTrash(path.clone()));
                }
                Ok(self.finish_deletion(path)?)
            }
            Housekeeping::EmptyTrash { path } => {
                // Only a folder the record says flowloom moved there, checked before it was
                // moved, in a trash folder that is a real folder (never through a symlink).
                // It is exactly what the check before the move saw (the recorded digest),
                // lies beside its session's path, and no registration points there any more.
                let owner = self.record.sessions.iter().find(|o| {
                    o.trash.as_deref() == Some(path.as_path())
                        && o.trash_digest.as_deref()
                            == Some(crate::fsutil::stamps::Stamps::read(path).digest().as_str())
                });
                let registered = match owner {
                    Some(o) => self.proxy(&o.path)?.is_some(),
                    None => false,
                };
                let ours = owner.is_some_and(|o| self.probe.is_trash_of(path, &o.path));
                if !ours || registered {
                    return Err(HousekeepError::NotOurs(path.clone()));
                }
                self.start_deletion(path)?;
                Ok(self.finish_deletion(path)?)
            }
            Housekeeping::FinishMove { admin_id, from, to } => Ok(self.resume_move(admin_id, from, to)?),
            Housekeeping::RepairLinks { admin_id, from, to } => Ok(self.repair_links(admin_id, from, to)?),
            Housekeeping::DropRecord { path, session } => {
                self.record.remove_path(path);
                self.save_record()?;
                // A creation that died before its worktree existed may hold ports (unless
                // the id lives on in another entry: its ports are that session's).
                if self.record.sessions.iter().any(|o| o.id == *session) {
                    return Ok(());
                }
                Ok(crate::store::machine::release_ports(&self.repository_key(), session)?)
            }
        }
    }
}
