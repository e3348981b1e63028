"""The listener's window counters: in process memory with the local-memory cache, in the
cache (shared by every listener process) with Redis."""

from __future__ import annotations

import time
import uuid

from django.core.cache import caches

from capture.smtp import screening
from capture.smtp.screening import _hit_window, local_counters


def test_with_the_local_memory_cache_counts_stay_in_this_process():
    key = f"t:{uuid.uuid4().hex}"
    local_counters.clear()
    results = [_hit_window(key, 3, 3600) for _ in range(5)]
    assert [over for over, _ in results] == [False, False, False, True, True]
    assert [n for _, n in results] == [1, 2, 3, 4, 5]
    assert any(k.startswith(key) for k in local_counters._counts)
    assert not any(str(k).startswith(key) for k in caches["default"]._cache)


def test_with_redis_the_counts_live_in_the_cache_for_every_listener(settings, redis_url):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_url,
            "KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        }
    }
    local_counters.clear()
    key = f"t:{uuid.uuid4().hex}"
    try:
        assert not screening._cache_is_local()
        results = [_hit_window(key, 2, 3600) for _ in range(3)]
        assert [over for over, _ in results] == [False, False, True]
        assert not local_counters._counts
        # Another listener process sees the same count: it is the cache's.
        bucket = int(time.time() // 3600)
        stored = [caches["default"].get(f"{key}:{b}") or 0 for b in (bucket - 1, bucket)]
        assert sum(stored) == 3  # (split over two buckets if the hour turned meanwhile)
    finally:
        caches["default"].clear()
