"""Damaged clips, images and models (seeded mutations, tools/fuzz.py) end in exit 0 with a playable
output or in one `rtnst: error:` line with exit 2: never a traceback, another exit code or a hang."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def load_fuzz():
    spec = importlib.util.spec_from_file_location("fuzz", REPO / "tools" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_mutations_are_seeded_and_damage_the_data():
    fuzz = load_fuzz()
    import random

    data = bytes(range(256)) * 64
    a = [fuzz.mutate(data, random.Random(3)) for _ in range(1)]
    b = [fuzz.mutate(data, random.Random(3)) for _ in range(1)]
    assert a == b and a[0][1] != data


def test_damaged_inputs_end_cleanly(tmp_path):
    pytest.importorskip("onnx")
    fuzz = load_fuzz()
    clip, image, model = fuzz.sample_inputs(tmp_path)
    cases = fuzz.make_cases(tmp_path, clip=clip, image=image, model=model, n=24, seed=2026)
    results = fuzz.fuzz(cases, timeout_s=60)
    bad = [(c.name, outcome, last) for c, outcome, last in results if outcome not in ("exit 0", "clean exit 2")]
    assert not bad, bad
    assert {outcome for _, outcome, _ in results} == {"exit 0", "clean exit 2"}  # both kinds were exercised
