"""Stage 7: WER against the LLM's compute for every model, and the routing of every MoME model (see mome.analysis).

    python -m mome.bin.analyse --model_dirs exp/mome exp/mtsk_ss --data_dir data/test --output_dir exp/plots \\
        [--results exp/RESULTS.md] [--max_utterances 100] [--checkpoint valid.loss.ave.pth]

Writes ``<output_dir>/wer_vs_compute.png`` (one line per model through its rate pairs, from the scored clean
decodings of stage 6) and, per MoME model, ``<output_dir>/routing_<model>.png`` (expert usage per layer by rate
pair and token type, teacher-forced on the first ``--max_utterances`` utterances of ``--data_dir``). The tables
go to stdout and, with ``--results``, replace the ``## Analysis`` section of that RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from pathlib import Path

from mome.bin._cli import entry_point

PROG = "python -m mome.bin.analyse"
SECTION = "## Analysis"


def replace_section(path: Path, lines: list[str]) -> None:
    """Put ``lines`` (starting with SECTION) at the end of ``path`` instead of an earlier analysis section."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    text = re.split(rf"^{re.escape(SECTION)}\b", text, flags=re.M)[0].rstrip("\n")
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text((text + "\n\n" if text else "") + "\n".join(lines) + "\n", encoding="utf-8")
    tmp.replace(path)


@entry_point(PROG)
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--model_dirs", nargs="+", required=True, help="training output directories (decoded and scored)")
    p.add_argument("--data_dir", required=True, help="the clean test set (utt2dur, text, wav.scp / roi.scp)")
    p.add_argument("--output_dir", required=True, help="where the PNGs go")
    p.add_argument("--results", default=None, help="RESULTS.md whose '## Analysis' section to write")
    p.add_argument("--max_utterances", type=int, default=100, help="utterances of the routing analysis")
    p.add_argument(
        "--checkpoint", default=None, help="checkpoint of the routing analysis (default: valid.loss.ave.pth)"
    )
    a = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s) %(levelname)s: %(message)s")
    from mome.analysis.report import compute_points, compute_table, plot_wer_vs_compute

    data_dir, out = Path(a.data_dir), Path(a.output_dir)
    model_dirs = [Path(d) for d in a.model_dirs]
    for path in [data_dir, *model_dirs]:
        if not path.is_dir():
            raise NotADirectoryError(f"{path} is not a directory")
    lines = [SECTION, ""]
    points = compute_points(model_dirs, data_dir)
    if points:
        png = plot_wer_vs_compute(
            points, out / "wer_vs_compute.png", f"WER on {data_dir.name} against the LLM's compute"
        )
        lines += [f"### WER against the LLM's compute ({data_dir.name}; `{png.name}`)", "", *compute_table(points), ""]
    for model_dir in model_dirs:
        lines += routing_section(model_dir, data_dir, out, a.max_utterances, a.checkpoint)
    print("\n".join(lines))
    if a.results:
        replace_section(Path(a.results), lines)
    return 0


def routing_section(model_dir: Path, data_dir: Path, out: Path, max_utterances: int, checkpoint) -> list[str]:
    """The routing figure and table of one model ([] unless it is a MoME model)."""
    import yaml

    with open(model_dir / "config.yaml", encoding="utf-8") as f:
        if yaml.safe_load(f).get("llm_adapter") != "mome":
            return []
    from espnet2.train.collate_fn import CommonCollateFn
    from torch.utils.data import DataLoader

    from mome.analysis.report import consistency_table, plot_usage
    from mome.analysis.routing import collect_routing
    from mome.espnet.readers import length_sorted_batches, media_dataset
    from mome.espnet.task import AVSRTask
    from mome.inference import AVSR2Text

    avsr = AVSR2Text.from_pretrained(model_dir, checkpoint=checkpoint)
    model, args = avsr.model, avsr.args
    dataset = media_dataset(data_dir, model.avsr.modalities, AVSRTask.build_preprocess_fn(args, train=False), text=True)
    keys = sorted(dataset.loader_dict["text"].keys())[:max_utterances]
    batches = length_sorted_batches(keys, data_dir, 8)
    loader = DataLoader(dataset, batch_sampler=batches, collate_fn=CommonCollateFn(int_pad_value=-1))
    stats = collect_routing(model, loader, model.avsr.rate_pairs)
    png = plot_usage(stats, out / f"routing_{model_dir.name}.png", f"{model_dir.name}: expert usage on {data_dir.name}")
    return [
        f"### Routing of {model_dir.name} ({len(keys)} utterances of {data_dir.name}, teacher-forced; `{png.name}`)",
        "",
        "Tokens matched across two rate pairs (the same transcript token; an audio or video token of the finer rate",
        "and the coarser token whose window holds its first frame): the share whose top-k experts are the same set,",
        "per layer, and in brackets the same share with the coarser tokens shuffled (what the experts' usage alone",
        "gives). Transcript tokens enter layer 0 identical at every rate.",
        "",
        *consistency_table(stats),
        "",
    ]


if __name__ == "__main__":
    sys.exit(main())
