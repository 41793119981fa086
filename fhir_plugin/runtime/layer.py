"""What a process serves of the content loaded at run time: the start-up registry with the loaded
files on top, each file as read (its resources compiled), and the index of every resource served.

Apart from store.py, which reads and writes the load directory (and pgstore.py, the rows of a
database), because a layer is the same whichever store its files come from: it only changes by the
files it is given, in memory, and is never changed in place (a change makes a new layer, which a
process swaps in at once).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..content.canonicals import CanonicalIndex
from ..content.errors import InvalidContent
from ..terminology.errors import TerminologyError
from ..terminology.registry import Compiled, Registry

STARTUP = "the content the server started with"


Stat = tuple[int, int, int, int]  # inode, size, mtime and ctime (ns): a file replaced or changed in place differs


@dataclass(frozen=True)
class Loaded:
    """One resource of a loaded file: the file (its name in the directory), where in it, and the
    resource compiled."""

    file: str
    origin: str
    entry: Compiled

    @property
    def resource(self) -> dict[str, Any]:
        return self.entry.resource

    @property
    def label(self) -> str:
        """`CodeSystem <url> version <version>`, as the admin endpoint's answers name it."""
        resource = self.resource
        version = resource.get("version")
        return f"{resource['resourceType']} {resource.get('url') or resource.get('id') or resource.get('name')}" + (
            f" version {version}" if version else "")


@dataclass(frozen=True)
class LoadedFile:
    """A file of the directory as a process read it: every resource in it, in order, compiled;
    `digest` names its compiled form on disk, `stat` tells whether the file changed since."""

    name: str
    digest: str
    stat: Stat | None
    resources: tuple[Loaded, ...]


@dataclass(frozen=True)
class Layer:
    """What a process serves: the start-up content (`base`) with the loaded files on top (`registry`),
    the files as read, and the index of every resource in either (where each is: the one duplicate
    check). Never changed: a change makes a new layer, which a process swaps in at once."""

    base: Registry
    registry: Registry
    files: Mapping[str, LoadedFile]  # by name, in name order
    index: CanonicalIndex
    served: int = 0  # entries `registry` holds above `base`

    @classmethod
    def of(cls, base: Registry, indexed: bool = True) -> Layer:
        """`base` alone; `indexed`: with the index of what it serves (for a process that loads)."""
        return cls(base, base, {}, CanonicalIndex.of_registry(base, STARTUP) if indexed else CanonicalIndex())

    def file(self, name: str) -> LoadedFile | None:
        return self.files.get(name)

    def also_in(self, item: Loaded) -> list[str]:
        """The other files (or the start-up content) that hold the very same resource as `item`: it
        is served once, and unloading one of them leaves it served."""
        return list(dict.fromkeys(file_of(origin) for origin in self.index.origins_of(item.resource)
                                  if origin != item.origin))

    def state(self, file: LoadedFile) -> str:
        """`loaded`; `duplicate` when every resource of it is held elsewhere too (unloading it changes
        nothing served); `empty` when it holds no CodeSystem, ValueSet, ConceptMap or NamingSystem."""
        if not file.resources:
            return "empty"
        return "duplicate" if all(self.also_in(item) for item in file.resources) else "loaded"

    def changed(self, changes: Mapping[str, LoadedFile | None],
                strict: str | None = None) -> tuple[Layer, dict[str, TerminologyError]]:
        """This layer with the files of `changes` in their new versions (None: gone), and the
        problems of those that could not be taken in: a file whose resources conflict with another
        file's, or with the start-up content, is left out, and its version before, if any, stays
        served. A conflict of the file `strict` (the one being loaded) is raised instead.

        Costs the changed files' resources in index and registry operations, plus copying the index
        and the registry's tables (C speed): nothing is validated or compiled here."""
        if not changes:
            return self, {}
        index = self.index.copy()
        files = dict(self.files)
        before = {name: files.pop(name) for name in changes if name in files}
        removed = [gone for file in before.values() for item in file.resources
                   if (gone := index.remove(item.resource, item.origin)) is not None]
        added: list[Compiled] = []
        problems: dict[str, TerminologyError] = {}
        for name in sorted(name for name, file in changes.items() if file is not None):
            candidates = [changes[name], before.get(name)]
            for candidate in candidates:
                if candidate is None:
                    continue
                try:
                    for item in candidate.resources:
                        index.check(item.resource, item.origin)
                except InvalidContent as error:
                    if name == strict:
                        raise
                    problems.setdefault(name, error)  # the new version's problem is the one to tell
                    continue
                added.extend(item.entry for item in candidate.resources if index.add(item.resource, item.origin))
                files[name] = candidate
                break
        served = self.served + len(added) - len(removed)
        if served == 0:
            registry = self.base
        elif self.registry is self.base:
            registry = Registry(compiled=added, parent=self.base)
        else:
            registry = self.registry.changed(added, removed) if added or removed else self.registry
        return Layer(self.base, registry, dict(sorted(files.items())), index, served), problems


@dataclass(frozen=True)
class Change:
    """What a load or an unload did: the new layer, the file's name, whether it is a new file, the
    marker it left (so that the process that made the change need not catch up again), and the
    problems of other files found meanwhile (changed by hand)."""

    layer: Layer
    name: str
    created: bool
    marker: tuple[int, int, int] | None
    problems: Mapping[str, TerminologyError] = dataclasses.field(default_factory=dict)


def file_of(origin: str) -> str:
    """The file an origin names (`demo.json entry[2]` -> `demo.json`; loaded names have no spaces)."""
    return origin if origin == STARTUP else origin.split(" ", 1)[0]
