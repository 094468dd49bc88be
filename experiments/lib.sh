# lib.sh -- shared by the experiment suites (sourced, not run). Each suite is a few `rwkvlab sweep`
# invocations, so every suite is resumable: run it again and finished runs are skipped, interrupted ones
# continue from their checkpoint (rwkvlab sweep's rules, README "Sweeps").
#
#   sweep_models CFG OUT MODELS [sweep args...]
#     MODELS: space-separated arch:range items (deltanet:standard deltanet:extended rwkv7:standard ...).
#     Runs one sweep of CFG's own [sweep] grid x every model into OUT/<arch>/: the arch's ranges become
#     the grid key model.eig_range (so RWKV-6, which has only the standard range, is a sweep of its own).
#     Returns the first non-zero sweep status (130 at once: interrupted).
#   suite_options "NAME=VAR ..." ARGS...: each --NAME VALUE sets VAR; everything else is collected in the
#     array ARGS (extra sweep options for the suite's sweeps).
#   suite_begin NAME / suite_wall: the wall time of this invocation in seconds.
#   suite_keep STATUS: after a sweep: exits the suite with 130 when it was interrupted, else keeps the
#     first non-zero STATUS in rc (the suite's exit status).
#   suite_figure TITLE METRIC NAME DIR...: DIR's runs as one figure, OUT of the first DIR's parent/figures/
#     NAME.png (analysis/fig_suite.py); skipped with a note when no Python with matplotlib and h5py is found.
#   suite_plot SCRIPT ARGS...: analysis/SCRIPT ARGS with such a Python (the same note otherwise).
# Environment: RWKVLAB_BIN (default build/rwkvlab), JOBS (default 2).
BIN=${RWKVLAB_BIN:-build/rwkvlab}
JOBS=${JOBS:-2}
PY=python3
python3 -c 'import json' 2>/dev/null || PY=/usr/bin/python3

suite_options() {
  local spec=$1 s hit; shift
  ARGS=()
  while [ $# -gt 0 ]; do
    hit=""
    for s in $spec; do
      if [ "$1" = "--${s%%=*}" ]; then
        [ $# -ge 2 ] || { echo "$(basename "$0"): $1 needs a value (see the header of $0)" >&2; exit 1; }
        printf -v "${s#*=}" '%s' "$2"
        hit=1; shift 2; break
      fi
    done
    [ -n "$hit" ] || { ARGS+=("$1"); shift; }
  done
}

suite_plot() {
  local py
  for py in python3 /usr/bin/python3; do
    if "$py" -c 'import h5py, matplotlib' 2>/dev/null; then "$py" "analysis/$@"; return $?; fi
  done
  echo "(figure skipped: no Python with h5py and matplotlib; run 'make deps', then: python3 analysis/$*)"
}

suite_figure() {
  local title=$1 metric=$2 name=$3; shift 3
  suite_plot fig_suite.py "$@" --metric "$metric" --title "$title" --name "$name" --out "$(dirname "$1")/figures"
}

suite_keep() {
  [ "$1" = 130 ] && exit 130
  [ "$rc" = 0 ] && rc=$1
  return 0
}

suite_begin() {
  SUITE=$1
  SUITE_START=$(date +%s)
  [ -x "$BIN" ] || make -j2 || exit 1
}

suite_wall() { echo $(( $(date +%s) - SUITE_START )); }

sweep_models() {
  local cfg=$1 out=$2 models=$3; shift 3
  local archs="" rc=0
  for m in $models; do
    local a=${m%%:*}
    case " $archs " in *" $a "*) ;; *) archs="$archs $a" ;; esac
  done
  for a in $archs; do
    local ranges=""
    for m in $models; do [ "${m%%:*}" = "$a" ] && ranges="${ranges:+$ranges, }${m#*:}"; done
    local first=${ranges%%,*}
    echo "== $SUITE: $a ($ranges): $BIN sweep $cfg --jobs $JOBS --out $out/$a $*"
    "$BIN" sweep "$cfg" --set model.arch="$a" --set model.eig_range="$first" --set sweep.model.eig_range="$ranges" \
      --jobs "$JOBS" --out "$out/$a" "$@"
    local r=$?
    if [ "$r" = 130 ]; then echo "interrupted: run the same command again to continue"; return 130; fi
    [ "$rc" = 0 ] && rc=$r
  done
  return "$rc"
}
