"""`ganforensics serve`: a web service and a page over the detectors (issue 15).

- `settings`: the one defaults table (sizes, pixel cap, queue, batching, threads, address).
- `models`: which detectors a PATH names (detector folder, CNNDetection `.pth`, study/demo run
  folder) and loading them once, with each run's real-image spectrum as a reference.
- `batching`: a bounded queue feeding inference worker threads that group concurrent
  requests into micro-batches.
- `engine`: scoring one micro-batch with every detector (plus the optional explanations).
- `problems`: RFC 9457 `application/problem+json` errors.
- `app`: the FastAPI application (API under `/v1`, health, metrics, the page at `/`).

FastAPI, uvicorn and prometheus-client are the `serve` extra; only this package imports them.
"""
