"""Sample sheet loading and validation, wildcard constraints, input functions.

Stacks are expanded into frames when the workflow is parsed (nanomorph.io.image_sources), not
with a checkpoint: the DAG stays static, so `-n`, `--report` and `--lint` see every job, and a
stack's frames become ordinary per-image jobs named `<stem>/frame_NNNN` as the CLI names them.
"""

import collections
import functools
import json
import os
import re
from pathlib import Path

import pandas as pd
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

validate(config, "../schemas/config.schema.yaml")


def _use_package_of_this_checkout():
    """Put this checkout's src/ first on the jobs' Python path.

    Jobs then run the nanomorph of this checkout, also inside the conda environments of envs/
    (which hold only third-party packages) and on cluster nodes, where jobs re-read this file.
    Nothing is required from the user's environment, so this is not an `envvars:` case.
    """
    src = Path(workflow.basedir) / "src"
    if (src / "nanomorph").is_dir():
        current = dict(os.environ).get("PYTHONPATH", "")
        os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (str(src), current) if p))


_use_package_of_this_checkout()

RESULTS = str(config["results"]).rstrip("/")
# The workflow's own bookkeeping (caches), never an output a rule declares.
STATE = f"{RESULTS}/.nanomorph"
TRUE_WORDS = {"true", "yes", "1", "y", "t"}
FALSE_WORDS = {"false", "no", "0", "n", "f", ""}


class SampleSheetError(WorkflowError):
    """A sample sheet row that cannot be used; the message names the row and the sample."""


def _cell(value):
    """A sheet cell as stripped text, or None when empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    return str(value).strip() or None


def _row_record(row):
    record = {key: _cell(value) for key, value in row.items()}
    record = {key: value for key, value in record.items() if value is not None}
    if "series" in record:
        word = record["series"].lower()
        record["series"] = True if word in TRUE_WORDS else False if word in FALSE_WORDS else word
    for key in ("pixel_size_nm", "particle_diameter_nm"):
        if key in record:
            try:
                record[key] = float(record[key])
            except ValueError:
                pass  # the schema reports the bad value with the row
    return record


def load_samples(sheet_path):
    """Read and validate the sample sheet; one validated dict per sample, keyed by name."""
    if not Path(sheet_path).is_file():
        raise SampleSheetError(f"sample sheet {sheet_path} does not exist (config key 'samples')")
    sheet = pd.read_csv(sheet_path, sep="\t", dtype=str, keep_default_na=False, comment="#")
    samples = {}
    for index, row in sheet.iterrows():
        record = _row_record(row)
        where = f"{sheet_path} row {index + 2} (sample {record.get('sample', '?')!r})"
        try:
            validate(record, "../schemas/samples.schema.yaml")
        except WorkflowError as error:
            raise SampleSheetError(f"{where}: {error}") from None
        if record["sample"] in samples:
            raise SampleSheetError(f"{where}: sample name used twice in the sheet")
        samples[record["sample"]] = record
    if not samples:
        raise SampleSheetError(f"sample sheet {sheet_path} has no rows")
    return samples


def list_images(sample, frame_counts):
    """{image name: (source file, frame index or None)} for a sample, in acquisition order."""
    from nanomorph.io import MicrographError, find_micrographs, image_sources

    try:
        images = image_sources(find_micrographs(sample["path"]), cache=frame_counts)
    except MicrographError as error:
        raise SampleSheetError(f"sample {sample['sample']!r}: {error}") from None
    return {name: (str(path), frame) for name, (path, frame) in images.items()}


def _list_all_images(samples):
    """Every sample's images. Frame counts come from a cache in the results folder: this file
    is parsed again in every cluster job, and counting opens every micrograph of every sample."""
    from nanomorph.io import FrameCountCache

    frame_counts = FrameCountCache(f"{STATE}/frame_counts.json")
    images = {name: list_images(sample, frame_counts) for name, sample in samples.items()}
    frame_counts.save()
    return images


SAMPLES = load_samples(config["samples"])
IMAGES = _list_all_images(SAMPLES)
SERIES = [name for name, sample in SAMPLES.items() if sample.get("series", False)]


# An image is a file stem, or a stem and /frame_NNNN for a frame of a stack. A pattern, not the
# list of names: Snakemake copies a constraint into every file pattern it matches, so a list of
# N names makes building the graph grow with N squared (6,000 images: 167 s -> 92 s dry run).
# Braces are not allowed inside a constraint, hence four digits written out.
wildcard_constraints:
    sample="|".join(re.escape(s) for s in SAMPLES),
    image=r"[^/]+(?:/frame_\d\d\d\d+)?",
    chunk=r"\d+",


# ---------------------------------------------------------------- segmentation batching
@functools.cache
def _chunks(sample):
    names = list(IMAGES[sample])
    size = config["segment_batch_size"] or len(names)
    return tuple(names[i : i + size] for i in range(0, len(names), size))


@functools.cache
def _chunk_index(sample):
    # Looked up once per image job: a scan of the chunks would make the graph quadratic.
    return {name: index for index, names in enumerate(_chunks(sample)) for name in names}


def chunk_of(sample, image):
    try:
        return _chunk_index(sample)[image]
    except KeyError:
        raise ValueError(f"image {image!r} is not part of sample {sample!r}") from None


# Job order: images are read batch by batch and every later step goes before further reading
# whenever it can run, so that results come batch by batch where more jobs are ready than can
# run (the cores of a local run, the cluster profile's `jobs`). Nothing large waits on disk
# meanwhile: reading keeps no copy of the pixels (later steps read the micrograph's own file
# again), only each image's small record and masks (README, "No copies of the images").
PRIORITY_AFTER_INGEST = {"segment": 1, "postprocess": 2, "measure": 3, "overlay": 4}


def _ingest_priority(wildcards):
    # Earlier batches first; at most 0, below every later step.
    return -chunk_of(wildcards.sample, wildcards.image)


def _priority_may_be_a_function():
    from snakemake.rules import Rule

    # Snakemake 9 releases before callable priorities refuse a function; they read in any order.
    return hasattr(Rule, "expand_priority")


INGEST_PRIORITY = _ingest_priority if _priority_may_be_a_function() else 0


def uses_gpu():
    return config["segmenter"] == "model" and config["device"] == "cuda"


# ---------------------------------------------------------------- time limits
# (nanomorph.resources: start-up plus the job's megapixels at a measured rate, doubled per retry)
# Before ingest has written the chunk's images (a dry run) their sizes are unknown; Snakemake
# evaluates the limit again when the job is scheduled, with the images there.
SEGMENT_RUNTIME_UNKNOWN_MIN = 60


@functools.cache
def _model_config():
    from nanomorph.segment.model import CONFIG_FILE, find_model_folder

    try:
        folder = find_model_folder(config.get("model"))
    except ValueError as error:
        raise WorkflowError(f"config model: {error}") from None
    return json.loads((folder / CONFIG_FILE).read_text())


# The time limit and the memory of a job both need its images' sizes: read once per job.
# Only images that are there are remembered (a dry run asks before they are written).
_SEGMENT_MEGAPIXELS = {}
_IMAGE_MEGAPIXELS = {}


def segment_megapixels(sample, micrograph_files):
    """What the chunk's segmentation computes on, image by image: megapixels of network tiles
    (all passes a declared diameter asks for, flips included), or of image for the threshold
    segmenter."""
    key = (sample, tuple(micrograph_files))
    if key not in _SEGMENT_MEGAPIXELS:
        _SEGMENT_MEGAPIXELS[key] = _read_segment_megapixels(sample, micrograph_files)
    return _SEGMENT_MEGAPIXELS[key]


def _read_segment_megapixels(sample, micrograph_files):
    if config["segmenter"] == "model":
        from nanomorph.segment.inference import InferenceError, network_megapixels

    from nanomorph.pipeline import skip_reason

    megapixels = []
    for path in micrograph_files:
        meta = json.loads(Path(path).read_text())
        if skip_reason(meta) is not None:  # unreadable_images: skip; not segmented
            megapixels.append(0.0)
            continue
        shape = meta["shape"][-2:]
        if config["segmenter"] != "model":
            megapixels.append(shape[0] * shape[1] / 1e6)
            continue
        try:
            work = network_megapixels(
                shape,
                meta["pixel_size_nm"],
                _model_config(),
                sample_particle_diameter(sample),
                test_time_flips=config["test_time_flips"],
                tile_size=config["tile_size"],
            )
        except InferenceError as error:
            raise WorkflowError(f"{path}: {error}") from None
        megapixels.append(work)
    return megapixels


def get_segment_runtime(wildcards, input, attempt):
    """Time limit of a segmentation job in minutes: its images' network work at
    segment_seconds_per_megapixel, plus start-up, doubled on each retry (a cluster kills a job
    at its limit, so a fixed one fails whole samples of large or enlarged images)."""
    files = list(input.micrographs)
    if not all(Path(f).is_file() for f in files):
        return SEGMENT_RUNTIME_UNKNOWN_MIN * 2 ** (attempt - 1)
    from nanomorph.resources import SEGMENT_STARTUP_MIN, time_limit_minutes

    return time_limit_minutes(
        sum(segment_megapixels(wildcards.sample, files)),
        config["segment_seconds_per_megapixel"],
        SEGMENT_STARTUP_MIN,
        attempt,
    )


def get_segment_memory(wildcards, input, attempt):
    """Memory of a segmentation job in MB: 8 GB, or more for a chunk holding an image larger
    than cameras give (its largest image's network megapixels), doubled on each retry."""
    from nanomorph.resources import (
        SEGMENT_BASE_MB,
        SEGMENT_MB_PER_MEGAPIXEL,
        SEGMENT_MIN_MB,
        memory_mb,
    )

    files = list(input.micrographs)
    largest = 0.0
    if all(Path(f).is_file() for f in files):
        largest = max(segment_megapixels(wildcards.sample, files), default=0.0)
    return memory_mb(largest, SEGMENT_MB_PER_MEGAPIXEL, SEGMENT_BASE_MB, SEGMENT_MIN_MB, attempt)


@functools.cache
def _frames_per_file():
    return collections.Counter(path for images in IMAGES.values() for path, _ in images.values())


def get_ingest_runtime(wildcards, attempt):
    """Time limit of reading one image in minutes, from its file's megabytes per frame (its
    pixels are not known before it is read), doubled on each retry."""
    from nanomorph.resources import (
        INGEST_SECONDS_PER_MEGABYTE,
        PER_IMAGE_STARTUP_MIN,
        time_limit_minutes,
    )

    return time_limit_minutes(
        _file_megabytes_per_frame(wildcards),
        INGEST_SECONDS_PER_MEGABYTE,
        PER_IMAGE_STARTUP_MIN,
        attempt,
    )


def get_ingest_memory(wildcards, attempt):
    """Memory of reading one image in MB, from its file's megabytes per frame."""
    from nanomorph.resources import (
        INGEST_MB_PER_FILE_MEGABYTE,
        PER_IMAGE_BASE_MB,
        PER_IMAGE_MIN_MB,
        memory_mb,
    )

    return memory_mb(
        _file_megabytes_per_frame(wildcards),
        INGEST_MB_PER_FILE_MEGABYTE,
        PER_IMAGE_BASE_MB,
        PER_IMAGE_MIN_MB["ingest"],
        attempt,
    )


def _file_megabytes_per_frame(wildcards):
    source = get_source(wildcards)
    return os.path.getsize(source) / 1e6 / _frames_per_file()[source]


# Before ingest has run a per-image step's image size is not known (a dry run).
PER_IMAGE_RUNTIME_UNKNOWN_MIN = 10


def _image_megapixels(wildcards):
    """Megapixels of an image from what ingest recorded (micrograph.json, until measure has
    used it; then metadata.json, which overlay reads), or None before ingest has run."""
    folder = Path(image_dir(wildcards.sample, wildcards.image))
    if folder not in _IMAGE_MEGAPIXELS:
        for name in ("micrograph.json", "metadata.json"):
            path = folder / name
            if path.is_file():
                break
        else:
            return None
        height, width = json.loads(path.read_text()).get("shape", [0, 0])[-2:]
        _IMAGE_MEGAPIXELS[folder] = height * width / 1e6
    return _IMAGE_MEGAPIXELS[folder]


def per_image_runtime(step):
    """A resource function: the step's time limit in minutes from its image's megapixels,
    doubled on each retry."""
    from nanomorph.resources import (
        PER_IMAGE_SECONDS_PER_MEGAPIXEL,
        PER_IMAGE_STARTUP_MIN,
        time_limit_minutes,
    )

    seconds_per_megapixel = PER_IMAGE_SECONDS_PER_MEGAPIXEL[step]

    def runtime(wildcards, attempt):
        megapixels = _image_megapixels(wildcards)
        if megapixels is None:
            return PER_IMAGE_RUNTIME_UNKNOWN_MIN * 2 ** (attempt - 1)
        return time_limit_minutes(
            megapixels, seconds_per_megapixel, PER_IMAGE_STARTUP_MIN, attempt
        )

    return runtime


def per_image_memory(step):
    """A resource function: the step's memory in MB, from its image's megapixels for images
    larger than most cameras give, doubled on each retry."""
    from nanomorph.resources import (
        PER_IMAGE_BASE_MB,
        PER_IMAGE_MB_PER_MEGAPIXEL,
        PER_IMAGE_MIN_MB,
        memory_mb,
    )

    def mem_mb(wildcards, attempt):
        megapixels = _image_megapixels(wildcards) or 0.0
        return memory_mb(
            megapixels,
            PER_IMAGE_MB_PER_MEGAPIXEL,
            PER_IMAGE_BASE_MB,
            PER_IMAGE_MIN_MB[step],
            attempt,
        )

    return mem_mb


# ---------------------------------------------------------------- input functions
def image_dir(sample, image):
    return f"{RESULTS}/{sample}/images/{image}"


def get_source(wildcards):
    return IMAGES[wildcards.sample][wildcards.image][0]


def get_frame(wildcards):
    return IMAGES[wildcards.sample][wildcards.image][1]


def get_pixel_size(wildcards):
    return SAMPLES[wildcards.sample].get("pixel_size_nm")


def get_chunk_names(wildcards):
    return _chunks(wildcards.sample)[int(wildcards.chunk)]


def get_chunk_sources(wildcards):
    # Frames of one series share a file: each file once.
    images = IMAGES[wildcards.sample]
    return list(dict.fromkeys(images[name][0] for name in get_chunk_names(wildcards)))


def get_chunk_micrographs(wildcards):
    names = get_chunk_names(wildcards)
    return [f"{image_dir(wildcards.sample, name)}/micrograph.json" for name in names]


def mask_cache_dir(sample):
    """Where segmentation jobs keep every mask they make, for reuse (nanomorph.batch.MaskCache)."""
    return f"{STATE}/masks/{sample}"


def get_chunk_dir(wildcards):
    chunk = chunk_of(wildcards.sample, wildcards.image)
    return f"{RESULTS}/{wildcards.sample}/segment/chunk_{chunk}"


def get_report_overlay_names(wildcards):
    from nanomorph.aggregate import evenly_spaced

    return evenly_spaced(list(IMAGES[wildcards.sample]), config["report_overlays_per_sample"])


def get_report_overlays(wildcards):
    return [
        f"{image_dir(wildcards.sample, name)}/overlay.png"
        for name in get_report_overlay_names(wildcards)
    ]


def get_sample_tables(wildcards):
    return [
        f"{image_dir(wildcards.sample, name)}/particles.parquet" for name in IMAGES[wildcards.sample]
    ]


def get_sample_metadata(wildcards):
    return [
        f"{image_dir(wildcards.sample, name)}/metadata.json" for name in IMAGES[wildcards.sample]
    ]


def is_series(wildcards):
    return wildcards.sample in SERIES


def sample_polarity(sample):
    """The sheet's polarity for the sample, else the config's (auto: unknown)."""
    return SAMPLES[sample].get("polarity") or config["polarity"]


def sample_particle_diameter(sample):
    """The sheet's typical particle diameter for the sample, else the config's (None: unknown)."""
    return SAMPLES[sample].get("particle_diameter_nm") or config["particle_diameter_nm"]


def get_segmenter_settings(wildcards):
    return {
        "kind": config["segmenter"],
        "model": config.get("model"),
        "device": config["device"],
        "precision": config["precision"],
        "test_time_flips": config["test_time_flips"],
        "min_peak_probability": config["min_peak_probability"],
        "flatten_support_px": config["flatten_support_px"],
        "polarity": sample_polarity(wildcards.sample),
        "particle_diameter_nm": sample_particle_diameter(wildcards.sample),
        "tile_size": config["tile_size"],
    }


def get_analysis_settings(wildcards):
    """The analysis knobs of the config; the polarity (the contrast check) is per sample."""
    return {**config["analysis"], "polarity": sample_polarity(wildcards.sample)}


def figure_sample():
    return config["figures"].get("sample") or next(iter(SAMPLES))


def figure_image():
    sample = figure_sample()
    if sample not in SAMPLES:
        raise WorkflowError(f"config figures.sample {sample!r} is not a sample in the sheet")
    image = config["figures"].get("image") or next(iter(IMAGES[sample]))
    if image not in IMAGES[sample]:
        raise WorkflowError(f"config figures.image {image!r} is not an image of sample {sample!r}")
    return image
