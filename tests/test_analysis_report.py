"""The analysis stage's WER-against-compute plot."""

from __future__ import annotations

from matplotlib.axes import Axes

from mome.analysis.report import ComputePoint, plot_wer_vs_compute


def test_each_rate_pair_is_labelled_once_above_its_highest_point(tmp_path, monkeypatch):
    labels = []
    annotate = Axes.annotate

    def record(self, text, xy, *args, **kwargs):
        labels.append((text, xy))
        return annotate(self, text, xy, *args, **kwargs)

    monkeypatch.setattr(Axes, "annotate", record)
    points = [  # two models share the pairs (16,5) and (4,2): the same compute, stacked points
        ComputePoint("mome", (16, 5), 39.7, 47.7e-6, 33.0),
        ComputePoint("mtsk_ss", (16, 5), 38.2, 47.7e-6, 33.0),
        ComputePoint("llama", (16, 5), 39.2, 47.7e-6, 33.0),
        ComputePoint("mome", (4, 2), 25.6, 107.8e-6, 74.6),
        ComputePoint("mtsk_ss", (4, 2), 17.9, 107.8e-6, 74.6),
        ComputePoint("asr", (4, None), 20.7, 59.7e-6, 41.0),
    ]
    out = plot_wer_vs_compute(points, tmp_path / "plot.png", "test")
    assert out.read_bytes()[:4] == b"\x89PNG"
    rounded = sorted((text, (round(x, 6), y)) for text, (x, y) in labels)  # x in MFLOPs
    assert rounded == sorted([("(16,5)", (47.7, 39.7)), ("(4,2)", (107.8, 25.6)), ("(4,-)", (59.7, 20.7))])


def test_a_model_trained_by_ctc_alone_has_no_llm_compute_to_plot(tmp_path):
    from mome.analysis.report import compute_points

    data = tmp_path / "data" / "test"
    data.mkdir(parents=True)
    (data / "utt2dur").write_text("u1 2.0\n")
    (data / "text").write_text("u1 hello world\n")
    model = tmp_path / "exp" / "ctc_real"
    (model / "decode_test_ra4_rv0" / "score").mkdir(parents=True)
    (model / "decode_test_ra4_rv0" / "score" / "result.txt").write_text("")
    # no LLM named at all: reading this model's LLM would fail, so the point must be skipped before it
    (model / "config.yaml").write_text("model_conf:\n  ctc_weight: 1.0\n")
    assert compute_points([model], data) == []
