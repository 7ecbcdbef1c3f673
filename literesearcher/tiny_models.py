"""Tiny local models in the real HF formats, built in seconds from the virtual world.

- policy: a byte-level BPE tokenizer trained on world pages plus the agent protocol's own text
  (`protocol_sample`: the system prompt, tool calls, tool responses and answers, rendered as
  whole episodes, so the fixed prompt and the tool syntax compress as a real tokenizer's
  would), the protocol's special tokens, a Qwen3-style chat template with tool turns, and a
  randomly initialised `Qwen3ForCausalLM` of a few layers (safetensors + generation_config.json);
- embedder: a BGE-M3-format directory (`XLMRobertaModel` + `colbert_linear.pt` +
  `sparse_linear.pt` + an XLM-R style tokenizer) that FlagEmbedding's `BGEM3FlagModel` loads.

Same seed, same weights and same tokenizer files; nothing is downloaded. Real checkpoints
(LiteResearcher-4B, BGE-M3) plug into the same loaders.
"""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from data_catalog import Catalog, Manifest

_T = TypeVar("_T")
CODE_VERSION = "tiny-models-4"
POLICY_DIR = "tiny-policy"
EMBEDDER_DIR = "tiny-bge-m3"

# Special to the chat format (skipped when decoding with skip_special_tokens).
CHAT_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
# Protocol tags: single tokens, kept in decoded text (the parser reads them).
PROTOCOL_TAGS = (
    "<think>", "</think>", "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>",
    "<answer>", "</answer>",
)  # fmt: skip
XLMR_SPECIAL = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # ids 0..4, as in XLM-R

# Qwen3's layout: consecutive tool results form one user turn of <tool_response> blocks.
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if message['role'] == 'tool' -%}"
    "{%- if loop.first or messages[loop.index0 - 1]['role'] != 'tool' -%}"
    "{{- '<|im_start|>user' -}}"
    "{%- endif -%}"
    "{{- '\\n<tool_response>\\n' + message['content'] + '\\n</tool_response>' -}}"
    "{%- if loop.last or messages[loop.index0 + 1]['role'] != 'tool' -%}"
    "{{- '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- else -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)


COPY_LOSSES = ("all", "copied")


@dataclass(frozen=True)
class TinySizes:
    vocab_size: int = 4096
    policy_layers: int = 2
    policy_hidden: int = 64
    policy_heads: int = 4
    policy_kv_heads: int = 2
    policy_head_dim: int = 16
    policy_intermediate: int = 128
    policy_max_positions: int = 8192
    embedder_layers: int = 2
    embedder_hidden: int = 64
    embedder_heads: int = 4
    embedder_intermediate: int = 128
    embedder_max_positions: int = 8194  # BGE-M3's value: 8192 tokens + padding offset
    sample_pages: int = 1000  # enough text for a 4k-token vocabulary
    protocol_pages: int = 200  # episodes of protocol text in the policy tokenizer's sample
    # Causal-LM pretraining of the policy (0 steps: randomly initialised, as before) on page
    # text of ANOTHER world (seed `pretrain_world_seed(seed)`, so no task fact of the demo world
    # leaks), each sequence with repeated spans (a span copied later in the same sequence, the
    # induction setup) so the policy learns to copy from its context as a real base model does.
    pretrain_steps: int = 0
    pretrain_pages: int = 3000  # pages of the other world (its token stream is sampled)
    # Rendered agent episodes of the other world (`protocol_sample`) mixed into the stream: a
    # base model that has seen tool-call transcripts, as real chat/tool base models have.
    pretrain_protocol_pages: int = 0
    pretrain_seq_len: int = 256
    pretrain_batch: int = 16
    pretrain_lr: float = 3e-3  # AdamW, linear warm-up (5%) then cosine decay to 10%
    pretrain_spans: int = 2  # repeated spans per sequence
    pretrain_span_max: int = 32  # span length drawn from 4..this many tokens
    # Share of each batch made of pure copy rows (`synthetic_copy_batch`: a run of random
    # tokens written twice into a window), the classic induction-head data: copying that does
    # not depend on what the text says (copy accuracy 0.66 -> 0.81, docs/BENCHMARKS.md).
    pretrain_synthetic: float = 0.0
    # Share of those copy rows whose run is drawn uniformly from every ordinary token id (rare
    # tokens, as names and URL slugs are); the others' runs are drawn from the text's own
    # tokens (its unigram distribution). The text steps keep only the copying they train: with
    # 0 a 2x128 policy copies runs of the text's tokens (0.97) but no longer rare ones (0.04),
    # with 1 the reverse (0.98 / 0.11), as the tied embeddings of tokens it never sees drift.
    pretrain_synthetic_uniform: float = 0.0
    # Steps of pure copy data BEFORE the text pretraining: rows of token ids drawn uniformly
    # from the vocabulary with one run written twice, so the loss can only fall by copying, in
    # a length curriculum: `pretrain_copy_start_steps` steps of `pretrain_copy_start_len`-token
    # rows, then the rest split evenly over doubling lengths up to `pretrain_copy_seq_len`,
    # `pretrain_copy_tokens` tokens per step. A 2x128 policy forms an induction head on
    # 32-token rows after ~600 steps (on 128-token rows only after ~1,750-2,750), but a head
    # only works up to about twice the length it was trained on, hence the doubling
    # (docs/BENCHMARKS.md, "Session 6"). Start length 0 (or the final one): no curriculum.
    pretrain_copy_steps: int = 0
    pretrain_copy_seq_len: int = 128
    pretrain_copy_start_len: int = 0
    pretrain_copy_start_steps: int = 0
    # The start stage goes on past `pretrain_copy_start_steps`, 50 steps at a time, until the
    # model copies at least this share of held-out start-length rows (its head has formed), at
    # most `pretrain_copy_start_max_steps` steps in all; 0: exactly the start steps. When the
    # head forms varies with the seed: at 32 tokens neither seed 0's nor seed 1's had formed
    # after 300 steps (copy accuracy 0.06 and 0.07); seed 0's then formed on the longer rows,
    # seed 1's never did (0.002 after the phase, held-out pass@1 0.000), though at 32 tokens it
    # forms between 400 and 500 steps (docs/BENCHMARKS.md "Session 15").
    pretrain_copy_start_until: float = 0.0
    pretrain_copy_start_max_steps: int = 0
    pretrain_copy_tokens: int = 2048
    pretrain_copy_lr: float = 1e-3  # constant after a 30-step warm-up, no weight decay
    # Which next tokens of the copy rows the loss covers: "all" (every position, a language
    # model's loss) or "copied" (only the run's second writing, the one part of a row of random
    # ids a model can predict; the LM head and softmax then run on ~1/4 of the positions).
    pretrain_copy_loss: str = "all"
    # 1: both phases' forward passes under bf16 autocast (weights and optimizer stay fp32),
    # ~1.3x per step on a CPU with AVX512-BF16/AMX (docs/BENCHMARKS.md); 0: fp32; -1 (auto):
    # bf16 where the CPU computes it natively, else fp32 (emulated bf16 was 16x slower on one).
    # The catalog keys the models by the resolved value (`resolved()`): they differ.
    pretrain_bf16: int = 0

    def __post_init__(self) -> None:
        if self.pretrain_copy_loss not in COPY_LOSSES:
            raise ValueError(f"pretrain_copy_loss must be one of {COPY_LOSSES}, "
                             f"got {self.pretrain_copy_loss!r}")  # fmt: skip
        if self.pretrain_bf16 not in (-1, 0, 1):
            raise ValueError(f"pretrain_bf16 is 0 (fp32), 1 (bf16 autocast) or -1 (auto: bf16 "
                             f"where the CPU has it natively), got {self.pretrain_bf16}")  # fmt: skip
        if self.pretrain_copy_steps:
            start, end = self.copy_start_len, self.pretrain_copy_seq_len
            if min(start, end) < 16:
                raise ValueError(f"pretrain_copy_start_len and pretrain_copy_seq_len must be "
                                 f">= 16, got {start} and {end}")  # fmt: skip
            if start > end:
                raise ValueError(f"pretrain_copy_start_len ({start}) is longer than "
                                 f"pretrain_copy_seq_len ({end})")  # fmt: skip
            if self.pretrain_copy_tokens < end:
                raise ValueError(f"pretrain_copy_tokens ({self.pretrain_copy_tokens}) must "
                                 f"hold at least one {end}-token row")  # fmt: skip
            if not 0 <= self.pretrain_copy_start_steps <= self.pretrain_copy_steps:
                raise ValueError(f"pretrain_copy_start_steps must be in 0..pretrain_copy_steps "
                                 f"({self.pretrain_copy_steps}), "
                                 f"got {self.pretrain_copy_start_steps}")  # fmt: skip
            if not 0.0 <= self.pretrain_copy_start_until <= 1.0:
                raise ValueError(f"pretrain_copy_start_until is a copy accuracy in [0, 1], "
                                 f"got {self.pretrain_copy_start_until}")  # fmt: skip
            if self.pretrain_copy_start_until and (
                self.pretrain_copy_start_max_steps < self.pretrain_copy_start_steps
            ):
                raise ValueError(f"pretrain_copy_start_max_steps ({self.pretrain_copy_start_max_steps}) "
                                 f"must be at least pretrain_copy_start_steps "
                                 f"({self.pretrain_copy_start_steps})")  # fmt: skip
        if not 0.0 <= self.pretrain_synthetic <= 1.0:
            raise ValueError(f"pretrain_synthetic is a share of the batch in [0, 1], "
                             f"got {self.pretrain_synthetic}")  # fmt: skip
        if self.pretrain_steps and 2 * self.pretrain_span_max > self.pretrain_seq_len:
            raise ValueError(f"pretrain_span_max ({self.pretrain_span_max}) must be at most half "
                             f"of pretrain_seq_len ({self.pretrain_seq_len})")  # fmt: skip
        if not 0.0 <= self.pretrain_synthetic_uniform <= 1.0:
            raise ValueError(f"pretrain_synthetic_uniform is a share of the copy rows in "
                             f"[0, 1], got {self.pretrain_synthetic_uniform}")  # fmt: skip

    @classmethod
    def from_overrides(cls, overrides: Mapping[str, Any]) -> TinySizes:
        """The default sizes with `overrides` (e.g. `pipeline.policy_sizes`) applied; an
        unknown field name is a ValueError naming it."""
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"pipeline.policy_sizes: unknown TinySizes fields {sorted(unknown)}")
        return cls(**overrides)

    def resolved(self) -> TinySizes:
        """These sizes with `pretrain_bf16` -1 (auto) made 1 or 0 for this machine's CPU."""
        if self.pretrain_bf16 != -1:
            return self
        from rl.backends.local_hf import native_cpu_bf16

        return replace(self, pretrain_bf16=int(native_cpu_bf16()))

    @property
    def copy_start_len(self) -> int:
        """The copy phase's first row length (`pretrain_copy_start_len`, 0: the last one)."""
        return self.pretrain_copy_start_len or self.pretrain_copy_seq_len


DEFAULT_SIZES = TinySizes()


def world_sample(seed: int, pages: int = DEFAULT_SIZES.sample_pages) -> Iterator[str]:
    """Page texts of the virtual world for `seed`, for tokenizer training."""
    from literesearcher.world.generate import iter_world

    for _, _, block_pages in iter_world(seed, pages):
        for page in block_pages:
            yield f"{page.title}\n{page.doc}"


def protocol_sample(seed: int, pages: int = DEFAULT_SIZES.protocol_pages) -> Iterator[str]:
    """The agent protocol's text as the policy reads and writes it, one rendered episode per
    world page: system prompt, question, search and visit calls (the oracle teacher's turns),
    tool responses in env_service's layouts, an answer, plus the protocol's notes. Each episode
    repeats the fixed system prompt, so BPE merges its words and the tool JSON into few tokens."""
    from env_service.formats import SearchItem, join_calls, search_text, visit_text
    from literesearcher.world.generate import iter_world
    from rl.protocol import (
        FORCED_ANSWER_NOTE,
        NO_ACTION_ERROR,
        initial_messages,
        render_assistant_turn,
        render_raw,
        render_tool_turn,
    )
    from rl.teacher import TeacherConfig

    if pages < 1:
        return
    teacher = TeacherConfig()
    world = [p for _, _, block in iter_world(seed, pages) for p in block]
    for i, page in enumerate(world):
        name = page.title.split(" - ")[0]
        question = f"What does {page.site.name} say about {name}?"
        hits = [world[(i + j) % len(world)] for j in range(3)]
        items = [SearchItem(h.url, h.title, h.doc.split("\n", 2)[-1][:60]) for h in hits]
        body = page.doc.split("\n", 2)[-1]
        rank = 1 + i % 3
        search_args = {"query": [question]}
        visit_args = {"url": [hits[rank - 1].url], "goal": question}
        messages = initial_messages(question, teacher.date)
        messages += [
            {"role": "assistant", "content": render_assistant_turn(
                teacher.plan, [{"name": "search", "arguments": search_args}])},
            {"role": "tool", "content": render_tool_turn([search_text(question, items)])},
            {"role": "assistant", "content": render_assistant_turn(
                teacher.pick.format(rank=rank) if i % 4 else teacher.pick_unlisted,
                [{"name": "visit", "arguments": visit_args}])},
            {"role": "tool", "content": render_tool_turn([join_calls(
                [visit_text(hits[rank - 1].url, question, body[:400], body[:120])])])},
            {"role": "assistant", "content": render_assistant_turn(teacher.conclude, answer=name)},
        ]  # fmt: skip
        note = FORCED_ANSWER_NOTE if i % 2 else NO_ACTION_ERROR
        yield render_raw(messages, add_generation_prompt=False) + note


def _train_bpe(texts: Iterable[str], vocab_size: int, special: Iterable[str]) -> Tokenizer:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _seeded(seed: int, build: Callable[[], _T]) -> _T:
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def build_tiny_policy(
    out_dir: Path,
    *,
    seed: int = 0,
    corpus_sample: Iterable[str] | None = None,
    sizes: TinySizes = DEFAULT_SIZES,
    progress: Callable[[int, float], None] | None = None,
) -> Path:
    """Write a tiny Qwen3 policy with its tokenizer to `out_dir` (pretrained when
    `sizes.pretrain_steps`; `progress(step, loss)` after each step); return `out_dir`."""
    from tokenizers import AddedToken
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen3Config,
        Qwen3ForCausalLM,
    )

    out_dir, sizes = Path(out_dir), sizes.resolved()
    texts = corpus_sample if corpus_sample is not None else world_sample(seed, sizes.sample_pages)
    texts = itertools.chain(texts, protocol_sample(seed, sizes.protocol_pages))
    raw = _train_bpe(texts, sizes.vocab_size, CHAT_SPECIAL)
    raw.add_tokens([AddedToken(t, special=False, normalized=False) for t in PROTOCOL_TAGS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=sizes.policy_max_positions,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    eos_id, pad_id = raw.token_to_id("<|im_end|>"), raw.token_to_id("<|endoftext|>")
    config = Qwen3Config(
        vocab_size=-(-len(tokenizer) // 64) * 64,  # padded like real checkpoints
        hidden_size=sizes.policy_hidden,
        intermediate_size=sizes.policy_intermediate,
        num_hidden_layers=sizes.policy_layers,
        num_attention_heads=sizes.policy_heads,
        num_key_value_heads=sizes.policy_kv_heads,
        head_dim=sizes.policy_head_dim,
        max_position_embeddings=sizes.policy_max_positions,
        tie_word_embeddings=True,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        bos_token_id=None,
    )
    model = _seeded(seed, lambda: Qwen3ForCausalLM(config).eval())
    stats: dict[str, float] = {}
    if sizes.pretrain_steps > 0 or sizes.pretrain_copy_steps > 0:
        stats = pretrain_policy(model, tokenizer, seed=seed, sizes=sizes, progress=progress)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, do_sample=True, temperature=0.7,
        top_p=0.95, max_new_tokens=256,
    )  # fmt: skip
    _fresh(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    _write_info(out_dir, "policy", seed, sizes, stats)
    return out_dir


# ---- pretraining: a base model that can copy from its context ------------------------------


def pretrain_world_seed(seed: int) -> int:
    """The world the policy is pretrained on: never the demo world of `seed` (world seeds in
    use are small integers)."""
    return 1_000_003 + seed


def token_stream(tokenizer: Any, texts: Iterable[str]) -> Any:
    """One long 1-D tensor of token ids: the texts, each followed by the end-of-text token."""
    import torch

    eot = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids: list[int] = []
    for text in texts:
        ids.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def induction_batch(
    stream: Any, batch: int, seq_len: int, spans: int, span_max: int, gen: Any
) -> tuple[Any, Any]:
    """(`batch` x `seq_len` windows of `stream`, mask of the copied positions): in each row
    `spans` random spans of 4..`span_max` tokens from the first half are written again at a
    random later position. The mask marks the second occurrence's tokens after its first (the
    ones an induction head can predict)."""
    import torch

    starts = torch.randint(0, len(stream) - seq_len, (batch,), generator=gen)
    rows = torch.stack([stream[s : s + seq_len] for s in starts.tolist()])
    copied = torch.zeros_like(rows, dtype=torch.bool)
    half = seq_len // 2
    for r in range(batch):
        for _ in range(spans):
            n = int(torch.randint(4, span_max + 1, (1,), generator=gen))
            a = int(torch.randint(0, max(1, half - n), (1,), generator=gen))
            b = int(torch.randint(a + n, seq_len - n + 1, (1,), generator=gen))
            rows[r, b : b + n] = rows[r, a : a + n].clone()
            copied[r, b + 1 : b + n] = True
    return rows, copied


def synthetic_copy_batch(
    stream: Any, batch: int, seq_len: int, gen: Any, ids: Any = None
) -> tuple[Any, Any]:
    """(`batch` x `seq_len` windows of `stream`, mask of the copied positions): in each row a
    run of 8..seq_len/2 tokens drawn at random from `stream` (its unigram distribution, so no
    text predicts them), or uniformly from `ids` (a 1-D tensor of token ids) when given, is
    written at one position and again at a later one; the mask marks the second run's tokens
    after its first (predictable only by copying)."""
    import torch

    if seq_len < 16:
        raise ValueError(f"copy rows need windows of at least 16 tokens, got {seq_len}")
    rows, copied = [], torch.zeros((batch, seq_len), dtype=torch.bool)
    for r in range(batch):
        n = int(torch.randint(8, max(9, seq_len // 2), (1,), generator=gen))  # <= seq_len / 2
        pool = stream if ids is None else ids
        run = pool[torch.randint(0, len(pool), (n,), generator=gen)]
        start = int(torch.randint(0, len(stream) - seq_len, (1,), generator=gen))
        row = stream[start : start + seq_len].clone()
        a = int(torch.randint(0, seq_len - 2 * n + 1, (1,), generator=gen))
        b = int(torch.randint(a + n, seq_len - n + 1, (1,), generator=gen))
        row[a : a + n] = run
        row[b : b + n] = run
        copied[r, b + 1 : b + n] = True
        rows.append(row)
    return torch.stack(rows), copied


def random_copy_batch(vocab: Any, batch: int, seq_len: int, gen: Any) -> tuple[Any, Any]:
    """(`batch` x `seq_len` rows of token ids drawn uniformly from `vocab` (a 1-D tensor of ids),
    mask of the copied positions): in each row a run of 8..seq_len/2 tokens is written again at
    a later position. Nothing but copying predicts any token: pure induction-head data."""
    import torch

    if seq_len < 16:
        raise ValueError(f"copy rows need windows of at least 16 tokens, got {seq_len}")
    rows = vocab[torch.randint(0, len(vocab), (batch, seq_len), generator=gen)]
    copied = torch.zeros((batch, seq_len), dtype=torch.bool)
    for r in range(batch):
        n = int(torch.randint(8, seq_len // 2 + 1, (1,), generator=gen))  # 2n <= seq_len
        b = int(torch.randint(n, seq_len - n + 1, (1,), generator=gen))
        a = int(torch.randint(0, b - n + 1, (1,), generator=gen))
        rows[r, b : b + n] = rows[r, a : a + n].clone()
        copied[r, b + 1 : b + n] = True
    return rows, copied


def copy_schedule(sizes: TinySizes) -> list[tuple[int, int]]:
    """The copy phase's curriculum as (row length, steps) pairs: `pretrain_copy_start_steps`
    at `pretrain_copy_start_len`, then the remaining steps split evenly over doubling lengths
    up to `pretrain_copy_seq_len` (the last stage takes what does not divide evenly)."""
    start, end, total = sizes.copy_start_len, sizes.pretrain_copy_seq_len, sizes.pretrain_copy_steps
    if start >= end:
        return [(end, total)] if total else []
    lengths = [start]
    while lengths[-1] < end:
        lengths.append(min(end, lengths[-1] * 2))
    rest = total - sizes.pretrain_copy_start_steps
    each = rest // (len(lengths) - 1)
    steps = [sizes.pretrain_copy_start_steps, *[each] * (len(lengths) - 1)]
    steps[-1] += rest - each * (len(lengths) - 1)
    return [(n, k) for n, k in zip(lengths, steps, strict=True) if k > 0]


def copy_accuracy(model: Any, rows: Any, copied: Any) -> float:
    """Share of the copied positions (`induction_batch`'s mask) whose token the model predicts
    (greedy) from the tokens before it."""
    import torch

    with torch.no_grad():
        logits = model(input_ids=rows).logits
    hit = logits[:, :-1].argmax(-1) == rows[:, 1:]
    mask = copied[:, 1:]
    return float(hit[mask].float().mean())


def pretrain_policy(
    model: Any,
    tokenizer: Any,
    *,
    seed: int,
    sizes: TinySizes,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, float]:
    """Causal-LM pretraining in place (see `TinySizes.pretrain_*`); returns the loss and, before
    and after, the copy accuracy on held-out windows: on repeated natural spans
    (`copy_accuracy_*`, which a language model partly predicts without copying) and on repeated
    random runs (`random_copy_accuracy_*`, which only copying predicts: an induction head)."""
    import math

    import torch

    world = pretrain_world_seed(seed)
    train, heldout = _pretrain_stream(tokenizer, world, sizes)
    gen = torch.Generator().manual_seed(world)
    probe_len = min(sizes.pretrain_seq_len, len(heldout) - 1)
    probe = induction_batch(heldout, 16, probe_len, sizes.pretrain_spans,
                            min(sizes.pretrain_span_max, probe_len // 4), gen)  # fmt: skip
    vocab = ordinary_ids(tokenizer)
    runs = _run_probes(heldout, probe_len, vocab, world)

    model.eval()
    before, (runs_before, uniform_before) = (
        copy_accuracy(model, *probe),
        _runs_accuracy(model, runs),
    )
    params = [p for p in model.parameters() if p.requires_grad]
    if sizes.pretrain_bf16:
        from rl.backends.local_hf import warn_unless_native_bf16

        warn_unless_native_bf16("cpu", "pipeline.policy_sizes.pretrain_bf16")
    copy_stats: dict[str, float] = {}
    if sizes.pretrain_copy_steps:
        own = random_copy_batch(vocab, 16, sizes.pretrain_copy_seq_len,
                                torch.Generator().manual_seed(world + 2))  # fmt: skip
        copy_stats["pretrain_copy_loss"], copy_steps, start_steps = _pretrain_copying(
            model, params, vocab, sizes, gen, progress, probe_seed=world + 3
        )
        copy_stats["pretrain_copy_start_steps_run"] = float(start_steps)
        model.eval()
        # on held-out rows like the phase's own (did a head form at all?), and on the text
        # windows' random runs (does it carry to the length and text the policy reads?)
        copy_stats["copy_phase_accuracy"] = copy_accuracy(model, *own)
        (
            copy_stats["random_copy_accuracy_after_copy_phase"],
            copy_stats["uniform_copy_accuracy_after_copy_phase"],
        ) = _runs_accuracy(model, runs)
    opt = torch.optim.AdamW(params, lr=sizes.pretrain_lr, betas=(0.9, 0.95), weight_decay=0.01)
    steps, warm = sizes.pretrain_steps, max(1, sizes.pretrain_steps // 20)

    def lr_at(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    synthetic = round(sizes.pretrain_batch * sizes.pretrain_synthetic)
    uniform = round(synthetic * sizes.pretrain_synthetic_uniform)
    done = copy_steps if sizes.pretrain_copy_steps else 0  # progress counts both phases' steps
    model.train()
    loss_value = float("nan")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(world)
        for step in range(steps):
            parts = []
            if sizes.pretrain_batch > synthetic:
                parts.append(induction_batch(train, sizes.pretrain_batch - synthetic,
                                             sizes.pretrain_seq_len, sizes.pretrain_spans,
                                             sizes.pretrain_span_max, gen)[0])  # fmt: skip
            if synthetic - uniform:
                parts.append(synthetic_copy_batch(train, synthetic - uniform,
                                                  sizes.pretrain_seq_len, gen)[0])  # fmt: skip
            if uniform:
                parts.append(synthetic_copy_batch(train, uniform, sizes.pretrain_seq_len, gen,
                                                  vocab)[0])  # fmt: skip
            loss_value = _lm_step(model, params, opt, sched, torch.cat(parts),
                                  bool(sizes.pretrain_bf16))  # fmt: skip
            if progress is not None:
                progress(done + step + 1, loss_value)
    model.eval()
    runs_after, uniform_after = _runs_accuracy(model, runs)
    return {
        "pretrain_world_seed": world,
        "pretrain_tokens": len(train),
        "pretrain_loss": loss_value,
        **copy_stats,
        "copy_accuracy_before": before,
        "copy_accuracy_after": copy_accuracy(model, *probe),
        "random_copy_accuracy_before": runs_before,
        "random_copy_accuracy_after": runs_after,
        "uniform_copy_accuracy_before": uniform_before,
        "uniform_copy_accuracy_after": uniform_after,
    }


def ordinary_ids(tokenizer: Any) -> Any:
    """Every token id but the special ones and the protocol tags, as a 1-D tensor: the copy
    phase's and the uniform runs' tokens. Not only the ids the text uses: with fewer ids,
    accidental repeats make one-token matching ambiguous and the plateau longer
    (BENCHMARKS)."""
    import torch

    special = {*tokenizer.all_special_ids, *tokenizer.convert_tokens_to_ids(list(PROTOCOL_TAGS))}
    return torch.tensor([i for i in range(len(tokenizer)) if i not in special])


def _pretrain_stream(tokenizer: Any, world: int, sizes: TinySizes) -> tuple[Any, Any]:
    """The pretraining world's token stream, split into (train, held-out tail)."""
    import random

    docs = [*world_sample(world, sizes.pretrain_pages),
            *protocol_sample(world, sizes.pretrain_protocol_pages)]  # fmt: skip
    random.Random(world).shuffle(docs)
    stream = token_stream(tokenizer, docs)
    cut = int(len(stream) * 0.95)  # the tail: held-out windows for the copy measurement
    return stream[:cut], stream[cut:]


def _run_probes(heldout: Any, length: int, vocab: Any, world: int) -> tuple[Any, Any] | None:
    """Copying proper, on held-out text windows of `length` tokens: (runs of the text's own
    tokens, runs of uniformly drawn ids) written twice. No language model predicts them
    (natural spans are largely predictable from the text itself, so `copy_accuracy` mixes the
    two); uniform runs are rare tokens, as a name or a URL slug is, with no ambiguous
    one-token matches. Own generators: the training batches are the same with or without."""
    import torch

    if length < 16:
        return None
    return (
        synthetic_copy_batch(heldout, 16, length, torch.Generator().manual_seed(world + 1)),
        synthetic_copy_batch(heldout, 16, length, torch.Generator().manual_seed(world + 3),
                             ids=vocab),
    )  # fmt: skip


def copy_probe_accuracy(
    model: Any, tokenizer: Any, *, seed: int, sizes: TinySizes
) -> dict[str, float]:
    """`random_copy_accuracy` and `uniform_copy_accuracy` of `model` (e.g. after SFT) on the
    pretraining's own held-out probes for (seed, sizes)."""
    world = pretrain_world_seed(seed)
    _, heldout = _pretrain_stream(tokenizer, world, sizes)
    runs = _run_probes(heldout, min(sizes.pretrain_seq_len, len(heldout) - 1),
                       ordinary_ids(tokenizer), world)  # fmt: skip
    model.eval()
    text_runs, uniform_runs = _runs_accuracy(model, runs)
    return {"random_copy_accuracy": text_runs, "uniform_copy_accuracy": uniform_runs}


def _runs_accuracy(model: Any, runs: tuple[Any, Any] | None) -> tuple[float, float]:
    """`copy_accuracy` on `_run_probes`' (text runs, uniform runs); NaN without probes."""
    if runs is None:
        return float("nan"), float("nan")
    return copy_accuracy(model, *runs[0]), copy_accuracy(model, *runs[1])


def _lm_step(
    model: Any,
    params: list[Any],
    opt: Any,
    sched: Any,
    rows: Any,
    bf16: bool = False,
    targets: Any = None,
) -> float:
    """One causal-LM step on `rows` (gradients clipped to norm 1; the forward pass under bf16
    autocast with `bf16`); returns the loss. `targets` (a bool mask like `rows`): the loss is
    the mean over those tokens only, and the LM head runs only at the positions predicting
    them (`token_logprobs`); None: every next token."""
    import torch

    with torch.autocast(rows.device.type, torch.bfloat16, enabled=bf16):
        if targets is None:
            loss = model(input_ids=rows, labels=rows).loss
        else:
            from rl.trainer.sequences import Batch, token_logprobs

            batch = Batch(input_ids=rows, attention_mask=torch.ones_like(rows),
                          loss_mask=targets.float())  # fmt: skip
            logp, mask = token_logprobs(model, batch)
            loss = -(logp * mask).sum() / mask.sum().clamp(min=1.0)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    sched.step()
    return float(loss.detach())


def _pretrain_copying(
    model: Any,
    params: list[Any],
    vocab: Any,
    sizes: TinySizes,
    gen: Any,
    progress: Callable[[int, float], None] | None,
    probe_seed: int = 0,
) -> tuple[float, int, int]:
    """`sizes.pretrain_copy_steps` steps on `random_copy_batch` rows in `copy_schedule`'s
    length curriculum (own AdamW, constant lr after a short warm-up, no weight decay), the
    start stage extended while `pretrain_copy_start_until` asks; returns the last loss, the
    steps run and the start stage's steps."""
    import torch

    opt = torch.optim.AdamW(params, lr=sizes.pretrain_copy_lr, betas=(0.9, 0.95), weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: min(1.0, (step + 1) / 30))
    loss_value = float("nan")
    model.train()
    done = 0
    schedule = copy_schedule(sizes)
    start_steps = schedule[0][1] if schedule else 0

    def run(seq_len: int, steps: int) -> None:
        nonlocal loss_value, done
        for _ in range(steps):
            rows, copied = random_copy_batch(vocab, sizes.pretrain_copy_tokens // seq_len,
                                             seq_len, gen)  # fmt: skip
            targets = copied if sizes.pretrain_copy_loss == "copied" else None
            loss_value = _lm_step(model, params, opt, sched, rows, bool(sizes.pretrain_bf16),
                                  targets)  # fmt: skip
            done += 1
            if progress is not None:
                progress(done, loss_value)

    for stage, (seq_len, steps) in enumerate(schedule):
        run(seq_len, steps)
        if stage == 0 and sizes.pretrain_copy_start_until > 0 and len(schedule) > 1:
            probe = random_copy_batch(vocab, 16, seq_len, torch.Generator().manual_seed(probe_seed))
            while start_steps < sizes.pretrain_copy_start_max_steps:
                model.eval()
                formed = copy_accuracy(model, *probe) >= sizes.pretrain_copy_start_until
                model.train()
                if formed:
                    break
                more = min(50, sizes.pretrain_copy_start_max_steps - start_steps)
                run(seq_len, more)
                start_steps += more
    return loss_value, done, start_steps


def build_tiny_embedder(
    out_dir: Path,
    *,
    seed: int = 0,
    corpus_sample: Iterable[str] | None = None,
    sizes: TinySizes = DEFAULT_SIZES,
) -> Path:
    """Write a tiny BGE-M3-format embedder to `out_dir`; return `out_dir`."""
    import torch
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaModel

    out_dir, sizes = Path(out_dir), sizes.resolved()
    texts = corpus_sample if corpus_sample is not None else world_sample(seed, sizes.sample_pages)
    raw = _train_bpe(texts, sizes.vocab_size, XLMR_SPECIAL)
    bos, eos = raw.token_to_id("<s>"), raw.token_to_id("</s>")
    raw.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=raw, bos_token="<s>", eos_token="</s>", cls_token="<s>",
        sep_token="</s>", pad_token="<pad>", unk_token="<unk>", mask_token="<mask>",
        model_max_length=sizes.embedder_max_positions - 2,
    )  # fmt: skip
    config = XLMRobertaConfig(
        vocab_size=-(-len(tokenizer) // 64) * 64,
        hidden_size=sizes.embedder_hidden,
        num_hidden_layers=sizes.embedder_layers,
        num_attention_heads=sizes.embedder_heads,
        intermediate_size=sizes.embedder_intermediate,
        max_position_embeddings=sizes.embedder_max_positions,
        type_vocab_size=1,
        pad_token_id=raw.token_to_id("<pad>"),
        bos_token_id=bos,
        eos_token_id=eos,
    )

    def build() -> tuple[XLMRobertaModel, torch.nn.Linear, torch.nn.Linear]:
        model = XLMRobertaModel(config).eval()
        colbert = torch.nn.Linear(sizes.embedder_hidden, sizes.embedder_hidden)
        sparse = torch.nn.Linear(sizes.embedder_hidden, 1)
        # BGE-M3 weighs tokens by relu(linear(h)): a positive bias keeps most tokens' weights
        # non-zero in an untrained model, so sparse retrieval has something to match.
        torch.nn.init.constant_(sparse.bias, 1.0)
        return model, colbert, sparse

    model, colbert, sparse = _seeded(seed, build)
    _fresh(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    torch.save(colbert.state_dict(), out_dir / "colbert_linear.pt")
    torch.save(sparse.state_dict(), out_dir / "sparse_linear.pt")
    _write_info(out_dir, "embedder", seed, sizes)
    return out_dir


def build_tiny_models(
    out_dir: Path,
    seed: int = 0,
    sizes: TinySizes = DEFAULT_SIZES,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, Path]:
    """Both tiny models under `out_dir` (`tiny-policy/`, `tiny-bge-m3/`), one shared sample;
    `progress(step, loss)` follows the policy's pretraining."""
    out_dir = Path(out_dir)
    sample = list(itertools.islice(world_sample(seed, sizes.sample_pages), sizes.sample_pages))
    return {
        "policy": build_tiny_policy(out_dir / POLICY_DIR, seed=seed, corpus_sample=sample,
                                    sizes=sizes, progress=progress),
        "embedder": build_tiny_embedder(out_dir / EMBEDDER_DIR, seed=seed, corpus_sample=sample,
                                        sizes=sizes),
    }  # fmt: skip


def catalog_params(seed: int, sizes: TinySizes) -> dict[str, Any]:
    """The `tiny_models` catalog params of (seed, sizes): every field, but
    `pretrain_copy_loss` only where it is not the default "all", so models built before the
    option keep their key."""
    params = {"seed": seed, **asdict(sizes)}
    if params["pretrain_copy_loss"] == "all":
        del params["pretrain_copy_loss"]
    return params


def tiny_models_in_catalog(
    catalog: Catalog,
    *,
    seed: int = 0,
    sizes: TinySizes = DEFAULT_SIZES,
    progress: Callable[[int, float], None] | None = None,
) -> Manifest:
    """The `tiny_models` dataset version for (seed, sizes): built once, then found (keyed by
    the sizes `resolved()` for this machine)."""
    sizes = sizes.resolved()
    params = catalog_params(seed, sizes)
    found = catalog.find("tiny_models", catalog.key("tiny_models", params=params,
                                                    code_version=CODE_VERSION))  # fmt: skip
    if found is not None:
        return found
    with catalog.create("tiny_models", params=params, code_version=CODE_VERSION) as w:
        paths = build_tiny_models(w.path, seed=seed, sizes=sizes, progress=progress)
        w.stats["models"] = [POLICY_DIR, EMBEDDER_DIR]
        info = json.loads((paths["policy"] / "tiny_model.json").read_text())
        if "pretrain" in info:
            w.stats["pretrain"] = info["pretrain"]
    assert w.manifest is not None
    return w.manifest


def cached_tiny_models(
    catalog: Catalog,
    *,
    seed: int = 0,
    sizes: TinySizes = DEFAULT_SIZES,
    progress: Callable[[int, float], None] | None = None,
) -> dict[str, Path]:
    """Paths of the cached tiny models (building them on first use)."""
    manifest = tiny_models_in_catalog(catalog, seed=seed, sizes=sizes, progress=progress)
    root = catalog.path(manifest)
    return {"policy": root / POLICY_DIR, "embedder": root / EMBEDDER_DIR}


def _fresh(out_dir: Path) -> None:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)


def _write_info(
    out_dir: Path, kind: str, seed: int, sizes: TinySizes, stats: dict[str, float] | None = None
) -> None:
    info: dict[str, Any] = {
        "kind": kind, "seed": seed, "code_version": CODE_VERSION, "sizes": asdict(sizes),
    }  # fmt: skip
    if stats:
        info["pretrain"] = stats
    (out_dir / "tiny_model.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
