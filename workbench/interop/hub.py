"""`hf:<repo-id>[@revision]`: a Hugging Face hub model, from the local cache first and the hub when online.

The cache is tried before any network request, so a model downloaded once works offline. A
model that is neither cached nor reachable fails in seconds (the metadata request times out
after `ETAG_TIMEOUT_S`), naming the repository and the cache folder that was searched.
"""

from __future__ import annotations

import os
from pathlib import Path

from workbench.errors import RequestError, ResourceError
from workbench.modules.choices import HUB_PREFIX as PREFIX

ETAG_TIMEOUT_S = 5.0
# What a causal LM needs from a repository (weights in either format, its config, its tokenizer).
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "*.tiktoken", "*.py"]


class HubError(ResourceError):
    """A hub model is not in the local cache and the hub cannot be reached (or does not have it)."""


def is_hub_name(source: str | os.PathLike) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def split_hub_name(source: str) -> tuple[str, str | None]:
    """"hf:org/name@rev" -> ("org/name", "rev"); a malformed name is a RequestError saying the form."""
    name = source[len(PREFIX):].strip()
    repo_id, _, revision = name.partition("@")
    parts = repo_id.split("/")
    if not repo_id or len(parts) > 2 or not all(parts):
        raise RequestError(f"{source!r} is not a hub model name; the form is hf:<org>/<name>[@revision], "
                           "e.g. hf:HuggingFaceTB/SmolLM2-135M")
    return repo_id, revision or None


def cache_dir() -> Path:
    """Where huggingface_hub keeps downloaded models ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub)."""
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE)


def hub_folder(source: str) -> Path:
    """The local snapshot folder of `hf:<repo-id>`: the cached one, else downloaded (when the hub is reachable)."""
    repo_id, revision = split_hub_name(source)
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    cache = cache_dir()
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision, local_files_only=True,
                                                      allow_patterns=ALLOW_PATTERNS))
    except LocalEntryNotFoundError:
        pass
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise HubError(f"{source}: {repo_id} is not in the Hugging Face cache ({cache}) and HF_HUB_OFFLINE is "
                       "set, so the hub was not asked; download it on a machine with access "
                       f"(huggingface-cli download {repo_id}) into that cache", path=cache)
    try:
        return Path(huggingface_hub.snapshot_download(repo_id, revision=revision, etag_timeout=ETAG_TIMEOUT_S,
                                                      allow_patterns=ALLOW_PATTERNS))
    except RepositoryNotFoundError as error:
        raise HubError(f"{source}: the hub has no repository {repo_id} (or it is private and no token is set); "
                       f"nothing for it in the cache {cache} either", path=cache) from error
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as error:
        reason = str(error).strip().splitlines()[0]
        raise HubError(f"{source}: {repo_id} is not in the Hugging Face cache ({cache}) and the hub cannot be "
                       f"reached ({reason}); download it where the hub is reachable "
                       f"(huggingface-cli download {repo_id}) or give a local folder", path=cache) from error
