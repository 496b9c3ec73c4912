"""Precomputed frozen-encoder features: dump_features writes Kaldi ark/scp of what the encoders compute,
and training from them equals training with the encoders online (no augmentation, frozen encoders)."""

from __future__ import annotations

from pathlib import Path

import kaldiio
import numpy as np
import pytest
import torch
import yaml

from mome.bin import avsr_inference, avsr_train, dump_features
from mome.espnet.choices import ConfigError
from mome.espnet.features import frozen_encoders, load_config
from mome.espnet.preprocess import AVSRPreprocessor
from mome.espnet.task import AVSRTask
from tests.helpers.espnet import data_options, make_data_dir, make_pretrained, write_config


def frozen_config(path: Path, root: Path, texts: Path, pretrained: Path, **overrides) -> Path:
    """The tiny config with frozen pretrained stand-in encoders (Whisper, AV-HuBERT); ROIs of exactly the
    crop size and no time masking: online training sees no augmentation either."""
    write_config(path, root / "tokenizer", texts, preprocessor_conf={"mask_window": 0}, **overrides)
    config = yaml.safe_load(path.read_text())
    config.update(
        audio_encoder="whisper",
        audio_encoder_conf={"path": str(pretrained / "whisper-medium")},
        video_encoder="avhubert",
        video_encoder_conf={"path": str(pretrained / "large_vox_iter5.pt")},
    )
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def dumped(tmp_path_factory):
    root = tmp_path_factory.mktemp("features")
    train, valid = make_data_dir(root / "train", 4, roi_size=88), make_data_dir(root / "valid", 2, seed=1, roi_size=88)
    pretrained = make_pretrained(root / "pretrained")
    online = frozen_config(root / "online.yaml", root, train / "text", pretrained)
    offline = frozen_config(
        root / "offline.yaml", root, train / "text", pretrained, model_conf={"precomputed_features": True}
    )
    for data in (train, valid):
        argv = [
            "--config",
            str(offline),
            "--data_dir",
            str(data),
            "--output_dir",
            str(root / "dump" / data.name),
            "--batch_size",
            "3",
        ]
        assert dump_features.main(argv) == 0
    return root, train, valid, online, offline


def feature_options(root: Path, train: Path, valid: Path) -> list[str]:
    argv = []
    for mode, data in (("train", train), ("valid", valid)):
        for name in ("audio_feats", "video_feats"):
            argv += [
                f"--{mode}_data_path_and_name_and_type",
                f"{root / 'dump' / data.name / name}.scp,{name},kaldi_ark",
            ]
    return argv


def test_dumped_features_are_the_encoders_outputs_per_utterance(dumped):
    root, train, _, _, offline = dumped
    out = root / "dump" / "train"
    utts = sorted(line.split()[0] for line in (train / "wav.scp").read_text().splitlines())
    encoders = frozen_encoders(load_config(offline))
    from espnet2.train.dataset import ESPnetDataset

    media = ESPnetDataset(
        [(str(train / "wav.scp"), "audio", "sound"), (str(train / "roi.scp"), "video", "roi")],
        preprocess=AVSRPreprocessor(train=False, tokenizer=None),
    )
    for modality, encoder in encoders.items():
        scp = out / f"{modality}_feats.scp"
        assert [line.split()[0] for line in scp.read_text().splitlines()] == utts  # sorted, every utterance
        stored = dict(kaldiio.load_scp(str(scp)))
        shapes = dict(line.split() for line in (out / f"{modality}_feats_shape").read_text().splitlines())
        for utt in utts:
            x = media[utt][1][modality]  # one utterance alone: no padding
            with torch.no_grad():
                feats, lengths = encoder(torch.from_numpy(x)[None], torch.tensor([len(x)]))
            assert stored[utt].dtype == np.float32 and shapes[utt] == f"{int(lengths[0])},{encoder.output_size}"
            np.testing.assert_allclose(stored[utt], feats[0, : int(lengths[0])].numpy(), atol=1e-5)
    assert (out / "utt2dur").read_text() == (train / "utt2dur").read_text()


def batch_of(args, entries, utts):
    from espnet2.train.collate_fn import CommonCollateFn
    from espnet2.train.dataset import ESPnetDataset

    dataset = ESPnetDataset(entries, preprocess=AVSRTask.build_preprocess_fn(args, train=True))
    return CommonCollateFn(float_pad_value=0.0, int_pad_value=-1)([dataset[u] for u in utts])[1]


def test_one_step_from_features_equals_one_step_encoding_online(dumped):
    root, train, _, online, offline = dumped
    args = load_config(offline)
    model = AVSRTask.build_model(args).train()
    utts = sorted(line.split()[0] for line in (train / "text").read_text().splitlines())[:3]
    text = (str(train / "text"), "text", "text")
    from_features = batch_of(
        args,
        [
            (str(root / "dump/train/audio_feats.scp"), "audio_feats", "kaldi_ark"),
            (str(root / "dump/train/video_feats.scp"), "video_feats", "kaldi_ark"),
            text,
        ],
        utts,
    )
    from_media = batch_of(
        args, [(str(train / "wav.scp"), "audio", "sound"), (str(train / "roi.scp"), "video", "roi"), text], utts
    )
    assert from_features["audio_feats"].shape[-1] == 32 and "audio" not in from_features  # Whisper stand-in: d_model 32
    calls = []
    for encoder in model.avsr.encoders.values():
        encoder.register_forward_hook(lambda *a: calls.append(1))
    loss_features, stats_features, _ = model(**from_features)
    assert calls == []  # the encoders did not run
    loss_online, stats_online, _ = model(**from_media)
    assert len(calls) == 2
    assert torch.allclose(loss_features, loss_online, atol=1e-5)
    for key in stats_online:
        assert torch.allclose(stats_features[key], stats_online[key], atol=1e-5), key

    # whole training runs: the same weights after an epoch whether encoded online or read from features
    avsr_train.main(
        ["--config", str(online), "--output_dir", str(root / "exp_online"), *data_options(train, root / "valid")]
    )
    # the recipe may pass raw data and features alike: the config picks the features
    argv = [
        "--config",
        str(offline),
        "--output_dir",
        str(root / "exp_features"),
        *feature_options(root, train, root / "valid"),
        *data_options(train, root / "valid"),
    ]
    avsr_train.main(argv)
    saved = yaml.safe_load((root / "exp_features" / "config.yaml").read_text())
    assert [e[1] for e in saved["train_data_path_and_name_and_type"]] == ["audio_feats", "video_feats", "text"]
    shapes = (root / "exp_features" / "shape" / "train.shape").read_text()
    assert shapes == (root / "exp_online" / "shape" / "train.shape").read_text() and len(shapes.splitlines()) == 4
    ours, theirs = (torch.load(root / d / "1epoch.pth", weights_only=True) for d in ("exp_features", "exp_online"))
    assert ours.keys() == theirs.keys()
    for key in ours:
        assert torch.allclose(ours[key], theirs[key], atol=1e-4), key
    # the model trained from features decodes media: its encoders are there, run online at test time
    argv = [
        "--model_dir",
        str(root / "exp_features"),
        "--data_dir",
        str(root / "valid"),
        "--rates",
        "4,2",
        "--beam_size",
        "1",
        "--max_new_tokens",
        "3",
    ]
    assert avsr_inference.main(argv) == 0
    assert len((root / "exp_features" / "decode_valid_ra4_rv2" / "text").read_text().splitlines()) == 2


def test_trainable_encoders_and_missing_features_are_refused(dumped, tmp_path, capsys):
    root, train, valid, _, offline = dumped
    trainable = write_config(tmp_path / "trainable.yaml", root / "tokenizer", train / "text")  # small encoders train
    assert (
        dump_features.main(["--config", str(trainable), "--data_dir", str(train), "--output_dir", str(tmp_path / "f")])
        == 1
    )
    assert "the audio encoder is trainable (frozen: false)" in capsys.readouterr().err
    random = write_config(
        tmp_path / "random.yaml", root / "tokenizer", train / "text", video_encoder_conf={"frozen": True}
    )
    assert (
        dump_features.main(
            [
                "--config",
                str(random),
                "--data_dir",
                str(train),
                "--output_dir",
                str(tmp_path / "f"),
                "--modalities",
                "video",
            ]
        )
        == 1
    )
    assert "the video encoder has random weights (no path=)" in capsys.readouterr().err
    bad = write_config(
        tmp_path / "bad.yaml", root / "tokenizer", train / "text", model_conf={"precomputed_features": ["video"]}
    )
    with pytest.raises(ConfigError, match="precomputed_features: video_encoder_conf: the video encoder is trainable"):
        AVSRTask.build_model(AVSRTask.get_parser().parse_args(["--config", str(bad)]))
    with pytest.raises(ConfigError, match=r"precomputed_features: 'lips' is not a modality of this model"):
        bad = write_config(
            tmp_path / "bad.yaml", root / "tokenizer", train / "text", model_conf={"precomputed_features": ["lips"]}
        )
        AVSRTask.build_model(AVSRTask.get_parser().parse_args(["--config", str(bad)]))
    with pytest.raises(SystemExit, match=r"needs the input\(s\) \['audio_feats', 'video_feats'\].*dump_features"):
        avsr_train.main(["--config", str(offline), "--output_dir", str(tmp_path / "exp"), *data_options(train, valid)])


def test_recipe_trains_from_features_with_features_true(dumped, tmp_path):
    """avsr.sh --features true: stage 4 dumps train/valid features once per encoder (under its feature key) and
    trains from them."""
    import os
    import subprocess
    import sys

    root, _, _, online, _ = dumped
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "utils").symlink_to(repo / "utils")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}", LC_ALL="C")
    cmd = [str(repo / "egs/TEMPLATE/avsr/avsr.sh"), "--stage", "4", "--stop_stage", "4", "--features", "true",
           "--datadir", str(root), "--train_set", "train", "--valid_set", "valid", "--dumpdir", str(tmp_path / "dump"),
           "--expdir", str(tmp_path / "exp"), "--train_configs", str(online), "--tag", "online",
           "--train_args", "--max_epoch 1 --num_iters_per_epoch 1 --batch_type unsorted --batch_size 2"]  # fmt: skip
    r = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "exp/online/train.log").read_text() if (tmp_path / "exp/online/train.log").exists() else ""
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:] + log[-3000:]
    for name in ("train", "valid"):
        for modality in ("audio", "video"):
            (scp,) = (tmp_path / "dump/features").glob(f"{modality}_*/{name}/{modality}_feats.scp")
            assert (scp.parent / f"{modality}_feats_shape").is_file() and f"{scp},{modality}_feats,kaldi_ark" in log
    assert "precomputed_features=true" in log and "audio_feats.scp,audio_feats,kaldi_ark" in log
    assert (tmp_path / "exp/online/1epoch.pth").is_file()


def test_shared_features_follow_the_encoder_weights(dumped, tmp_path):
    """The recipe's shared dump (``--dump_dir``) is kept while the encoder's weights are the same, and an encoder
    trained again (other weights at the same path) gets features of its own rather than the old ones."""
    import shutil

    from mome.espnet.features import dump_shared
    from mome.models.encoders.avhubert import AVHubertVideoEncoder
    from mome.models.encoders.avhubert_checkpoint import fairseq_style_checkpoint

    root, train, valid, _, _ = dumped
    pretrained = shutil.copytree(root / "pretrained", tmp_path / "pretrained")
    config = frozen_config(
        tmp_path / "c.yaml", root, train / "text", pretrained, model_conf={"precomputed_features": True}
    )
    first = dump_shared(config, valid, tmp_path / "features", ["video"])["video"]
    written = first.stat().st_mtime_ns
    assert dump_shared(config, valid, tmp_path / "features", ["video"])["video"] == first
    assert first.stat().st_mtime_ns == written  # kept, not dumped again
    torch.manual_seed(1234)
    torch.save(fairseq_style_checkpoint(AVHubertVideoEncoder("tiny")), pretrained / "large_vox_iter5.pt")
    second = dump_shared(config, valid, tmp_path / "features", ["video"])["video"]
    assert second != first and second.parent.parent != first.parent.parent
    old, new = dict(kaldiio.load_scp(str(first))), dict(kaldiio.load_scp(str(second)))
    assert old.keys() == new.keys()
    assert all(not np.allclose(old[k], new[k]) for k in old)
