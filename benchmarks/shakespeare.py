"""Where the benchmarks find tiny Shakespeare, and what they say when it is nowhere.

Parts b, c and d train on nanoGPT's Shakespeare-char corpus (char-rnn's 1.1 MB input.txt).
It is not part of the repository, so it is looked for in this order:

    1. `--data PATH` on the command line
    2. the environment variable WORKBENCH_SHAKESPEARE
    3. ../shared/data/tinyshakespeare.txt beside the project, where that folder exists

A path that was asked for (1 or 2) and is not a file is an error; when nothing was asked
for and the fallback is absent, the parts that need the corpus are skipped, saying so.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from workbench.errors import RequestError

ENV_VAR = "WORKBENCH_SHAKESPEARE"
SOURCE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
NEEDED_BY = "bcd"  # Lightning vs bare loop, and time to quality: they train on the corpus


def fallback_path(project: Path) -> Path:
    """The copy a shared workplace keeps beside the project (absent in a plain clone)."""
    return project.parent / "shared" / "data" / "tinyshakespeare.txt"


@dataclass(frozen=True)
class CorpusChoice:
    path: Path | None  # None: not found, and nothing asked for it
    source: str  # how it was found, or where it was looked for

    def skip_message(self, parts: str) -> str:
        return (f"skipping part(s) {', '.join(parts)}: they train on tiny Shakespeare, which is not here "
                f"(looked for --data, ${ENV_VAR}, and {self.source}). Get char-rnn's input.txt "
                f"from {SOURCE_URL} and pass it as `--data PATH` or `{ENV_VAR}=PATH`.")


def find_corpus(data: Path | None, project: Path, environ=os.environ) -> CorpusChoice:
    """The corpus from `--data`, else $WORKBENCH_SHAKESPEARE, else the shared fallback.

    Raises RequestError when the path asked for (by `--data` or the variable) is not a file.
    """
    asked = [(data, "--data")] if data else []
    if environ.get(ENV_VAR):
        asked.append((Path(environ[ENV_VAR]), f"${ENV_VAR}"))
    if asked:
        path, how = asked[0]
        if not path.is_file():
            raise RequestError(f"{how} {path} is not a file; parts {', '.join(NEEDED_BY)} need tiny Shakespeare "
                               f"(char-rnn's input.txt, {SOURCE_URL})")
        return CorpusChoice(path.resolve(), how)
    fallback = fallback_path(project)
    if fallback.is_file():
        return CorpusChoice(fallback.resolve(), str(fallback))
    return CorpusChoice(None, str(fallback))
