"""Checking a real answer against the published contract (/openapi.json): its status documented for the
route, its JSON body valid against that schema."""

import jsonschema


async def conforms(doc: dict, res, method: str, pattern: str) -> dict:
    """The answer's status is documented for the route and its JSON body validates against that schema."""
    responses = doc["paths"][pattern][method.lower()]["responses"]
    assert str(res.status) in responses, (method, pattern, res.status, await res.text())
    body = await res.json()
    schema = responses[str(res.status)]["content"]["application/json"]["schema"]
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(body)
    return body
