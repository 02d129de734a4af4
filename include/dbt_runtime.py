"""What each in-process dbt invocation repeats, done once per process: the call-stack walk of adapter start-up, the
scan of sys.path for dbt plugins and, for the Cosmos tasks, the parse of the project (``reuse_parsed_project``).
"""

from __future__ import annotations

import os
import sys
import threading
from functools import cache

# One parsed project per process: (key, dbt Manifest). Cosmos's tasks build one model each; under dag.test() (make
# demo, the tests), where one process runs all of a group's tasks, each would re-read and re-check the partial-parse
# file.
_parsed: tuple[tuple, object] | None = None
_lock = threading.Lock()
_dbt_setup_manifest = None  # dbt's own requires.setup_manifest, once reuse_parsed_project has replaced it


def _calling_module() -> str:
    """What ``BehaviorFlagRendered._default_source`` returns (the module of the first frame outside
    dbt_common.behavior_flags), read from the frames' globals instead of ``inspect.stack()``."""
    frame = sys._getframe(1)
    while frame is not None:
        name = frame.f_globals.get("__name__")
        if name and name != "dbt_common.behavior_flags":
            return name
        frame = frame.f_back
    return "Unknown"


@cache
def _modules_named(prefix: str, sys_path: tuple[str, ...]) -> tuple[str, ...]:
    """The top-level modules on sys.path (``sys_path``: the cache key) whose names start with ``prefix``."""
    import pkgutil

    return tuple(name for _, name, _ in pkgutil.iter_modules() if name.startswith(prefix))


def _prefixed_modules(cls: type) -> dict:
    """``PluginManager.get_prefixed_modules`` with the sys.path scan done once per sys.path."""
    import importlib

    return {name: importlib.import_module(name) for name in _modules_named(cls.PLUGIN_MODULE_PREFIX, tuple(sys.path))}


def speed_up_dbt_adapter_start() -> None:
    """Stop dbt's start-up walking the call stack with ``inspect.stack()`` and scanning sys.path on every invocation.

    dbt-common 1.39 names each adapter behavior flag's source with ``inspect.stack()``, evaluated even when the
    flag has one: it reads source lines for every frame and, for a frame whose file maps to no module, scans all of
    ``sys.modules``. dbt builds a new adapter per invocation (Cosmos resets them after each), three flags each: ~5 ms
    a flag in a fresh task process, ~90 ms in a dag.test() process with GX and MLflow loaded, up to seconds in a
    long-lived one with module-less frames on the stack (a pytest worker). The flag's source is only event metadata;
    the same name comes from the frames' globals.

    dbt also lists every top-level module on sys.path for ``dbt_*`` plugins on each invocation (~15 ms here); the
    list is kept per sys.path, the modules are still imported by name as dbt does. Idempotent."""
    from dbt.plugins.manager import PluginManager
    from dbt_common.behavior_flags import BehaviorFlagRendered

    BehaviorFlagRendered._default_source = staticmethod(_calling_module)
    PluginManager.get_prefixed_modules = classmethod(_prefixed_modules)


def _project_files(root: str, skip: set[str]) -> tuple[tuple[str, str], ...]:
    """(path, SHA-1 of the contents) of every file of the project under ``root`` (links followed: Cosmos runs dbt in
    a directory of links to the project), except the top-level directories in ``skip`` (target, logs). Contents,
    not modification times, as dbt compares them: a file rewritten within the file system's time resolution counts
    too. ~1 ms for this project."""
    import hashlib

    found, seen = [], set()
    for directory, subdirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(directory)
        if real in seen:  # a link back into the tree (e.g. a local package linked by dbt deps)
            subdirs[:] = []
            continue
        seen.add(real)
        relative = os.path.relpath(directory, root)
        subdirs[:] = sorted(d for d in subdirs if not (relative == "." and d in skip))
        for name in sorted(files):
            with open(os.path.join(directory, name), "rb") as file:
                found.append((os.path.join(relative, name), hashlib.sha1(file.read()).hexdigest()))
    return tuple(found)


def _parse_key(runtime_config: object) -> tuple:
    """What the parsed project depends on, as dbt itself checks before reusing its partial-parse file: the command
    line vars, profile and target, the project's env vars, the connection (schema, database, ...), every package's
    dbt_project.yml (dbt's ManifestStateCheck), and the contents of each file of the project (dbt's file diff)."""
    from types import SimpleNamespace

    from dbt.parser.manifest import ManifestLoader

    loader = SimpleNamespace(root_project=runtime_config, all_projects=runtime_config.load_dependencies())
    check = ManifestLoader.build_manifest_state_check(loader)
    target = str(runtime_config.target_path)
    if os.path.isabs(target):
        target = os.path.relpath(target, runtime_config.project_root)
    skip = {"target", "logs", os.path.normpath(target)}  # dbt's output; installed packages are walked with the rest
    return (check.vars_hash.checksum, check.project_env_vars_hash.checksum, check.profile_hash.checksum,
            tuple(sorted((name, h.checksum) for name, h in check.project_hashes.items())),
            _project_files(runtime_config.project_root, skip))


def _unparsed(manifest: object) -> object:
    """The manifest's nodes back as parsed: a build compiles them in place (SQL, injected CTEs, paths), and dbt skips
    CTE injection for a node already marked injected. These are the fields dbt leaves out of an uncompiled node."""
    for node in manifest.nodes.values():
        if getattr(node, "compiled", False):
            node.compiled, node.compiled_code, node.compiled_path = False, None, None
            node.extra_ctes_injected, node.extra_ctes, node._pre_injected_sql = False, [], None
    return manifest


def _env_vars_unchanged(manifest: object) -> bool:
    """The env vars the project's files read (``env_var()``, recorded by dbt at parse) still have those values; one
    that was unset (dbt recorded a placeholder for its default) is still unset."""
    from dbt.constants import DEFAULT_ENV_PLACEHOLDER

    return all(name not in os.environ if value == DEFAULT_ENV_PLACEHOLDER else os.environ.get(name) == value
               for name, value in manifest.env_vars.items())


def _setup_manifest(ctx: object, write: bool = True, write_perf_info: bool = False) -> None:
    """dbt's ``requires.setup_manifest``, handing the invocation this process's parsed project while ``_parse_key``
    matches (dbt's own path for ``dbtRunner(manifest=...)``); otherwise dbt parses as usual (partial parse) and the
    result is kept. Only for invocations that write no manifest.json (``--no-write-json``) and use no catalogs."""
    global _parsed
    obj = ctx.obj
    config = obj.get("runtime_config")
    if (obj.get("manifest") is not None or config is None or obj.get("catalogs")
            or (write and obj["flags"].write_json)):
        return _dbt_setup_manifest(ctx, write=write, write_perf_info=write_perf_info)
    key = _parse_key(config)
    with _lock:
        kept = _parsed[1] if _parsed and _parsed[0] == key and _env_vars_unchanged(_parsed[1]) else None
    if kept is not None:
        obj["manifest"] = _unparsed(kept)
    _dbt_setup_manifest(ctx, write=write, write_perf_info=write_perf_info)
    if kept is None:
        manifest = obj["manifest"]
        # dbt gives each manifest a multiprocessing lock (a named semaphore) that no dbt code takes. Kept alive to
        # the end of a task process, which Airflow ends with os._exit, it would leave "1 leaked semaphore objects"
        # in every task log; a thread lock holds no system resource.
        manifest._lock = threading.Lock()
        with _lock:
            _parsed = (key, manifest)
    return None


def reuse_parsed_project() -> None:
    """Let the dbt invocations of this process that write no manifest.json (the Cosmos tasks: ``--no-write-json``)
    share one parsed project while nothing it was parsed from changed (``_parse_key``).

    dbt otherwise reads its partial-parse file and checks every project file against it on each invocation: ~70 ms
    of CPU per Cosmos task under dag.test() (py-spy), where one process runs all of a group's tasks. Under the
    scheduler each task is a process of its own and parses once, as before. Idempotent."""
    global _dbt_setup_manifest
    from dbt.cli import requires

    if requires.setup_manifest is not _setup_manifest:
        _dbt_setup_manifest = requires.setup_manifest
        requires.setup_manifest = _setup_manifest
