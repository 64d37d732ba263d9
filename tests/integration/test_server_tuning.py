"""Fits in the server run in a queue of their own (issue 28, item 2): a fit holds no
collection lock while it computes, concurrent requests join one fit, a fit whose clients left
is cancelled, refits never turn an acknowledged upsert into an error, and a drop during a fit
leaves nothing behind. A gate inside the real fit (before its pseudo-query lists) holds it
still while the test acts."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from omniretrieve.errors import TuningCancelledError
from omniretrieve.index.documents import iter_jsonl_documents
from omniretrieve.index.tuning import self_tune
from omniretrieve.server.config import ServerConfig
from tests.builders.servers import running_app

pytestmark = pytest.mark.slow


class Gate:
    """Wraps the fit's ``pseudo_lists``: while closed, a fit that reaches it waits."""

    def __init__(self, real: Callable[..., Any]) -> None:
        self.real = real
        self.closed = False
        self.entered = threading.Event()
        self.opened = threading.Event()
        self.calls = 0

    def close(self) -> None:
        self.closed, self.calls = True, 0
        self.entered.clear()
        self.opened.clear()

    def open(self) -> None:
        self.closed = False
        self.opened.set()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.closed:
            self.calls += 1
            self.entered.set()
            assert self.opened.wait(120), "the test never opened the gate"
        return self.real(*args, **kwargs)


@pytest.fixture(scope="module")
def documents(datasets_dir: Path) -> list[dict[str, Any]]:
    corpus = iter_jsonl_documents(datasets_dir / "scifact" / "corpus.jsonl")
    return [
        {"id": str(r["_id"]), "text": f"{r.get('title', '')}. {r['text']}"[:700]}
        for r in itertools.islice(corpus, 150)
    ]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, server_pool) -> Iterator[tuple]:
    root = Path(tmp_path_factory.mktemp("tuning-collections"))
    config = ServerConfig(collections_root=root)
    gate = Gate(self_tune.pseudo_lists)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(self_tune, "pseudo_lists", gate)
        with running_app(config, server_pool(config)) as (base, app):
            with httpx.Client(base_url=base, timeout=60) as client:
                yield client, app, gate, root
        gate.open()


def wait_for(condition: Callable[[], Any], seconds: float = 180) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def fitted(client: httpx.Client, name: str) -> Any:
    return client.get(f"/v1/collections/{name}").json()["tuning"]


def make(client: httpx.Client, name: str, docs: list[dict[str, Any]]) -> None:
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    response = client.put(f"/v1/collections/{name}/documents", json={"documents": docs})
    assert response.status_code == 200, response.text


def test_a_fit_holds_no_lock_and_concurrent_tunes_join_it(served, documents) -> None:
    client, _, gate, _ = served
    make(client, "a", documents)  # 150 documents: the upsert makes a refit due
    wait_for(lambda: fitted(client, "a"))  # fitted in the background, after the upsert
    make(client, "b", documents[:3])
    gate.close()
    with ThreadPoolExecutor(6) as pool:
        tunes = [pool.submit(client.post, "/v1/collections/a/tune") for _ in range(6)]
        assert gate.entered.wait(60)
        # the fit is under way: its collection and the others answer meanwhile
        quick = httpx.Client(base_url=str(client.base_url), timeout=20)
        assert quick.post("/v1/collections/a/search", json={"query": "cells"}).status_code == 200
        assert quick.post("/v1/collections/b/search", json={"query": "cells"}).status_code == 200
        added = quick.put(
            "/v1/collections/a/documents",
            json={"documents": [{"id": "new", "text": "A new document about T cells."}]},
        )
        assert added.status_code == 200, added.text
        assert quick.get("/v1/collections/a").json()["documents"] == len(documents) + 1
        gate.open()
        answers = [t.result() for t in tunes]
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    assert len({str(a.json()["tuning"]) for a in answers}) == 1  # one fit, six clients
    assert gate.calls == 1


def test_a_fit_whose_client_left_is_cancelled(served) -> None:
    client, app, gate, root = served
    before = (root / "a" / "tuning.json").read_bytes()
    gate.close()
    with pytest.raises(httpx.ReadTimeout):
        client.post("/v1/collections/a/tune", timeout=1.5)
    assert gate.entered.wait(60)
    job = app.state.collections.tuning._jobs["a"]
    wait_for(job.stop.is_set, 30)  # the server saw its client leave
    gate.open()
    assert isinstance(job.future.exception(120), TuningCancelledError)
    assert (root / "a" / "tuning.json").read_bytes() == before  # nothing saved


def test_writes_racing_a_refit_are_acknowledged_and_a_drop_cancels_it(served, documents) -> None:
    client, app, gate, root = served
    gate.close()
    make(client, "c", documents)  # answers while its refit waits at the gate
    assert gate.entered.wait(60)
    for doc in documents[:40]:
        response = client.delete(f"/v1/collections/c/documents/{doc['id']}")
        assert response.status_code == 200, response.text
    more = [{"id": f"more-{i}", "text": documents[i]["text"]} for i in range(10)]
    response = client.put("/v1/collections/c/documents", json={"documents": more})
    assert response.status_code == 200, response.text
    gate.open()
    wait_for(lambda: fitted(client, "c"))  # the fit on the snapshot finished and was saved
    assert client.get("/v1/collections/c").json()["documents"] == len(documents) - 30
    # a drop while a fit is under way: the fit is cancelled, nothing is left behind
    gate.close()
    with ThreadPoolExecutor(2) as pool:
        tune = pool.submit(client.post, "/v1/collections/c/tune")
        assert gate.entered.wait(60)
        drop = pool.submit(client.delete, "/v1/collections/c")
        time.sleep(0.5)
        gate.open()
        assert drop.result().status_code == 200, drop.result().text
        assert tune.result().status_code in (404, 503), tune.result().text
    assert not (root / "c").exists()
    assert not list(root.glob("**/*.tmp"))
    assert "c" not in client.get("/v1/collections").json()["collections"]
