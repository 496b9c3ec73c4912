"""The AVSR model as plain PyTorch: encoders -> Matryoshka compressor -> one projector per rate -> frozen LLM
(+ MoME or LoRA adapter).

Encoders are black boxes (``forward(x, lengths) -> (features (B, T', D), lengths)``, attribute
``output_size``); either may be absent (ASR: audio only, VSR: video only). Features of a frozen encoder may
also come precomputed (``features={"audio": (feats, lengths)}``), and the encoder is then skipped.

The model is trained at every configured (audio rate, video rate) pair at once. Per batch, each encoder
runs once and each (modality, rate) is compressed and projected once; the pairs' prompts then share LLM
forward passes: ``pairs_per_forward`` pairs stacked along the batch axis in one pass ("all": every pair in
one, the default; 1: one pass per pair, the least memory), each row with its pair's scale index, which an
adapter that ``mixes_scales`` (MoME) follows per row. LoRA's per-scale adapters (Llama-MTSK SS / MSS)
cannot differ between rows of one pass in peft: with them every pair has its own pass. The loss is the
mean over the pairs of each pair's cross-entropy plus ``balance_weight`` times the mean over the pairs of
the routers' load-balancing loss (MoME): the same numbers (up to float rounding) whatever
``pairs_per_forward``. Stacked rows are padded to the longest pair's prompt, so one pass computes more
positions than the separate ones (about a third more at rates (4, 2) ... (16, 5)): fewer, larger passes.
``ctc_weight`` w > 0 adds an auxiliary CTC loss (not in the papers; ESPnet's hybrid CTC convention):
loss = (1 - w) * CE + w * CTC + balance_weight * balance, CTC the mean over the projected (modality, rate) sequences.
w = 1 is CTC alone: no LLM pass, only the projectors (and CTC's blank) learn, a quick warm-up of the projectors
whose weights a full training then starts from (``init_param``).
At inference the caller picks any pair the model was built for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product

import torch
from torch import nn

from mome.models.adapter import AdapterSpec
from mome.models.compressor import Compressor, MatryoshkaCompressor
from mome.models.ctc_prefix import ctc_prefix_processor
from mome.models.llm import FrozenLLM
from mome.models.projector import RateProjectors

MODALITIES = ("audio", "video")
RatePair = tuple[int | None, int | None]


@dataclass
class AVSROutput:
    loss: torch.Tensor
    ce_loss: torch.Tensor | None  # None with ctc_weight 1 (no LLM pass)
    balance_loss: torch.Tensor | None = None
    ctc_loss: torch.Tensor | None = None
    pair_losses: dict[RatePair, torch.Tensor] = field(default_factory=dict)


class AVSRModel(nn.Module):
    """The AVSR model; ``compressor`` (default: :class:`MatryoshkaCompressor` at its default rates) gives each
    modality's rates and the rate pairs to train, ``adapter`` (a spec: :class:`~mome.models.mome.MoMESpec`,
    :class:`~mome.models.lora.LoRASpec`, ...) builds the LLM adapter for those pairs; the keyword arguments
    after them are the ESPnet task's ``model_conf`` (their defaults are the task's)."""

    def __init__(
        self,
        llm: FrozenLLM,
        audio_encoder: nn.Module | None = None,
        video_encoder: nn.Module | None = None,
        compressor: Compressor | None = None,
        adapter: AdapterSpec | None = None,
        projector_hidden: int | None = None,
        projector_layer_norm: bool = True,
        balance_weight: float = 0.01,
        freeze_encoders: bool = True,
        pairs_per_forward: int | str = "all",
        ctc_weight: float = 0.0,
    ):
        super().__init__()
        encoders = {"audio": audio_encoder, "video": video_encoder}
        if all(e is None for e in encoders.values()):
            raise ValueError("the AVSR model needs an audio encoder, a video encoder or both")
        self.llm = llm
        self.encoders = nn.ModuleDict({m: e for m, e in encoders.items() if e is not None})
        self.freeze_encoders = freeze_encoders
        if freeze_encoders:
            self.encoders.requires_grad_(False)
        self.compressor = MatryoshkaCompressor() if compressor is None else compressor
        self.projectors = nn.ModuleDict(
            {
                m: RateProjectors(
                    {r: self.compressor.output_size(enc.output_size, r) for r in self.compressor.rates[m]},
                    llm.hidden_size,
                    projector_hidden,
                    projector_layer_norm,
                )
                for m, enc in self.encoders.items()
            }
        )
        self.rate_pairs = self._check_pairs(self.compressor.rate_pairs)
        self.adapter = None if adapter is None else adapter.build(llm, len(self.rate_pairs))
        self.balance_weight = balance_weight
        self.pairs_per_forward = self._check_pairs_per_forward(pairs_per_forward)
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight!r}")
        self.ctc_weight = float(ctc_weight)
        # CTC's blank, one learned vector beside the frozen LLM's token embeddings (only with ctc_weight > 0)
        self.ctc_blank = nn.Parameter(torch.zeros(llm.hidden_size)) if ctc_weight > 0 else None

    # -- configuration ----------------------------------------------------------------------------------
    @property
    def modalities(self) -> tuple[str, ...]:
        return tuple(m for m in MODALITIES if m in self.encoders)

    def _all_pairs(self) -> list[RatePair]:
        choices = [self.compressor.rates[m] if m in self.encoders else [None] for m in MODALITIES]
        return [tuple(p) for p in product(*choices)]

    def _check_pairs(self, pairs: Sequence[RatePair] | None) -> list[RatePair]:
        if pairs is None:
            return self._all_pairs()
        checked = [self._normalise_pair(p) for p in pairs]
        if len(set(checked)) != len(checked):
            raise ValueError(f"rate pairs repeat: {checked}")
        return checked

    def _normalise_pair(self, rates) -> RatePair:
        """(ra, rv) with None for an absent modality; a bare int is the one modality's rate."""
        if isinstance(rates, int):
            rates = (rates,)
        rates = tuple(rates)
        if len(rates) == 1 and len(self.modalities) == 1:
            rates = (rates[0], None) if self.modalities == ("audio",) else (None, rates[0])
        if len(rates) != 2:
            raise ValueError(f"rates must be (audio rate, video rate), got {rates}")
        for modality, rate in zip(MODALITIES, rates):
            if rate is None and modality in self.encoders:
                raise ValueError(f"the model has a {modality} encoder: give a {modality} rate (got {rates})")
            if rate is not None:
                if modality not in self.encoders:
                    raise ValueError(f"the model has no {modality} encoder: its rate must be None (got {rates})")
                self.compressor.check_rate(modality, int(rate))
        return tuple(None if r is None else int(r) for r in rates)

    def _check_pairs_per_forward(self, value: int | str) -> int:
        if isinstance(value, str):
            word = value.strip().lower()
            if word == "all":
                return len(self.rate_pairs)
            value = int(word) if word.isdigit() else 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"pairs_per_forward must be 'all' or a positive integer, got {value!r}")
        return min(value, len(self.rate_pairs))

    def pair_groups(self) -> list[list[int]]:
        """Indices of the rate pairs that share each LLM forward pass of a training step."""
        size = self.pairs_per_forward
        if self.adapter is not None and not self.adapter.mixes_scales:
            size = 1  # the adapter cannot give rows of one pass different scales (LoRA per-scale adapters)
        indices = list(range(len(self.rate_pairs)))
        return [indices[i : i + size] for i in range(0, len(indices), size)]

    def scale_index(self, rates) -> int:
        """Index of a rate pair in the model's scale list (what the adapters switch on)."""
        pair = self._normalise_pair(rates)
        if pair not in self.rate_pairs:
            raise ValueError(f"rate pair {pair} was not built into this model; built pairs: {self.rate_pairs}")
        return self.rate_pairs.index(pair)

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_encoders:
            self.encoders.eval()  # frozen encoders never run dropout / batch-norm updates
        return self

    # -- pieces -----------------------------------------------------------------------------------------
    def encode(
        self, audio=None, audio_lengths=None, video=None, video_lengths=None, features=None
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Encoder features per modality: ``(features (B, T', D), lengths (B,))``.

        ``features`` holds precomputed encoder outputs ``{modality: (feats, lengths or None)}`` (dumped once
        with the frozen encoders); their encoders are not run, and no raw input of theirs may be given."""
        given = {m: (x, n) for m, (x, n) in (features or {}).items() if x is not None}
        if set(given) - set(MODALITIES):
            raise ValueError(
                f"precomputed features of unknown modalities {sorted(set(given) - set(MODALITIES))}; "
                f"known: {MODALITIES}"
            )
        inputs = {"audio": (audio, audio_lengths), "video": (video, video_lengths)}
        for modality, (x, _) in inputs.items():
            if modality in given:
                if x is not None:
                    raise ValueError(
                        f"both raw {modality} input and precomputed {modality} features were given: give one"
                    )
                x = given[modality][0]
            if x is None and modality in self.encoders:
                raise ValueError(f"the model has a {modality} encoder but no {modality} input was given")
            if x is not None and modality not in self.encoders:
                raise ValueError(f"{modality} input given but the model has no {modality} encoder")
        sizes = {m: x.shape[0] for m, (x, _) in {**inputs, **given}.items() if x is not None}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"audio and video batch sizes differ: audio {sizes['audio']}, video {sizes['video']}")
        encoded = {}
        for modality, encoder in self.encoders.items():
            x, lengths = given.get(modality, inputs[modality])
            if lengths is None:
                lengths = torch.full((x.shape[0],), x.shape[1], dtype=torch.long, device=x.device)
            if modality in given:
                if x.dim() != 3 or x.shape[-1] != encoder.output_size:
                    raise ValueError(
                        f"precomputed {modality} features must be (batch, frames, {encoder.output_size}) "
                        f"(the {modality} encoder's output size), got {tuple(x.shape)}"
                    )
                encoded[modality] = (x, lengths)
                continue
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze_encoders):
                encoded[modality] = encoder(x, lengths)
        return encoded

    def project(self, features, pairs: Sequence[RatePair]) -> dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]]:
        """Compressed and projected tokens ``(B, T, d), lengths`` per (modality, rate) that the pairs use,
        each computed once."""
        projected = {}
        for pair in pairs:
            for modality, rate in zip(MODALITIES, pair):
                if rate is not None and (modality, rate) not in projected:
                    x, lengths = features[modality]
                    tokens, token_lengths = self.compressor(x, lengths, modality, rate)
                    projected[modality, rate] = (self.projectors[modality](tokens, rate), token_lengths)
        return projected

    def stacked_prompt(self, projected, pairs: Sequence[RatePair], targets=None, padding_side: str = "right"):
        """One prompt batch holding the batch's rows once per pair, pair after pair (rows ``j*B .. (j+1)*B``
        are pair j's)."""
        sections = []
        for index, modality in enumerate(MODALITIES):
            if modality not in self.encoders:
                continue
            parts = [projected[modality, pair[index]] for pair in pairs]
            longest = max(tokens.shape[1] for tokens, _ in parts)
            tokens = torch.cat([nn.functional.pad(t, (0, 0, 0, longest - t.shape[1])) for t, _ in parts])
            sections.append((modality, tokens, torch.cat([n for _, n in parts])))
        return self.llm.build_prompt(sections, None if targets is None else list(targets) * len(pairs), padding_side)

    def prompt(self, features, pair: RatePair, targets=None, padding_side: str = "right"):
        """The prompt batch of one rate pair."""
        pair = self._normalise_pair(pair)
        return self.stacked_prompt(self.project(features, [pair]), [pair], targets, padding_side)

    def _set_scale(self, indices: Sequence[int], batch: int) -> None:
        """One scale for the pass, or (several pairs in one pass) each pair's index on its rows."""
        if self.adapter is None:
            return
        if len(indices) == 1:
            self.adapter.set_scale(indices[0])
        else:
            device = self.llm.markers.weight.device
            self.adapter.set_scale(torch.tensor(indices, device=device).repeat_interleave(batch))

    def ctc_loss(self, projected, targets) -> torch.Tensor:
        """Mean over the projected (modality, rate) sequences of the CTC loss of each against the transcripts'
        LLM tokens, each projected token scored against the frozen LLM's input embedding table (V, d) and the
        learned blank (index V). It pulls the tokens towards the embeddings of the words spoken, which the
        frozen LLM can read from its first step. A sequence that cannot align (fewer tokens than its transcript
        needs, a blank between repeats included; e.g. audio at rate 16) has loss 0 (``zero_infinity``) and still
        counts in the batch mean. projected: :meth:`project`'s output; targets: (L_i,) ids."""
        target_lengths = torch.tensor([len(t) for t in targets])
        flat = torch.cat([t.to(self.ctc_blank.device) for t in targets])
        losses = []
        for tokens, lengths in projected.values():
            log_probs = self.ctc_log_probs(tokens)
            losses.append(
                nn.functional.ctc_loss(
                    log_probs.transpose(0, 1),  # (T, B, V + 1)
                    flat,
                    lengths.cpu(),
                    target_lengths,
                    blank=log_probs.shape[-1] - 1,
                    zero_infinity=True,
                )
            )
        return torch.stack(losses).mean()

    def ctc_log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T, d) projected tokens -> (B, T, V + 1) float32 log-probabilities over the frozen LLM's input
        embedding table (V, d) and the learned blank (index V), each scored by its dot product with the token."""
        table = torch.cat([self.llm.hf.get_input_embeddings().weight, self.ctc_blank[None]])
        return (tokens @ table.T.to(tokens.dtype)).float().log_softmax(-1)

    @property
    def ctc_only(self) -> bool:
        """Trained by CTC alone (``ctc_weight`` 1): no LLM pass in training, best-path CTC to transcribe."""
        return self.ctc_weight == 1.0

    # -- training and inference -------------------------------------------------------------------------
    def forward(
        self, texts, audio=None, audio_lengths=None, video=None, video_lengths=None, features=None
    ) -> AVSROutput:
        """texts: transcripts (str) or LLM token ids per utterance (1-D LongTensors, no bos / eos);
        features: precomputed encoder outputs per modality (see :meth:`encode`)."""
        encoded = self.encode(audio, audio_lengths, video, video_lengths, features)
        batch = next(iter(encoded.values()))[0].shape[0]
        if len(texts) != batch:
            raise ValueError(f"{len(texts)} transcripts for a batch of {batch}")
        targets = self.llm.tokenize(texts) if isinstance(texts[0], str) else list(texts)
        projected = self.project(encoded, self.rate_pairs)
        if self.ctc_only:  # the projectors' warm-up, no LLM pass
            ctc = self.ctc_loss(projected, targets)
            return AVSROutput(ctc, None, ctc_loss=ctc)
        pair_losses, balance = {}, []
        for group in self.pair_groups():
            pairs = [self.rate_pairs[i] for i in group]
            prompt = self.stacked_prompt(projected, pairs, targets, "right")
            self._set_scale(group, batch)
            if self.adapter is not None:
                self.adapter.start_recording()
            sums, counts = self.llm.loss_per_row(prompt)
            rows = [slice(j * batch, (j + 1) * batch) for j in range(len(pairs))]
            pair_losses.update({pair: sums[r].sum() / counts[r].sum() for pair, r in zip(pairs, rows)})
            aux = self.adapter.auxiliary_losses(prompt.attention_mask, rows) if self.adapter is not None else None
            balance += aux or []
        ce = torch.stack(list(pair_losses.values())).mean()
        balance_loss = torch.stack(balance).mean() if balance else None
        ctc = self.ctc_loss(projected, targets) if self.ctc_weight > 0 else None
        loss = ce if ctc is None else (1 - self.ctc_weight) * ce + self.ctc_weight * ctc
        loss = loss if balance_loss is None else loss + self.balance_weight * balance_loss
        return AVSROutput(loss, ce, balance_loss, ctc, pair_losses)

    @torch.no_grad()
    def decode(
        self,
        audio=None,
        video=None,
        rates=(4, 2),
        beam_size: int = 1,
        max_new_tokens: int = 32,
        audio_lengths=None,
        video_lengths=None,
    ) -> list[str]:
        """Transcribe a batch at one rate pair (greedy for beam_size=1, else beam search)."""
        self.scale_index(rates)  # a bad pair fails before the encoders run
        features = self.encode(audio, audio_lengths, video, video_lengths)
        return self.decode_from_features(features, rates, beam_size, max_new_tokens)

    @torch.no_grad()
    def decode_from_features(self, features, rates=(4, 2), beam_size: int = 1, max_new_tokens: int = 32) -> list[str]:
        """Transcribe at one rate pair from :meth:`encode`'s output (encode once, decode at every pair)."""
        if self.ctc_only:
            return [self.llm.detokenize(row["ids"]) for row in self.ctc_decode_from_features(features, rates)]
        index = self.scale_index(rates)
        prompt = self.prompt(features, self.rate_pairs[index], None, "left")
        self._set_scale([index], len(prompt.inputs_embeds))
        return self.llm.generate(prompt, beam_size=beam_size, max_new_tokens=max_new_tokens)

    @torch.no_grad()
    def decode_scored_from_features(
        self, features, rates=(4, 2), beam_size: int = 1, max_new_tokens: int = 32, ctc_weight: float = 0.0
    ) -> list[dict]:
        """Per utterance of :meth:`encode`'s output, at one rate pair: ``{"ids": (N,) LongTensor, "log_probs":
        (M,) float32 (the LLM's, natural log; the <eos> included when the hypothesis ended), "ended": bool,
        "prompt_tokens": int}`` (the prompt's LLM input positions, padding excluded:
        :func:`mome.models.accounting.prompt_tokens` counts the same), the hypotheses of
        :meth:`decode_from_features`. ``ctc_weight`` > 0: joint CTC / LLM decoding
        (:mod:`mome.models.ctc_prefix`) with the model's CTC head on :meth:`ctc_sequence`; a weight the model
        cannot use is a ValueError (:meth:`check_decoding_ctc_weight`)."""
        self.check_decoding_ctc_weight(ctc_weight)
        if self.ctc_only:
            return self.ctc_decode_from_features(features, rates)
        index = self.scale_index(rates)
        pair = self.rate_pairs[index]
        projected = self.project(features, [pair])
        prompt = self.stacked_prompt(projected, [pair], None, "left")
        self._set_scale([index], len(prompt.inputs_embeds))
        processor = None
        if ctc_weight > 0:
            log_probs, frames = self.ctc_sequence(projected, pair)
            processor = ctc_prefix_processor(log_probs, frames, self.llm.eos_id, ctc_weight, beam_size)
        lengths = prompt.attention_mask.sum(dim=1).tolist()
        hypotheses = self.llm.generate_scored(prompt, beam_size, max_new_tokens, processor)
        return [
            {"ids": ids, "log_probs": log_probs, "ended": ended, "prompt_tokens": int(n)}
            for (ids, log_probs, ended), n in zip(hypotheses, lengths)
        ]

    def check_decoding_ctc_weight(self, ctc_weight: float) -> None:
        """ValueError unless this model can decode with ``ctc_weight``: in [0, 1], and > 0 only with a CTC head
        beside a trained LLM path (a model trained with ``model_conf`` ctc_weight in (0, 1))."""
        if not 0.0 <= ctc_weight <= 1.0:
            raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight!r}")
        if ctc_weight > 0 and self.ctc_only:
            raise ValueError(
                f"ctc_weight {ctc_weight}: the model was trained by CTC alone (model_conf ctc_weight 1), its LLM path "
                "untrained, and transcribes by best-path CTC; joint decoding needs a model trained with the LLM "
                "(model_conf ctc_weight below 1); use 0"
            )
        if ctc_weight > 0 and self.ctc_blank is None:
            raise ValueError(
                f"ctc_weight {ctc_weight}: the model has no CTC head (trained with model_conf ctc_weight 0), and "
                "joint decoding needs a CTC head; use 0"
            )

    def ctc_sequence(self, projected, pair: RatePair) -> tuple[torch.Tensor, torch.Tensor]:
        """The CTC head's (B, T, V + 1) log-probabilities (:meth:`ctc_log_probs`) and (B,) lengths at one rate
        pair: on the audio tokens at the pair's audio rate (the video tokens in a model without audio).
        projected: :meth:`project`'s output for the pair."""
        modality = "audio" if "audio" in self.encoders else "video"
        tokens, lengths = projected[modality, pair[MODALITIES.index(modality)]]
        return self.ctc_log_probs(tokens), lengths

    @torch.no_grad()
    def ctc_decode_from_features(self, features, rates=(4, 2)) -> list[dict]:
        """Best-path CTC decoding, the transcription of a model trained by CTC alone (``ctc_weight`` 1, whose LLM
        path is untrained): per frame of :meth:`ctc_sequence`, the most likely of the LLM's tokens and the blank;
        repeats merged, blanks dropped. Per utterance, as :meth:`decode_scored_from_features`: ``ids`` (N,),
        ``log_probs`` (N,) (each kept frame's), ``ended`` True and ``prompt_tokens`` 0 (no LLM pass)."""
        pair = self.rate_pairs[self.scale_index(rates)]
        log_probs, lengths = self.ctc_sequence(self.project(features, [pair]), pair)
        best_log_probs, best = log_probs.max(-1)
        blank = log_probs.shape[-1] - 1
        rows = []
        for path, path_log_probs, n in zip(best, best_log_probs, lengths.tolist()):
            path, path_log_probs = path[:n], path_log_probs[:n]
            new = torch.ones_like(path, dtype=torch.bool)
            new[1:] = path[1:] != path[:-1]
            keep = new & (path != blank)
            rows.append({"ids": path[keep], "log_probs": path_log_probs[keep], "ended": True, "prompt_tokens": 0})
        return rows
