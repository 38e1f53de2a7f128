"""What one load made of each entity of a JSON catalog file, so that the next load of the file
reuses it for the entities whose text did not change.

An edit changes a few entities of a file that may hold a hundred thousand; reading the others
again (parsing and validating each) is most of a reload. :class:`Recall` follows a file's
entities in the order of the previous load: when the text at the current position has the
length and the digest (BLAKE2b, 128 bits) of the entity expected there, the entity is the same
text, so what validating it gave last time is what it would give now, and its text is not
parsed. Any other text is parsed and validated as usual; if it is an entity of the previous
load that moved, the entities after it are expected in their new place.

Only the results of User and Group entities that validated without a warning, and of the
kinds the catalog skips, are kept: a Location reads other files, and a warning must be given
again at each load.
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

DIGEST_SIZE = 16  # bytes of BLAKE2b: no two texts of a catalog share one
# How many times an entity of the previous load may be expected (its text hashed) in one
# load: twice follows a block of new entities inserted before it; more would let entities
# that move back (a few bytes each, repeated) make a load hash a large one over and over.
MAX_TRIES = 2


class Reusable(NamedTuple):
    """What validating an entity's text gave, whatever file or place it is in: the fields of a
    User or Group entity (``kind`` empty: a kind the catalog skips). ``refs`` are a user's
    ``memberOf`` or a group's ``members`` as written, before linking."""

    kind: str
    name: str = ""
    namespace: str = ""
    annotations: Mapping[str, str] = MappingProxyType({})
    display_name: str = ""
    email: str | None = None
    picture: str | None = None
    refs: tuple[str, ...] = ()
    group_type: str = ""
    hierarchy: tuple[str | None, tuple[str, ...]] = (None, ())


SKIPPED = Reusable("")


class FileMemo:
    """One load's results for the entities of one file, in order: each entity's text length
    and digest, and its :class:`Reusable` (``None``: to be read again)."""

    __slots__ = ("digests", "lengths", "results")

    def __init__(self) -> None:
        self.digests = bytearray()
        self.lengths = array("q")
        self.results: list[Reusable | None] = []

    def digest(self, position: int) -> bytes:
        return bytes(self.digests[position * DIGEST_SIZE : (position + 1) * DIGEST_SIZE])

    def has_digest(self, position: int, digest: bytes) -> bool:
        start = position * DIGEST_SIZE
        return self.digests.find(digest, start, start + DIGEST_SIZE) == start


class Recall:
    """Reads one file's entities with the previous load's :class:`FileMemo` of it (if any)
    and writes this load's.

    For each entity of the file, in order: :meth:`reuse` (before parsing: the previous result,
    if the text is the expected entity's) or :meth:`parsed` (after parsing), then :meth:`keep`
    with what this load made of it. Each previous entity is expected at most ``MAX_TRIES``
    times, so what a load hashes stays within a few times the sizes of the two texts.
    """

    def __init__(self, previous: FileMemo | None) -> None:
        self.previous = previous
        self.memo = FileMemo()
        self.reused = 0  # entities not parsed again
        self._expected = 0  # the previous load's entity expected next
        self._tries = bytearray(0 if previous is None else len(previous.results))
        self._positions: dict[bytes, int] | None = None  # previous digests: where each was

    def reuse(self, text: str, start: int) -> tuple[Reusable, int] | None:
        """The previous result for the entity at ``start``, and where its text ends, when the
        text there is that of the entity expected next."""
        previous, expected = self.previous, self._expected
        if previous is None or expected >= len(previous.results):
            return None
        result = previous.results[expected]
        if result is None or self._tries[expected] == MAX_TRIES:
            return None
        self._tries[expected] += 1
        end = start + previous.lengths[expected]
        digest = _digest(text, start, end)
        if not previous.has_digest(expected, digest):
            return None
        self._expected = expected + 1
        self._add(digest, end - start)
        self.reused += 1
        return result, end

    def parsed(self, text: str, start: int, end: int) -> Reusable | None:
        """Note the entity parsed from ``text[start:end]``: if it is one of the previous load
        that moved, its previous result (it need not be validated again), and the entities
        after it are expected after it; if it is new, it most likely replaced the one
        expected (an entity edited in place)."""
        digest = _digest(text, start, end)
        self._add(digest, end - start)
        if self.previous is None:
            return None
        if self._positions is None:
            count = len(self.previous.results)
            self._positions = {self.previous.digest(i): i for i in range(count)}
        position = self._positions.get(digest)
        if position is None:
            self._expected += 1
            return None
        self._expected = position + 1
        return self.previous.results[position]

    def keep(self, result: Reusable | None) -> None:
        """What this load made of the entity last reused or parsed (of a file read whole,
        without the place of each entity, nothing is kept)."""
        if len(self.memo.results) < len(self.memo.lengths):
            self.memo.results.append(result)

    def _add(self, digest: bytes, length: int) -> None:
        self.memo.digests += digest
        self.memo.lengths.append(length)


def _digest(text: str, start: int, end: int) -> bytes:
    return hashlib.blake2b(text[start:end].encode(), digest_size=DIGEST_SIZE).digest()
