"""Reading GET /metrics as Prometheus' own parser does: the families of an exposition, one sample's value, and
a scrape through an in-process test client."""

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.inprocess import AUTH


def parse(text: str) -> dict[str, list]:
    """Family name -> its samples, as Prometheus' own parser reads them (it raises on a malformed line)."""
    return {family.name: family.samples for family in text_string_to_metric_families(text)}


def value(families: dict, sample_name: str, **labels) -> float | None:
    """The value of the one sample with this name and exactly these labels (le aside), or None."""
    family = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    found = [s.value for s in families.get(family, []) if s.name == sample_name and s.labels == labels]
    assert len(found) <= 1, (sample_name, labels, found)
    return found[0] if found else None


async def scrape(client, headers=AUTH) -> dict:
    res = await client.get("/metrics", headers=headers)
    assert res.status == 200, await res.text()
    return parse(await res.text())
