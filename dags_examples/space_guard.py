"""Every few minutes, put back any Space that costs money while nobody is responsible for it.

The GPU training window (``gpu_training_window.py``) takes a lease on its Space before asking for
the GPU and gives it back at the end. When the window's run cannot end it (its worker or the
scheduler died, Airflow was down when the window ended, the Hub refused every attempt), the lease
expires, and this guard moves the Space back to ``cpu-basic`` at its next run (or pauses it when
the Hub refuses that). It does the same for a Space on paid hardware with no lease at all, among
the Spaces listed here and every Space that ever had a lease.

Each run logs, and returns, every Space it looked at, what it found, what it did and what the
Space's hardware costs per hour. Start with ``SPACES_GUARD_DRY_RUN=true`` to see what it would do,
or the ``report`` policy to only be told.

Every constant can be overridden from the environment (``SPACES_GUARD_*``). Parsing this file
looks up no connection and sends no request.
"""

from __future__ import annotations

import os
from datetime import timedelta

from airflow_provider_spaces.guard import make_space_guard_dag

# Spaces to watch besides those that ever had a lease, separated by commas.
SPACES = [
    s.strip() for s in os.environ.get("SPACES_GUARD_SPACES", "demo/gpu-trainer").split(",") if s.strip()
]
# downgrade (back to cpu-basic, pausing when refused), pause, or report.
POLICY = os.environ.get("SPACES_GUARD_POLICY", "downgrade")
DRY_RUN = os.environ.get("SPACES_GUARD_DRY_RUN", "false").lower() in ("1", "true", "yes")
INTERVAL = timedelta(seconds=float(os.environ.get("SPACES_GUARD_INTERVAL_SECONDS", str(5 * 60))))
CONN_ID = os.environ.get("SPACES_GUARD_CONN_ID", "huggingface_default")

dag = make_space_guard_dag(
    "space_guard",
    spaces=SPACES,
    policy=POLICY,
    dry_run=DRY_RUN,
    schedule=INTERVAL,
    spaces_conn_id=CONN_ID,
)
