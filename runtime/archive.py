"""``svbr deblur INPUT_DIR -o OUTPUT_DIR --ray [ADDRESS]``: a folder of images deblurred on Ray Data.

    svbr deblur photos/ --blur-map maps/ -o sharp/ --ray              # a local Ray on this machine
    svbr deblur photos/ -o sharp/ --ray head-node:6379                # a Ray cluster (maps estimated)

The driver lists the images exactly as folder mode does (:func:`runtime.io.list_images`) and hands
Ray Data only their paths (``ray.data.from_items``). ``map_batches`` runs them through a pool of
actors that each construct one :class:`runtime.Deblurrer` once: one GPU per actor where the cluster
has GPUs, CPU actors otherwise. Each actor reads the image, pairs its blur map by stem
(:func:`runtime.io.find_map`) or estimates it, deblurs and writes the output itself with folder
mode's own functions, so outputs are byte-identical to ``svbr deblur INPUT_DIR -o OUTPUT_DIR`` and
no image crosses the object store; only a small record per file comes back.

A file that cannot be read, has no (or a bad) blur map or fails to deblur is reported as
``failed`` and skipped: it never ends the job. An input whose output exists is ``skipped``, so a
rerun (after a crash, or with more images) does only the rest; outputs are written under a
temporary name and renamed, so an interrupted write never passes for a finished output.
The summary (counts and every failure) goes to ``OUTPUT_DIR/ray-summary.json``.

Paths must be visible under the same names on every node (a shared filesystem); they are made
absolute on the driver. Ray is imported only here, inside the function: ``import runtime`` and
folder mode never need it (``pip install 'svbr-net[scale]'`` adds it).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from runtime import io as media
from runtime.cli import CliError, deblur_file
from runtime.io import MediaError, find_map, write_image

#: The summary's file name in OUTPUT_DIR.
SUMMARY_NAME = "ray-summary.json"
RAY_MISSING = "svbr deblur --ray needs Ray: pip install 'svbr-net[scale]'"
#: The record every input gets back from the actors (and from the driver's own skip check).
RECORD_FIELDS = ("input", "output", "status", "error")
#: Largest number of images in one Ray Data block (small blocks balance the actors; more blocks cost driver memory).
MAX_IMAGES_PER_BLOCK = 100


def _record(image_path: Path, output_path: Path, status: str, error: str = "") -> dict[str, str]:
    return {"input": str(image_path), "output": str(output_path), "status": status, "error": error}


class DeblurActor:
    """One Ray Data actor: one :class:`Deblurrer`, built once, then ``{input, output}`` batches → records.

    A plain class (Ray Data makes the actors), so it is testable without Ray.

    Args:
        model, backend, tile, batch_size, strength, max_radius_px: as for :class:`runtime.Deblurrer`
            (``tile`` None: one full-frame pass).
        map_folder: the blur-map folder (maps paired by stem); None: each map is estimated from its image.
        map_scale: px per PNG map unit.
        threads: intra-op threads for the ``onnxruntime-cpu`` backend (its CPUs in the Ray cluster); None: ORT's default.
    """

    def __init__(
        self,
        model: str | None,
        backend: str,
        tile: int | None,
        batch_size: int | None,
        map_folder: str | None,
        map_scale: float | None,
        threads: int | None = None,
        strength: float = 1.0,
        max_radius_px: float | None = None,
    ) -> None:
        from runtime.deblurrer import Deblurrer
        from runtime.pyramid import DEFAULT_MAX_RADIUS_PX

        options: dict[str, Any] = {} if threads is None else {"threads": threads}
        self.deblurrer = Deblurrer(
            model,
            backend=backend,
            tile=tile,
            batch_size=batch_size,
            strength=strength,
            max_radius_px=DEFAULT_MAX_RADIUS_PX if max_radius_px is None else max_radius_px,
            **options,
        )
        self.map_folder = None if map_folder is None else Path(map_folder)
        self.map_scale = map_scale

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        records = [
            self.process(Path(str(image)), Path(str(output))) for image, output in zip(batch["input"], batch["output"])
        ]
        return {field: [record[field] for record in records] for field in RECORD_FIELDS}

    def process(self, image_path: Path, output_path: Path) -> dict[str, str]:
        """Deblur one file into ``output_path``; every problem becomes a ``failed`` record, never an exception."""
        if output_path.exists():  # finished earlier (or by a retried block): never rewritten
            return _record(image_path, output_path, "skipped")
        partial = output_path.with_name(f".{output_path.stem}.partial-{os.getpid()}{output_path.suffix}")
        try:
            map_path = find_map(image_path, self.map_folder) if self.map_folder is not None else None
            sharp = deblur_file(self.deblurrer, image_path, map_path, self.map_scale, show_tiles=False)
            write_image(partial, sharp)
            os.replace(partial, output_path)
        except Exception as error:  # noqa: BLE001 - one bad file must not end the job
            partial.unlink(missing_ok=True)
            message = str(error) if isinstance(error, (CliError, MediaError)) else f"{type(error).__name__}: {error}"
            return _record(image_path, output_path, "failed", message)
        return _record(image_path, output_path, "ok")


def _import_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401 - the [data] extra
    except ImportError as error:
        raise CliError(f"{RAY_MISSING} ({error})") from error
    return ray


def _actor_plan(ray: Any, backend: str, actors: int | None, cpus_per_actor: int) -> dict[str, Any]:
    """GPU actors (one GPU each) where the cluster has GPUs and the backend may use them, CPU actors otherwise.

    The default number of actors is as many as fit: the GPUs, or each node's CPUs // ``cpus_per_actor``.
    """
    nodes = [node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")]
    gpus = sum(int(resources.get("GPU", 0)) for resources in nodes)
    if gpus and backend != "onnxruntime-cpu":
        fit, resources, threads, kind = gpus, {"num_cpus": 1, "num_gpus": 1}, None, "GPU"
    else:
        fit = sum(int(resources.get("CPU", 0)) // cpus_per_actor for resources in nodes)
        resources, kind = {"num_cpus": cpus_per_actor}, "CPU"
        # auto on a CPU actor is ONNX Runtime on the CPU; its threads are the actor's CPUs, not every core.
        threads = cpus_per_actor if backend in ("auto", "onnxruntime-cpu") else None
        backend = "onnxruntime-cpu" if backend == "auto" else backend
    if fit < 1:
        raise CliError(
            f"the Ray cluster has no room for a {kind} actor of {cpus_per_actor} CPUs: {ray.cluster_resources()}"
        )
    return {"actors": actors or fit, "kind": kind, "resources": resources, "threads": threads, "backend": backend}


def deblur_archive(
    input_dir: Path,
    output_dir: Path,
    *,
    map_folder: Path | None = None,
    map_scale: float | None = None,
    model: Path | None = None,
    backend: str = "auto",
    tile: int | None = 512,
    batch_size: int | None = None,
    address: str | None = None,
    actors: int | None = None,
    cpus_per_actor: int = 1,
    quiet: bool = False,
    strength: float = 1.0,
    max_radius_px: float | None = None,
) -> dict[str, Any]:
    """Deblur every image of ``input_dir`` into ``output_dir`` on Ray; returns (and writes) the summary.

    Args:
        address: a Ray cluster (``HOST:6379``, ``auto``, ``ray://…``); None: a local Ray on this machine
            (or the cluster in ``RAY_ADDRESS``). A process already connected to Ray (``ray.init`` done)
            uses that connection and leaves it open.
        actors: how many actors; None: as many as fit (see :func:`_actor_plan`).
        cpus_per_actor: CPUs of each CPU actor (and ONNX Runtime threads); GPU actors take one GPU and one CPU.
        strength, max_radius_px: as for :class:`runtime.Deblurrer` (None: its default limit).
        Other arguments as for folder mode (``tile`` None: one full-frame pass).

    Raises:
        CliError: a problem with the folders, the options, Ray or the cluster (not with a single file).
    """
    started = time.perf_counter()
    if not input_dir.is_dir():
        raise CliError(f"--ray deblurs a folder: {input_dir} is not one")
    if output_dir.exists() and not output_dir.is_dir():
        raise CliError(f"--ray writes a folder: -o {output_dir} is a file")
    if map_folder is not None and not map_folder.is_dir():
        raise CliError(f"input {input_dir} is a folder, so --blur-map must be a folder too: {map_folder}")
    if model is not None and not model.is_file():
        raise CliError(f"model not found: {model}")
    if actors is not None and actors < 1:
        raise CliError(f"--ray-actors must be >= 1, got {actors}")
    if cpus_per_actor < 1:
        raise CliError(f"--ray-cpus-per-actor must be >= 1, got {cpus_per_actor}")
    try:  # before any actor starts: a bad setting would otherwise fail in every actor
        from runtime.pyramid import validate_max_radius
        from runtime.validation import validate_strength

        validate_strength(strength)
        if max_radius_px is not None:
            validate_max_radius(max_radius_px)
    except ValueError as error:
        raise CliError(str(error)) from error
    input_dir, output_dir = input_dir.resolve(), output_dir.resolve()  # the actors' working folder is not ours
    images = media.list_images(input_dir)
    if not images:
        raise CliError(f"no images ({media.image_suffix_list()}) in {input_dir}")
    jobs = [(image, output_dir / image.name) for image in images]
    todo = [(image, output) for image, output in jobs if not output.exists()]
    records = [_record(image, output, "skipped") for image, output in jobs if output.exists()]
    output_dir.mkdir(parents=True, exist_ok=True)
    ray_info: dict[str, Any] = {"address": address or "local"}
    if todo:
        ray = _import_ray()
        connected_here = not ray.is_initialized()
        # ray.init installs its own SIGTERM handler in this process and leaves it behind: put ours back after.
        handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            if connected_here:
                ray.init(address=address, include_dashboard=False, logging_level="warning", log_to_driver=not quiet)
            plan = _actor_plan(ray, backend, actors, cpus_per_actor)
            actor_count = min(plan["actors"], len(todo))
            ray_info.update(
                actors=actor_count,
                actor_kind=plan["kind"],
                actor_resources=plan["resources"],
                backend=plan["backend"],
                cluster=ray.cluster_resources(),
            )
            if not quiet:
                print(
                    f"svbr deblur --ray: {len(todo)} images on {actor_count} {plan['kind']} actor"
                    f"{'s' * (actor_count != 1)} ({len(records)} already done)",
                    file=sys.stderr,
                )
            context = ray.data.DataContext.get_current()
            context.enable_progress_bars = not quiet
            if quiet:
                logging.getLogger("ray.data").setLevel(logging.ERROR)
            blocks = min(len(todo), max(math.ceil(len(todo) / MAX_IMAGES_PER_BLOCK), 16 * actor_count))
            dataset = ray.data.from_items(
                [{"input": str(i), "output": str(o)} for i, o in todo], override_num_blocks=blocks
            )
            settings = {
                "model": None if model is None else str(model.resolve()),
                "backend": plan["backend"],
                "tile": tile,
                "batch_size": batch_size,
                "map_folder": None if map_folder is None else str(map_folder.resolve()),
                "map_scale": map_scale,
                "threads": plan["threads"],
                "strength": strength,
                "max_radius_px": max_radius_px,
            }
            results = dataset.map_batches(
                DeblurActor,
                fn_constructor_kwargs=settings,
                batch_size=1,  # one image per call: an actor's images stream through it one by one
                batch_format="numpy",
                compute=ray.data.ActorPoolStrategy(size=actor_count),
                **plan["resources"],
            )
            for row in results.iter_rows():
                records.append({field: str(row[field]) for field in RECORD_FIELDS})
        except (CliError, MediaError):
            raise
        except Exception as error:  # noqa: BLE001 - Ray's own failures (cluster, actor start), in one line
            # e.g. an actor that cannot build its Deblurrer: Ray's message ends with the actor's own exception
            last_line = (str(error).strip().splitlines() or [""])[-1].strip()
            raise CliError(f"the Ray job failed ({type(error).__name__}): {last_line}") from error
        finally:
            if connected_here and ray.is_initialized():
                ray.shutdown()
            if connected_here:
                for sig, handler in handlers.items():
                    if handler is not None:
                        signal.signal(sig, handler)
    summary = _summary(input_dir, output_dir, map_folder, records, ray_info, time.perf_counter() - started)
    path = output_dir / SUMMARY_NAME
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(summary, indent=2) + "\n")
    os.replace(partial, path)
    return summary


def _summary(
    input_dir: Path,
    output_dir: Path,
    map_folder: Path | None,
    records: list[dict[str, str]],
    ray_info: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    counts = {status: sum(r["status"] == status for r in records) for status in ("ok", "skipped", "failed")}
    failures = sorted(
        ({"input": r["input"], "error": r["error"]} for r in records if r["status"] == "failed"),
        key=lambda failure: failure["input"],
    )
    return {
        "input": str(input_dir),
        "output": str(output_dir),
        "blur_maps": "estimated" if map_folder is None else str(map_folder.resolve()),
        "images": len(records),
        "counts": counts,
        "failures": failures,
        "seconds": round(seconds, 2),
        "ray": ray_info,
    }


def summary_line(summary: dict[str, Any]) -> str:
    """One line: counts, time and where the summary is."""
    counts = summary["counts"]
    return (
        f"svbr deblur --ray: {summary['images']} images: {counts['ok']} deblurred, {counts['skipped']} "
        f"already done, {counts['failed']} failed in {summary['seconds']:.1f} s; "
        f"summary {Path(summary['output']) / SUMMARY_NAME}"
    )
