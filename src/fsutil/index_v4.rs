//! The index file as the repository's configuration asks git to write it. gix writes format 2
//! (or 3) with a checksum whatever the configuration says; git writes:
//!
//! - format 4 for `index.version=4` (or `GIT_INDEX_VERSION=4`, or `feature.manyFiles`):
//!   format 3 with each entry's path stored as "drop N bytes from the previous path, then
//!   add this suffix" and no padding;
//! - 20 zero bytes instead of the trailing checksum for `index.skipHash` (which
//!   `feature.manyFiles` turns on): `git fsck` and every reader take a null trailer as "not
//!   computed" (repo-settings.c, read-cache.c).
//!
//! - an untracked cache (`UNTR`, empty until a `git status` fills it) for
//!   `core.untrackedCache=true` (which `feature.manyFiles` turns on): git adds one to every
//!   index it writes, the new worktree's included (dir.c, `new_untracked_cache`).
//!
//! - the index-entry offset table (`IEOT`, first) and the end-of-index-entries extension
//!   (`EOIE`, last) for `index.recordOffsetTable`, `index.recordEndOfIndexEntries` and
//!   `index.threads` (which turns both on unless it is 1), entries cut into blocks where
//!   git cuts them (read-cache.c, `do_write_index`); in format 4 each block starts its
//!   path compression afresh.
//!
//! So flowloom re-encodes what gix wrote. Anything this encoder does not know (a split
//! index, an unknown version, a checksum that does not match) leaves the file as gix wrote
//! it: format 2 with a checksum is always correct, only larger and slower.
//!
//! A leaf of its own: the reader writes the index back after refreshing its file times (as
//! `git status` does), and apply writes it after a checkout.

use std::io::Write;
use std::path::Path;

/// How git would write this repository's index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Format {
    /// Index format 4.
    pub v4: bool,
    /// A null trailer instead of the checksum.
    pub skip_hash: bool,
    /// The end-of-index-entries extension (`EOIE`).
    pub end_of_entries: bool,
    /// The offset table (`IEOT`), for this many threads (0: one per core), when git writes one.
    pub offset_table: Option<usize>,
}

/// The format git's settings give (`prepare_repo_settings`, `get_index_format_default`):
/// `feature.manyFiles` is the default of both, `index.version` (under `GIT_INDEX_VERSION`)
/// and `index.skipHash` decide where set.
pub fn configured(repo: &gix::Repository) -> Format {
    let config = repo.config_snapshot();
    let many_files = config.boolean("feature.manyFiles").unwrap_or(false);
    let version = std::env::var("GIT_INDEX_VERSION")
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or_else(|| config.integer("index.version"));
    // `index.threads` is a number or a boolean (true: one per core, false: one); unset, one.
    let threads = std::env::var("GIT_TEST_INDEX_THREADS")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .filter(|n| *n != 0)
        .or_else(|| {
            let n = config.integer("index.threads").and_then(|n| usize::try_from(n).ok());
            n.or_else(|| config.boolean("index.threads").map(|on| usize::from(!on)))
        });
    let threaded = threads.is_some_and(|n| n != 1);
    let offset_table = config.boolean("index.recordOffsetTable").unwrap_or(threaded);
    Format {
        v4: version.map_or(many_files, |v| v == 4),
        skip_hash: config.boolean("index.skipHash").unwrap_or(many_files),
        end_of_entries: config.boolean("index.recordEndOfIndexEntries").unwrap_or(threaded),
        offset_table: threads.filter(|n| *n != 1 && offset_table),
    }
}

/// How many entries each block of the offset table holds for `threads` (0: one per core)
/// and `count` entries, when git writes a table at all (two blocks or more).
fn entries_per_block(threads: usize, count: usize) -> Option<usize> {
    /// Entries one reading thread is worth (read-cache.c, `THREAD_COST`).
    const THREAD_COST: usize = 10_000;
    let blocks = if threads == 0 {
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        (count / THREAD_COST).min(cpus.saturating_sub(1))
    } else {
        threads.min(count)
    };
    (blocks > 1).then(|| count.div_ceil(blocks))
}

/// Re-encodes the index of `repo` (its `index_path`) as git would write it, under git's
/// `index.lock` (when another process holds it, the file is left as it is).
/// The file gets git's mode under `core.sharedRepository`.
pub fn write_as_configured(repo: &gix::Repository) -> std::io::Result<()> {
    write_in(repo, configured(repo))
}

/// As git rewrites an index it read (`git commit`, `git merge`): in the format of the file it
/// read, format 4 or not (`index.version` and `feature.manyFiles` choose the format of a new
/// index only), with the trailer and untracked cache the configuration asks for.
pub fn write_keeping_version(repo: &gix::Repository, was_v4: bool) -> std::io::Result<()> {
    write_in(
        repo,
        Format {
            v4: was_v4,
            ..configured(repo)
        },
    )
}

fn write_in(repo: &gix::Repository, format: Format) -> std::io::Result<()> {
    let untracked = untracked_cache(repo);
    let path = repo.index_path();
    if format != Format::default() || untracked.is_some() {
        replace(&path, |bytes| match &untracked {
            // An index that has one already (or that this cannot read) is only recoded.
            Some(extension) => match with_extension(bytes, extension) {
                Some(with) => recode(&with, format),
                None => recode(bytes, format),
            },
            None => recode(bytes, format),
        })?;
    }
    crate::fsutil::shared::adjust(&path);
    Ok(())
}

/// `path`'s bytes replaced by what `change` makes of them, when it makes something else.
fn replace(path: &Path, change: impl FnOnce(&[u8]) -> Option<Vec<u8>>) -> std::io::Result<()> {
    let bytes = std::fs::read(path)?;
    let Some(new) = change(&bytes).filter(|new| *new != bytes) else {
        return Ok(());
    };
    let lock = path.with_extension("lock");
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(&lock) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    };
    let written = file
        .write_all(&new)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&lock, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&lock);
    }
    written
}

/// The empty untracked cache git adds to the index it writes when `core.untrackedCache`
/// is `true`, or when `feature.manyFiles` is and `core.untrackedCache` is not a boolean
/// (`keep` keeps manyFiles' choice: repo-settings.c), as
/// `write_untracked_extension` writes it: the ident (worktree and system, which git checks
/// before it uses the cache), no stat data nor ids of the exclude files yet, the flags
/// `status.showUntrackedFiles` gives, `.gitignore`, and no folders.
fn untracked_cache(repo: &gix::Repository) -> Option<Vec<u8>> {
    const KEY: &str = "core.untrackedCache";
    let config = repo.config_snapshot();
    let many_files = config.boolean("feature.manyFiles").unwrap_or(false);
    if !config.boolean(KEY).unwrap_or(many_files) {
        return None;
    }
    let worktree = crate::fsutil::canonical(repo.workdir()?);
    let mut ident = format!("Location {}, system {}", worktree.to_str()?, system_name()).into_bytes();
    ident.push(0);
    let all = config
        .string("status.showUntrackedFiles")
        .is_some_and(|v| v.as_slice() == b"all");
    // DIR_SHOW_OTHER_DIRECTORIES | DIR_HIDE_EMPTY_DIRECTORIES, unless every file is shown.
    let flags: u32 = if all { 0 } else { 2 | 4 };
    let mut data = varint(ident.len());
    data.extend_from_slice(&ident);
    data.extend_from_slice(&[0; 2 * 36]);
    data.extend_from_slice(&flags.to_be_bytes());
    data.extend_from_slice(&[0; 2 * HASH_LEN]);
    data.extend_from_slice(b".gitignore\0");
    data.extend_from_slice(&varint(0));
    let mut extension = b"UNTR".to_vec();
    extension.extend_from_slice(&u32::try_from(data.len()).ok()?.to_be_bytes());
    extension.extend_from_slice(&data);
    Some(extension)
}

/// `uname`'s system name, which git puts in the untracked cache's ident.
fn system_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/ostype").map_or_else(
        |_| match std::env::consts::OS {
            "macos" => "Darwin".to_owned(),
            "freebsd" => "FreeBSD".to_owned(),
            other => other.to_owned(),
        },
        |text| text.trim().to_owned(),
    )
}

/// The format 2 or 3 index `bytes` with `extension` where git writes it (after the cache
/// tree and the resolve-undo data), unless one of its kind is there; a following
/// end-of-index-entries extension gets its table's hash again. With a checksum; `None`
/// when the bytes are not an index this can change.
fn with_extension(bytes: &[u8], extension: &[u8]) -> Option<Vec<u8>> {
    let (body, _) = split(bytes)?;
    let version = u32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    let count = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?) as usize;
    let mut at = 12;
    for _ in 0..count {
        at += entry_at(body, at, version)?.2;
    }
    let mut headers = Vec::new();
    let mut ext = at;
    while ext + 8 <= body.len() {
        let size = u32::from_be_bytes(body.get(ext + 4..ext + 8)?.try_into().ok()?) as usize;
        headers.push((ext, body.get(ext..ext + 4)?, size));
        ext += 8 + size;
    }
    if ext != body.len() || headers.iter().any(|(_, sig, _)| *sig == &extension[..4]) {
        return None;
    }
    let insert_at = headers
        .iter()
        .find(|(_, sig, _)| !matches!(*sig, b"TREE" | b"REUC"))
        .map_or(body.len(), |(start, _, _)| *start);
    let mut out = body[..insert_at].to_vec();
    out.extend_from_slice(extension);
    out.extend_from_slice(&body[insert_at..]);
    if let Some((eoie, _, _)) = headers.iter().find(|(_, sig, _)| *sig == b"EOIE") {
        // Its hash covers the signature and size of every extension before it.
        let eoie = eoie + extension.len();
        let table = out.get(at..eoie)?;
        let mut parts = Vec::new();
        let mut ext = 0;
        while ext + 8 <= table.len() {
            parts.extend_from_slice(table.get(ext..ext + 8)?);
            ext += 8 + u32::from_be_bytes(table.get(ext + 4..ext + 8)?.try_into().ok()?) as usize;
        }
        out.get_mut(eoie + 12..eoie + 12 + HASH_LEN)?
            .copy_from_slice(&sha1(&[&parts])?);
    }
    let checksum = sha1(&[&out])?;
    out.extend_from_slice(&checksum);
    Some(out)
}

const HASH_LEN: usize = 20;
/// ctime, mtime (8 each), dev, ino, mode, uid, gid, size (4 each), object id, flags.
const FIXED: usize = 40 + HASH_LEN + 2;
const EXTENDED: u16 = 0x4000;

fn sha1(parts: &[&[u8]]) -> Option<Vec<u8>> {
    let mut hasher = gix::hash::hasher(gix::hash::Kind::Sha1);
    for part in parts {
        hasher.update(part);
    }
    hasher.try_finalize().ok().map(|id| id.as_bytes().to_vec())
}

/// An index's body and trailer, when the trailer is its checksum or null (`index.skipHash`).
fn split(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let body_len = bytes.len().checked_sub(HASH_LEN)?;
    let (body, trailer) = bytes.split_at(body_len);
    let valid = trailer.iter().all(|b| *b == 0) || sha1(&[body])?.as_slice() == trailer;
    (body.get(..4)? == b"DIRC" && valid).then_some((body, trailer))
}

/// The index `bytes` written in `format`: format 2 or 3 made format 4 where asked (any
/// other version kept), the offset table and end-of-entries extension where asked, and the
/// trailer null or the checksum. `None` when the bytes are not an index this can re-encode.
pub fn recode(bytes: &[u8], format: Format) -> Option<Vec<u8>> {
    let (body, _) = split(bytes)?;
    let mut out = rebuild(body, format)?;
    let trailer = if format.skip_hash {
        vec![0; HASH_LEN]
    } else {
        sha1(&[&out])?
    };
    out.extend_from_slice(&trailer);
    Some(out)
}

/// Format 2 or 3 → format 4 (with a checksum); `None` when the bytes are not an index this
/// can re-encode.
pub fn encode(bytes: &[u8]) -> Option<Vec<u8>> {
    recode(
        bytes,
        Format {
            v4: true,
            ..Format::default()
        },
    )
}

/// The body (no trailer) of an index as `format` asks: its entries in format 4 where asked
/// (from format 2 or 3), cut into the offset table's blocks; its extensions kept in their
/// order, the offset table made again where `format` asks (first), the end-of-entries
/// extension where `format` asks or one was there (last). An index in another format is kept as it is; `None`
/// when the bytes are not an index this can read.
fn rebuild(body: &[u8], format: Format) -> Option<Vec<u8>> {
    let version = u32::from_be_bytes(body.get(4..8)?.try_into().ok()?);
    if version != 2 && version != 3 {
        return Some(body.to_vec());
    }
    let count = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?) as usize;
    let per_block = format
        .offset_table
        .and_then(|threads| entries_per_block(threads, count));
    let mut out = Vec::with_capacity(body.len() + 128);
    out.extend_from_slice(b"DIRC");
    out.extend_from_slice(&(if format.v4 { 4 } else { version }).to_be_bytes());
    out.extend_from_slice(body.get(8..12)?);
    // (offset of the block's first entry, entries in it)
    let mut blocks: Vec<(usize, usize)> = Vec::new();
    let mut at = 12;
    let mut previous: &[u8] = &[];
    for i in 0..count {
        let (head_bytes, path, entry_len) = entry_at(body, at, version)?;
        let starts_block = per_block.is_some_and(|n| i % n == 0);
        if starts_block {
            blocks.push((out.len(), 0));
        }
        if format.v4 {
            // A block shares nothing with the entry before it (git spoils the previous
            // path's first byte), so a reader can start there.
            let common = if starts_block {
                0
            } else {
                previous.iter().zip(path).take_while(|(a, b)| a == b).count()
            };
            out.extend_from_slice(head_bytes);
            out.extend_from_slice(&varint(previous.len() - common));
            out.extend_from_slice(path.get(common..)?);
            out.push(0);
        } else {
            out.extend_from_slice(body.get(at..at + entry_len)?);
        }
        if let Some(block) = blocks.last_mut() {
            block.1 += 1;
        }
        at += entry_len;
        previous = path;
    }
    let extensions_at = out.len();
    let mut extensions: Vec<&[u8]> = Vec::new();
    // An end-of-entries extension already there is kept (written again for the new offsets).
    let mut end_of_entries = format.end_of_entries;
    let mut ext = at;
    while ext + 8 <= body.len() {
        let signature = body.get(ext..ext + 4)?;
        let size = u32::from_be_bytes(body.get(ext + 4..ext + 8)?.try_into().ok()?) as usize;
        match signature {
            // A split index ("link") names a shared index written for its own format.
            b"link" if format.v4 => return None,
            b"EOIE" => end_of_entries = true,
            b"IEOT" => {}
            _ => extensions.push(body.get(ext..ext + 8 + size)?),
        }
        ext += 8 + size;
    }
    if ext != body.len() {
        return None;
    }
    let table = offset_table(&blocks)?;
    if !blocks.is_empty() {
        extensions.insert(0, &table);
    }
    // Its hash covers the signature and size of every extension before it.
    let headers: Vec<&[u8]> = extensions.iter().map(|e| &e[..8]).collect();
    for extension in &extensions {
        out.extend_from_slice(extension);
    }
    if end_of_entries {
        out.extend_from_slice(b"EOIE");
        out.extend_from_slice(&u32::try_from(4 + HASH_LEN).ok()?.to_be_bytes());
        out.extend_from_slice(&u32::try_from(extensions_at).ok()?.to_be_bytes());
        out.extend_from_slice(&sha1(&headers)?);
    }
    Some(out)
}

/// The offset table extension (`IEOT`, version 1) for `blocks`: each block's offset and
/// how many entries it holds.
fn offset_table(blocks: &[(usize, usize)]) -> Option<Vec<u8>> {
    let mut table = b"IEOT".to_vec();
    table.extend_from_slice(&u32::try_from(4 + 8 * blocks.len()).ok()?.to_be_bytes());
    table.extend_from_slice(&1u32.to_be_bytes());
    for (offset, entries) in blocks {
        table.extend_from_slice(&u32::try_from(*offset).ok()?.to_be_bytes());
        table.extend_from_slice(&u32::try_from(*entries).ok()?.to_be_bytes());
    }
    Some(table)
}

/// The format 2 or 3 entry at `at` of `body`: its fixed part (flags included), its path,
/// and its length with the padding.
fn entry_at(body: &[u8], at: usize, version: u32) -> Option<(&[u8], &[u8], usize)> {
    let fixed = body.get(at..at + FIXED)?;
    let flags = u16::from_be_bytes([fixed[FIXED - 2], fixed[FIXED - 1]]);
    let extended = flags & EXTENDED != 0;
    if (extended && version < 3) || !(version == 2 || version == 3) {
        return None;
    }
    let head = FIXED + if extended { 2 } else { 0 };
    let path_start = at + head;
    let path_len = body.get(path_start..)?.iter().position(|b| *b == 0)?;
    let path = body.get(path_start..path_start + path_len)?;
    // Formats 2 and 3 pad each entry with 1 to 8 NULs to a multiple of 8 bytes.
    Some((body.get(at..at + head)?, path, (head + path_len + 8) & !7))
}

/// git's offset varint (`encode_varint` in varint.c).
fn varint(mut value: usize) -> Vec<u8> {
    let mut bytes = vec![(value & 127) as u8];
    value >>= 7;
    while value != 0 {
        value -= 1;
        bytes.push(128 | (value & 127) as u8);
        value >>= 7;
    }
    bytes.reverse();
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_are_gits() {
        assert_eq!(varint(0), [0]);
        assert_eq!(varint(127), [127]);
        assert_eq!(varint(128), [128, 0]);
        assert_eq!(varint(16511), [255, 127]);
        assert_eq!(varint(16512), [128, 128, 0]);
    }

    #[test]
    fn what_it_cannot_read_it_leaves_alone() {
        assert_eq!(encode(b""), None);
        assert_eq!(encode(b"DIRC\0\0\0\x02\0\0\0\0"), None, "no checksum");
        let mut v2 = b"DIRC\0\0\0\x02\0\0\0\0".to_vec();
        v2.extend(sha1(&[&v2]).expect("sha1"));
        let v4 = encode(&v2).expect("an empty index");
        assert_eq!(v4.get(4..8), Some(&[0u8, 0, 0, 4][..]));
    }

    #[test]
    fn an_extension_goes_after_the_cache_tree_with_a_checksum() {
        let mut index = b"DIRC\0\0\0\x02\0\0\0\0TREE\0\0\0\x01xIEOT\0\0\0\0".to_vec();
        index.extend(sha1(&[&index]).expect("sha1"));
        let with = with_extension(&index, b"UNTR\0\0\0\x02ab").expect("an index");
        let (body, _) = split(&with).expect("a valid checksum");
        assert_eq!(
            body,
            b"DIRC\0\0\0\x02\0\0\0\0TREE\0\0\0\x01xUNTR\0\0\0\x02abIEOT\0\0\0\0"
        );
        assert_eq!(with_extension(&with, b"UNTR\0\0\0\0"), None, "one is there already");
    }

    #[test]
    fn skip_hash_writes_a_null_trailer_and_back() {
        let mut v2 = b"DIRC\0\0\0\x02\0\0\0\0".to_vec();
        v2.extend(sha1(&[&v2]).expect("sha1"));
        let null = recode(
            &v2,
            Format {
                skip_hash: true,
                ..Format::default()
            },
        )
        .expect("recodes");
        assert_eq!(&null[..12], &v2[..12]);
        assert_eq!(&null[12..], &[0u8; HASH_LEN][..]);
        assert_eq!(
            recode(&null, Format::default()),
            Some(v2.clone()),
            "a null trailer is read"
        );
        let v4 = recode(
            &null,
            Format {
                v4: true,
                skip_hash: true,
                ..Format::default()
            },
        )
        .expect("recodes");
        assert_eq!(v4.get(4..8), Some(&[0u8, 0, 0, 4][..]));
        assert_eq!(&v4[12..], &[0u8; HASH_LEN][..]);
        let mut corrupt = v2.clone();
        corrupt[12] ^= 1;
        assert_eq!(
            recode(&corrupt, Format::default()),
            None,
            "a wrong checksum is left alone"
        );
    }

    #[test]
    fn entries_per_block_is_gits() {
        assert_eq!(entries_per_block(4, 8), Some(2));
        assert_eq!(entries_per_block(4, 9), Some(3));
        assert_eq!(entries_per_block(4, 1), None, "one block: no table");
        assert_eq!(entries_per_block(2, 3), Some(2));
        assert_eq!(entries_per_block(0, 5), None, "per core: 10,000 entries a thread");
    }
}
