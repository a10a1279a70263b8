"""Copy a trained ColorNet into the package as the shipped model (fp16, provenance kept).

    python -m tools.ship_model chromaref-model/colornet.pt

The file lands at `chromaref.platform.models.colornet.SHIPPED_MODEL`, which `--method
trained` uses when no `--model` is given; docs/model_card.md says how it was trained.
"""

from __future__ import annotations

import argparse

from chromaref.platform.models.colornet import SHIPPED_MODEL, ColorNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a colornet model file (`chromaref train` writes one)")
    args = parser.parse_args()
    model = ColorNet.from_file(args.model)
    meta = model.meta
    model.save(
        SHIPPED_MODEL,
        half=True,
        run_id=meta.run_id,
        matching=meta.matching,
        metrics=meta.metrics,
        dataset=meta.dataset,
    )
    print(f"{SHIPPED_MODEL} ({SHIPPED_MODEL.stat().st_size / 1e6:.1f} MB, run {meta.run_id})")


if __name__ == "__main__":
    main()
