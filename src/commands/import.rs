//! `flowloom import`: adopt in-scope sessions made by hand (SPEC §3, §5). Shows the
//! manifest diff, asks like `apply`, then writes the manifest and the ownership record.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use super::{Error, load, open_repo, take_lock};
use crate::cli::{Cli, ImportArgs};
use crate::manifest::Layer;
use crate::plan::adopt::{self, Adoption};
use crate::read::state::State;
use crate::render::output::{Printer, Style};
use crate::store::ownership::{OwnedSession, OwnedState, Record};

pub fn run(cli: &Cli, start_dir: &Path, args: &ImportArgs, printer: &Printer) -> Result<ExitCode, Error> {
    let repo = open_repo(start_dir)?;
    load(cli, start_dir, Some(&repo))?;
    let common_dir = crate::fsutil::canonical(repo.common_dir());
    // The record is apply's too: never write it while an apply runs.
    let _lock = take_lock(&common_dir, cli.global.lock_timeout, printer)?;
    // Read under the lock: what a concurrent `new` or `rm` wrote counts.
    let manifest = load(cli, start_dir, Some(&repo))?;
    let state = State::read(&repo, &manifest, start_dir)?;
    let plan = crate::plan::plan(&manifest, &state);
    let (candidates, skipped) = adopt::candidates(&manifest, &state, &plan);
    for why in skipped {
        printer.warn(&why.to_string());
    }

    // This clone's own sessions unless `--shared` (SPEC §11.1).
    let layer = if args.shared { Layer::Shared } else { Layer::Local };
    if args.shared {
        super::first_use::needs_committed(&manifest, "import into")?;
    }
    let old_source = manifest.layer_source(layer).to_owned();
    let name = manifest.relative(&manifest.layer_path(layer));
    let (adopted, new_source) = choose(&manifest, layer, &name, candidates, printer)?;
    if adopted.is_empty() {
        printer.status("Nothing to import: no unmanaged session with a worktree can be adopted.");
        return Ok(ExitCode::SUCCESS);
    }
    show(&name, &old_source, &new_source, &adopted, printer);
    if !args.yes && !confirmed(&name, adopted.len(), printer)? {
        printer.status("Import cancelled; nothing was changed.");
        return Ok(ExitCode::from(1));
    }

    // Manifest first, record second: if the record cannot be written, the sessions are
    // declared but not owned, which is harmless. The other order would briefly make them
    // owned and undeclared: orphans, which apply removes. The manifest edit is made on the
    // file as it is now: an edit saved since it was read is kept.
    let change = |text: &str| {
        // SPEC §11.1, first use: the local layer records the root the sessions are in.
        let text = match layer {
            Layer::Local => super::first_use::with_recorded_root(&manifest, text).map_err(|e| Error::ManifestEdit {
                file: name.clone(),
                why: crate::plan::adopt::EditError::NotToml(e.to_string()),
            })?,
            Layer::Shared => text.to_owned(),
        };
        edit(&name, &text, &adopted).map(Some)
    };
    let manifest = super::edit::edit(&manifest, &common_dir, &[(layer, &change)])?;
    // From here on a Ctrl-C waits for the writes to finish (`lock::set_critical`).
    let _critical = crate::store::lock::Critical::enter();
    own(&common_dir, &manifest, &adopted)?;
    exclude(&repo, start_dir, &common_dir, &manifest)?;
    let ids: Vec<&str> = adopted.iter().map(|a| a.id.as_str()).collect();
    printer.status(&format!(
        "{} {}: {}",
        printer.paint(Style::Create, "imported"),
        plural_sessions(adopted.len()),
        ids.join(", ")
    ));
    Ok(ExitCode::SUCCESS)
}

/// The layer's text with these sessions declared in it.
fn edit(name: &str, text: &str, adoptions: &[Adoption]) -> Result<String, Error> {
    adopt::edit(text, adoptions).map_err(|why| Error::ManifestEdit {
        file: name.to_owned(),
        why,
    })
}

/// The candidates to adopt, with the layer's text that declares them. Each adoption must
/// leave a valid manifest (a branch another session declares would not): they are added
/// one by one, and what breaks it is skipped with the validator's reason.
fn choose(
    manifest: &crate::manifest::Manifest,
    layer: Layer,
    name: &str,
    candidates: Vec<Adoption>,
    printer: &Printer,
) -> Result<(Vec<Adoption>, String), Error> {
    let old_source = manifest.layer_source(layer);
    let mut adopted: Vec<Adoption> = Vec::new();
    let mut new_source = old_source.to_owned();
    for candidate in candidates {
        let mut trial = adopted.clone();
        trial.push(candidate);
        let text = edit(name, old_source, &trial)?;
        let Some(candidate) = trial.pop() else { continue };
        match manifest.with_layer(layer, text.clone()) {
            Ok(_) => {
                adopted.push(candidate);
                new_source = text;
            }
            Err(e) => printer.warn(&format!(
                "skipped `{}`: declaring it would make the manifest invalid: {}",
                candidate.id,
                e.problems.first().map_or_else(|| e.to_string(), |p| p.message.clone())
            )),
        }
    }
    Ok((adopted, new_source))
}

/// The manifest diff, then what each adoption notes.
fn show(name: &str, old_source: &str, new_source: &str, adopted: &[Adoption], printer: &Printer) {
    let mut out = String::new();
    for line in adopt::diff(name, old_source, new_source).lines() {
        let style = match line.as_bytes().first() {
            Some(b'+') => Style::Create,
            Some(b'-') => Style::Remove,
            _ => Style::Dim,
        };
        out.push_str(&printer.paint(style, line));
        out.push('\n');
    }
    printer.out(&out);
    for a in adopted {
        for note in &a.notes {
            printer.status(&format!("note: `{}`: {note}", a.id));
        }
    }
}

/// Asks like `apply`: never without a terminal to answer on.
fn confirmed(name: &str, count: usize, printer: &Printer) -> Result<bool, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(Error::NoConfirmation {
            what: "import".into(),
            help: "review the diff above, then run `flowloom import --yes`".into(),
        });
    }
    Ok(printer.confirm(&format!("Import {} into {name}?", plural_sessions(count))))
}

/// The ownership record takes the adopted sessions as flowloom's, their branches made by hand.
fn own(common_dir: &Path, manifest: &crate::manifest::Manifest, adopted: &[Adoption]) -> Result<(), Error> {
    let mut record = Record::read(common_dir)?;
    for a in adopted {
        record.upsert(OwnedSession {
            id: a.id.clone(),
            branch: a.branch.clone(),
            path: a.path.clone(),
            base: manifest.defaults.base.clone(),
            state: OwnedState::Created,
            trash: None,
            trash_digest: None,
            // Made by hand: flowloom never deletes that branch.
            branch_created: false,
        });
    }
    record.write(common_dir)?;
    Ok(())
}

/// The adopted sessions' folders join flowloom's block of `info/exclude`, as apply would
/// write it: the next plan then shows no change for them.
fn exclude(
    repo: &gix::Repository,
    start_dir: &Path,
    common_dir: &Path,
    manifest: &crate::manifest::Manifest,
) -> Result<(), Error> {
    let mut state = State::read(repo, manifest, start_dir)?;
    state.answer(repo, &crate::plan::questions(manifest, &state))?;
    let excludes = crate::plan::plan(manifest, &state)
        .housekeeping
        .into_iter()
        .find_map(|h| match h {
            crate::plan::Housekeeping::Excludes { new, legacy, .. } => Some((new, legacy)),
            _ => None,
        });
    if let Some((lines, legacy)) = excludes {
        crate::store::exclude::write(common_dir, &lines, &legacy)?;
    }
    Ok(())
}

fn plural_sessions(n: usize) -> String {
    format!("{n} {}", crate::plan::plural(n, "session"))
}
