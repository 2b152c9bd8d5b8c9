//! What the repository holds, read through gix: worktrees, branches, metadata, dirt.

pub mod copy;
pub mod dashboard;
pub mod format;
pub mod inspect;
pub mod links;
pub mod state;
pub mod tracking;
pub mod worktree_status;
