"""A requests transport adapter that answers from a table, for unit tests of the HTTP client without sockets."""
from __future__ import annotations

import io

import requests
import urllib3
from requests.adapters import BaseAdapter


class Transport(BaseAdapter):
    """Answers each request from ``routes`` (url -> (status, headers, body)); records every request."""

    def __init__(self, routes):
        super().__init__()
        self.routes = routes
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        status, headers, body = self.routes.get(request.url, (404, {}, b"{}"))
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), headers=headers, status=status, preload_content=False,
                                   decode_content=False)
        resp = requests.Response()
        resp.status_code, resp.raw, resp.url, resp.request = status, raw, request.url, request
        resp.headers = requests.structures.CaseInsensitiveDict(headers)
        return resp

    def close(self):
        pass
