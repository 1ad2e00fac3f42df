"""Where a voice call speaks the engine's lines the moment they are decided.

A text session reads the turn's `Say` events when the turn is over. A voice call cannot wait:
the caller should hear a transition line while the next node's tool call runs, and a model's
reply while the model is still writing it. So a turn may be given a `Speech` and the engine
hands it every line as it says it, and a conversation node's model reply piece by piece. The
events stay the record of the turn either way.
"""

from __future__ import annotations

from typing import Protocol


class Speech(Protocol):
    def entered(self, node_id: str) -> None:
        """The call moved to `node_id` (before that node's lines), for a live view of the call."""
        ...

    def say(self, text: str) -> None:
        """A whole line, to speak after what was handed over before."""
        ...

    def say_partial(self, text: str) -> None:
        """The next piece of a line the model is still writing."""
        ...

    def end_partial(self) -> None:
        """The line given piece by piece is complete."""
        ...

    def close(self) -> None:
        """The turn is over: nothing more will be said (the engine's caller says so)."""
        ...
