"""Joint CTC / LLM decoding: the model's CTC head scores the LLM's beam search as it goes.

ESPnet's hybrid CTC/attention decoding (Watanabe et al., "Hybrid CTC/attention architecture for end-to-end speech
recognition", IEEE JSTSP 2017), with the frozen LLM in the attention decoder's place: a hypothesis g extended by
token c scores

    (1 - ctc_weight) * log p_LLM(c | g, prompt) + ctc_weight * (log psi(g c) - log psi(g)),

psi the CTC prefix probability of the projected tokens (the probability that the transcript starts with g c;
for <eos>, that it is exactly g), computed by ESPnet's :class:`~espnet.nets.ctc_prefix_score.CTCPrefixScore`.
Summed over a finished hypothesis the CTC terms telescope to log p_CTC(y | x), so its score is
``(1 - ctc_weight) * log p_LLM(y) + ctc_weight * log p_CTC(y)``. As in ESPnet, only the LLM's
``pre_beam_size`` best tokens of each hypothesis get a CTC score (the others are barred): the CTC prefix score
costs a pass over the frames per token. It plugs into Hugging Face's ``generate`` as a logits processor, so
greedy and beam search (with the KV cache) run as they do without it.
"""

from __future__ import annotations

import numpy as np
import torch
from espnet.nets.ctc_prefix_score import CTCPrefixScore
from transformers import LogitsProcessor


class CTCPrefixLogitsProcessor(LogitsProcessor):
    """Adds the CTC prefix score to each step of ``generate`` (greedy or beam search) of a batch.

    Args:
        log_probs: (B, T, V + 1) CTC log-probabilities over the LLM's V tokens and the blank (index V), per
            utterance of the generated batch (:meth:`mome.models.avsr.AVSRModel.ctc_log_probs`).
        lengths: (B,) valid frames of each utterance.
        eos_id: the LLM's end-of-sequence token (scored as "the transcript is the hypothesis").
        ctc_weight: in (0, 1]; the LLM's share is 1 - ctc_weight.
        pre_beam_size: the LLM's best tokens of each hypothesis that CTC scores (ESPnet: 1.5 x the beam).

    Called by ``generate`` with ``input_ids`` (B x beams, L) (the new tokens so far: the prompt is given as
    embeddings) and the step's scores (B x beams, V); returns the joint scores, ``-inf`` outside the pre-beam.
    Rows are the batch's utterances in order, each repeated ``beams`` times (Hugging Face's layout).
    """

    def __init__(
        self, log_probs: torch.Tensor, lengths: torch.Tensor, eos_id: int, ctc_weight: float, pre_beam_size: int
    ):
        if not 0.0 < ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in (0, 1] for joint CTC decoding, got {ctc_weight!r}")
        if pre_beam_size < 1:
            raise ValueError(f"pre_beam_size must be positive, got {pre_beam_size}")
        if len(log_probs) != len(lengths):
            raise ValueError(f"{len(log_probs)} CTC sequences for {len(lengths)} lengths")
        x = log_probs.detach().float().cpu().numpy()
        blank = x.shape[-1] - 1
        self.scorers = [CTCPrefixScore(x[i, : int(n)], blank, eos_id, np) for i, n in enumerate(lengths.tolist())]
        self.vocab_size = blank
        self.eos_id = eos_id
        self.ctc_weight = float(ctc_weight)
        self.pre_beam_size = pre_beam_size
        # (utterance, hypothesis) -> (CTC state (T, 2), log psi): the last step's scored extensions
        self.states: dict[tuple[int, tuple[int, ...]], tuple[np.ndarray, float]] = {}

    def _state(self, utt: int, prefix: tuple[int, ...]) -> tuple[np.ndarray, float] | None:
        if not prefix:
            return self.scorers[utt].initial_state(), 0.0
        return self.states.get((utt, prefix))  # None: a row past its <eos> (greedy) or outside the last pre-beam

    def _extend(self, utt: int, prefix: tuple[int, ...], state, candidates: np.ndarray):
        """log psi of prefix + each candidate, and their CTC states."""
        scorer = self.scorers[utt]
        r_prev, _ = state
        if len(prefix) >= scorer.input_length:  # as many tokens as frames: only <eos> (the whole prefix) can follow
            log_psi = np.full(len(candidates), scorer.logzero, dtype=np.float32)
            log_psi[candidates == self.eos_id] = np.logaddexp(r_prev[-1, 0], r_prev[-1, 1])
            return log_psi, [np.full_like(r_prev, scorer.logzero)] * len(candidates)
        # ESPnet's scorer reads the prefix after a start symbol it ignores (y[0]); the value stands in for it. Its
        # states leave the frames before the prefix's length unset (never read): numpy may warn on them.
        with np.errstate(invalid="ignore", over="ignore"):
            return scorer(np.array((-1,) + prefix), candidates, r_prev)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if scores.shape[-1] < self.vocab_size:
            raise ValueError(f"the LLM scores {scores.shape[-1]} tokens, CTC {self.vocab_size}")
        rows = len(input_ids)
        beams, rest = divmod(rows, len(self.scorers))
        if rest:
            raise ValueError(f"{rows} hypotheses for a batch of {len(self.scorers)} utterances")
        llm = scores.float().log_softmax(-1)  # greedy passes raw logits, beam search log-probabilities
        top = llm[:, : self.vocab_size].topk(min(self.pre_beam_size, self.vocab_size), dim=-1).indices
        joint = torch.full_like(llm, float("-inf"))
        states = {}
        for row, (ids, candidates) in enumerate(zip(input_ids.tolist(), top.cpu().numpy())):
            utt, prefix = row // beams, tuple(ids)
            state = self._state(utt, prefix)
            if state is None:  # nothing to score: the LLM alone
                joint[row] = llm[row]
                continue
            log_psi, new_states = self._extend(utt, prefix, state, candidates)
            ctc = torch.from_numpy(log_psi - np.float32(state[1]))
            index = torch.from_numpy(candidates).to(scores.device)
            joint[row, index] = (1 - self.ctc_weight) * llm[row, index] + self.ctc_weight * ctc.to(scores.device)
            for c, psi, r in zip(candidates.tolist(), log_psi.tolist(), new_states):
                if c != self.eos_id:  # a finished hypothesis is not extended
                    states[utt, prefix + (c,)] = (r, psi)
        self.states = states
        return joint.to(scores.dtype)


def ctc_prefix_processor(
    log_probs: torch.Tensor, lengths: torch.Tensor, eos_id: int, ctc_weight: float, beam_size: int
) -> CTCPrefixLogitsProcessor:
    """The processor with ESPnet's pre-beam (``int(1.5 * beam_size)`` tokens), and at least 2 so that greedy
    decoding (beam 1) also weighs CTC."""
    return CTCPrefixLogitsProcessor(log_probs, lengths, eos_id, ctc_weight, max(2, int(1.5 * beam_size)))
