"""Pure parts of the shared lean HTTP client: which URLs it serves, and the Host header it sends."""

from __future__ import annotations

from knative_lambda.platform.upstream import host_header, http_target


def test_http_target_parses_plain_http_urls_only() -> None:
    assert http_target("http://127.0.0.1:8080/a/b?c=d#frag") == (("127.0.0.1", 8080), "/a/b?c=d", "127.0.0.1:8080")
    assert http_target("http://Example.com") == (("example.com", 80), "/", "Example.com")
    assert http_target("http://[::1]:9/x") == (("::1", 9), "/x", "[::1]:9")
    assert http_target("http://h:0/")[0] == ("h", 0)  # not the default port: connecting fails
    for url in ("https://example.com/", "http://user:pw@example.com/", "http://exämple.com/", "http://h:99999/"):
        assert http_target(url) is None, url
    assert host_header(("example.com", 80)) == "example.com"
    assert host_header(("::1", 8080)) == "[::1]:8080"
    assert host_header(8080) == "localhost"
