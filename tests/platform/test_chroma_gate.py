"""The chroma gate's arithmetic: floor where nothing matches, all from the knee on."""

from __future__ import annotations

import pytest
import torch

from chromaref.platform.colorizers.chroma_gate import ChromaGate


def test_the_gate_rises_linearly_from_its_floor_to_all_at_the_knee():
    gate = ChromaGate(floor=0.4, knee=0.2)
    scale = gate.scale(torch.tensor([0.0, 0.1, 0.2, 0.9]))
    assert scale.tolist() == pytest.approx([0.4, 0.7, 1.0, 1.0])
    ab = torch.full((4, 2, 3, 3), 20.0)
    assert gate(ab, torch.tensor([0.0, 0.1, 0.2, 0.9]))[:, 0, 0, 0].tolist() == pytest.approx(
        [8.0, 14.0, 20.0, 20.0]
    )


def test_no_calibration_keeps_all_the_chroma_and_round_trips():
    assert ChromaGate.from_calibration({}) == ChromaGate()
    assert ChromaGate().scale(torch.tensor([0.0, 0.5])).tolist() == [1.0, 1.0]
    gate = ChromaGate(floor=0.6, knee=0.3)
    assert ChromaGate.from_calibration(gate.as_calibration()) == gate


@pytest.mark.parametrize("settings", [{"floor": 1.5}, {"floor": -0.1}, {"knee": -1.0}])
def test_impossible_gates_are_refused(settings):
    with pytest.raises(ValueError, match="chroma gate"):
        ChromaGate(**settings)
