"""Joint CTC / LLM decoding (mome.models.ctc_prefix): prefix scores against a brute-force sum over CTC paths,
whole hypotheses against torch's CTC loss through Hugging Face's beam search, and the decoding options."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from transformers import GenerationConfig, LogitsProcessorList

from mome.models.ctc_prefix import CTCPrefixLogitsProcessor, ctc_prefix_processor
from tests.test_avsr_model import build

EOS = 2  # of a 3-token vocabulary; the blank is index 3


def collapse(path, blank=3):
    return tuple(c for i, c in enumerate(path) if c != blank and (i == 0 or c != path[i - 1]))


def brute_force(x: torch.Tensor, prefix: tuple, whole: bool) -> float:
    """log of the summed probability of every CTC path over x (T, V + 1) whose transcript starts with prefix
    (whole: is exactly prefix)."""
    total = 0.0
    for path in itertools.product(range(x.shape[1]), repeat=x.shape[0]):
        labels = collapse(path)
        if labels == prefix if whole else labels[: len(prefix)] == prefix:
            total += math.exp(sum(float(x[t, c]) for t, c in enumerate(path)))
    return math.log(total)


def test_each_step_adds_the_weighted_ctc_prefix_score_to_the_llm_s_log_probability():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 4, generator=gen).log_softmax(-1)  # 2 utterances, 4 frames, tokens 0 1 <eos> + blank
    lengths = torch.tensor([4, 3])
    weight = 0.4
    processor = CTCPrefixLogitsProcessor(x, lengths, EOS, weight, pre_beam_size=3)
    frames = [x[0], x[1, :3]]  # the second utterance's last frame is padding, never read

    def expected(utt, prefix, llm):
        before = brute_force(frames[utt], prefix, whole=False) if prefix else 0.0
        out = []
        for c in range(3):
            whole = c == EOS  # <eos>: the transcript is the prefix
            ctc = brute_force(frames[utt], prefix if whole else prefix + (c,), whole)
            out.append((1 - weight) * float(llm[c]) + weight * (ctc - before))
        return torch.tensor(out)

    # step 1: two beams an utterance, every hypothesis empty; raw logits are normalised first (greedy passes them)
    logits = torch.randn(4, 3, generator=gen)
    joint = processor(torch.zeros(4, 0, dtype=torch.long), logits)
    llm = logits.log_softmax(-1)
    for row in range(4):
        assert torch.allclose(joint[row], expected(row // 2, (), llm[row]), atol=1e-4)
    # step 2: beams reordered and repeated; each row's CTC state is found by its hypothesis, not its row
    hypotheses = torch.tensor([[1], [0], [0], [0]])
    llm = torch.randn(4, 3, generator=gen).log_softmax(-1)
    joint = processor(hypotheses, llm)
    for row in range(4):
        assert torch.allclose(joint[row], expected(row // 2, (int(hypotheses[row, 0]),), llm[row]), atol=1e-4)


def test_only_the_llm_s_pre_beam_is_scored_and_bad_settings_are_refused():
    x = torch.randn(1, 4, 4).log_softmax(-1)
    processor = CTCPrefixLogitsProcessor(x, torch.tensor([4]), EOS, 0.5, pre_beam_size=2)
    joint = processor(torch.zeros(1, 0, dtype=torch.long), torch.tensor([[-1.0, -3.0, -2.0]]))
    assert joint[0, 1] == float("-inf") and bool(joint[0, [0, 2]].isfinite().all())
    assert ctc_prefix_processor(x, torch.tensor([4]), EOS, 0.5, beam_size=4).pre_beam_size == 6  # ESPnet's 1.5x
    assert ctc_prefix_processor(x, torch.tensor([4]), EOS, 0.5, beam_size=1).pre_beam_size == 2
    with pytest.raises(ValueError, match="ctc_weight"):
        CTCPrefixLogitsProcessor(x, torch.tensor([4]), EOS, 0.0, 2)
    two = CTCPrefixLogitsProcessor(x.repeat(2, 1, 1), torch.tensor([4, 4]), EOS, 0.5, 2)
    with pytest.raises(ValueError, match="3 hypotheses for a batch of 2"):
        two(torch.zeros(3, 0, dtype=torch.long), torch.zeros(3, 3))


def joint_search(model, processor, beam_size):
    """Hugging Face's beam search on the tiny model's prompt with the processor: the hypotheses, and per
    hypothesis its joint score and the LLM's own log-probability (each summed over the tokens, <eos> included)."""
    features = model.encode(**inputs_audio())
    pair = model.rate_pairs[0]
    projected = model.project(features, [pair])
    prompt = model.stacked_prompt(projected, [pair], None, "left")
    config = GenerationConfig(
        max_new_tokens=12,
        num_beams=beam_size,
        do_sample=False,
        eos_token_id=model.llm.eos_id,
        pad_token_id=model.llm.pad_id,
        output_scores=True,
        output_logits=True,
        return_dict_in_generate=True,
    )
    out = model.llm.hf.generate(
        inputs_embeds=prompt.inputs_embeds,
        attention_mask=prompt.attention_mask,
        generation_config=config,
        logits_processor=LogitsProcessorList([processor]),
    )
    joint = model.llm.hf.compute_transition_scores(out.sequences, out.scores, out.beam_indices).sum(-1)
    llm = model.llm.hf.compute_transition_scores(out.sequences, out.logits, out.beam_indices, True).sum(-1)
    return out.sequences, joint, llm


def inputs_audio():
    gen = torch.Generator().manual_seed(2)
    return {"audio": torch.randn(2, 3200, generator=gen), "audio_lengths": torch.tensor([3200, 1900])}


def test_a_finished_hypothesis_scores_its_llm_and_ctc_log_probabilities_weighted():
    model = build(video=False, audio_rates=(1,), ctc_weight=0.5).eval()
    features = model.encode(**inputs_audio())
    pair = model.rate_pairs[0]
    log_probs, frames = model.ctc_sequence(model.project(features, [pair]), pair)
    weight = 0.3
    # every token in the pre-beam: <eos> is always a candidate, and no hypothesis outgrows its frames (10 and 5)
    processor = CTCPrefixLogitsProcessor(log_probs, frames, model.llm.eos_id, weight, log_probs.shape[-1] - 1)
    with torch.no_grad():
        sequences, joint, llm = joint_search(model, processor, beam_size=3)
    for utt, row in enumerate(sequences):
        ids = model.llm._cut_at_eos(row)
        assert len(ids) < len(row) and 0 < len(ids) <= int(frames[utt])  # ended, within the CTC's frames
        ctc = -torch.nn.functional.ctc_loss(
            log_probs[utt, : frames[utt]],
            ids,
            frames[utt : utt + 1],
            torch.tensor([len(ids)]),
            blank=log_probs.shape[-1] - 1,
            reduction="sum",
        )
        # the CTC prefix terms telescope to log p_CTC(transcript) over the search's reordered beams
        assert torch.allclose(joint[utt], (1 - weight) * llm[utt] + weight * ctc, atol=1e-3)


def test_ctc_weight_one_with_every_token_in_the_pre_beam_writes_the_ctc_transcript(monkeypatch):
    model = build(video=False, audio_rates=(1,), ctc_weight=0.5).eval()
    table = model.llm.hf.get_input_embeddings().weight.detach()
    with torch.no_grad():
        model.ctc_blank.copy_(3 * torch.randn(table.shape[1], generator=torch.Generator().manual_seed(0)))
    blank = model.ctc_blank.detach()
    a, b = model.llm.tokenize(["hello world"])[0].tolist()[:2]
    # frames a a <blank> a b <blank> b b, the first utterance 6 frames long, the second 4 (as best-path CTC's test)
    tokens = 50 * torch.stack([table[a], table[a], blank, table[a], table[b], blank, table[b], table[b]])[None]
    log_probs = model.ctc_log_probs(tokens).repeat(2, 1, 1)
    processor = CTCPrefixLogitsProcessor(log_probs, torch.tensor([6, 4]), model.llm.eos_id, 1.0, len(table))
    with torch.no_grad():
        sequences = joint_search(model, processor, beam_size=2)[0]
    assert [model.llm._cut_at_eos(row).tolist() for row in sequences] == [[a, a, b], [a, a]]


def test_joint_decoding_through_the_model_returns_the_llm_s_own_log_probabilities():
    model = build(video=False, audio_rates=(1,), ctc_weight=0.5).eval()
    features = model.encode(**inputs_audio())
    plain = model.decode_scored_from_features(features, 1, beam_size=1, max_new_tokens=8)
    joint = model.decode_scored_from_features(features, 1, beam_size=1, max_new_tokens=8, ctc_weight=0.6)
    assert [r["ids"].tolist() for r in joint] != [r["ids"].tolist() for r in plain]  # CTC changes what is written
    prompt = model.prompt(features, 1, None, "left")
    embed = model.llm.hf.get_input_embeddings()
    for utt, row in enumerate(joint):
        assert row["prompt_tokens"] == plain[utt]["prompt_tokens"]
        assert row["log_probs"].shape == (len(row["ids"]) + int(row["ended"]),)
        # the LLM alone, teacher-forced on the prompt and the written tokens, gives the same log-probabilities
        keep = prompt.attention_mask[utt].bool()
        written = torch.cat([row["ids"], torch.tensor([model.llm.eos_id] * int(row["ended"]), dtype=torch.long)])
        sequence = torch.cat([prompt.inputs_embeds[utt, keep], embed(written)])[None]
        with torch.no_grad():
            logits = model.llm.hf(inputs_embeds=sequence).logits[0, keep.sum() - 1 : -1]
        own = logits.log_softmax(-1).gather(1, written[:, None])[:, 0]
        assert torch.allclose(row["log_probs"], own, atol=1e-4)


def test_a_model_without_a_ctc_head_refuses_joint_decoding():
    model = build(video=False, audio_rates=(1,)).eval()
    with pytest.raises(ValueError, match="needs a CTC head"):
        model.decode_scored_from_features(model.encode(**inputs_audio()), 1, beam_size=2, ctc_weight=0.3)
