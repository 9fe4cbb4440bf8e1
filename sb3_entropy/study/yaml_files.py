"""Reading the project's YAML files (experiments, search spaces, tuned hyperparameters, ``--hp-file``): PyYAML's
safe loader, except that a key written twice in one mapping is an error naming the file and both lines (PyYAML
keeps the last one without a word, so ``a2c: {}`` then ``a2c: {learning_rate: 0.1}`` would train one A2C)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

__all__ = ["UniqueKeyLoader", "load_yaml", "read_yaml"]


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a mapping with a key written twice (merge keys, ``<<``, are left to it)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first: dict[Any, yaml.Mark] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                earlier = first.get(key)
            except TypeError:  # an unhashable key: PyYAML's own error follows
                break
            if earlier is not None:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found the key {key!r} a second time (first on line {earlier.line + 1}); write each key once",
                    key_node.start_mark,
                )
            first[key] = key_node.start_mark
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """A YAML document's contents, keys written twice refused (a ``yaml.YAMLError`` with the line)."""
    return yaml.load(text, Loader=UniqueKeyLoader)


def read_yaml(path: Path, where: str) -> Any:
    """A YAML file's contents; a syntax error or a key written twice is a ValueError naming ``where`` (which names
    the file), with the line and column."""
    try:
        with open(path, encoding="utf-8") as stream:  # the marks then name the file
            return yaml.load(stream, Loader=UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise ValueError(f"{where}: not valid YAML: {' '.join(str(error).split())}") from None
