#!/usr/bin/env python3
"""CPU used per process name over a window, from /proc: a stack's share of the CPUs.

    python3 ops/cpu-by-process.py SECONDS

Prints one line per process name (PostgreSQL's processes summed as `postgres`,
the JVM as `kafka(java)`) in CPUs used on average, then the machine's busy
share. Run it in the middle of a benchmark step (docs/performance.md, "Notes on
the targets missed", uses it for PostgreSQL's CPU per event).
"""
import os
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def per_pid():
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = open(f"/proc/{pid}/stat").read()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime and stime: fields 14 and 15, the 12th and 13th after the name.
        ticks[pid] = (comm, int(fields[11]) + int(fields[12]))
    return ticks


def machine():
    v = list(map(int, open("/proc/stat").readline().split()[1:]))
    return sum(v), v[3] + v[4]  # all, idle + iowait


def group(comm):
    if comm.startswith("postgres"):
        return "postgres"
    return "kafka(java)" if comm == "java" else comm


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: cpu-by-process.py SECONDS")
    window = float(sys.argv[1])
    before, (all0, idle0) = per_pid(), machine()
    time.sleep(window)
    after, (all1, idle1) = per_pid(), machine()
    used = {}
    for pid, (comm, t) in after.items():
        t0 = before[pid][1] if pid in before else 0
        used[group(comm)] = used.get(group(comm), 0) + (t - t0) / HZ / window
    for name, cpus in sorted(used.items(), key=lambda kv: -kv[1])[:8]:
        if cpus > 0.005:
            print(f"{name:24s} {cpus:.3f}")
    print(f"busy {100 * (1 - (idle1 - idle0) / (all1 - all0)):.1f}%")


if __name__ == "__main__":
    main()
