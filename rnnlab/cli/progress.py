"""What ``rnnlab train`` shows while it runs: one progress bar over the whole run, and log
lines that never tear it.

On a terminal (stderr a tty, no ``--no-progress``) one tqdm bar counts the tokens of all
the epochs left, so its time and rate give the run's ETA: the rate is the average since
the run started (``smoothing=0``), validation passes and checkpoint saves included, so
the ETA is the time the rest of the run will take, not the next epoch's. The bar names
the epoch and shows the live loss and perplexity. Lines printed meanwhile (the epoch
lines, samples, thread choices) go through :meth:`RunProgress.log`, which clears the bar,
prints the line on stdout, and redraws the bar under it. Off a terminal there is no bar,
only the lines.
"""

from __future__ import annotations

import math
import sys
import time


def printable(text: str) -> str:
    """A generated sample as one line: newlines, tabs and other control characters shown
    as escapes (``\\n``), everything printable (Chinese included) as it is."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class RunProgress:
    """The bar and the log of one run of ``rnnlab train`` (see the module)."""

    def __init__(self, enabled: bool, first_epoch: int, num_epochs: int, tokens_per_batch: int):
        self.enabled = enabled and sys.stderr.isatty()
        self.first_epoch, self.num_epochs = first_epoch, num_epochs
        self.tokens_per_batch = tokens_per_batch
        self.start = time.time()  # tqdm's clock; the first batch's time counts
        self.bar = None
        self.epoch = None  # the epoch the bar's description names

    def batch(self, epoch: int, i: int, n: int, loss: float) -> None:
        """After batch ``i`` of ``n`` of epoch ``epoch`` (0-based)."""
        if not self.enabled:
            return
        if self.bar is None:
            import shutil

            from tqdm import tqdm

            # the terminal's size, or 100 x 24 where a terminal reports none (a pty without
            # a size, in CI or `script`): tqdm would draw nothing at all there
            size = shutil.get_terminal_size((100, 24))
            total = (self.num_epochs - self.first_epoch) * n * self.tokens_per_batch
            self.bar = tqdm(total=total, leave=False, unit="tok", unit_scale=True,
                            smoothing=0, ncols=size.columns or 100, nrows=size.lines or 24)
            self.bar.start_t = self.bar.last_print_t = self.start
        bar = self.bar
        # tqdm redraws at most every mininterval seconds (0.1 s: every few batches of d2l's
        # model), so the epoch and the loss are formatted for a redraw, not for every batch
        if epoch != self.epoch or bar._time() - bar.last_print_t >= bar.mininterval:
            self.epoch = epoch
            bar.set_description_str(f"epoch {epoch + 1}/{self.num_epochs}", refresh=False)
            bar.set_postfix({"loss": f"{loss:.3f}", "ppl": f"{math.exp(min(loss, 700)):.2f}"},
                            refresh=False)
        bar.update(self.tokens_per_batch)  # the rate shown is tokens/s

    def log(self, line: str) -> None:
        """A line on stdout, above the bar."""
        if self.bar is not None:
            self.bar.write(line, file=sys.stdout)
            sys.stdout.flush()
        else:
            print(line, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            try:
                self.bar.close()
            except OSError:  # the terminal is gone (SIGHUP)
                pass
            self.bar = None
