"""Build the region seed (``dim_region``) from the divisions PyPI's ``cpca`` ships.

Every county-level division becomes a row with its city and province. The channel's
target counties are a deterministic share of the counties in the provinces the
channel works in; a company replaces the seed with its own list.

    python -m qudao_demo.regions   # rewrites dbt_project/seeds/ref_regions.csv
"""

from __future__ import annotations

import csv
import hashlib
import io
from importlib import resources
from pathlib import Path

from qudao.config import PROJECT_ROOT

SEED_PATH = PROJECT_ROOT / "dbt_project" / "seeds" / "ref_regions.csv"
SEED_COLUMNS = (
    "region_code",
    "county_name",
    "city_code",
    "city_name",
    "province_code",
    "province_name",
    "is_target",
    "longitude",
    "latitude",
)
#: provinces where the channel department has signed territories
CHANNEL_PROVINCES = ("440000", "320000", "330000", "370000", "410000", "510000", "420000", "350000")
TARGET_SHARE = 0.7  # of the counties of a channel province


def _divisions() -> dict[str, tuple[str, str, str]]:
    text = resources.files("cpca").joinpath("resources/adcodes.csv").read_text(encoding="utf-8")
    out: dict[str, tuple[str, str, str]] = {}
    for row in csv.DictReader(io.StringIO(text)):
        out[row["adcode"][:6]] = (row["name"], row["longitude"], row["latitude"])
    return out


def _is_target(code: str) -> bool:
    if code[:2] + "0000" not in CHANNEL_PROVINCES:
        return False
    bucket = int(hashlib.sha1(code.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return bucket < TARGET_SHARE


def region_rows() -> list[dict[str, str]]:
    """One row per county-level division, ordered by code."""
    divisions = _divisions()
    rows = []
    for code in sorted(divisions):
        if code.endswith("00") or divisions[code][0] == "市辖区":  # province, city, placeholder
            continue
        province_code = code[:2] + "0000"
        city_code = code[:4] + "00"
        province_name = divisions.get(province_code, ("",))[0]
        # municipalities (北京, 上海, …) have no city level in the list: the city is the province
        city_name = divisions[city_code][0] if city_code in divisions else province_name
        if city_name in ("市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"):
            city_name = province_name
        name, lon, lat = divisions[code]
        rows.append(
            {
                "region_code": code,
                "county_name": name,
                "city_code": city_code,
                "city_name": city_name,
                "province_code": province_code,
                "province_name": province_name,
                "is_target": "true" if _is_target(code) else "false",
                "longitude": lon,
                "latitude": lat,
            }
        )
    return rows


def write_seed(path: Path = SEED_PATH) -> int:
    """Write the seed CSV; returns the number of counties."""
    rows = region_rows()
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=SEED_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return len(rows)


def read_seed(path: Path = SEED_PATH) -> list[dict[str, str]]:
    """The seed as rows (what the generator places partners in)."""
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


if __name__ == "__main__":
    print(f"wrote {write_seed()} counties to {SEED_PATH}")
