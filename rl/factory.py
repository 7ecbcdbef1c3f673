"""Build the configured policy backend and token counter from settings (one place, so the
rollout task, evaluation and the CLI agree on which model answers)."""

from __future__ import annotations

from pathlib import Path

from conf import Settings
from rl.backends.base import LLMBackend
from rl.backends.local_hf import LocalHFBackend
from rl.backends.openai_http import OpenAIHTTPBackend
from rl.tokens import TokenCounter, load_token_counter


def policy_backend(settings: Settings, policy: str | None = None) -> tuple[LLMBackend, str]:
    """(backend, policy id). `policy`: a local HF model directory; None: the `policy` endpoint
    when configured, else `llm.local_policy_path`."""
    if policy is None:
        endpoint = settings.llm.endpoints.get("policy")
        if endpoint is not None and endpoint.base_urls:
            return OpenAIHTTPBackend.from_endpoint(endpoint), f"endpoint:{endpoint.model}"
        if settings.llm.local_policy_path is None:
            raise ValueError("no policy: set llm.endpoints.policy or llm.local_policy_path")
        policy = str(settings.path(settings.llm.local_policy_path))
    path = Path(policy)
    if not path.is_dir():
        raise FileNotFoundError(f"policy model directory {path} does not exist")
    backend = LocalHFBackend(
        path,
        device=settings.llm.device,
        max_batch=settings.llm.local_max_batch,
        prefix_cache_tokens=settings.llm.local_prefix_cache_tokens,
        workers=settings.llm.local_workers,
    )
    # The id keys rollouts and evaluations: portable, so a copied data root keeps its caches.
    return backend, f"local:{settings.portable(path.resolve())}"


def token_counter(settings: Settings, backend: LLMBackend | None = None) -> TokenCounter:
    """The policy tokenizer's count: rl.tokenizer_path, else the local policy's tokenizer."""
    if isinstance(backend, LocalHFBackend) and settings.rl.tokenizer_path is None:
        return backend.count_tokens
    path = settings.rl.tokenizer_path or settings.llm.local_policy_path
    resolved = settings.path(path) if path else None
    return load_token_counter(resolved if resolved and resolved.exists() else None)
