"""Settings of a benchmark's throwaway installation: the project's own, isolated.

With Redis, django-q2's queue is named by AGENTOS_BENCH_QUEUE, so a
benchmark's qcluster never takes (or leaves) tasks of another installation
using the same Redis.
"""

import os

from agentos_site.settings import *  # noqa: F403
from agentos_site.settings import INSTALLED_APPS, Q_CLUSTER, REDIS_URL

# seed_scale (bench/seeding.py): benchmark tooling, never in the product.
INSTALLED_APPS = [*INSTALLED_APPS, "bench"]

if REDIS_URL and os.environ.get("AGENTOS_BENCH_QUEUE"):
    Q_CLUSTER["name"] = os.environ["AGENTOS_BENCH_QUEUE"]
