"""Capture and compare the environment an experiment ran in.

A tuning result is only trustworthy if it can be re-run: the same code, the
same library versions, comparable hardware.  This module records those facts
as a plain JSON-serialisable dict, condenses the result-relevant parts into a
short fingerprint, and explains in words how two records differ.
"""

import functools
import hashlib
import importlib.metadata as metadata
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
from datetime import datetime, timezone
from typing import Iterable

from tunelab.errors import ConfigError

#: Libraries whose versions commonly change numerical results.
KEY_PACKAGES = (
    "numpy", "scipy", "scikit-learn", "pandas", "torch", "torchvision",
    "tensorflow", "jax", "jaxlib", "xgboost", "lightgbm", "catboost",
    "sqlalchemy", "tunelab", "optuna", "ray", "dask", "distributed",
)
MAX_DIFF_CHARS = 1_000_000
#: The line of ``diff_environments`` about the objective's file (what re-runs look for: an edit).
OBJECTIVE_FILE_LABEL = "objective file sha256"
MAX_UNTRACKED = 200
_GIT_TIMEOUT_S = 10
_NVIDIA_TIMEOUT_S = 5


def _run(args: list[str], cwd: str | None = None, timeout: float = _GIT_TIMEOUT_S) -> str | None:
    """Run a command and return its stdout, or None on any failure.

    Environment capture is a side concern of an experiment, so it must never
    raise or hang.  GIT_OPTIONAL_LOCKS=0 keeps ``git status`` from taking the
    index lock, which could disturb someone working in the same tree.
    """
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0"}
    try:
        proc = subprocess.run(args, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, encoding="utf-8", errors="replace",
                              timeout=timeout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return proc.stdout if proc.returncode == 0 else None


def _cpu_model() -> str:
    """Return a human-readable CPU model; the bare machine type is the last resort."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                if key.strip() == "model name" and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes() -> int | None:
    """Total physical memory, which explains out-of-memory or batch-size differences."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        pass
    try:
        with open("/proc/meminfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _parse_nvidia_smi(text: str) -> list[dict]:
    """Turn ``nvidia-smi --format=csv,noheader,nounits`` output into GPU dicts."""
    gpus = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 3 or not fields[0]:
            continue
        try:
            memory: int | None = int(float(fields[1]))
        except ValueError:
            memory = None
        gpus.append({"name": fields[0], "memory_total_mb": memory, "driver": fields[2]})
    return gpus


def _gpus() -> list[dict]:
    """List NVIDIA GPUs; machines without nvidia-smi simply report none."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    query = "--query-gpu=name,memory.total,driver_version"
    out = _run([exe, query, "--format=csv,noheader,nounits"], timeout=_NVIDIA_TIMEOUT_S)
    return _parse_nvidia_smi(out) if out else []


@functools.lru_cache(maxsize=1)
def _module_to_distributions() -> dict[str, list[str]]:
    """Cached because scanning every installed distribution is the slow part."""
    return dict(metadata.packages_distributions())


def _package_versions(extra: Iterable[str] | None) -> dict[str, str]:
    """Versions of key distributions, of those behind imported third-party modules,
    and of explicitly requested ones: together they decide numerical behaviour."""
    tops = {name.partition(".")[0] for name in list(sys.modules)} - sys.stdlib_module_names
    imported = [dist for top in sorted(tops) for dist in _module_to_distributions().get(top, ())]
    versions: dict[str, str] = {}
    seen: set[str] = set()
    for name in [*KEY_PACKAGES, *imported, *(extra or ())]:
        key = re.sub(r"[-_.]+", "-", name).lower()  # "scikit_learn" is "scikit-learn"
        if key in seen:
            continue
        seen.add(key)
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return dict(sorted(versions.items()))


#: Untracked files that are tunelab's own (a study's database beside the code, the trials' logs):
#: data, not code; they made every tree "dirty" and filled the list of untracked files.
_OWN_FILES = re.compile(r"(^|/)tunelab-artifacts/|\.(db|sqlite3?)(-wal|-shm|-journal|-writers)?$")


def _untracked(status: str) -> list[str]:
    """Pick untracked paths out of ``git status --porcelain -z --untracked-files=all`` output
    (every file, also inside a new folder: a package not yet added is code too), tunelab's
    own files left out."""
    paths: list[str] = []
    skip_next = False
    for entry in status.split("\0"):
        if skip_next:  # the original path of a rename or copy
            skip_next = False
            continue
        if set(entry[:2]) & {"R", "C"}:
            skip_next = True
        if entry.startswith("?? ") and not _OWN_FILES.search(entry[3:]):
            paths.append(entry[3:])
    return paths


def _changed(status: str) -> bool:
    """Whether the tree differs from its commit: a change to a tracked file, or an untracked
    file that is not tunelab's own."""
    return any(entry[:2] != "??" or not _OWN_FILES.search(entry[3:])
               for entry in status.split("\0") if len(entry) > 3)


def _git_diff(root: str, has_head: bool) -> str:
    """Uncommitted changes, so results from a dirty tree can still be rebuilt: a patch that
    ``git apply`` takes whatever the user's git settings (``diff.noprefix``, or a text conversion
    set for a file type, would write one it refuses)."""
    base = ["git", "diff", "--no-color", "--no-ext-diff", "--no-textconv", "--src-prefix=a/", "--dst-prefix=b/"]
    if has_head:
        diff = _run([*base, "HEAD"], cwd=root) or ""
    else:
        diff = (_run([*base, "--cached"], cwd=root) or "") + (_run(base, cwd=root) or "")
    return diff


def _kept_diff(diff: str) -> str:
    """The diff as stored: at most MAX_DIFF_CHARS (its sha256, over all of it, is kept beside)."""
    if len(diff) > MAX_DIFF_CHARS:
        return diff[:MAX_DIFF_CHARS] + f"\n[diff truncated at {MAX_DIFF_CHARS} characters]"
    return diff


def _git_info(code_path: str | os.PathLike | None) -> dict | None:
    """Describe the git work tree holding ``code_path``, or None if there is none."""
    if shutil.which("git") is None:
        return None
    path = os.path.abspath(os.fspath(code_path) if code_path is not None else os.getcwd())
    start = path if os.path.isdir(path) else os.path.dirname(path)
    root = (_run(["git", "rev-parse", "--show-toplevel"], cwd=start) or "").strip()
    if not root:
        return None
    commit = (_run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root) or "").strip()
    branch = (_run(["git", "symbolic-ref", "--short", "-q", "HEAD"], cwd=root) or "").strip()
    status = _run(["git", "status", "--porcelain", "-z", "--untracked-files=all"], cwd=root) or ""
    untracked = _untracked(status)
    diff = _git_diff(root, has_head=bool(commit))
    return {"root": root, "commit": commit or None, "branch": branch or None,
            "dirty": _changed(status), "diff": _kept_diff(diff),
            "diff_sha256": hashlib.sha256(diff.encode()).hexdigest() if diff else None,
            "untracked": untracked[:MAX_UNTRACKED], "untracked_sha256": _untracked_sources(root, untracked)}


#: Untracked files whose text is hashed: code and its configuration, which git's diff does not hold
#: (not .json: trials write results as JSON, which would change the fingerprint under a running study).
SOURCE_SUFFIXES = (".py", ".pyx", ".yaml", ".yml", ".toml", ".cfg", ".ini")
_MAX_SOURCE_BYTES = 1_000_000


def _untracked_sources(root: str, paths: list[str]) -> dict[str, str]:
    """sha256 of the untracked source files among ``paths``: a helper module the objective imports,
    not yet committed, changes results as much as an edit of a tracked one."""
    hashes = {}
    for path in (p for p in paths if p.endswith(SOURCE_SUFFIXES)):
        if len(hashes) >= MAX_UNTRACKED:
            break
        full = os.path.join(root, path)
        if os.path.isfile(full) and os.path.getsize(full) <= _MAX_SOURCE_BYTES:
            with open(full, "rb") as handle:
                hashes[path] = hashlib.sha256(handle.read()).hexdigest()
    return hashes


def capture_environment(code_path: str | os.PathLike | None = None,
                        packages: Iterable[str] | None = None) -> dict:
    """Record where and with what an experiment ran, as a JSON-serialisable dict.

    Stored next to a study so it can later be reproduced, or so a surprising
    change in results can be traced to a library upgrade or a code edit.
    ``code_path`` (the objective's file, or a folder) selects the git work tree (default: the
    current directory), and a file's own hash is kept as well;
    ``packages`` names extra distributions whose versions matter.
    """
    names = None if packages is None or isinstance(packages, (str, bytes)) or not hasattr(packages, "__iter__") \
        else list(packages)
    if packages is not None and (names is None or not all(isinstance(name, str) for name in names)):
        # a bare name was read letter by letter: "torch" recorded the versions of "t", "o"... (none)
        raise ConfigError(f"packages is a list of distribution names, e.g. packages=['torch']; got {packages!r}")
    env = {
        "host": socket.gethostname(),
        "os": {"system": platform.system(), "release": platform.release(),
               "platform": platform.platform()},
        "cpu": {"model": _cpu_model(), "count": os.cpu_count(), "machine": platform.machine()},
        "memory_bytes": _memory_bytes(),
        "gpus": _gpus(),
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation(),
                   "executable": sys.executable},
        "packages": _package_versions(names),
        "git": _git_info(code_path),
        "code": _code_file(code_path),
        "captured_at": datetime.now(timezone.utc).isoformat(),
    }
    env["fingerprint"] = environment_fingerprint(env)
    return env


def code_path_of(objective: object) -> str:
    """The file that defines ``objective`` (its git tree is the code on record, and the file's
    own hash too, for a file git does not track), else the current folder. A ``functools.partial``
    or a callable object is looked up through its function or class: either was the current
    folder, so a script run from elsewhere recorded no commit (or another tree's) and no hash."""
    import inspect

    own = getattr(objective, "code_path", None)  # a command's script (tunelab run)
    if isinstance(own, str):
        return own
    while isinstance(objective, functools.partial):  # partial(train, data=X): train's file
        objective = objective.func
    if callable(objective) and not (inspect.isroutine(objective) or inspect.isclass(objective)):
        objective = type(objective)  # an object with __call__ (Optuna's Objective class): its class's file
    try:
        return os.path.abspath(inspect.getfile(objective)) if objective is not None else os.getcwd()
    except (TypeError, OSError):
        return os.getcwd()


def _code_file(code_path: str | os.PathLike | None) -> dict | None:
    """The objective's file and the sha256 of its text: an edit shows in the fingerprint even
    where git sees none (a file it does not track, or no repository at all)."""
    if code_path is None or not os.path.isfile(code_path):
        return None
    try:
        with open(code_path, "rb") as handle:
            return {"file": os.path.basename(code_path), "sha256": hashlib.sha256(handle.read()).hexdigest()}
    except OSError:
        return None


def environment_summary(env: dict) -> dict:
    """What a worker needs to tell whether it runs in the study's environment: the fingerprint
    and the package names it covers (a worker that imported more packages is not different)."""
    return {"fingerprint": env.get("fingerprint"), "packages": sorted(env.get("packages") or {}),
            "code": bool(env.get("code"))}


@functools.lru_cache(maxsize=8)
def _worker_capture(code_path: str, packages: tuple[str, ...]) -> dict:
    return capture_environment(code_path, packages)


def compare_with_study(summary: dict, code_path: str) -> tuple[str, dict]:
    """This process's environment fingerprint over the study's packages, and the environment.

    Captured once per process and code folder: a worker is one environment for its lifetime."""
    names = tuple(summary.get("packages") or ())
    env = dict(_worker_capture(code_path, names))
    env["packages"] = {k: v for k, v in env["packages"].items() if k in names}
    if not summary.get("code"):  # a study created without its objective (ask/tell), or before files were hashed
        env["code"] = None
    env["fingerprint"] = environment_fingerprint(env)
    return env["fingerprint"], env


def _fingerprint_parts(env: dict) -> dict:
    """The fields that can change results, keyed by the label diffs print.

    Tolerant of missing keys so records written by older versions still compare.
    """
    os_info, cpu, py = env.get("os") or {}, env.get("cpu") or {}, env.get("python") or {}
    git = env.get("git") or {}
    diff = git.get("diff")
    parts = {
        "python": py.get("version"), "python implementation": py.get("implementation"),
        "packages": env.get("packages") or {},
        "git commit": (env.get("git") or {}).get("commit"),
        # over the whole diff (a record keeps its first MAX_DIFF_CHARS); older records: the kept one
        "git diff sha256": git.get("diff_sha256", hashlib.sha256(diff.encode()).hexdigest() if diff else None),
        OBJECTIVE_FILE_LABEL: (env.get("code") or {}).get("sha256"),
        "cpu": cpu.get("model"), "cpu machine": cpu.get("machine"),
        "gpus": [gpu.get("name") for gpu in env.get("gpus") or []],
        "os": os_info.get("system"), "os release": os_info.get("release"),
    }
    untracked = (env.get("git") or {}).get("untracked_sha256")
    if untracked:  # only where there are some: a record without any keeps the fingerprint it had
        parts["untracked files"] = untracked
    return parts


def environment_fingerprint(env: dict) -> str:
    """Short hash of the result-relevant parts of ``env``.

    Host name, timestamps, memory and interpreter path are left out so two
    equivalent machines, or two runs on one machine, share a fingerprint.
    """
    canonical = json.dumps(_fingerprint_parts(env), sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _change(label: str, old: object, new: object, missing: str = "(unknown)") -> list[str]:
    if old == new:
        return []
    return [f"{label}: {missing if old is None else old} -> {missing if new is None else new}"]


def _git_lines(recorded: dict, current: dict) -> list[str]:
    """Describe uncommitted-change differences, which are too long to print whole."""
    old, new = recorded.get("git") or {}, current.get("git") or {}
    lines = _change("git dirty", old.get("dirty"), new.get("dirty"))
    old_diff, new_diff = old.get("diff") or "", new.get("diff") or ""
    if old_diff != new_diff:
        lines.append(f"git diff: differs (recorded {len(old_diff.splitlines())} lines, "
                     f"now {len(new_diff.splitlines())} lines)")
    return lines


def diff_environments(recorded: dict, current: dict) -> list[str]:
    """Explain, line by line, how ``current`` differs from ``recorded``.

    Used when reproducing a study, so the user sees at a glance which upgrade
    or code change might explain different results.
    """
    old, new = _fingerprint_parts(recorded), _fingerprint_parts(current)
    if old == new:
        return []
    lines: list[str] = []
    for label in [*old, *(label for label in new if label not in old)]:
        if label == "untracked files":
            before, after = old.get(label) or {}, new.get(label) or {}
            for path in sorted(set(before) | set(after)):
                if before.get(path) != after.get(path):
                    state = "new" if path not in before else "gone" if path not in after else "changed"
                    lines.append(f"untracked file {path}: {state}")
        elif label == "packages":
            for name in sorted(set(old[label]) | set(new[label]), key=str.lower):
                lines += _change(name, old[label].get(name), new[label].get(name), "(absent)")
        elif label == "git diff sha256":
            lines += _git_lines(recorded, current)
        elif label == "gpus":
            lines += _change(label, ", ".join(map(str, old[label])) or "(none)",
                             ", ".join(map(str, new[label])) or "(none)")
        else:
            lines += _change(label, old[label], new[label], "(none)")
    return lines
