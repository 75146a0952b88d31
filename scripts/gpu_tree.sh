#!/usr/bin/env bash
# Slim the working tree for a device call, then put it back. The device tool sends every
# tracked file (capped at 64 MiB), and the committed checkpoints alone are larger, so a GPU
# run first parks the checkpoint folders it does not read in .gpu_stash/ (git-ignored through
# .git/info/exclude, so it does not travel), and restores them after the call:
#   scripts/gpu_tree.sh stash executor_sim demonstrator_sim idm_sim   # keep these three
#   (device call)
#   scripts/gpu_tree.sh restore
# `stash` also parks checkpoints/executor_sim/results (figures, not weights) unless the kept
# list names it as executor_sim/results. It prints the size of what will travel. A stash
# left from an earlier call is an error: restore it first. Exit code 2 on bad input.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
stash=.gpu_stash
usage() { echo "usage: $0 stash KEEP... | restore" >&2; exit 2; }
[[ $# -ge 1 ]] || usage
exclude="$(git rev-parse --git-path info/exclude)"
mkdir -p "$(dirname "$exclude")"
grep -qxF "/$stash/" "$exclude" 2>/dev/null || echo "/$stash/" >>"$exclude"
case "$1" in
  stash)
    shift
    [[ $# -ge 1 ]] || usage
    [[ ! -e $stash ]] || { echo "gpu_tree: $stash exists: run '$0 restore' first" >&2; exit 2; }
    for keep in "$@"; do
      [[ -d checkpoints/$keep ]] || { echo "gpu_tree: no folder checkpoints/$keep" >&2; exit 2; }
    done
    mkdir -p "$stash"
    for dir in checkpoints/*/; do
      name="$(basename "$dir")"
      if [[ " $* " != *" $name "* ]]; then
        mv "checkpoints/$name" "$stash/$name"
      fi
    done
    if [[ -d checkpoints/executor_sim/results && " $* " != *" executor_sim/results "* ]]; then
      mv checkpoints/executor_sim/results "$stash/executor_sim.results"
    fi
    bytes="$({ git ls-files -z | xargs -0 -r stat -c %s 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}')"
    echo "gpu_tree: parked $(ls "$stash" | wc -l) folder(s) in $stash; tracked files left: $((bytes / 1048576)) MiB (+ what carry names)"
    ;;
  restore)
    [[ $# -eq 1 ]] || usage
    [[ -d $stash ]] || { echo "gpu_tree: nothing to restore ($stash is absent)" >&2; exit 2; }
    if [[ -d $stash/executor_sim.results ]]; then
      mv "$stash/executor_sim.results" checkpoints/executor_sim/results
    fi
    for dir in "$stash"/*/; do
      [[ -d $dir ]] || continue
      mv "$dir" "checkpoints/$(basename "$dir")"
    done
    rmdir "$stash"
    missing="$(git ls-files --deleted -- checkpoints | wc -l)"
    echo "gpu_tree: restored; tracked checkpoint files still missing: $missing"
    ;;
  *) usage ;;
esac
