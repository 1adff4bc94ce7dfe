# Sourced by setup.sh and compat.sh: run pip so that a first install shows what it does.
# pip's own "Collecting" and "Downloading" lines (one or two per package, sizes included)
# go to stderr as they come, a heartbeat line every 30 s covers a long download, and the
# full log is printed only if pip fails.

pip_progress() {  # pip_progress PREFIX COMMAND...
  local prefix=$1 log status beat
  shift
  log=$(mktemp "${TMPDIR:-/tmp}/archviz-pip.XXXXXX")
  (
    start=$SECONDS
    while sleep 30; do
      echo "$prefix: still installing ($((SECONDS - start)) s so far)..." >&2
    done
  ) &
  beat=$!
  set +e
  "$@" 2>&1 | tee "$log" | while IFS= read -r line; do
    line="${line#"${line%%[![:space:]]*}"}"  # pip indents "Downloading" under "Collecting"
    case "$line" in
      Collecting* | Downloading* | Processing* | "Installing collected packages"* | "Successfully installed"*)
        echo "$prefix: $line" >&2 ;;
    esac
  done
  status=${PIPESTATUS[0]}
  set -e
  kill "$beat" 2>/dev/null || true
  wait "$beat" 2>/dev/null || true  # a killed heartbeat exits 143: not a failure
  if [ "$status" -ne 0 ]; then
    echo "$prefix: pip failed (exit $status); its last lines:" >&2
    tail -n 30 "$log" >&2
  fi
  rm -f "$log"
  return "$status"
}
