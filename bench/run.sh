#!/usr/bin/env bash
# flowloom benchmark: flowloom against the manual git process it replaces, against the
# floor (copying the files), and against what a reader must read at least.
# See bench/README.md for what each row measures and how to read the ratios.
#
#   bench/run.sh [--runs N] [--quick] [--keep] [--tmp DIR] [--sections 1,2,3,4,5,6,7]
#   FLOWLOOM=path/to/flowloom bench/run.sh
#
# Everything it needs it makes itself, in a temp dir: fixture repositories with
# deterministic content, a hermetic git configuration, the manifests. Nothing is downloaded.
# Progress goes to stderr, the markdown tables to stdout.
set -euo pipefail

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit "${1:-0}"
}

RUNS=5
RUNS_SET=0
QUICK=0
KEEP=0
TMP_PARENT=${TMPDIR:-/tmp}
SECTIONS=1,2,3,4,5,6,7
while (($#)); do
    case $1 in
        --runs) RUNS=${2:?--runs needs a number}; RUNS_SET=1; shift 2 ;;
        --runs=*) RUNS=${1#--runs=}; RUNS_SET=1; shift ;;
        --quick) QUICK=1; shift ;;
        --keep) KEEP=1; shift ;;
        --tmp) TMP_PARENT=${2:?--tmp needs a directory}; shift 2 ;;
        --sections) SECTIONS=${2:?--sections needs a list such as 1,3}; shift 2 ;;
        --sections=*) SECTIONS=${1#--sections=}; shift ;;
        -h|--help) usage 0 ;;
        *) echo "run.sh: unknown argument: $1" >&2; usage 1 >&2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs wants a positive integer, not '$RUNS'" >&2; exit 1; }
[[ $SECTIONS =~ ^[1-7](,[1-7])*$ ]] || { echo "run.sh: --sections wants a list of 1 to 7 such as 1,3, not '$SECTIONS'" >&2; exit 1; }
want() { [[ ,$SECTIONS, == *,$1,* ]]; }

# ---------------------------------------------------------------------------------------
# Sizes. The full run is issue 6's; --quick keeps every code path at toy sizes (CI).
if ((QUICK)); then
    FILES=200          # files in the big fixture
    CREATE_N=3         # sessions created per apply run
    STATUS_N=3         # sessions for the status rows
    PLAN_SIZES=(10 20) # converged sessions for the plan rows (small fixture)
    PLAN_MAIN=20       # the plan row compared with the git reader
    GROWTH_SIZES=(2 4 8) # existing sessions for the growth rows (small fixture), ascending
    GROWTH_STEP=2        # sessions created and removed on top of them
    MODULES_FILES=200    # files in the ignored node_modules/ of section 5 (10 KiB each)
    MOVE_N=3             # sessions moved by a changed root (section 6)
    LAYERS_N=6           # sessions for the two-layer status rows (section 3)
    if ((!RUNS_SET)); then RUNS=1; fi
else
    FILES=5000
    CREATE_N=10
    STATUS_N=20
    PLAN_SIZES=(50 100 200 400)
    PLAN_MAIN=200
    GROWTH_SIZES=(10 100 500 1000)
    GROWTH_STEP=10
    MODULES_FILES=20000  # 20,000 files of 10 KiB: a 200 MB node_modules/
    MOVE_N=100           # sessions of the big fixture moved by a changed root (section 6)
    LAYERS_N=500         # sessions for the two-layer status rows (section 3)
fi
SMALL_FILES=50         # the small fixture behind the plan rows
MEM_SLACK_MIB=16       # "git's peak + a small constant": the constant

# ---------------------------------------------------------------------------------------
# The flowloom under test: $FLOWLOOM, else this checkout's release build, else (--quick
# only, as CI has just run `cargo test`) its debug build, else PATH.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=${CARGO_TARGET_DIR:-$here/../target}
if [[ -z ${FLOWLOOM:-} ]]; then
    if [[ -x $target/release/flowloom ]]; then
        FLOWLOOM=$target/release/flowloom
    elif ((QUICK)) && [[ -x $target/debug/flowloom ]]; then
        FLOWLOOM=$target/debug/flowloom
    else
        FLOWLOOM=$(command -v flowloom || true)
    fi
fi
[[ -n $FLOWLOOM && -x $FLOWLOOM ]] || {
    echo "run.sh: no flowloom binary: build one (cargo build --release) or set FLOWLOOM=path" >&2
    exit 1
}
FLOWLOOM=$(cd "$(dirname "$FLOWLOOM")" && pwd)/$(basename "$FLOWLOOM")
export FLOWLOOM
command -v git >/dev/null || { echo "run.sh: git is needed (it is the baseline)" >&2; exit 1; }

# ---------------------------------------------------------------------------------------
# Scratch space and hermetic git.
mkdir -p "$TMP_PARENT"
TMP=$(mktemp -d "$TMP_PARENT/flowloom-bench.XXXXXX")
cleanup() {
    if ((KEEP)); then echo "run.sh: kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT

export LC_ALL=C
export HOME=$TMP/home XDG_CONFIG_HOME=$TMP/home/.config
mkdir -p "$HOME" "$XDG_CONFIG_HOME"
: >"$HOME/.gitconfig"
export GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=$HOME/.gitconfig
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
export GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE GIT_OBJECT_DIRECTORY GIT_COMMON_DIR \
    GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_CEILING_DIRECTORIES
export NO_COLOR=1 WORKTRUNK_CONFIG_PATH=$TMP/home/worktrunk.toml

# Timing: bash's $EPOCHREALTIME (no fork) when there, else date. Memory: GNU time's %M.
if [[ -n ${EPOCHREALTIME:-} ]]; then
    now_us() { local t=$EPOCHREALTIME; echo $((10#${t%.*} * 1000000 + 10#${t#*.})); }
else
    now_us() { echo $(($(date +%s%N) / 1000)); }
fi
TIME_BIN=
if [[ -x /usr/bin/time ]] && /usr/bin/time -f %M -o /dev/null true 2>/dev/null; then
    TIME_BIN=/usr/bin/time
fi
TIMER=hand-rolled   # hyperfine is not used: the memory column needs GNU time around the same run
log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------------------------------
# Fixtures.

# make_tree DIR FILES: deterministic files (Park-Miller PRNG, exact in any awk), average
# ~4 KiB each, nested 2 to 5 directories deep, one in 500 executable.
make_tree() {
    local dir=$1 files=$2
    mkdir -p "$dir"
    (
        cd "$dir"
        awk -v n="$files" -v mode=dirs -f "$TMP/gen.awk" | sort -u | xargs mkdir -p
        awk -v n="$files" -v mode=files -f "$TMP/gen.awk"
        awk -v n="$files" -v mode=exec -f "$TMP/gen.awk" | xargs -r chmod +x
        printf '# fixture\n%s files of generated text, made by bench/run.sh\n' "$files" >README.md
    )
}
cat >"$TMP/gen.awk" <<'AWK'
function rnd() { seed = (seed * 16807) % 2147483647; return seed }
function dir_of(i) {
    d = sprintf("src/pkg%02d/mod%d", i % 12, int(i / 12) % 7)
    if (i % 3 == 0) d = d "/inner" (i % 4)
    if (i % 9 == 0) d = d "/deep/er"
    return d
}
function name_of(i) { return sprintf("%s/f%05d.%s", dir_of(i), i, (i % 500 == 7) ? "sh" : (i % 2 ? "rs" : "txt")) }
BEGIN {
    seed = 42
    for (i = 0; i < n; i++) {
        if (mode == "dirs") { print dir_of(i); continue }
        if (mode == "exec") { if (i % 500 == 7) print name_of(i); continue }
        f = name_of(i)
        size = 256 + rnd() % 7680
        if (i % 500 == 7) printf "#!/bin/sh\n# generated tool %d\n", i > f
        written = 0
        while (written < size) {
            line = sprintf("let v%d = %08x %08x %08x %08x; // %d", rnd() % 1000, rnd(), rnd(), rnd(), rnd(), written)
            print line > f
            written += length(line) + 1
        }
        close(f)
    }
}
AWK

# make_repo DIR FILES: a packed repository with one commit on `main`.
make_repo() {
    local dir=$1 files=$2
    make_tree "$dir" "$files"
    git -C "$dir" init -q -b main
    git -C "$dir" add -A
    git -C "$dir" commit -q -m "fixture: $files files"
    git -C "$dir" repack -adq
    git -C "$dir" prune-packed
}

# manifest DIR N: flowloom.toml declaring s001 ... sN (left untracked: the same tree for all).
manifest() {
    local dir=$1 n=$2 i
    {
        echo "version = 1"
        for ((i = 1; i <= n; i++)); do printf '\n[sessions.s%03d]\n' "$i"; done
    } >"$dir/flowloom.toml"
}

# manifest_layers DIR N: the same N sessions, the first half in flowloom.toml and the rest
# in this clone's flowloom.local.toml (the two layers).
manifest_layers() {
    local dir=$1 n=$2 i half=$(($2 / 2))
    manifest "$dir" "$half"
    {
        echo "version = 1"
        for ((i = half + 1; i <= n; i++)); do printf '\n[sessions.s%03d]\n' "$i"; done
    } >"$dir/flowloom.local.toml"
}

# ---------------------------------------------------------------------------------------
# The contenders, each a small script run as `bash script args` so that every row pays
# the same shell start-up and GNU time sees the whole process tree (its %M is the peak
# of the largest process in it).
CMD=$TMP/cmd
mkdir -p "$CMD"
cat >"$CMD/flowloom_apply.sh" <<'SH'
cd "$1" && exec "$FLOWLOOM" apply --yes </dev/null
SH
cat >"$CMD/flowloom_plan.sh" <<'SH'
cd "$1" && exec "$FLOWLOOM" plan </dev/null
SH
cat >"$CMD/flowloom_new.sh" <<'SH'
cd "$1" && exec "$FLOWLOOM" new s001 </dev/null
SH
cat >"$CMD/git_worktree_add.sh" <<'SH'
cd "$1" && exec git worktree add -q -b session/s001 sessions/shell-instance-s001
SH
cat >"$CMD/flowloom_status.sh" <<'SH'
cd "$1" && exec "$FLOWLOOM" status </dev/null
SH
# The seed document's manual process, per session, with the manifest's ids: branch and
# worktree, the session folder with artifacts/, metadata.json. The JSON is written with
# bash's printf (no python start-up, as the seed has): the cheapest faithful form.
cat >"$CMD/manual_git_loop.sh" <<'SH'
set -e
cd "$1"
n=$2
pid=$PPID
for ((i = 1; i <= n; i++)); do
    printf -v id 's%03d' "$i"
    wt=shell-instance-$id
    git worktree add -q -b "session/$id" "sessions/$wt"
    mkdir -p "sessions/$wt/sessions/$id/artifacts"
    printf -v start '%(%Y-%m-%dT%H:%M:%S)T' -1
    printf '{\n  "sessionId": "%s",\n  "shellPid": %s,\n  "purpose": "%s",\n  "createdManually": true,\n  "startTime": "%s",\n  "workingDirectory": "%s",\n  "gitBranch": "session/%s",\n  "worktreeName": "%s",\n  "status": "active"\n}\n' \
        "$id" "$pid" "$id" "$start" "$PWD/sessions/$wt" "$id" "$wt" >"sessions/$wt/sessions/$id/metadata.json"
done
SH
# The floor: the tracked tree (extracted once with git archive) copied N times.
cat >"$CMD/cp_a_floor.sh" <<'SH'
set -e
for ((i = 1; i <= $3; i++)); do cp -a "$1" "$2/$i"; done
SH
# A peer tool, when installed: worktrunk's `wt switch --create` per session.
cat >"$CMD/peer_wt.sh" <<'SH'
set -e
cd "$1"
for ((i = 1; i <= $2; i++)); do
    printf -v id 's%03d' "$i"
    wt switch --create "session/$id" --no-cd </dev/null
done
SH
# The least a plan must read: the worktree registrations and the local branches.
cat >"$CMD/git_reader.sh" <<'SH'
cd "$1" && git worktree list --porcelain && exec git for-each-ref refs/heads
SH
cat >"$CMD/git_status_loop.sh" <<'SH'
set -e
for d in "$1"/sessions/shell-instance-*/; do git -C "$d" status --porcelain; done
SH
# Section 6: each run moves every session to the other of two roots, `sessions/` and
# `../moved/`: flowloom by the manifest's `root` (toggled untimed before the run), git by
# hand, one `git worktree move` per session (the folder and its registration, no more).
cat >"$CMD/git_move_loop.sh" <<'SH'
set -e
cd "$1"
if [[ -d sessions/shell-instance-s001 ]]; then from=sessions to=../moved; else from=../moved to=sessions; fi
mkdir -p "$to"
for d in "$from"/shell-instance-*; do git worktree move "$d" "$to/${d##*/}"; done
SH

# ---------------------------------------------------------------------------------------
# Measurement.
declare -A MED MEM NOTE
FAILED_FLOWLOOM=0

median() { sort -n | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# time_once KEY CMD...: one timed run of CMD (under GNU time), its wall time (µs) and peak
# RSS (KiB) appended to KEY's samples; settle KEY keeps their medians. A failing flowloom
# command fails the benchmark; a failing peer tool only its row. Returns 1 on failure.
declare -A SAMPLES MEMSAMPLES
time_once() {
    local key=$1 t0 t1 status=0
    shift
    t0=$(now_us)
    if [[ -n $TIME_BIN ]]; then
        "$TIME_BIN" -f %M -o "$TMP/mem" "$@" >"$TMP/out" 2>"$TMP/err" || status=$?
    else
        "$@" >"$TMP/out" 2>"$TMP/err" || status=$?
    fi
    t1=$(now_us)
    if ((status != 0)); then
        log "FAILED ($status): $key: $*"
        sed 's/^/    /' "$TMP/err" | tail -n 30 >&2
        NOTE[$key]="failed (exit $status)"
        case $key in
            peer*) return 1 ;;
            flowloom*) FAILED_FLOWLOOM=1; return 1 ;;
            *) exit 1 ;;
        esac
    fi
    SAMPLES[$key]+="$((t1 - t0)) "
    [[ -n $TIME_BIN ]] && MEMSAMPLES[$key]+="$(tail -n 1 "$TMP/mem") "
    return 0
}
settle() {
    local key=$1
    [[ -n ${NOTE[$key]:-} || -z ${SAMPLES[$key]:-} ]] && return 0
    # shellcheck disable=SC2086 # the samples are space-separated numbers
    MED[$key]=$(printf '%s\n' ${SAMPLES[$key]} | median)
    # shellcheck disable=SC2086
    if [[ -n ${MEMSAMPLES[$key]:-} ]]; then MEM[$key]=$(printf '%s\n' ${MEMSAMPLES[$key]} | median); fi
    log "$key: $(fmt_ms "${MED[$key]}") ms, $(fmt_mib "${MEM[$key]:-}") MiB"
}

# measure KEY PREP CHECK -- CMD...: run PREP (untimed), CMD (timed), CHECK (untimed) RUNS
# times; keep the median wall time (ms) and the median peak RSS (KiB).
measure() {
    local key=$1 prep=$2 check=$3 r
    shift 4
    for ((r = 1; r <= RUNS; r++)); do
        measure_once "$key" "$prep" "$check" -- "$@" || return 0
    done
    settle "$key"
}
# measure_once KEY PREP CHECK -- CMD...: one run of measure's loop, for rows measured in
# turn (one run of each, RUNS times) so that a machine's changing load weighs on each alike.
measure_once() {
    local key=$1 prep=$2 check=$3
    shift 4
    [[ -n ${NOTE[$key]:-} ]] && return 1
    [[ $prep == - ]] || $prep
    time_once "$key" "$@" || return 1
    [[ $check == - ]] || $check
}

fmt_ms() { [[ -n ${1:-} ]] && awk -v u="$1" 'BEGIN { printf (u >= 100000 ? "%.0f" : "%.1f"), u / 1000 }' || echo n/a; }
fmt_mib() { [[ -n ${1:-} ]] && awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }' || echo n/a; }
ratio() { [[ -n ${MED[$1]:-} && -n ${MED[$2]:-} ]] && awk -v a="${MED[$1]}" -v b="${MED[$2]}" 'BEGIN { printf "%.2f", a / b }' || echo n/a; }
verdict() { # verdict RATIO TARGET
    [[ $1 == n/a ]] && { echo n/a; return; }
    awk -v r="$1" -v t="$2" 'BEGIN { print (r <= t ? "met" : "**missed**") }'
}

# Checks run after a timed command (untimed): the work was really done.
worktree_count() { git -C "$1" worktree list --porcelain | grep -c '^worktree '; }
check_sessions() { # DIR N
    local n
    n=$(worktree_count "$1")
    ((n == $2 + 1)) || { log "expected $2 linked worktrees in $1, found $((n - 1))"; exit 1; }
    local last
    printf -v last 's%03d' "$2"
    [[ -f $1/sessions/shell-instance-$last/sessions/$last/metadata.json ]] || {
        log "no metadata.json for $last in $1"
        exit 1
    }
}
check_converged() { # DIR: plan --detailed-exitcode says "no changes"
    local status=0
    (cd "$1" && "$FLOWLOOM" plan --detailed-exitcode >/dev/null 2>"$TMP/plan.err") || status=$?
    if ((status != 0)); then
        log "flowloom plan --detailed-exitcode exited $status in $1 after apply (0 = converged)"
        sed 's/^/    /' "$TMP/plan.err" | tail -n 20 >&2
        FAILED_FLOWLOOM=1
        return 1
    fi
}

# ---------------------------------------------------------------------------------------
log "flowloom: $FLOWLOOM ($("$FLOWLOOM" --version 2>/dev/null || echo '?'))"
log "scratch: $TMP; runs: $RUNS; quick: $QUICK"

log "fixture: $FILES files"
make_repo "$TMP/pristine-big" "$FILES"
BIG_BYTES=$(git -C "$TMP/pristine-big" archive HEAD | wc -c)
BIG_KIB=$(du -sk --exclude=.git "$TMP/pristine-big" | cut -f1)
log "fixture: $SMALL_FILES files (plan and growth rows)"
make_repo "$TMP/pristine-small" "$SMALL_FILES"
mkdir -p "$TMP/tree"
git -C "$TMP/pristine-big" archive HEAD | tar -x -C "$TMP/tree"

RUN=$TMP/run
fresh_big() { rm -rf "$RUN" && cp -a "$TMP/pristine-big" "$RUN"; }
fresh_big_manifest() { fresh_big && manifest "$RUN" "$CREATE_N"; }
fresh_floor() { rm -rf "$TMP/floor" && mkdir -p "$TMP/floor"; }
check_create() { check_sessions "$RUN" "$CREATE_N"; }
check_apply() {
    check_create
    if ((!APPLY_CHECKED)); then check_converged "$RUN" || true; APPLY_CHECKED=1; fi
}
APPLY_CHECKED=0

# 1. Create CREATE_N sessions -------------------------------------------------------------
if want 1; then
    log "1. create $CREATE_N sessions of the $FILES-file repository"
    measure flowloom_apply fresh_big_manifest check_apply -- bash "$CMD/flowloom_apply.sh" "$RUN"
    measure manual_git_loop fresh_big check_create -- bash "$CMD/manual_git_loop.sh" "$RUN" "$CREATE_N"
    measure cp_a_floor fresh_floor - -- bash "$CMD/cp_a_floor.sh" "$TMP/tree" "$TMP/floor" "$CREATE_N"
    PEER=
    if command -v wt >/dev/null 2>&1 && wt --version 2>/dev/null | grep -qi worktrunk; then
        PEER="wt ($(wt --version 2>/dev/null | head -n 1))"
        measure peer_wt fresh_big - -- bash "$CMD/peer_wt.sh" "$RUN" "$CREATE_N"
    fi
    # One session, as an agent makes it: `new` (declares it in the local layer, then
    # creates it) against an apply creating the same session already declared, and
    # against `git worktree add` alone.
    log "1. new: one session of the $FILES-file repository"
    fresh_big_empty() { fresh_big && manifest "$RUN" 0; }
    fresh_big_one() { fresh_big && manifest "$RUN" 1; }
    check_one() { check_sessions "$RUN" 1; }
    check_new() {
        check_one
        grep -q '^\[sessions.s001\]' "$RUN/flowloom.local.toml" || { log "new did not declare s001 locally"; exit 1; }
    }
    check_git_one() { (($(worktree_count "$RUN") == 2)) || { log "git worktree add made no worktree"; exit 1; }; }
    for ((r = 1; r <= RUNS; r++)); do
        measure_once flowloom_new fresh_big_empty check_new -- bash "$CMD/flowloom_new.sh" "$RUN" || true
        measure_once flowloom_apply_one fresh_big_one check_one -- bash "$CMD/flowloom_apply.sh" "$RUN" || true
        measure_once git_worktree_add fresh_big check_git_one -- bash "$CMD/git_worktree_add.sh" "$RUN" || true
    done
    for key in flowloom_new flowloom_apply_one git_worktree_add; do settle "$key"; done
    rm -rf "$RUN" "$TMP/floor"
fi

declare -A APPLY_US
HAVE_STATUS=0
# 2. Plan on converged sessions ----------------------------------------------------------
if want 2; then
    for n in "${PLAN_SIZES[@]}"; do
        log "2. plan on $n converged sessions ($SMALL_FILES-file repository)"
        dir=$TMP/plan-$n
        rm -rf "$dir" && cp -a "$TMP/pristine-small" "$dir"
        manifest "$dir" "$n"
        t0=$(now_us)
        (cd "$dir" && "$FLOWLOOM" apply --yes </dev/null >/dev/null 2>"$TMP/err") || {
            log "flowloom apply failed while setting up $n sessions"
            sed 's/^/    /' "$TMP/err" | tail -n 30 >&2
            exit 1
        }
        APPLY_US[$n]=$(($(now_us) - t0))
        check_sessions "$dir" "$n"
        check_converged "$dir" || continue
        # One untimed warm-up each, so the first timed run does not pay for cold caches.
        bash "$CMD/flowloom_plan.sh" "$dir" >/dev/null 2>&1 || true
        bash "$CMD/git_reader.sh" "$dir" >/dev/null 2>&1
        measure "flowloom_plan_$n" - - -- bash "$CMD/flowloom_plan.sh" "$dir"
        measure "git_reader_$n" - - -- bash "$CMD/git_reader.sh" "$dir"
        rm -rf "$dir"
    done
fi

# 3. Status --------------------------------------------------------------------------------
if want 3; then
    log "3. status on $STATUS_N sessions of the $FILES-file repository"
    STATUS_DIR=$TMP/status
    rm -rf "$STATUS_DIR" && cp -a "$TMP/pristine-big" "$STATUS_DIR"
    manifest "$STATUS_DIR" "$STATUS_N"
    (cd "$STATUS_DIR" && "$FLOWLOOM" apply --yes </dev/null >/dev/null 2>"$TMP/err") || {
        log "flowloom apply failed while setting up the status repository"
        sed 's/^/    /' "$TMP/err" | tail -n 30 >&2
        exit 1
    }
    check_sessions "$STATUS_DIR" "$STATUS_N"
    # flowloom first, on the indexes as its apply wrote them: flowloom status never rewrites an
    # index, so this is what its users see on every run. `git status` refreshes (rewrites) each
    # index on its first run; the second flowloom row shows flowloom on git-refreshed indexes.
    if "$FLOWLOOM" status --help >/dev/null 2>&1; then
        HAVE_STATUS=1
        bash "$CMD/flowloom_status.sh" "$STATUS_DIR" >/dev/null 2>&1 || true
        measure flowloom_status - - -- bash "$CMD/flowloom_status.sh" "$STATUS_DIR"
    else
        log "flowloom status: not in this build (flowloom status --help fails): n/a"
    fi
    bash "$CMD/git_status_loop.sh" "$STATUS_DIR" >/dev/null
    measure git_status_loop - - -- bash "$CMD/git_status_loop.sh" "$STATUS_DIR"
    if ((HAVE_STATUS)); then
        measure flowloom_status_refreshed - - -- bash "$CMD/flowloom_status.sh" "$STATUS_DIR"
    fi
    rm -rf "$STATUS_DIR"
    # Two layers: the same LAYERS_N sessions declared in flowloom.toml alone, then half of
    # them in flowloom.local.toml (rewritten untimed; the plan must still show no change).
    if ((HAVE_STATUS)); then
        log "3. status on $LAYERS_N sessions ($SMALL_FILES-file repository), one layer and two"
        LAYERS_DIR=$TMP/layers
        rm -rf "$LAYERS_DIR" && cp -a "$TMP/pristine-small" "$LAYERS_DIR"
        manifest "$LAYERS_DIR" "$LAYERS_N"
        (cd "$LAYERS_DIR" && "$FLOWLOOM" apply --yes </dev/null >/dev/null 2>"$TMP/err") || {
            log "flowloom apply failed while setting up the two-layer repository"
            sed 's/^/    /' "$TMP/err" | tail -n 30 >&2
            exit 1
        }
        check_sessions "$LAYERS_DIR" "$LAYERS_N"
        one_layer() { rm -f "$LAYERS_DIR/flowloom.local.toml" && manifest "$LAYERS_DIR" "$LAYERS_N"; }
        two_layers() { manifest_layers "$LAYERS_DIR" "$LAYERS_N"; }
        two_layers
        check_converged "$LAYERS_DIR" || exit 1
        bash "$CMD/flowloom_status.sh" "$LAYERS_DIR" >/dev/null 2>&1 || true
        # Which goes first alternates run by run, so that an order effect cancels: in a fixed
        # order the second row ran ~10% longer although both make the same system calls.
        for ((r = 1; r <= RUNS; r++)); do
            if ((r % 2)); then
                measure_once flowloom_status_one_layer one_layer - -- bash "$CMD/flowloom_status.sh" "$LAYERS_DIR" || true
                measure_once flowloom_status_two_layers two_layers - -- bash "$CMD/flowloom_status.sh" "$LAYERS_DIR" || true
            else
                measure_once flowloom_status_two_layers two_layers - -- bash "$CMD/flowloom_status.sh" "$LAYERS_DIR" || true
                measure_once flowloom_status_one_layer one_layer - -- bash "$CMD/flowloom_status.sh" "$LAYERS_DIR" || true
            fi
        done
        settle flowloom_status_one_layer
        settle flowloom_status_two_layers
        rm -rf "$LAYERS_DIR"
    fi
fi

# 4. Growth --------------------------------------------------------------------------------
# One repository (the small fixture) holds N flowloom sessions, for each N of GROWTH_SIZES
# from the largest down. At each N, RUNS times: flowloom creates GROWTH_STEP more sessions
# (an apply), then removes them (an apply after the manifest dropped them), then git does
# the same with `git worktree add` and `git worktree remove` + `git branch -D` loops, in
# the same repository beside the same N worktrees; then plan and status on the N sessions
# against their git readers, and two diagnostics rows with N problems each. The step from
# one N down to the next is an untimed-for-the-rows but recorded apply (bulk removal).
if want 4; then
    cat >"$CMD/git_add_loop.sh" <<'SH'
set -e
cd "$1"
for ((i = $2; i <= $3; i++)); do
    printf -v id 'g%03d' "$i"
    git worktree add -q -b "session/$id" "sessions/shell-instance-$id"
done
SH
    cat >"$CMD/git_remove_loop.sh" <<'SH'
set -e
cd "$1"
for ((i = $2; i <= $3; i++)); do
    printf -v id 'g%03d' "$i"
    git worktree remove "sessions/shell-instance-$id"
    git branch -q -D "session/$id"
done
SH
    # Diagnostics: a command that must exit 1 after reporting every problem.
    cat >"$CMD/flowloom_fails.sh" <<'SH'
cd "$1" || exit 2
shift
"$FLOWLOOM" "$@" </dev/null
test $? -eq 1
SH

    # bad_manifest FILE N KIND: N sessions, each with one problem: an unknown key
    # (`validate`), or a base that does not resolve (`plan`).
    bad_manifest() {
        local file=$1 n=$2 kind=$3 i
        {
            echo "version = 1"
            for ((i = 1; i <= n; i++)); do
                printf '\n[sessions.s%03d]\n' "$i"
                case $kind in
                    key) printf 'purpse = "typo %d"\n' "$i" ;;
                    base) printf 'base = "missing-%03d"\n' "$i" ;;
                esac
            done
        } >"$file"
    }
    # count_problems N PATTERN: the last command's stderr names N problems.
    count_problems() {
        local got
        got=$(grep -c -- "$2" "$TMP/err" || true)
        ((got == $1)) || { log "expected $1 diagnostics matching '$2', found $got"; FAILED_FLOWLOOM=1; }
    }

    G=$TMP/growth
    rm -rf "$G" && cp -a "$TMP/pristine-small" "$G"
    DIAG=$TMP/diag
    rm -rf "$DIAG" && cp -a "$TMP/pristine-small" "$DIAG"
    GMAX=${GROWTH_SIZES[-1]}
    GMIN=${GROWTH_SIZES[0]}

    log "4. growth: create $GMAX sessions in one apply ($SMALL_FILES-file repository)"
    manifest "$G" "$GMAX"
    if time_once flowloom_create_all bash "$CMD/flowloom_apply.sh" "$G"; then
        settle flowloom_create_all
        check_sessions "$G" "$GMAX"
        check_converged "$G" || true
    fi
    log "4. growth: the same with git: $GMAX × git worktree add, then $GMAX × remove + branch -D"
    GG=$TMP/growth-git
    rm -rf "$GG" && cp -a "$TMP/pristine-small" "$GG"
    time_once git_add_all bash "$CMD/git_add_loop.sh" "$GG" 1 "$GMAX" && settle git_add_all
    (($(worktree_count "$GG") == GMAX + 1)) || { log "git made $(($(worktree_count "$GG") - 1)) worktrees, not $GMAX"; exit 1; }
    time_once git_remove_all bash "$CMD/git_remove_loop.sh" "$GG" 1 "$GMAX" && settle git_remove_all
    (($(worktree_count "$GG") == 1)) || { log "git left $(($(worktree_count "$GG") - 1)) worktrees"; exit 1; }
    rm -rf "$GG"

    REMOVE_ALL_US=0
    have=$GMAX
    for ((k = ${#GROWTH_SIZES[@]} - 1; k >= 0; k--)); do
        n=${GROWTH_SIZES[k]}
        ((FAILED_FLOWLOOM)) && break
        if ((have != n)); then
            log "4. growth: remove $((have - n)) sessions in one apply ($have → $n)"
            manifest "$G" "$n"
            time_once flowloom_remove_step bash "$CMD/flowloom_apply.sh" "$G" || break
            REMOVE_ALL_US=$((REMOVE_ALL_US + ${SAMPLES[flowloom_remove_step]% }))
            unset 'SAMPLES[flowloom_remove_step]'
            check_sessions "$G" "$n"
            have=$n
        fi
        top=$((n + GROWTH_STEP))
        log "4. growth at $n sessions: +$GROWTH_STEP and −$GROWTH_STEP, flowloom and git, $RUNS run(s)"
        for ((r = 1; r <= RUNS; r++)); do
            manifest "$G" "$top"
            time_once "flowloom_grow_add_$n" bash "$CMD/flowloom_apply.sh" "$G" || break
            check_sessions "$G" "$top"
            manifest "$G" "$n"
            time_once "flowloom_grow_rm_$n" bash "$CMD/flowloom_apply.sh" "$G" || break
            check_sessions "$G" "$n"
            time_once "git_grow_add_$n" bash "$CMD/git_add_loop.sh" "$G" $((n + 1)) "$top"
            time_once "git_grow_rm_$n" bash "$CMD/git_remove_loop.sh" "$G" $((n + 1)) "$top"
            (($(worktree_count "$G") == n + 1)) || { log "git left worktrees behind in $G"; exit 1; }
        done
        for key in flowloom_grow_add flowloom_grow_rm git_grow_add git_grow_rm; do settle "${key}_$n"; done
        ((FAILED_FLOWLOOM)) && break
        check_converged "$G" || break

        bash "$CMD/flowloom_plan.sh" "$G" >/dev/null 2>&1 || true
        bash "$CMD/git_reader.sh" "$G" >/dev/null 2>&1
        measure "flowloom_gplan_$n" - - -- bash "$CMD/flowloom_plan.sh" "$G"
        measure "git_greader_$n" - - -- bash "$CMD/git_reader.sh" "$G"
        bash "$CMD/flowloom_status.sh" "$G" >/dev/null 2>&1 || true
        bash "$CMD/git_status_loop.sh" "$G" >/dev/null
        measure "flowloom_gstatus_$n" - - -- bash "$CMD/flowloom_status.sh" "$G"
        measure "git_gstatus_$n" - - -- bash "$CMD/git_status_loop.sh" "$G"

        bad_manifest "$TMP/bad-keys.toml" "$n" key
        measure "flowloom_gvalidate_$n" - - -- bash "$CMD/flowloom_fails.sh" "$DIAG" validate --manifest "$TMP/bad-keys.toml"
        # shellcheck disable=SC2016 # the backticks are the diagnostic's own
        count_problems "$n" 'unknown key `purpse`'
        bad_manifest "$DIAG/flowloom.toml" "$n" base
        measure "flowloom_gbadbase_$n" - - -- bash "$CMD/flowloom_fails.sh" "$DIAG" plan
        # shellcheck disable=SC2016
        count_problems "$n" 'base `missing-'
    done
    if ((!FAILED_FLOWLOOM)); then
        log "4. growth: remove the last $have sessions in one apply"
        manifest "$G" 0
        if time_once flowloom_remove_step bash "$CMD/flowloom_apply.sh" "$G"; then
            REMOVE_ALL_US=$((REMOVE_ALL_US + ${SAMPLES[flowloom_remove_step]% }))
            (($(worktree_count "$G") == 1)) || { log "flowloom left $(($(worktree_count "$G") - 1)) worktrees"; FAILED_FLOWLOOM=1; }
            MED[flowloom_remove_all]=$REMOVE_ALL_US
            log "flowloom_remove_all (sum of the steps): $(fmt_ms "$REMOVE_ALL_US") ms"
        fi
    fi
    rm -rf "$G" "$DIAG"
fi

# 5. Session environment: copy an ignored node_modules/ into each new session ---------------
# make_modules DIR N: N files of 10 KiB in 100 packages, the way a node_modules/ is many
# small files; deterministic.
make_modules() {
    mkdir -p "$1"
    (cd "$1" && awk -v n="$2" 'BEGIN {
        blob = ""; while (length(blob) < 10240) blob = blob "module.exports = function () { return 42; };\n"
        blob = substr(blob, 1, 10240)
        for (p = 0; p < 100; p++) system("mkdir -p pkg" p "/lib")
        for (i = 0; i < n; i++) { f = sprintf("pkg%d/lib/m%05d.js", i % 100, i); printf "%s", blob > f; close(f) }
    }')
}
if want 5; then
    log "5. copy: a $MODULES_FILES-file node_modules/ into $CREATE_N sessions ($SMALL_FILES-file repository)"
    ENV_DIR=$TMP/env-pristine
    rm -rf "$ENV_DIR" && cp -a "$TMP/pristine-small" "$ENV_DIR"
    echo "node_modules/" >"$ENV_DIR/.gitignore"
    git -C "$ENV_DIR" add .gitignore && git -C "$ENV_DIR" commit -q -m "ignore node_modules"
    make_modules "$ENV_DIR/node_modules" "$MODULES_FILES"
    MODULES_BYTES=$(du -sb "$ENV_DIR/node_modules" | cut -f1)
    fresh_env() { # fresh_env COPY: the fixture and a manifest with or without `copy`
        rm -rf "$RUN" && cp -a "$ENV_DIR" "$RUN"
        manifest "$RUN" "$CREATE_N"
        if [[ $1 == copy ]]; then sed -i '1a [defaults]\ncopy = ["node_modules/"]' "$RUN/flowloom.toml"; fi
    }
    fresh_env_copy() { fresh_env copy; }
    fresh_env_plain() { fresh_env plain; }
    check_env_copy() {
        check_create
        local last
        printf -v last 's%03d' "$CREATE_N"
        [[ $(find "$RUN/sessions/shell-instance-$last/node_modules" -type f | wc -l) -eq $MODULES_FILES ]] || {
            log "node_modules/ was not copied whole into $last"
            exit 1
        }
    }
    measure flowloom_env_copy fresh_env_copy check_env_copy -- bash "$CMD/flowloom_apply.sh" "$RUN"
    measure flowloom_env_plain fresh_env_plain check_create -- bash "$CMD/flowloom_apply.sh" "$RUN"
    measure cp_a_modules fresh_floor - -- bash "$CMD/cp_a_floor.sh" "$ENV_DIR/node_modules" "$TMP/floor" "$CREATE_N"
    # The copy's own cost: the apply with `copy` less the same apply without it.
    if [[ -n ${MED[flowloom_env_copy]:-} && -n ${MED[flowloom_env_plain]:-} ]]; then
        MED[flowloom_env_copy_only]=$((MED[flowloom_env_copy] - MED[flowloom_env_plain]))
    fi
    rm -rf "$RUN" "$TMP/floor" "$ENV_DIR"
fi

# 6. Move MOVE_N sessions (a changed root) ----------------------------------------------
if want 6; then
    log "6. move $MOVE_N sessions of the $FILES-file repository (a changed root)"
    MOVE_DIR=$TMP/move/repo
    rm -rf "$TMP/move" && mkdir -p "$TMP/move" && cp -a "$TMP/pristine-big" "$MOVE_DIR"
    manifest "$MOVE_DIR" "$MOVE_N"
    (cd "$MOVE_DIR" && "$FLOWLOOM" apply --yes </dev/null >/dev/null 2>"$TMP/err") || {
        log "flowloom apply failed while setting up the move repository"
        sed 's/^/    /' "$TMP/err" | tail -n 30 >&2
        exit 1
    }
    toggle_root() { # the manifest names the root the sessions are not in
        manifest "$MOVE_DIR" "$MOVE_N"
        if [[ -d $MOVE_DIR/sessions/shell-instance-s001 ]]; then
            sed -i '1a [defaults]\nroot = "../moved"' "$MOVE_DIR/flowloom.toml"
        fi
    }
    check_moved() { # every session is in the root the manifest names, and flowloom agrees
        local n
        n=$(git -C "$MOVE_DIR" worktree list --porcelain | grep -c '^worktree .*/shell-instance-s')
        ((n == MOVE_N)) || { log "expected $MOVE_N moved worktrees, git lists $n"; exit 1; }
        check_converged "$MOVE_DIR" || exit 1
    }
    measure flowloom_move toggle_root check_moved -- bash "$CMD/flowloom_apply.sh" "$MOVE_DIR"
    measure git_move_loop - - -- bash "$CMD/git_move_loop.sh" "$MOVE_DIR"
    rm -rf "$TMP/move"
fi

# 7. Merge ---------------------------------------------------------------------------------
if want 7; then
    MERGE_COMMITS=10
    log "7. merge: a $MERGE_COMMITS-commit session into the $FILES-file repository, then its removal"
    fresh_merge() { # one session with MERGE_COMMITS commits, each changing one file
        fresh_big && manifest "$RUN" 1
        (cd "$RUN" && "$FLOWLOOM" apply --yes </dev/null >/dev/null 2>&1) || { log "set-up apply failed"; exit 1; }
        local wt=$RUN/sessions/shell-instance-s001 i=0 file
        while read -r file; do
            i=$((i + 1))
            echo "change $i" >>"$wt/$file"
            git -C "$wt" commit -qam "change $i"
        done < <(git -C "$wt" ls-files | awk 'NR % 400 == 1' | head -n "$MERGE_COMMITS")
    }
    check_merged() { # the session is gone, its changes are on main, the main worktree is clean
        [[ $(worktree_count "$RUN") -eq 1 ]] && ! git -C "$RUN" rev-parse -q --verify refs/heads/session/s001 >/dev/null \
            && [[ $(git -C "$RUN" rev-list --count main) -eq 2 ]] \
            && [[ -z $(git -C "$RUN" status --porcelain --untracked-files=no) ]] || {
            log "the merge left the session, missed its changes, or left a dirty main worktree"
            exit 1
        }
    }
    cat >"$CMD/flowloom_merge.sh" <<'SH'
cd "$1" && exec "$FLOWLOOM" merge --yes s001 </dev/null
SH
    cat >"$CMD/git_merge.sh" <<'SH'
cd "$1" && git merge -q --squash session/s001 && git commit -q -m "land s001" \
    && git worktree remove sessions/shell-instance-s001 && git branch -q -D session/s001
SH
    measure flowloom_merge fresh_merge check_merged -- bash "$CMD/flowloom_merge.sh" "$RUN"
    measure git_merge fresh_merge check_merged -- bash "$CMD/git_merge.sh" "$RUN"
    rm -rf "$RUN"
fi

# ---------------------------------------------------------------------------------------
# Report.
cell_ms() { if [[ -n ${NOTE[$1]:-} ]]; then echo "${NOTE[$1]}"; else fmt_ms "${MED[$1]:-}"; fi; }
cell_mib() { if [[ -n ${NOTE[$1]:-} ]]; then echo -; else fmt_mib "${MEM[$1]:-}"; fi; }
mem_delta() { # flowloom key, git key: peak RSS difference in MiB
    [[ -n ${MEM[$1]:-} && -n ${MEM[$2]:-} ]] && awk -v a="${MEM[$1]}" -v b="${MEM[$2]}" 'BEGIN { printf "%+.1f", (a - b) / 1024 }' || echo n/a
}
mem_verdict() {
    [[ $1 == n/a ]] && { echo n/a; return; }
    awk -v d="$1" -v s="$MEM_SLACK_MIB" 'BEGIN { print (d <= s ? "met" : "**missed**") }'
}
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
sz=$(awk -v b="$BIG_BYTES" 'BEGIN { printf "%.1f MB", b / 1e6 }')
fstype=$(df -PT "$TMP" 2>/dev/null | awk 'NR == 2 { print $2 }')
x() { [[ $1 == n/a ]] && echo n/a || echo "$1×"; }
mib() { [[ $1 == n/a ]] && echo n/a || echo "$1 MiB"; }
# per KEY N: median µs / N, printed as ms with two decimals (a per-session cost)
per() { [[ -n ${MED[$1]:-} ]] && awk -v u="${MED[$1]}" -v n="$2" 'BEGIN { printf "%.2f", u / n / 1000 }' || echo n/a; }
# per_less KEY LESS N: (median of KEY − median of LESS) / N, in ms: a session's cost in an
# apply less that apply's plan (every apply first plans all N sessions, once)
per_less() {
    [[ -n ${MED[$1]:-} && -n ${MED[$2]:-} ]] && awk -v u="${MED[$1]}" -v l="${MED[$2]}" -v n="$3" 'BEGIN { printf "%.2f", (u - l) / n / 1000 }' || echo n/a
}
# per_ratio KEY_A N_A KEY_B N_B: (A / N_A) / (B / N_B)
per_ratio() {
    [[ -n ${MED[$1]:-} && -n ${MED[$3]:-} ]] || { echo n/a; return; }
    awk -v a="${MED[$1]}" -v na="$2" -v b="${MED[$3]}" -v nb="$4" 'BEGIN { printf "%.2f", (a / na) / (b / nb) }'
}
# slope PREFIX N0 N1: the marginal cost of a session between N0 and N1 sessions, in µs
slope() {
    [[ -n ${MED[$1_$2]:-} && -n ${MED[$1_$3]:-} ]] || { echo n/a; return; }
    awk -v a="${MED[$1_$2]}" -v b="${MED[$1_$3]}" -v n0="$2" -v n1="$3" 'BEGIN { printf "%.0f", (b - a) / (n1 - n0) }'
}
# slope_ratio PREFIX: the marginal cost between the two largest sizes over the one between
# the two smallest (1.0 = linear; above it the cost of a session grows with their number)
slope_ratio() {
    local first last
    first=$(slope "$1" "${GROWTH_SIZES[0]}" "${GROWTH_SIZES[1]}")
    last=$(slope "$1" "${GROWTH_SIZES[-2]}" "${GROWTH_SIZES[-1]}")
    [[ $first == n/a || $last == n/a ]] && { echo n/a; return; }
    awk -v a="$last" -v b="$first" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f", a / b }'
}

echo "## flowloom benchmark"
echo
echo "- flowloom: \`$("$FLOWLOOM" --version 2>/dev/null || echo '?')\`"
echo "- $(git --version), $(uname -sr), ${cpu:-unknown cpu}, $(nproc 2>/dev/null || echo '?') cores; temp dir on ${fstype:-?}"
memory="not measured (no GNU time)"
[[ -n $TIME_BIN ]] && memory="GNU time %M (peak RSS of the largest process in the row)"
echo "- $(date -u +%Y-%m-%dT%H:%MZ); median of $RUNS run(s) each, timer: $TIMER; memory: $memory; sections $SECTIONS"
echo "- fixture: $FILES files, $sz tracked ($BIG_KIB KiB on disk), packed; plan and growth fixture: $SMALL_FILES files"
((QUICK)) && echo "- **--quick**: toy sizes, for CI; the numbers mean nothing"
echo
want_table=0
if want 1 || want 2 || want 3; then
    want_table=1
    echo "| # | what | contender | median ms | peak RSS MiB |"
    echo "|---|---|---|---:|---:|"
fi
if want 1; then
    echo "| 1 | create $CREATE_N sessions, $FILES files | \`flowloom apply --yes\` | $(cell_ms flowloom_apply) | $(cell_mib flowloom_apply) |"
    echo "| 1 | | manual git loop (seed process) | $(cell_ms manual_git_loop) | $(cell_mib manual_git_loop) |"
    echo "| 1 | | floor: \`cp -a\` of the tree ×$CREATE_N | $(cell_ms cp_a_floor) | $(cell_mib cp_a_floor) |"
    if [[ -n $PEER ]]; then
        echo "| 1 | | $PEER \`switch --create\` | $(cell_ms peer_wt) | $(cell_mib peer_wt) |"
    else
        echo "| 1 | | peer: worktrunk \`wt\` | skipped (not on PATH) | - |"
    fi
    echo "| 1 | one session, $FILES files | \`flowloom new\` (declared locally, then made) | $(cell_ms flowloom_new) | $(cell_mib flowloom_new) |"
    echo "| 1 | | \`flowloom apply --yes\` of the same session, declared | $(cell_ms flowloom_apply_one) | $(cell_mib flowloom_apply_one) |"
    echo "| 1 | | \`git worktree add -b\` | $(cell_ms git_worktree_add) | $(cell_mib git_worktree_add) |"
fi
if want 2; then
    for n in "${PLAN_SIZES[@]}"; do
        echo "| 2 | plan, $n converged sessions | \`flowloom plan\` | $(cell_ms "flowloom_plan_$n") | $(cell_mib "flowloom_plan_$n") |"
        echo "| 2 | | git reader (worktree list + for-each-ref) | $(cell_ms "git_reader_$n") | $(cell_mib "git_reader_$n") |"
    done
fi
if want 3; then
    if ((HAVE_STATUS)); then
        echo "| 3 | status, $STATUS_N sessions, $FILES files | \`flowloom status\` (indexes as apply wrote them) | $(cell_ms flowloom_status) | $(cell_mib flowloom_status) |"
        echo "| 3 | | \`flowloom status\` (indexes refreshed by git status) | $(cell_ms flowloom_status_refreshed) | $(cell_mib flowloom_status_refreshed) |"
    else
        echo "| 3 | status, $STATUS_N sessions, $FILES files | \`flowloom status\` | n/a (not in this build) | n/a |"
    fi
    echo "| 3 | | \`git status --porcelain\` loop | $(cell_ms git_status_loop) | $(cell_mib git_status_loop) |"
    if ((HAVE_STATUS)); then
        echo "| 3 | status, $LAYERS_N sessions, $SMALL_FILES files | \`flowloom status\`, all in flowloom.toml | $(cell_ms flowloom_status_one_layer) | $(cell_mib flowloom_status_one_layer) |"
        echo "| 3 | | \`flowloom status\`, half in flowloom.local.toml | $(cell_ms flowloom_status_two_layers) | $(cell_mib flowloom_status_two_layers) |"
    fi
fi
if want 5; then
    ((want_table)) || { echo "| # | what | contender | median ms | peak RSS MiB |"; echo "|---|---|---|---:|---:|"; }
    msz=$(awk -v b="${MODULES_BYTES:-0}" 'BEGIN { printf "%.0f MB", b / 1e6 }')
    echo "| 5 | create $CREATE_N sessions copying a $MODULES_FILES-file, $msz node_modules/ | \`flowloom apply --yes\` with \`copy\` | $(cell_ms flowloom_env_copy) | $(cell_mib flowloom_env_copy) |"
    echo "| 5 | | the same apply without \`copy\` | $(cell_ms flowloom_env_plain) | $(cell_mib flowloom_env_plain) |"
    echo "| 5 | | floor: \`cp -a node_modules\` ×$CREATE_N | $(cell_ms cp_a_modules) | $(cell_mib cp_a_modules) |"
fi
if want 6; then
    ((want_table)) || want 5 || { echo "| # | what | contender | median ms | peak RSS MiB |"; echo "|---|---|---|---:|---:|"; }
    echo "| 6 | move $MOVE_N sessions, $FILES files (a changed root) | \`flowloom apply --yes\` | $(cell_ms flowloom_move) | $(cell_mib flowloom_move) |"
    echo "| 6 | | \`git worktree move\` ×$MOVE_N | $(cell_ms git_move_loop) | $(cell_mib git_move_loop) |"
fi
if want 7; then
    ((want_table)) || want 5 || want 6 || { echo "| # | what | contender | median ms | peak RSS MiB |"; echo "|---|---|---|---:|---:|"; }
    echo "| 7 | merge a $MERGE_COMMITS-commit session ($FILES files) and remove it | \`flowloom merge --yes\` | $(cell_ms flowloom_merge) | $(cell_mib flowloom_merge) |"
    echo "| 7 | | \`git merge --squash\` + \`commit\` + \`worktree remove\` + \`branch -D\` | $(cell_ms git_merge) | $(cell_mib git_merge) |"
fi
if want 1 || want 2 || want 3 || want 5 || want 6 || want 7; then echo; fi

echo "| ratio | measured | target | |"
echo "|---|---:|---:|---|"
if want 1; then
    r=$(ratio flowloom_apply manual_git_loop); echo "| apply / manual git loop | $(x "$r") | ≤ 0.5× | $(verdict "$r" 0.5) |"
    r=$(ratio flowloom_apply cp_a_floor); echo "| apply / cp -a floor | $(x "$r") | ≤ 1.0× | $(verdict "$r" 1.0) |"
    [[ -n $PEER ]] && { r=$(ratio flowloom_apply peer_wt); echo "| apply / $PEER | $(x "$r") | (info) | |"; }
    r=$(ratio flowloom_new flowloom_apply_one); echo "| new / apply of the same session | $(x "$r") | ≤ 1.1× | $(verdict "$r" 1.1) |"
    r=$(ratio flowloom_new git_worktree_add); echo "| new / git worktree add | $(x "$r") | (info) | |"
fi
if want 2; then
    r=$(ratio "flowloom_plan_$PLAN_MAIN" "git_reader_$PLAN_MAIN"); echo "| plan / git reader ($PLAN_MAIN sessions) | $(x "$r") | ≤ 3× | $(verdict "$r" 3) |"
fi
if want 3; then
    r=$( ((HAVE_STATUS)) && ratio flowloom_status git_status_loop || echo n/a); echo "| status / git status loop | $(x "$r") | ≤ 0.5× | $(verdict "$r" 0.5) |"
    r=$( ((HAVE_STATUS)) && ratio flowloom_status_refreshed git_status_loop || echo n/a); echo "| status (git-refreshed indexes) / git status loop | $(x "$r") | (info) | |"
    r=$( ((HAVE_STATUS)) && ratio flowloom_status_two_layers flowloom_status_one_layer || echo n/a); echo "| status, $LAYERS_N sessions: two layers / one | $(x "$r") | ≤ 1.0× | $(verdict "$r" 1.0) |"
fi
if want 6; then
    r=$(ratio flowloom_move git_move_loop); echo "| move $MOVE_N sessions / \`git worktree move\` ×$MOVE_N | $(x "$r") | ≤ 0.5× | $(verdict "$r" 0.5) |"
fi
if want 7; then
    r=$(ratio flowloom_merge git_merge); echo "| merge / git merge --squash + commit + worktree remove + branch -D | $(x "$r") | ≤ 1.0× | $(verdict "$r" 1.0) |"
fi
if want 4; then
    GMAX=${GROWTH_SIZES[-1]} GMIN=${GROWTH_SIZES[0]}
    r=$(per_ratio "flowloom_grow_add_$GMAX" 1 "flowloom_grow_add_$GMIN" 1); echo "| create: a session at $GMAX / at $GMIN | $(x "$r") | ≤ 1.2× | $(verdict "$r" 1.2) |"
    r=$(per_ratio "flowloom_grow_rm_$GMAX" 1 "flowloom_grow_rm_$GMIN" 1); echo "| remove: a session at $GMAX / at $GMIN | $(x "$r") | ≤ 1.2× | $(verdict "$r" 1.2) |"
    for kind in add:create rm:remove; do
        a=$(per_less "flowloom_grow_${kind%%:*}_$GMAX" "flowloom_gplan_$GMAX" 1) b=$(per_less "flowloom_grow_${kind%%:*}_$GMIN" "flowloom_gplan_$GMIN" 1)
        r=n/a
        if [[ $a != n/a && $b != n/a ]]; then r=$(awk -v a="$a" -v b="$b" 'BEGIN { if (b <= 0) print "n/a"; else printf "%.2f", a / b }'); fi
        echo "| ${kind#*:}, less the plan: a session at $GMAX / at $GMIN | $(x "$r") | (info) | |"
    done
    r=$(ratio flowloom_create_all git_add_all); echo "| create $GMAX sessions / git worktree add loop | $(x "$r") | ≤ 0.5× | $(verdict "$r" 0.5) |"
    r=$(ratio flowloom_remove_all git_remove_all); echo "| remove $GMAX sessions / git worktree remove + branch -D loop | $(x "$r") | (info) | |"
    r=$(ratio "flowloom_grow_add_$GMAX" "git_grow_add_$GMAX"); echo "| create $GROWTH_STEP at $GMAX / git worktree add loop | $(x "$r") | (info) | |"
    r=$(ratio "flowloom_grow_rm_$GMAX" "git_grow_rm_$GMAX"); echo "| remove $GROWTH_STEP at $GMAX / git remove loop | $(x "$r") | (info) | |"
    for what in gplan:plan gstatus:status gvalidate:"validate, N problems" gbadbase:"plan, N unresolved bases"; do
        r=$(slope_ratio "flowloom_${what%%:*}")
        echo "| ${what#*:}: µs per session, $((${GROWTH_SIZES[-2]}))→$GMAX / $GMIN→${GROWTH_SIZES[1]} | $(x "$r") | ≤ 1.2× | $(verdict "$r" 1.2) |"
    done
    r=$(ratio "flowloom_gplan_$GMAX" "git_greader_$GMAX"); echo "| plan / git reader ($GMAX sessions) | $(x "$r") | ≤ 3× | $(verdict "$r" 3) |"
    r=$(ratio "flowloom_gstatus_$GMAX" "git_gstatus_$GMAX"); echo "| status / git status loop ($GMAX sessions, $SMALL_FILES files) | $(x "$r") | (info) | |"
    # The dashboard's target (issue 21): at 500 sessions (the largest size up to 500 in
    # --quick), with dirt, overlaps and in-use included, half of the git loop.
    GS=$GMIN; for n in "${GROWTH_SIZES[@]}"; do ((n <= 500)) && GS=$n; done
    r=$(ratio "flowloom_gstatus_$GS" "git_gstatus_$GS"); echo "| status / git status loop ($GS sessions, $SMALL_FILES files) | $(x "$r") | ≤ 0.5× | $(verdict "$r" 0.5) |"
fi
if want 5; then
    r=$(ratio flowloom_env_copy_only cp_a_modules); echo "| copy into $CREATE_N sessions (apply with copy − without) / cp -a | $(x "$r") | ≤ 1.0× | $(verdict "$r" 1.0) |"
fi
if want 1; then
    d=$(mem_delta flowloom_apply manual_git_loop); echo "| peak RSS: apply − git worktree add | $(mib "$d") | ≤ +$MEM_SLACK_MIB MiB | $(mem_verdict "$d") |"
fi
if want 2; then
    d=$(mem_delta "flowloom_plan_$PLAN_MAIN" "git_reader_$PLAN_MAIN"); echo "| peak RSS: plan − git reader ($PLAN_MAIN) | $(mib "$d") | ≤ +$MEM_SLACK_MIB MiB | $(mem_verdict "$d") |"
fi
if want 3; then
    d=$( ((HAVE_STATUS)) && mem_delta flowloom_status git_status_loop || echo n/a); echo "| peak RSS: status − git status | $(mib "$d") | ≤ +$MEM_SLACK_MIB MiB | $(mem_verdict "$d") |"
fi
if want 4; then
    d=$(mem_delta flowloom_create_all git_add_all); echo "| peak RSS: create $GMAX − git worktree add | $(mib "$d") | ≤ +$MEM_SLACK_MIB MiB | $(mem_verdict "$d") |"
    d=$(mem_delta "flowloom_gstatus_$GMAX" "git_gstatus_$GMAX"); echo "| peak RSS: status ($GMAX) − git status | $(mib "$d") | ≤ +$MEM_SLACK_MIB MiB | $(mem_verdict "$d") |"
    d=$(mem_delta "flowloom_gstatus_$GS" "git_gstatus_$GS"); echo "| peak RSS: status ($GS) − git status | $(mib "$d") | ≤ +$MEM_SLACK_MIB MiB | $(mem_verdict "$d") |"
fi

if want 2; then
    echo
    echo "Plan growth ($SMALL_FILES-file repository; apply = the untimed set-up, one run):"
    echo
    echo "| sessions | \`flowloom plan\` ms | git reader ms | plan / reader | plan µs per session | set-up apply ms |"
    echo "|---:|---:|---:|---:|---:|---:|"
    for n in "${PLAN_SIZES[@]}"; do
        p=$([[ -n ${MED[flowloom_plan_$n]:-} ]] && awk -v u="${MED[flowloom_plan_$n]}" -v n="$n" 'BEGIN { printf "%.0f", u / n }' || echo n/a)
        echo "| $n | $(cell_ms "flowloom_plan_$n") | $(cell_ms "git_reader_$n") | $(x "$(ratio "flowloom_plan_$n" "git_reader_$n")") | $p | $(fmt_ms "${APPLY_US[$n]:-}") |"
    done
fi

if want 4; then
    echo
    echo "Growth: creating and removing ($SMALL_FILES-file repository; N sessions exist; ms per session = median of an apply, or of a git loop, over $GROWTH_STEP sessions made or removed on top of them):"
    echo
    echo "| N sessions | create: flowloom ms/session | less the plan | git worktree add ms/session | flowloom / git | remove: flowloom ms/session | less the plan | git worktree remove + branch -D ms/session | flowloom / git |"
    echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for n in "${GROWTH_SIZES[@]}"; do
        echo "| $n | $(per "flowloom_grow_add_$n" "$GROWTH_STEP") | $(per_less "flowloom_grow_add_$n" "flowloom_gplan_$n" "$GROWTH_STEP") | $(per "git_grow_add_$n" "$GROWTH_STEP") | $(x "$(ratio "flowloom_grow_add_$n" "git_grow_add_$n")") | $(per "flowloom_grow_rm_$n" "$GROWTH_STEP") | $(per_less "flowloom_grow_rm_$n" "flowloom_gplan_$n" "$GROWTH_STEP") | $(per "git_grow_rm_$n" "$GROWTH_STEP") | $(x "$(ratio "flowloom_grow_rm_$n" "git_grow_rm_$n")") |"
    done
    echo
    echo "\"less the plan\": the apply's median less the median \`flowloom plan\` at the same N (every apply plans all N sessions first), per session."
    echo
    echo "In bulk (one run each): flowloom creates $GMAX sessions in one apply in $(cell_ms flowloom_create_all) ms (peak $(cell_mib flowloom_create_all) MiB), git's loop in $(cell_ms git_add_all) ms; flowloom removes them (in $((${#GROWTH_SIZES[@]})) applies, down the sizes) in $(fmt_ms "${MED[flowloom_remove_all]:-}") ms, git's loop in $(cell_ms git_remove_all) ms."
    echo
    echo "Growth: reading (N sessions; diagnostics: N problems in the manifest; median ms, µs per session):"
    echo
    echo "| N | \`flowloom plan\` | git reader | \`flowloom status\` | \`git status\` loop | \`validate\`, N unknown keys | \`plan\`, N unresolved bases |"
    echo "|---:|---:|---:|---:|---:|---:|---:|"
    for n in "${GROWTH_SIZES[@]}"; do
        row="| $n"
        for key in flowloom_gplan git_greader flowloom_gstatus git_gstatus flowloom_gvalidate flowloom_gbadbase; do
            row+=" | $(cell_ms "${key}_$n") ($(awk -v u="${MED[${key}_$n]:-}" -v n="$n" 'BEGIN { if (u == "") print "n/a"; else printf "%.0f", u / n }'))"
        done
        echo "$row |"
    done
fi

if ((FAILED_FLOWLOOM)); then
    log "a flowloom command failed (see above): exit 1"
    exit 1
fi
