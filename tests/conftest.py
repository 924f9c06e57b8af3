"""Suite-wide guards.

Nothing in the suite may ever reach a real Hub: the environment variables that the Hugging Face
tools and our own defaults read are pointed at a closed port on 127.0.0.1 before any test module
is imported, and no token is inherited from the developer's machine.
"""

from __future__ import annotations

import os

# Port 9 (discard) on loopback: a client that falls back on its default endpoint fails at once
# instead of talking to the real Hub.
os.environ["HF_ENDPOINT"] = "http://127.0.0.1:9"
for _name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_TOKEN_PATH"):
    os.environ.pop(_name, None)
# A token file in the developer's own Hugging Face home must not leak into the suite either.
os.environ["HF_HOME"] = os.path.join(os.path.dirname(__file__), ".no-hf-home")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
