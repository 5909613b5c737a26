"""A fake OpenAI-compatible LLM for the demo, tests and benchmarks.

* ``create_app(config)`` / ``serve(config, host, port)``: the FastAPI app and a
  blocking runner (``python -m roadmap_dev.fake_llm`` wraps it);
* ``fake_llm_server(**config)``: a context manager running it in a subprocess on a
  free loopback port (``.base_url``, ``.requests()``, ``.reset()``, ``.configure()``);
* ``FakeConfig`` / ``FaultRule`` / ``FaultKind``: latency, fault rate and mix,
  scripted faults, seed.
"""

from roadmap_dev.fake_llm.config import DEFAULT_FAULT_MIX, FakeConfig, FaultKind, FaultRule
from roadmap_dev.fake_llm.server import create_app, serve
from roadmap_dev.fake_llm.testing import FakeLLM, fake_llm_server, start_fake_llm

__all__ = [
    "DEFAULT_FAULT_MIX",
    "FakeConfig",
    "FakeLLM",
    "FaultKind",
    "FaultRule",
    "create_app",
    "fake_llm_server",
    "serve",
    "start_fake_llm",
]
