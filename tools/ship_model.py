"""Copy a trained ColorNet into the package as the shipped model (fp16, provenance kept).

    python -m tools.ship_model chromaref-model/colornet.pt
    python -m tools.ship_model checkpoint-model.pt --corpus data/training --index train-index

The file lands at `chromaref.platform.models.colornet.SHIPPED_MODEL`, which `--method
trained` uses when no `--model` is given; docs/model_card.md says how it was trained. With
`--corpus`, the chroma gate is fitted again on that corpus's held-out split, as `chromaref
train` does at the end of a run (for a model taken from a checkpoint, which has none).
"""

from __future__ import annotations

import argparse

from chromaref.platform.models.colornet import SHIPPED_MODEL, ColorNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a colornet model file (`chromaref train` writes one)")
    parser.add_argument("--corpus", help="fit the chroma gate on this corpus's held-out photos")
    parser.add_argument("--index", help="its index (retrieved references), as in training")
    args = parser.parse_args()
    model = ColorNet.from_file(args.model)
    meta = model.meta
    calibration = meta.calibration
    if args.corpus:
        calibration = _fit_gate(model, args.corpus, args.index)
    model.save(
        SHIPPED_MODEL,
        half=True,
        run_id=meta.run_id,
        matching=meta.matching,
        metrics=meta.metrics,
        dataset=meta.dataset,
        calibration=calibration,
    )
    print(f"{SHIPPED_MODEL} ({SHIPPED_MODEL.stat().st_size / 1e6:.1f} MB, run {meta.run_id})")


def _fit_gate(model: ColorNet, corpus: str, index: str | None) -> dict:
    from chromaref.training.calibration import fit_on_held_out
    from chromaref.training.config import resolve_config
    from chromaref.training.trainer import list_photos, prepare_dataset

    config = resolve_config(overrides={"corpus": corpus, "index": index})
    dataset = prepare_dataset(config, list_photos(config))
    fit = fit_on_held_out(
        model, config, val=dataset.val, train=dataset.train, neighbours=dataset.neighbours
    )
    if fit is None:
        raise SystemExit(f"{corpus}: no held-out photos to fit the chroma gate on")
    gain = f"{fit.psnr:.2f} dB ({fit.ungated_psnr:.2f} ungated)"
    print(f"chroma gate {fit.gate}: {gain} on {fit.pairs} held-out pairs")
    return fit.gate.as_calibration()


if __name__ == "__main__":
    main()
