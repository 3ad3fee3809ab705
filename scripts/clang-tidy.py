#!/usr/bin/env python3
"""clang-tidy over every .cc file of the project, with .clang-tidy's checks.

Usage: scripts/clang-tidy.py BUILD_DIR [JOBS]
  BUILD_DIR  a configured clang build (CMAKE_EXPORT_COMPILE_COMMANDS is on);
             `make tidy` and scripts/run-tests.sh use build/clang

Exits non-zero on any finding (.clang-tidy sets WarningsAsErrors: '*').

A file that came back clean is remembered, keyed by what clang-tidy would see:
the preprocessed translation unit (with macro definitions, so every header it
includes counts), the compile flags, .clang-tidy and the clang-tidy version.
The next run skips it while that key is unchanged, in this clone or another
one (the checkout's path is taken out of the key). A file with a finding is
never remembered. The cache lives in $HERALD_TIDY_CACHE, by default
${XDG_CACHE_HOME:-~/.cache}/herald/clang-tidy; entries unused for 30 days are
removed. HERALD_TIDY_CACHE=off runs every file.
"""

import concurrent.futures
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIRS = "(core|storage|transports|prometheus|testing|tools|bench|examples|tests)"
# The test binaries share a precompiled header that clang-tidy would have to
# load (and which may not be built yet); every test includes what it uses, so
# the tidy database drops it.
PCH_FLAGS = re.compile(r" -Winvalid-pch -Xclang -include-pch -Xclang \S+ -Xclang -include -Xclang \S+")
MAX_AGE_SECONDS = 30 * 24 * 3600


def cache_dir():
    configured = os.environ.get("HERALD_TIDY_CACHE")
    if configured == "off":
        return None
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "herald" / "clang-tidy"


def prune(cache):
    now = time.time()
    for entry in cache.iterdir():
        try:
            if now - entry.stat().st_mtime > MAX_AGE_SECONDS:
                entry.unlink()
        except OSError:
            pass


def preprocess_args(command):
    """The compile command turned into `clang -E -P -dD ... -o -`."""
    args = shlex.split(command)
    out = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg == "-o":
            skip = True
            continue
        if arg == "-c":
            continue
        out.append(arg)
    return out[:1] + ["-E", "-P", "-dD", "-o", "-"] + out[1:]


def key_of(entry, fixed):
    """The cache key of one file, or None when it cannot be preprocessed."""
    root = str(ROOT).encode()
    result = subprocess.run(preprocess_args(entry["command"]), cwd=entry["directory"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=False)
    if result.returncode != 0:
        return None
    h = hashlib.sha256(fixed)
    h.update(entry["command"].encode().replace(root, b"@ROOT@"))
    h.update(b"\0")
    h.update(entry["file"].encode().replace(root, b"@ROOT@"))
    h.update(b"\0")
    h.update(result.stdout.replace(root, b"@ROOT@"))
    return h.hexdigest()


def main():
    if len(sys.argv) < 2:
        print("usage: scripts/clang-tidy.py BUILD_DIR [JOBS]", file=sys.stderr)
        return 2
    build_dir = Path(sys.argv[1]).resolve()
    jobs = int(sys.argv[2]) if len(sys.argv) > 2 else os.cpu_count()
    db = build_dir / "compile_commands.json"
    if not db.is_file():
        print(f"clang-tidy: {db} not found: configure the clang build first (make build-clang)", file=sys.stderr)
        return 2
    tidy_dir = build_dir / "tidy"
    tidy_dir.mkdir(exist_ok=True)
    entries = json.loads(db.read_text())
    for entry in entries:
        entry["command"] = PCH_FLAGS.sub("", entry["command"])
    (tidy_dir / "compile_commands.json").write_text(json.dumps(entries, indent=1))

    # Our own sources only: not the files CMake generates in the build tree.
    own = re.compile(rf"^{re.escape(str(ROOT))}/{SOURCE_DIRS}/.*\.cc$")
    by_file = {}
    for entry in entries:
        if own.match(entry["file"]):
            by_file.setdefault(entry["file"], entry)
    files = sorted(by_file)
    if not files:
        print(f"clang-tidy: no source file in {db}", file=sys.stderr)
        return 2

    headers = rf"^{ROOT}/{SOURCE_DIRS}/"
    version = subprocess.run(["clang-tidy", "--version"], stdout=subprocess.PIPE, check=True).stdout
    fixed = version + b"\0" + (ROOT / ".clang-tidy").read_bytes() + b"\0" + \
        headers.replace(str(ROOT), "@ROOT@").encode() + b"\0"
    cache = cache_dir()
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        prune(cache)

    def check(path):
        entry = by_file[path]
        key = key_of(entry, fixed) if cache is not None else None
        stamp = cache / key if key else None
        if stamp is not None and stamp.exists():
            stamp.touch()
            return path, "cached", 0.0, ""
        start = time.monotonic()
        result = subprocess.run(["clang-tidy", "--quiet", "-p", str(tidy_dir), f"--header-filter={headers}", path],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, check=False)
        elapsed = time.monotonic() - start
        output = result.stdout.decode(errors="replace")
        clean = result.returncode == 0 and not re.search(r"(warning|error):", output)
        if clean and stamp is not None:
            stamp.touch()
        return path, "clean" if clean else "FINDINGS", elapsed, output

    print(f"clang-tidy: {len(files)} files, {jobs} jobs, cache: {cache if cache is not None else 'off'}", flush=True)
    start = time.monotonic()
    counts = {"cached": 0, "clean": 0, "FINDINGS": 0}
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        for done, (path, verdict, elapsed, output) in enumerate(pool.map(check, files), 1):
            counts[verdict] += 1
            if verdict != "cached":
                print(f"[{done}/{len(files)}] {verdict:8} {elapsed:5.1f}s {os.path.relpath(path, ROOT)}", flush=True)
            if verdict == "FINDINGS":
                print(output, flush=True)
    print(f"clang-tidy: {counts['clean']} checked clean, {counts['cached']} unchanged since a clean run, "
          f"{counts['FINDINGS']} with findings, {time.monotonic() - start:.0f}s", flush=True)
    return 1 if counts["FINDINGS"] else 0


if __name__ == "__main__":
    sys.exit(main())
