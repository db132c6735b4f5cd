"""The document's ``components/schemas``: each model's JSON schema, collected the first time it is referred to."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from service.http.openapi.spec import REF


class Schemas:
    """The schemas referred to so far, by name (a model's nested models land here too, via ``$defs``)."""

    def __init__(self) -> None:
        self.components: dict[str, dict[str, Any]] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, str]:
        """A ``$ref`` to ``model``'s schema, which is added to the components on first use."""
        if model.__name__ not in self.components:
            schema = model.model_json_schema(ref_template=REF)
            self.components.update(schema.pop("$defs", {}))
            self.components[model.__name__] = schema
        return {"$ref": REF.format(model=model.__name__)}
