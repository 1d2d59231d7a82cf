"""A researcher's day with one notebook in JupyterLab: Run All, look at the views, save, reload, look again.

Each step asserts what a person would notice: a traceback, a view that is missing or does not follow its
control, a kernel shown idle while training runs, a save that leaves `git status` dirty, a reload that
leaves views broken.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from browser_lab import ANYWIDGET_FAILURE, ROOT, LabPage, artifacts_folder, busy_while, git


def plot_count(cell) -> int:
    return cell.locator(".js-plotly-plot .main-svg").count()


def wait_for_plots(lab: LabPage, minimum: int, timeout_ms: int = 60_000) -> None:
    """Wait for `minimum` drawn plotly figures. A saved static figure comes back from disk as plotly's PNG
    snapshot, drawn again when the pointer enters it: enter each, as a reader's pointer would."""
    lab.page.wait_for_function(
        "() => { document.querySelectorAll('.jp-RenderedPlotly img.plot-img')"
        ".forEach(img => img.dispatchEvent(new MouseEvent('mouseenter')));"
        f" return document.querySelectorAll('.js-plotly-plot .main-svg').length >= {minimum}; }}",
        timeout=timeout_ms, polling=1000)


def tree_changes(worktree: Path) -> str:
    """What a commit would take from the tree: content changes through the git filters, and untracked files.

    Not `git status`: after a save that adds outputs the file's size differs from the one the index recorded,
    and git reports a size change as a modification without reading the file through the clean filter
    (nbstripout issue #65), though `git diff` and `git add` find nothing to record."""
    changed = git("diff", "--name-only", "HEAD", cwd=worktree)
    untracked = git("ls-files", "--others", "--exclude-standard", cwd=worktree)
    return changed + untracked


def assert_clean_tree(worktree: Path, when: str) -> None:
    changes = tree_changes(worktree)
    diff = "\n".join(git("diff", "HEAD", cwd=worktree).splitlines()[:40])
    assert changes == "", (f"after {when} the tree differs from HEAD (outputs or volatile metadata reached git; "
                           f"`make install` sets up the nbstripout filter):\n{changes}{diff}")


def researchers_day(lab: LabPage, worktree: Path, *, views: Callable[[LabPage, str, list], None],
                    training_markers: tuple[str, ...] = (), timeout_s: float = 600) -> list[Path]:
    """Open, Run All, check `views`, save (git clean), reload (views back, still answering), save again.

    `views(lab, phase, saved)` asserts the notebook's views; phase is "run" or "reload". Returns the screenshots.
    """
    saved: list[Path] = []
    problems: list[str] = []

    def step(what: str, check: Callable[[], None]) -> None:
        """Every step runs and reports, so one run names every problem of the day, not only the first."""
        try:
            check()
        except AssertionError as error:
            problems.append(f"{what}: {error}")
        except Exception as error:  # a view that never appeared (a Playwright timeout) is a finding too
            problems.append(f"{what}: {type(error).__name__}: {str(error).splitlines()[0]}")
        else:
            return
        print(f"{lab.path}: {problems[-1]}", flush=True)

    name = Path(lab.path).stem
    try:
        lab.open()
        kernel = lab.kernel_id()
        lab.record_status()
        lab.run_all(timeout_s=timeout_s)
        record = lab.status_record()
        tracebacks = lab.tracebacks()
        assert not tracebacks, tracebacks[:2]
        step("after Run All", lambda: views(lab, "run", saved))

        def busy(marker: str) -> None:
            samples, not_busy = busy_while(record, marker)
            assert samples > 0, f"no status sample was taken while the cell with {marker!r} ran"
            assert not not_busy, (
                f"JupyterLab showed the kernel {sorted(set(not_busy))} at {len(not_busy)} of {samples} samples "
                f"while the training cell ({marker!r}) ran; status messages seen: {summarise(record['messages'])}")

        for marker in training_markers:
            step("kernel status while training", lambda marker=marker: busy(marker))

        lab.save()
        step("save", lambda: assert_clean_tree(worktree, f"saving {lab.path} after Run All"))

        failures_before = lab.anywidget_failures()
        lab.reload()
        assert lab.kernel_id() == kernel, "the reloaded tab is on another kernel"
        step("after a reload", lambda: views(lab, "reload", saved))

        def no_failures() -> None:
            failures = lab.anywidget_failures() - failures_before
            assert failures == 0, f"the page logged {failures} '{ANYWIDGET_FAILURE}.' after the reload"

        step("console after a reload", no_failures)
        lab.save()
        step("save after a reload", lambda: assert_clean_tree(worktree, f"saving {lab.path} after the reload"))
    finally:
        path = artifacts_folder() / f"{name}-page.png"
        lab.page.screenshot(path=str(path), full_page=True)
        saved.append(path)
        print("screenshots:", *map(str, saved), sep="\n  ")
    assert not problems, "\n".join(problems)
    return saved


def summarise(messages: list) -> str:
    counts: dict[tuple, int] = {}
    for state, parent in messages:
        counts[(state, parent)] = counts.get((state, parent), 0) + 1
    return ", ".join(f"{state} for {parent or '?'} x{n}" for (state, parent), n in sorted(counts.items()))


__all__ = ["ROOT", "assert_clean_tree", "plot_count", "researchers_day", "wait_for_plots"]
