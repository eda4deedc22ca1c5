"""Sample sheet loading, validation, micrograph discovery, wildcard constraints, input functions.

Stacks are expanded into frames when the workflow is parsed (not with a checkpoint): the frame
count is read from the file header (TIFF, DigitalMicrograph) or, for other formats, by reading
the file once. This keeps the DAG static, so `-n`, `--report` and `--lint` see every job, and a
stack's frames become ordinary per-image jobs named `<stem>/frame_NNNN` exactly as the CLI names
them.
"""

import glob
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
HISTOGRAM_PROPERTIES = ("equivalent_diameter_nm", "feret_min_nm", "feret_max_nm", "circularity")
TRUE_WORDS = {"true", "yes", "1", "y", "t"}
FALSE_WORDS = {"false", "no", "0", "n", "f", ""}


class SampleSheetError(WorkflowError):
    """A sample sheet row that cannot be used; the message names the row and the sample."""


def _supported_suffixes():
    from nanomorph.io import SUPPORTED_SUFFIXES

    return tuple(s.lower() for s in SUPPORTED_SUFFIXES)


def _cell(value):
    """A sheet cell as stripped text, or None when empty."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip()
    if text == "":
        return None
    return text


def _row_record(row):
    record = {key: _cell(value) for key, value in row.items()}
    record = {key: value for key, value in record.items() if value is not None}
    if "series" in record:
        word = record["series"].lower()
        record["series"] = True if word in TRUE_WORDS else False if word in FALSE_WORDS else word
    if "pixel_size_nm" in record:
        try:
            record["pixel_size_nm"] = float(record["pixel_size_nm"])
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


def find_files(sample):
    """The micrograph files of a sample: its `path` as a file, a folder or a glob, sorted."""
    path = sample["path"]
    suffixes = _supported_suffixes()
    if Path(path).is_file():
        files = [Path(path)]
    elif Path(path).is_dir():
        files = sorted(p for p in Path(path).iterdir() if p.suffix.lower() in suffixes)
    else:
        files = sorted(Path(p) for p in glob.glob(path) if Path(p).suffix.lower() in suffixes)
        files = [p for p in files if p.is_file()]
    if not files:
        raise SampleSheetError(
            f"sample {sample['sample']!r}: path {path!r} matches no micrograph "
            f"(a file, a folder or a glob of {', '.join(suffixes)})"
        )
    return files


def count_frames(path):
    """Number of 2-D frames in a file, read from the header where the format allows it."""
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        import tifffile

        with tifffile.TiffFile(path) as tif:
            if tif.is_imagej and tif.imagej_metadata:
                meta = tif.imagej_metadata
                return int(meta.get("frames", 1)) * int(meta.get("slices", 1))
            series = tif.series[0]
            has_samples = series.axes.endswith("S")
            return int(series.shape[0]) if series.ndim - has_samples > 2 else 1
    from nanomorph.io import iter_micrographs

    return sum(1 for _ in iter_micrographs(path, pixel_size_nm=1.0))


def list_images(sample):
    """{image name: (source file, frame index or None)} for a sample, in acquisition order."""
    images = {}
    for path in find_files(sample):
        n_frames = count_frames(path)
        frames = [None] if n_frames == 1 else range(n_frames)
        for frame in frames:
            name = path.stem if frame is None else f"{path.stem}/frame_{frame:04d}"
            if name in images:
                raise SampleSheetError(
                    f"sample {sample['sample']!r}: {images[name][0]} and {path} give the same "
                    f"image name {name!r}; rename one of them"
                )
            images[name] = (str(path), frame)
    return images


SAMPLES = load_samples(config["samples"])
IMAGES = {name: list_images(sample) for name, sample in SAMPLES.items()}
SERIES = [name for name, sample in SAMPLES.items() if sample.get("series", False)]


wildcard_constraints:
    sample="|".join(re.escape(s) for s in SAMPLES),
    image="|".join(re.escape(i) for images in IMAGES.values() for i in images),
    chunk=r"\d+",


# ---------------------------------------------------------------- segmentation batching
def _chunks(sample):
    names = list(IMAGES[sample])
    size = config["segment_batch_size"] or len(names)
    return [names[i : i + size] for i in range(0, len(names), size)]


def chunk_of(sample, image):
    for index, names in enumerate(_chunks(sample)):
        if image in names:
            return index
    raise ValueError(f"image {image!r} is not part of sample {sample!r}")


def uses_gpu():
    return config["segmenter"] == "model" and config["device"] == "cuda"


# ---------------------------------------------------------------- input functions
def image_dir(sample, image):
    return f"{RESULTS}/{sample}/images/{image}"


def get_source(wildcards):
    return IMAGES[wildcards.sample][wildcards.image][0]


def get_frame(wildcards):
    return IMAGES[wildcards.sample][wildcards.image][1]


def get_pixel_size(wildcards):
    return SAMPLES[wildcards.sample].get("pixel_size_nm")


def get_chunk_images(wildcards):
    names = _chunks(wildcards.sample)[int(wildcards.chunk)]
    return [f"{image_dir(wildcards.sample, name)}/image.tif" for name in names]


def get_chunk_micrographs(wildcards):
    names = _chunks(wildcards.sample)[int(wildcards.chunk)]
    return [f"{image_dir(wildcards.sample, name)}/micrograph.json" for name in names]


def get_chunk_names(wildcards):
    return _chunks(wildcards.sample)[int(wildcards.chunk)]


def get_chunk_dir(wildcards):
    chunk = chunk_of(wildcards.sample, wildcards.image)
    return f"{RESULTS}/{wildcards.sample}/segment/chunk_{chunk}"


def get_sample_tables(wildcards):
    return [
        f"{image_dir(wildcards.sample, name)}/particles.parquet" for name in IMAGES[wildcards.sample]
    ]


def get_model_folder():
    """The model folder the config names, or None for the package default / threshold."""
    model = config.get("model")
    if config["segmenter"] != "model" or not model:
        return None
    return model if Path(model).is_dir() else f"resources/models/{model}"


def segmenter_settings():
    return {
        "kind": config["segmenter"],
        "model": config.get("model"),
        "device": config["device"],
        "polarity": config["polarity"],
        "tile_size": config["tile_size"],
    }


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


# ---------------------------------------------------------------- targets
def sample_outputs(sample):
    out = [f"{RESULTS}/{sample}/particles.parquet", f"{RESULTS}/{sample}/summary.csv"]
    out += [f"{RESULTS}/{sample}/figures/histogram_{p}.png" for p in HISTOGRAM_PROPERTIES]
    if config["outputs"]["csv"]:
        out.append(f"{RESULTS}/{sample}/particles.csv")
    if config["outputs"]["xlsx"]:
        out.append(f"{RESULTS}/{sample}/particles.xlsx")
    for name in IMAGES[sample]:
        folder = image_dir(sample, name)
        out += [f"{folder}/{f}" for f in ("segmentation.png", "labels.tif", "overlay.png")]
        out += [f"{folder}/{f}" for f in ("particles.parquet", "particles.csv", "metadata.json")]
    if sample in SERIES:
        out += [f"{RESULTS}/{sample}/series.csv", f"{RESULTS}/{sample}/tracks.csv"]
        out += [f"{RESULTS}/{sample}/track_summary.csv"]
        out += [f"{RESULTS}/{sample}/figures/series_{p}.png" for p in ("diameter", "count")]
        out += [f"{RESULTS}/{sample}/figures/tracks.png"]
    return out


def get_final_outputs(wildcards=None):
    out = [path for sample in SAMPLES for path in sample_outputs(sample)]
    out += [f"{RESULTS}/summary.csv", f"{RESULTS}/figures/comparison.png"]
    if model_metrics_source():
        out.append(f"{RESULTS}/model/metrics.csv")
    return out


def get_paper_figures(wildcards=None):
    return [
        f"{RESULTS}/figures/size_distribution.png",
        f"{RESULTS}/figures/segmentation_panel.png",
    ]



def is_series(wildcards):
    return wildcards.sample in SERIES


def get_sample_image_names(wildcards):
    return list(IMAGES[wildcards.sample])


def get_sample_metadata(wildcards):
    return [
        f"{image_dir(wildcards.sample, name)}/metadata.json" for name in IMAGES[wildcards.sample]
    ]


def model_metrics_source():
    """metrics.json of the model in use, or None (threshold segmenter, or a model without one)."""
    if config["segmenter"] != "model":
        return None
    from nanomorph.segment.model import METRICS_FILE, find_model_folder

    try:
        path = find_model_folder(config.get("model")) / METRICS_FILE
    except ValueError as error:
        raise WorkflowError(f"config model: {error}") from None
    return str(path) if path.is_file() else None


def get_model_metrics_file(wildcards):
    return model_metrics_source() or []
