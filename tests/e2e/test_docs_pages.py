"""Every service's `/docs` and `/redoc` work offline: each URL the pages load is the service's own and answers."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from infra.services import SERVICES
from tests.conftest import Stack

# What a page loads from outside its markup: the OpenAPI document Swagger UI is told to fetch.
SCRIPT_URL = re.compile(r"""\burl:\s*['"]([^'"]+)['"]""")


class Links(HTMLParser):
    """Every URL a page's elements load or point at."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href", "spec-url") and value]


def loaded_urls(html: str) -> list[str]:
    links = Links()
    links.feed(html)
    return links.urls + SCRIPT_URL.findall(html)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_load_only_the_services_own_assets(stack: Stack, service: str, page: str) -> None:
    base = stack.url(service)
    response = httpx.get(f"{base}{page}", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    urls = loaded_urls(response.text)
    assert any(u.endswith(".js") for u in urls), urls
    for url in urls:
        absolute = urljoin(f"{base}{page}", url)
        assert urlsplit(absolute).netloc == urlsplit(base).netloc, f"{page} on {service} loads {url} from elsewhere"
        assert httpx.get(absolute, timeout=10).status_code == 200, url
