"""Thin route modules, one per concept; each route calls one service function."""

from __future__ import annotations

from starlette.convertors import Convertor, register_url_convertor


class ModelNameConvertor(Convertor[str]):
    """``{name:model}``: a model name, with at most one ``team/`` segment, inside a path.

    Names whose last segment is a route word (``versions``, ``aliases``…) are refused by
    ``names.validate_model_name``, so ``/models/team/versions`` is never ambiguous.
    """

    regex = r"[A-Za-z0-9_][A-Za-z0-9._-]*(?:/[A-Za-z0-9_][A-Za-z0-9._-]*)?"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model", ModelNameConvertor())
