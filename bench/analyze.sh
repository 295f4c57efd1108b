#!/usr/bin/env bash
# Throughput and memory of `sipwitness analyze` on synthetic captures
# (bench/make_capture.cpp): MB/s, SIP messages/s and peak RSS per size, so
# bench/RESULTS.md can show that memory stays flat as the file grows. Also
# checks the verdicts against what the generator wrote, and shows the progress
# display once under a pseudo-terminal. Builds nothing.
#
#   bench/analyze.sh                      # binaries from build/
#   SIPWITNESS=build-rel/sipwitness MAKE_CAPTURE=build-rel/make_capture bench/analyze.sh
#
# Environment: SIZES (MB, default "10 100"), RUNS per size and format (default
# 3; the best wall time is reported, and the highest RSS), SEED (default 1),
# TIMEOUT per command in seconds (default 600), TMPDIR (where the captures go).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sipwitness="${SIPWITNESS:-$root/build/sipwitness}"
make_capture="${MAKE_CAPTURE:-$root/build/make_capture}"
sizes="${SIZES:-10 100}"
runs="${RUNS:-3}"
seed="${SEED:-1}"
limit="${TIMEOUT:-600}"

for bin in "$sipwitness" "$make_capture"; do
  if [[ ! -x "$bin" ]]; then
    echo "analyze.sh: $bin not found; build first (cmake --build build) or set SIPWITNESS / MAKE_CAPTURE" >&2
    exit 2
  fi
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/sipwitness-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT INT TERM

with_timeout=()
command -v timeout >/dev/null && with_timeout=(timeout "$limit")

# measure STDERR_FILE CMD...: runs CMD, its stderr to STDERR_FILE; sets
# wall, cpu (user+sys seconds) and rss (KB, peak).
if /usr/bin/time -f "%e" -o /dev/null true 2>/dev/null; then
  run_measured() {
    local err="$1"
    shift
    "${with_timeout[@]}" /usr/bin/time -f "%e %U %S %M" -o "$tmp/time" "$@" 2>"$err"
  }
  meter="/usr/bin/time (GNU time)"
else
  # A forked child's ru_maxrss starts at its parent's size (Linux keeps the
  # pre-exec high-water mark), which would hide the analyzer's own: poll the
  # VmHWM of the exec'd image instead. Wall and CPU come from wait4.
  run_measured() {
    local err="$1"
    shift
    "${with_timeout[@]}" python3 - "$tmp/time" "$err" "$@" <<'EOF'
import os, sys, time
out, err, cmd = sys.argv[1], sys.argv[2], sys.argv[3:]
start = time.perf_counter()
pid = os.fork()
if pid == 0:
    try:
        fd = os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
name, hwm = os.path.basename(cmd[0])[:15], 0
while True:
    done, status, ru = os.wait4(pid, os.WNOHANG)
    if done:
        break
    try:
        with open(f"/proc/{pid}/status") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        if fields["Name"].strip() == name:
            hwm = max(hwm, int(fields["VmHWM"].split()[0]))
    except (OSError, KeyError, ValueError):
        pass
    time.sleep(0.005)
wall = time.perf_counter() - start
with open(out, "w") as f:
    f.write(f"{wall:.2f} {ru.ru_utime:.2f} {ru.ru_stime:.2f} {hwm or ru.ru_maxrss}\n")
sys.exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
EOF
  }
  meter="python3 (wall and CPU from wait4, peak RSS from VmHWM polled every 5 ms)"
fi
measure() {
  local err="$1"
  if ! run_measured "$@"; then
    shift
    echo "analyze.sh: failed: $*" >&2
    cat "$err" >&2
    exit 1
  fi
  read -r wall user sys rss <"$tmp/time"
  cpu="$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')"
}

cpu_model="$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)"
mem_total="$(awk '/^MemTotal/ { printf "%.1f GB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)"
libpcap="$(pkg-config --modversion libpcap 2>/dev/null ||
  ldd "$sipwitness" 2>/dev/null | awk '/libpcap/ { print $3 }' | xargs -r readlink -f | sed 's/.*libpcap\.so\.//' ||
  true)"
echo "date:       $(date -u +%Y-%m-%dT%H:%MZ)"
echo "machine:    $(nproc) CPUs, ${cpu_model:-unknown CPU}, ${mem_total:-unknown} RAM, load $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
echo "versions:   $("$sipwitness" --version), libpcap ${libpcap:-unknown}"
echo "measured:   $meter; best wall of $runs runs, highest RSS; MB = 10^6 bytes"
echo

declare -A rss_of
status=0
printf '%-8s %-5s %10s %8s %8s %10s %12s %12s %10s\n' size format bytes "wall s" "cpu s" "MB/s" "msgs/s" "msgs/cpu-s" "peak RSS"
for size in $sizes; do
  cap="$tmp/capture-$size.pcap"
  "${with_timeout[@]}" "$make_capture" --size-mb "$size" --out "$cap" --seed "$seed" >"$tmp/made.txt"
  expected="$(sed -n 's/^expected: //p' "$tmp/made.txt")"
  bytes="$(stat -c %s "$cap")"
  for format in json text; do
    best_wall="" best_cpu="" peak=0
    for ((run = 1; run <= runs; run++)); do
      if [[ "$format" == json ]]; then
        # JSON keeps stdout pure verdict lines; the summary goes to stderr.
        measure "$tmp/stderr" "$sipwitness" analyze "$cap" --format json --out /dev/null
        summary="$tmp/stderr"
      else
        measure "$tmp/stderr" "$sipwitness" analyze "$cap" --format text --out "$tmp/out.txt"
        summary="$tmp/summary"
        tail -n 4 "$tmp/out.txt" >"$summary" 2>/dev/null || : >"$summary"
        rm -f "$tmp/out.txt"
      fi
      if [[ -z "$best_wall" ]] || awk -v a="$wall" -v b="$best_wall" 'BEGIN { exit !(a < b) }'; then
        best_wall="$wall" best_cpu="$cpu"
      fi
      ((rss > peak)) && peak="$rss"
    done
    messages="$(grep -o '[0-9]* SIP messages' "$summary" | head -n 1 | cut -d' ' -f1 || true)"
    got="$(grep -E '^[0-9]+ flows?' "$summary" | tail -n 1 || true)"
    if [[ "$got" != "$expected" ]]; then
      echo "analyze.sh: $size MB $format: verdicts differ" >&2
      echo "  expected: $expected" >&2
      echo "  got:      $got" >&2
      status=1
    fi
    # stderr was not a terminal: no progress display.
    if grep -q '[0-9]% (' "$tmp/stderr"; then
      echo "analyze.sh: progress printed without a terminal" >&2
      status=1
    fi
    awk -v size="$size" -v f="$format" -v b="$bytes" -v w="$best_wall" -v c="$best_cpu" -v m="$messages" -v r="$peak" 'BEGIN {
      if (w <= 0) w = 0.01
      if (c <= 0) c = 0.01
      printf "%-8s %-5s %10d %8.2f %8.2f %10.1f %12.0f %12.0f %7.1f MB\n", size " MB", f, b, w, c, b / 1e6 / w, m / w, m / c, r / 1024
    }'
    rss_of["$size/$format"]="$peak"
  done
  echo "  $size MB: $messages SIP messages; verdicts: $got$([[ "$got" == "$expected" ]] && echo " (as generated)")"
done

# Bounded memory: the peak RSS of the largest capture against the smallest.
read -r -a list <<<"$sizes"
small="${list[0]}" large="${list[${#list[@]} - 1]}"
if [[ "$small" != "$large" ]]; then
  for format in json text; do
    a="${rss_of[$small/$format]}" b="${rss_of[$large/$format]}"
    verdict="bounded"
    # 25% slack for allocator noise; a buffer of the whole file would be 10x.
    if ((b * 4 > a * 5)); then
      verdict="GROWS with the file"
      status=1
    fi
    awk -v f="$format" -v s="$small" -v l="$large" -v a="$a" -v b="$b" -v v="$verdict" \
      'BEGIN { printf "peak RSS %s: %.1f MB at %s MB, %.1f MB at %s MB (x%.2f for x%.0f the data): %s\n", f, a / 1024, s, b / 1024, l, b / a, l / s, v }'
  done
fi

# The progress display, once, under a pseudo-terminal.
cap="$tmp/capture-$large.pcap"
if command -v script >/dev/null; then
  "${with_timeout[@]}" script -qec "$(printf '%q ' "$sipwitness" analyze "$cap" --format json --out /dev/null)" /dev/null \
    >"$tmp/tty.txt" 2>&1 || true
else
  "${with_timeout[@]}" python3 -c 'import pty, sys; pty.spawn(sys.argv[1:])' \
    "$sipwitness" analyze "$cap" --format json --out /dev/null >"$tmp/tty.txt" 2>&1 || true
fi
percents="$(tr '\r' '\n' <"$tmp/tty.txt" | grep -o ' [0-9]*% ([0-9.]* of [0-9.]* MB)' | grep -o '[0-9]*%' | tr '\n' ' ' ||
  true)"
count="$(wc -w <<<"$percents")"
# A small file may finish before the first update: then only the final 100% shows.
if ((count >= 1)) && grep -q '100%' <<<"$percents"; then
  echo "progress under a pty ($large MB): $count updates: $percents"
else
  echo "analyze.sh: no progress percentages under a pseudo-terminal: $(tr '\r' '\n' <"$tmp/tty.txt" | head -n 3)" >&2
  status=1
fi
exit "$status"
