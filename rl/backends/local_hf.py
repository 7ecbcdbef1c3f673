"""A local transformers causal LM as an LLM backend (the tiny policy on CPU, or one GPU).

Concurrent requests with the same sampling settings are micro-batched (left-padded, one
batched decode: `rl.backends.decoding.decode`, or transformers' `generate` with
`decoder="generate"`) in a worker thread, so k rollouts of a task cost little more than one on
a small model; the event loop stays free for the tool calls of other episodes. With
`workers` > 1 (CPU) the batches are decoded in that many worker processes instead
(`rl.backends.workers`). Returns token ids and per-token logprobs of the sampled tokens (raw
logits, before temperature).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path
from typing import Any

from rl.backends.base import BackendError, Generation, SamplingParams
from rl.backends.decoding import Decoded, PrefixStore, decode, register_gqa_decode_attention
from rl.backends.workers import GenerationWorkers
from rl.protocol import Message
from rl.tokens import tokenizer_counter


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere PyTorch emulates
    it, and bf16 autocast is slower than fp32 (on an AVX2-only AMD EPYC, 16x per pretraining
    step; docs/BENCHMARKS.md "Session 12")."""
    import torch

    probes = [getattr(torch.cpu, name, None)
              for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]  # fmt: skip
    return any(probe is not None and probe() for probe in probes)


def warn_unless_native_bf16(device: str, what: str) -> None:
    """Warn when `what` asks for bf16 autocast on a CPU without AVX512-BF16 (nor AMX), where
    bf16 is emulated and slower than fp32."""
    import torch

    if torch.device(device).type != "cpu" or native_cpu_bf16():
        return
    logging.getLogger(__name__).warning(
        "%s: bf16 autocast on a CPU without AVX512-BF16/AMX is emulated and likely slower "
        "than fp32; turn it off there", what)  # fmt: skip


# "compact": `rl.backends.decoding.decode` (finished rows leave the batch; grouped-query
# attention without copying the cache); "generate": transformers' `generate`.
DECODERS = ("compact", "generate")


def _batch_key(p: SamplingParams) -> tuple[float, float, tuple[str, ...], bool]:
    return (p.temperature, p.top_p, p.stop, p.logprobs)


class LocalHFBackend:
    def __init__(
        self,
        model_dir: str | Path,
        *,
        device: str = "auto",
        dtype: str = "auto",
        max_batch: int = 8,
        batch_window_s: float = 0.002,
        max_pad_fraction: float = 0.15,
        decoder: str = "compact",
        prefix_cache_tokens: int = 65536,
        workers: int = 1,
        worker_threads: int = 1,
    ) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(model_dir)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} is not a HF model directory (no config.json)")
        self.name = path.name
        self.device = resolve_device(device)
        if workers > 1 and torch.device(self.device).type != "cpu":
            logging.getLogger(__name__).warning(
                "generation worker processes are for CPU: %d workers ignored on %s",
                workers, self.device)  # fmt: skip
            workers = 1
        self.tokenizer: Any = AutoTokenizer.from_pretrained(path)
        if decoder not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {decoder!r}")
        self.decoder = decoder
        torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
        extra: dict[str, Any] = {}
        if decoder == "compact":
            extra["attn_implementation"] = register_gqa_decode_attention()
        model: Any = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **extra)
        self.model: Any = model.to(self.device).eval()
        eos = {self.tokenizer.eos_token_id}
        for tok in ("<|im_end|>", "<|endoftext|>"):
            tid = self.tokenizer.convert_tokens_to_ids(tok)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id:
                eos.add(tid)
        self.eos_ids = sorted(i for i in eos if i is not None)
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.eos_ids[0]
        self._lock = threading.Lock()
        self.max_batch = max_batch
        self.batch_window_s = batch_window_s
        self.max_pad_fraction = max_pad_fraction
        # (prompt, params, waiter, lane): a lane is a worker process (0 without them).
        self._queue: list[tuple[str, SamplingParams, asyncio.Future[Generation], int]] = []
        self._drains: dict[int, asyncio.Task[None]] = {}
        self._count = tokenizer_counter(self.tokenizer)
        # The keys and values of recent rows, so an episode's next turn prefills only what it
        # adds (the compact decoder; `prefix_cache_tokens` 0: off). Cleared whenever the
        # parameters change: the GRPO trainer updates this model in place between steps.
        self.prefix_store: PrefixStore | None = None
        if decoder == "compact" and prefix_cache_tokens > 0:
            self.prefix_store = PrefixStore(max_tokens=prefix_cache_tokens)
        self._weights_seen: tuple[int, ...] | None = None
        # `workers` > 1: `chat`/`complete` generate in that many processes of
        # `worker_threads` torch threads each (`rl.backends.workers`), with this model's
        # weights; `generate_batch_sync` still runs here.
        self.workers: GenerationWorkers | None = None
        if workers > 1:
            options = {"device": self.device, "dtype": dtype, "max_batch": max_batch,
                       "decoder": decoder, "prefix_cache_tokens": prefix_cache_tokens}  # fmt: skip
            self.workers = GenerationWorkers(path, workers, threads=worker_threads, options=options)
        self._shared_seen: tuple[int, ...] | None = None
        self._shared: tuple[int, dict[str, Any]] = (0, {})

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def render_chat(self, messages: list[Message]) -> str:
        return str(
            self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        )

    async def chat(self, messages: list[Message], params: SamplingParams) -> Generation:
        return await self.complete(self.render_chat(messages), params)

    async def complete(self, prompt: str, params: SamplingParams) -> Generation:
        future: asyncio.Future[Generation] = asyncio.get_running_loop().create_future()
        lane = 0 if self.workers is None else self.workers.route(prompt)
        self._queue.append((prompt, params, future, lane))
        drain = self._drains.get(lane)
        if drain is None or drain.done():
            self._drains[lane] = asyncio.create_task(self._drain(lane))
        return await future

    async def _drain(self, lane: int) -> None:
        while any(r[3] == lane for r in self._queue):
            await asyncio.sleep(self.batch_window_s)  # let concurrent requests join the batch
            first_prompt, first, _, _ = next(r for r in self._queue if r[3] == lane)
            key = _batch_key(first)
            size = len(first_prompt)
            # Left padding costs full attention over the longest prompt for every row: batch
            # only prompts of about the same length in characters (the same turn of siblings).
            batch = [
                r
                for r in self._queue
                if r[3] == lane
                and _batch_key(r[1]) == key
                and abs(len(r[0]) - size) <= self.max_pad_fraction * size + 128
            ][: self.max_batch]
            for r in batch:
                self._queue.remove(r)
            prompts, params = [r[0] for r in batch], [r[1] for r in batch]
            try:
                if self.workers is None:
                    gens = await asyncio.to_thread(self.generate_batch_sync, prompts, params)
                else:
                    gens = await asyncio.to_thread(
                        self.workers.generate, lane, prompts, params, self._shared_weights()
                    )
            except Exception as exc:  # every waiter gets the failure, the worker goes on
                err = exc if isinstance(exc, BackendError) else BackendError(
                    f"local model {self.name}: {type(exc).__name__}: {exc}")  # fmt: skip
                for _, _, fut, _ in batch:
                    if not fut.done():
                        fut.set_exception(err)
                continue
            finally:
                if self.workers is not None:
                    self.workers.pending[lane] -= len(batch)
            for (_, _, fut, _), gen in zip(batch, gens, strict=True):
                if self.workers is not None:
                    gen.extra["worker"] = lane
                if not fut.done():
                    fut.set_result(gen)

    def _shared_weights(self) -> tuple[int, dict[str, Any]]:
        """(version, a copy of this model's state dict) for the worker processes: a new
        version whenever a parameter changed since the last call (an optimizer step, or a
        live model assigned to `self.model`)."""
        seen = self._weights_key()
        if seen != self._shared_seen:
            state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
            self._shared = (self._shared[0] + 1, state)
            self._shared_seen = seen
        return self._shared

    def generate_sync(self, prompt: str, params: SamplingParams) -> Generation:
        return self.generate_batch_sync([prompt], [params])[0]

    def generate_batch_sync(
        self, prompts: list[str], params_list: list[SamplingParams]
    ) -> list[Generation]:
        """One batched decode for prompts sharing temperature, top_p, stops and logprobs, each
        row cut to its own max_tokens. A seed applies to a batch of one only."""
        import torch

        params = params_list[0]
        self.tokenizer.padding_side = "left"
        enc = self.tokenizer(
            prompts, add_special_tokens=False, return_tensors="pt", padding=True
        ).to(self.device)
        t0 = time.perf_counter()
        with self._lock, torch.inference_mode():
            if params.seed is not None and len(prompts) == 1:
                torch.manual_seed(params.seed)
            if self.decoder == "compact":
                self._forget_stale_prefixes()
                rows = self._decode_compact(enc, params_list)
            else:
                rows = self._decode_generate(enc, params_list)
        latency = time.perf_counter() - t0
        gens = []
        for row, (decoded, p) in enumerate(zip(rows, params_list, strict=True)):
            new, finish, logprobs = decoded.token_ids, decoded.finish_reason, decoded.logprobs
            if len(new) > p.max_tokens:
                new, finish = new[: p.max_tokens], "length"
                logprobs = None if logprobs is None else logprobs[: p.max_tokens]
            text = str(self.tokenizer.decode(new, skip_special_tokens=False))
            cuts = [at for at in (text.find(s) for s in p.stop) if at >= 0]
            if cuts:  # OpenAI semantics: the earliest stop string ends the text and is dropped
                text, finish = text[: min(cuts)], "stop"
            gens.append(
                Generation(
                    text=text,
                    finish_reason=finish,
                    prompt_tokens=int(enc["attention_mask"][row].sum()),
                    completion_tokens=len(new),
                    token_ids=new,
                    logprobs=logprobs,
                    latency_s=latency,
                    extra={"batch_size": len(prompts)},
                )
            )
        return gens

    def _weights_key(self) -> tuple[int, ...]:
        """Changes whenever the weights may have: in-place updates (an optimizer's included)
        move a tensor's version counter, and a model assigned to `self.model` is another
        object."""
        return (id(self.model), *(p._version for p in self.model.parameters()))

    def _forget_stale_prefixes(self) -> None:
        """Clear the prefix store if the weights may have changed since the last decode."""
        if self.prefix_store is None:
            return
        seen = self._weights_key()
        if seen != self._weights_seen:
            self.prefix_store.clear()
            self._weights_seen = seen

    def _decode_compact(self, enc: Any, params_list: list[SamplingParams]) -> list[Decoded]:
        params = params_list[0]
        stops = [s for s in params.stop if s]
        stopped = None
        if stops:
            # A stop string of n characters lies within the last n + 2 tokens' text.
            window = max(len(s) for s in stops) + 2

            def stopped(ids: list[int]) -> bool:
                tail = self.tokenizer.decode(ids[-window:], skip_special_tokens=False)
                return any(s in tail for s in stops)

        return decode(
            self.model,
            enc["input_ids"],
            enc["attention_mask"],
            [p.max_tokens for p in params_list],
            eos_ids=[*self.eos_ids, self.pad_id],
            temperature=params.temperature,
            top_p=params.top_p,
            stopped=stopped,
            logprobs=params.logprobs,
            store=self.prefix_store,
        )

    def _decode_generate(self, enc: Any, params_list: list[SamplingParams]) -> list[Decoded]:
        """transformers' `generate`: every row stays in the batch until the last one ends."""
        import torch

        params = params_list[0]
        do_sample = params.temperature > 0
        kwargs: dict[str, Any] = {
            "max_new_tokens": max(p.max_tokens for p in params_list),
            "do_sample": do_sample,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
            "return_dict_in_generate": True,
            "output_logits": params.logprobs,
        }
        if do_sample:
            kwargs.update(temperature=params.temperature, top_p=params.top_p, top_k=0)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        out = self.model.generate(**enc, **kwargs)
        width = enc["input_ids"].shape[1]
        steps = None
        if params.logprobs and out.logits:
            steps = torch.stack(out.logits, dim=1).float().log_softmax(-1)  # (B, T, vocab)
        ends = set(self.eos_ids) | {self.pad_id}
        rows = []
        for row in range(len(params_list)):
            new = out.sequences[row, width:].tolist()
            finish = "length"
            for i, tok in enumerate(new):
                if tok in ends:  # the end-of-turn token is the template's, not the text's
                    new, finish = new[:i], "stop"
                    break
            logprobs = None
            if steps is not None:
                chosen = torch.tensor(new, dtype=torch.long, device=steps.device).unsqueeze(-1)
                logprobs = steps[row, : len(new)].gather(-1, chosen).squeeze(-1).tolist()
            rows.append(Decoded(new, logprobs, finish))
        return rows

    def close(self) -> None:
        """Stop the worker processes, if any (the backend answers nothing after that)."""
        if self.workers is not None:
            self.workers.close()

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)
