"""A real Celery worker process delivers the outbox through Redis: queue messages lost in
Redis are made good by the sweeper, and events committed while the worker runs go out after
their commit, in order, signed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import transaction

from config.celery import app
from core.dispatch import send
from governance.audit import record_event
from governance.models import WebhookDelivery
from governance.outbound.tasks import SWEEP_TASK
from tests.governance.webhooks.conftest import subscribe, verify_signature

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("allow_private"),
]
REPO = Path(__file__).resolve().parents[3]
VENV_BIN = Path(sys.executable).parent
TIMEOUT = 90  # a worker starting on a busy two-core machine


def database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@pytest.fixture
def broker(redis_url, settings):
    """This process queues to Redis instead of running tasks in-process."""
    import redis

    redis.Redis.from_url(redis_url).flushdb()
    saved = app.conf.broker_url
    settings.CELERY_BROKER_URL = redis_url
    app.conf.broker_url = redis_url
    app.conf.task_always_eager = False
    forget_broker_pools()
    yield redis_url
    app.conf.broker_url = saved
    app.conf.task_always_eager = True
    forget_broker_pools()


def forget_broker_pools() -> None:
    """Celery keeps the producer pool of the first broker URL it sent to: a test that sent
    earlier (another URL) would have these tasks go there. Start from fresh pools."""
    app._pool = None
    app.amqp._producer_pool = None


def start_worker(redis_url: str, log: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CELERY_", "DATABASE_URL"))}
    env.update(
        {
            "DATABASE_URL": database_url(),
            "CELERY_BROKER_URL": redis_url,
            "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
            "MAILWARDEN_ENCRYPTION_KEY": str(django_settings.MAILWARDEN_ENCRYPTION_KEY),
            "MAILWARDEN_WEBHOOKS_ALLOW_PRIVATE": "true",
            "MAILWARDEN_ENV_FILE": str(log.parent / "absent.env"),
        }
    )
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(VENV_BIN / "celery"), "-A", "config", "worker", "-c", "1", "-P", "prefork",
             "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + TIMEOUT
    while not app.control.ping(timeout=0.5):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_worker(proc)
            pytest.fail(f"the worker did not start:\n{log.read_text()}")
    return proc


def stop_worker(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_delivered(count: int, log: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    delivered = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.DELIVERED)
    while delivered.count() < count:
        if time.monotonic() > deadline:
            pytest.fail(
                f"{delivered.count()} of {count} delivered:\n"
                f"{list(WebhookDelivery.objects.values_list('status', 'last_error'))}\n"
                f"{log.read_text()}"
            )
        time.sleep(0.2)


def contact_created(n: int) -> None:
    with transaction.atomic():
        record_event("crm.contact.created", object_type="crm.contact", object_id=n)


def test_a_real_worker_delivers_what_redis_lost_and_what_comes_after(broker, receiver, tmp_path):
    import redis

    _, secret = subscribe(receiver.url(), "contact.created")
    for n in (1, 2, 3):
        contact_created(n)  # committed; a delivery task queued in Redis after each commit
    assert redis.Redis.from_url(broker).llen("celery") == 3
    redis.Redis.from_url(broker).flushdb()  # Redis loses its queue
    log = tmp_path / "worker.log"
    proc = start_worker(broker, log)
    try:
        send(SWEEP_TASK)  # what beat sends every 10 s
        wait_delivered(3, log)
        for n in (4, 5):
            contact_created(n)
        wait_delivered(5, log)
    finally:
        stop_worker(proc)
    assert [r.payload["data"]["id"] for r in receiver.received] == [1, 2, 3, 4, 5]
    assert all(verify_signature(secret, r.headers, r.body) for r in receiver.received)
    assert "governance.deliver_webhooks" in log.read_text()
