"""Particle IoU on simulated scenes crowded with what is not a particle (residue, contamination,
an alumina-like support of platelets).

The fixed test scenarios draw residue and contamination only sometimes; this stress set forces
them, so that a change of the training mixture that makes the network readier to take grey,
soft-edged matter for particles shows up. Isolated particles (no separation question), bright
field and HAADF, 12 images of 384² each per case, seeded (``SeedSequence([4242, k])``).

Usage::

    python benchmarks/distractors.py --out benchmarks/results/distractors_model.json
    python benchmarks/distractors.py --model path/to/other/model --out other.json

Prints one row per case (particle IoU, false-particle pixels) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

CASES = {
    # a quarter of the field under soft grey residue
    "residue": {"residue_fraction": 0.25},
    # fifteen grey contamination spots, no residue
    "contamination": {"contamination_count": 15, "residue_fraction": 0.0},
    # a strong support of flat platelets and rods (alumina), whose crossings are as bright
    # (HAADF) or dark (BF) as particles; as strong as the training mixture's supports get
    "platelet_support": {
        "support_platelets": True,
        "support_strength": {"bf": 0.8, "haadf": 2.0},
        "support_grain_cover": 1.5,
        "residue_fraction": 0.0,
    },
}
MODALITIES = ("bf", "haadf")


def score(segmenter, n_images: int = 12, shape: tuple[int, int] = (384, 384)) -> list[dict]:
    """Pooled particle IoU and false-particle pixels for every case and modality."""
    from nanomorph.segment.metrics import confusion_matrix, pixel_metrics
    from nanomorph.simulate import simulate_micrograph

    rows = []
    for case, overrides in CASES.items():
        for modality in MODALITIES:
            cm = np.zeros((2, 2), np.int64)
            for k in range(n_images):
                sim = simulate_micrograph(
                    np.random.SeedSequence([4242, k]),
                    shape=shape,
                    scenario="isolated",
                    modality=modality,
                    **{k: v[modality] if isinstance(v, dict) else v for k, v in overrides.items()},
                )
                cm += confusion_matrix(sim.mask, segmenter(sim.image, sim.pixel_size_nm))
            rows.append(
                {
                    "case": case,
                    "modality": modality,
                    "n_images": n_images,
                    "particle_iou": pixel_metrics(cm)["particle_iou"],
                    # rows of cm: true background / particle; columns: predicted
                    "false_particle_pixels_per_true_pixel": float(cm[0, 1] / max(cm[1].sum(), 1)),
                }
            )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--n", type=int, default=12, help="images per case and modality")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    from nanomorph.segment.model import load_segmenter

    segmenter = load_segmenter(args.model)
    rows = score(segmenter.segment, n_images=args.n)
    print(f"{'case':16s} {'modality':8s} {'particle IoU':>12s} {'false px / true px':>19s}")
    for r in rows:
        print(
            f"{r['case']:16s} {r['modality']:8s} {r['particle_iou']:12.3f} "
            f"{r['false_particle_pixels_per_true_pixel']:19.3f}"
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        result = {"model": args.model, "segmentation": segmenter.describe(), "rows": rows}
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
