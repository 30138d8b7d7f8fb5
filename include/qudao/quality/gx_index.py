"""A Great Expectations site index builder that builds no index and removes no page.

GX's default index builder deletes every validation page its (ephemeral) store does not
hold, i.e. every earlier night's; :mod:`qudao.quality.data_docs` writes the index
instead. Named by ``module_name`` in the site config, so GX is imported only with GX.
"""

from __future__ import annotations

from typing import Any

from great_expectations.render.renderer.site_builder import DefaultSiteIndexBuilder


class KeepEveryPageIndexBuilder(DefaultSiteIndexBuilder):
    """Leaves the pages of earlier runs in place; the index is qudao's."""

    def build(self, skip_and_clean_missing: bool = True, build_index: bool = True) -> tuple[Any, Any]:
        return None, None
