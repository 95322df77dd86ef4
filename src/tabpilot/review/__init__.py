"""Human review of predictions, shaped like SageMaker Augmented AI (A2I), self-hosted.

    flows.py      flow definitions and human task UIs (the control plane's records)
    desk.py       human loops: start, stop, delete; the task queue with expiring leases,
                  TaskCount distinct reviewers, majority consensus, ties escalated
    consensus.py  the majority rule on its own (pure)
    outputs.py    A2I's output.json per loop, Model Monitor ground-truth JSON lines, the
                  append-only audit log
    reviewers.py  reviewers and their tokens (only a hash is kept)
    routing.py    an endpoint's predictions sent to review below a confidence or margin
                  threshold, plus a random audit share; off the request path (a queue)
    web.py        the review page under /review/ (server-rendered, cookie + CSRF)
    export.py     the retraining table: original rows, reviewed labels, provenance

It imports the store, the leaves and `monitor/capture.py` (how a request's rows are named,
so ground truth joins the capture); a routed endpoint's model arrives as the object the
server hands the router. `api/review.py` puts it on HTTP (SageMaker operations, the A2I
runtime's routes, the page), `cli_review.py` on the terminal. Nothing here imports `api/`
or `serving/`.
"""
