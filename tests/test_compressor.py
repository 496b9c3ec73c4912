"""Matryoshka compressor (avg / stack pooling, ragged lengths) and the per-rate projectors."""

from __future__ import annotations

import pytest
import torch

from mome.models.compressor import MatryoshkaCompressor, compress, compressed_lengths, lengths_to_mask
from mome.models.projector import Projector, RateProjectors


def ragged_batch() -> tuple[torch.Tensor, torch.Tensor]:
    # row 0: 7 real frames 1..7; row 1: 4 real frames 10..13 then padding holding a huge value
    x = torch.full((2, 7, 2), 1e6)
    x[0, :, 0] = torch.arange(1.0, 8.0)
    x[0, :, 1] = -torch.arange(1.0, 8.0)
    x[1, :4, 0] = torch.arange(10.0, 14.0)
    x[1, :4, 1] = 0.0
    return x, torch.tensor([7, 4])


def test_lengths_are_ceil_and_mask_matches():
    lengths = torch.tensor([7, 4, 1, 6])
    assert compressed_lengths(lengths, 3).tolist() == [3, 2, 1, 2]
    assert compressed_lengths(lengths, 1).tolist() == [7, 4, 1, 6]
    assert lengths_to_mask(torch.tensor([3, 1])).tolist() == [[True, True, True], [True, False, False]]


def test_average_ignores_padding_in_last_partial_window():
    x, lengths = ragged_batch()
    y, new_lengths = compress(x, lengths, 3, "avg")
    assert y.shape == (2, 3, 2) and new_lengths.tolist() == [3, 2]
    # row 0 windows {1,2,3} {4,5,6} {7}; row 1 windows {10,11,12} {13}, third window all padding -> zeros
    assert y[0, :, 0].tolist() == [2.0, 5.0, 7.0]
    assert y[0, :, 1].tolist() == [-2.0, -5.0, -7.0]
    assert y[1, :, 0].tolist() == [11.0, 13.0, 0.0]
    assert torch.all(y.abs() < 1e5)  # the 1e6 padding never leaks


def test_stack_concatenates_and_zero_fills():
    x, lengths = ragged_batch()
    y, new_lengths = compress(x, lengths, 2, "stack")
    assert y.shape == (2, 4, 4) and new_lengths.tolist() == [4, 2]
    assert y[0, 0].tolist() == [1.0, -1.0, 2.0, -2.0]
    assert y[0, 3].tolist() == [7.0, -7.0, 0.0, 0.0]  # frame 8 does not exist
    assert y[1, 1].tolist() == [12.0, 0.0, 13.0, 0.0]
    assert torch.all(y[1, 2:] == 0)


def test_rate_one_is_identity_on_real_frames():
    x, lengths = ragged_batch()
    y, new_lengths = compress(x, lengths, 1)
    assert torch.equal(y[0], x[0]) and torch.equal(y[1, :4], x[1, :4]) and torch.all(y[1, 4:] == 0)
    assert new_lengths.tolist() == [7, 4]


def test_compressor_rejects_unbuilt_rate_and_bad_mode():
    comp = MatryoshkaCompressor(audio_rates=[4, 16])
    x, lengths = ragged_batch()
    with pytest.raises(ValueError, match=r"audio rate 8 .*allowed audio rates: \[4, 16\]"):
        comp(x, lengths, "audio", 8)
    with pytest.raises(ValueError, match="pooling mode 'max'"):
        MatryoshkaCompressor([2], pooling="max")
    with pytest.raises(ValueError, match="positive"):
        MatryoshkaCompressor([0, 2])
    with pytest.raises(ValueError, match="not an .audio rate, video rate. pair"):
        MatryoshkaCompressor(rate_pairs=[[4, 2, 1]])
    assert MatryoshkaCompressor(rate_pairs=[[4, 0], [16, 5]]).rate_pairs == [(4, None), (16, 5)]


def test_projectors_one_per_rate_with_widths():
    proj = Projector(6, 8, hidden_size=5)
    assert [type(m).__name__ for m in proj] == ["Linear", "ReLU", "Linear", "LayerNorm"]
    assert proj[0].weight.shape == (5, 6) and proj[2].weight.shape == (8, 5)
    assert len(Projector(6, 8, layer_norm=False)) == 3
    bank = RateProjectors({2: 12, 5: 30}, output_size=8)
    assert set(bank.projectors) == {"2", "5"}
    assert bank.projectors["5"][0].in_features == 30  # each rate's own input width
    assert MatryoshkaCompressor(pooling="stack").output_size(6, 5) == 30  # stacking widens the input by the rate
    out = bank(torch.randn(3, 4, 12), 2)
    assert out.shape == (3, 4, 8)
    assert torch.allclose(out.mean(-1), torch.zeros(3, 4), atol=1e-5)  # LayerNorm at the end
