//! A base that does not resolve (SPEC §2), in words: the plan's blocked reason, and the
//! diagnostic that points at the base in the manifest.

use crate::plan::BaseFailure;

/// The plan's blocked reason: base `base` does not resolve, and why.
pub fn reason_text(base: &str, why: &BaseFailure) -> String {
    format!("base `{base}` does not resolve to a commit: {}", failure_text(why))
}

/// Why the base does not resolve, after "base `x` does not resolve to a commit: ".
fn failure_text(why: &BaseFailure) -> String {
    match why {
        BaseFailure::Ambiguous { refs } => format!(
            "it is ambiguous: it names {}, and git refuses it too; name one in full",
            refs.join(" and ")
        ),
        BaseFailure::NotFound {
            reason,
            alternates_env: false,
        } => reason.clone(),
        BaseFailure::NotFound {
            reason,
            alternates_env: true,
        } => format!("{reason}; {}", crate::error::ALTERNATES_ENV_HINT),
        BaseFailure::BadAutoSetupMerge { value } => format!(
            "branch.autoSetupMerge is `{value}`, which git refuses (bad boolean config value); {AUTO_SETUP_MERGE_VALUES}"
        ),
        BaseFailure::AmbiguousUpstream { reference, remotes } => format!(
            "{reference} is fetched into by the remotes {}, so git cannot pick the new branch's upstream and refuses it too \
             (not tracking: ambiguous information); {UPSTREAM_FIX}",
            remotes.join(" and ")
        ),
    }
}

const AUTO_SETUP_MERGE_VALUES: &str = "set it to true, false, always, inherit or simple";
const UPSTREAM_FIX: &str = "give each remote's `fetch` refspec its own destination, or set branch.autoSetupMerge false";

/// The diagnostic's words for session `session` whose base `base` (shown shortened) fails:
/// its message, the label on the base where the manifest writes it, and how to fix it.
/// `written`: the manifest writes the base (else the default applies, which is `default`).
pub struct Diagnostic {
    pub message: String,
    /// None when the manifest is not where to fix it.
    pub label: Option<String>,
    pub help: String,
}

pub fn diagnostic(session: &str, base: &str, why: &BaseFailure, written: bool, default: &str) -> Diagnostic {
    let unresolved = format!("session `{session}`: base `{base}` does not resolve to a commit");
    match why {
        BaseFailure::Ambiguous { refs } => Diagnostic {
            message: format!("{unresolved}: it is ambiguous, and git refuses it too"),
            label: Some(format!("names {}", refs.join(" and "))),
            help: format!("name one in full: {}", refs.join(" or ")),
        },
        BaseFailure::NotFound { alternates_env, .. } => Diagnostic {
            message: unresolved,
            label: Some("not found in the repository".into()),
            help: match (alternates_env, written) {
                (true, _) => crate::error::ALTERNATES_ENV_HINT.to_owned(),
                (false, true) => {
                    "name a branch, tag or commit that exists in this repository, or fetch it first".into()
                }
                // Nothing in the file to point at: the default applies.
                (false, false) => format!(
                    "`{default}` is the default base; make that commit exist (a first commit, a fetch), or set `base` \
                     in [defaults] or in [sessions.{session}]"
                ),
            },
        },
        BaseFailure::BadAutoSetupMerge { value } => Diagnostic {
            message: format!(
                "session `{session}`: no branch can be made: branch.autoSetupMerge is `{value}`, which git refuses (bad boolean config value)"
            ),
            label: None,
            help: format!("{AUTO_SETUP_MERGE_VALUES}: git config branch.autoSetupMerge true"),
        },
        BaseFailure::AmbiguousUpstream { reference, remotes } => Diagnostic {
            message: format!(
                "session `{session}`: no branch can be made from `{base}`: the remotes {} all fetch into {reference}, \
                 so git cannot pick its upstream (not tracking: ambiguous information)",
                remotes.join(" and ")
            ),
            label: Some(format!("fetched into by {}", remotes.join(" and "))),
            help: UPSTREAM_FIX.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_says_how_to_fix_it() {
        let ambiguous = BaseFailure::Ambiguous {
            refs: vec!["refs/heads/v1".into(), "refs/tags/v1".into()],
        };
        let d = diagnostic("x", "v1", &ambiguous, true, "v1");
        assert!(d.message.contains("ambiguous"), "{}", d.message);
        assert_eq!(d.help, "name one in full: refs/heads/v1 or refs/tags/v1");
        let missing = BaseFailure::NotFound {
            reason: "not found".into(),
            alternates_env: false,
        };
        assert!(
            diagnostic("x", "main", &missing, false, "main")
                .help
                .contains("is the default base")
        );
        assert!(
            diagnostic("x", "dev", &missing, true, "dev")
                .help
                .contains("fetch it first")
        );
        let elsewhere = BaseFailure::NotFound {
            reason: "not found".into(),
            alternates_env: true,
        };
        assert_eq!(
            diagnostic("x", "dev", &elsewhere, true, "dev").help,
            crate::error::ALTERNATES_ENV_HINT
        );
        assert!(failure_text(&elsewhere).ends_with(crate::error::ALTERNATES_ENV_HINT));
        // Not the manifest's to fix: no label on the base.
        let config = BaseFailure::BadAutoSetupMerge {
            value: "sometimes".into(),
        };
        let d = diagnostic("x", "main", &config, true, "main");
        assert!(d.label.is_none() && d.message.contains("branch.autoSetupMerge is `sometimes`"));
    }
}
