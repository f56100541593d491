"""Loopback stand-ins for Pipedrive and LeadBoxer, used by tests, the demo and benchmarks.

Each server is a real HTTP server (``http.server.ThreadingHTTPServer``) that can run as a process
(``python -m sandbox.pipedrive --port P``) or in a background thread inside a test process.
"""
