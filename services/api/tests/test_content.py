"""A concept's content and versions, regeneration, learner progress and quiz attempts."""

from __future__ import annotations

import uuid

import httpx
from redis.asyncio import Redis

from roadmap_api.testing import Account, Seeder, problem, queued_tasks
from roadmap_core.contracts import CONTENT_QUEUE
from roadmap_core.domain import ContentKind, ItemStatus, JobStatus


def concept_url(job_id: uuid.UUID, concept_id: uuid.UUID, suffix: str = "") -> str:
    return f"/api/v1/roadmaps/{job_id}/concepts/{concept_id}{suffix}"


async def test_concept_content_latest_and_older_versions(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=2, with_results=True)
    concept = job.concept_ids[0]
    await seed.add_results(concept, instructions="More examples")

    latest = await client.get(concept_url(job.id, concept), headers=alice.headers)
    assert latest.status_code == 200, latest.text
    body = latest.json()
    assert body["key"] == "concept-0"
    assert body["roadmap_id"] == str(job.id)
    tutorial = body["content"]["tutorial"]
    assert tutorial["status"] == "succeeded"
    assert tutorial["version"] == 2
    assert tutorial["versions"] == [1, 2]
    assert tutorial["result"]["version"] == 2
    assert tutorial["result"]["instructions"] == "More examples"
    assert tutorial["result"]["body"]["markdown"].startswith("# Version 2")
    assert body["content"]["quiz"]["result"]["body"]["questions"][0]["id"] == "q1"
    assert body["content"]["resources"]["result"]["body"]["resources"]

    older = await client.get(
        concept_url(job.id, concept), params={"version": 1}, headers=alice.headers
    )
    assert older.json()["content"]["tutorial"]["result"]["body"]["markdown"].startswith(
        "# Version 1"
    )
    problem(
        await client.get(
            concept_url(job.id, concept), params={"version": 9}, headers=alice.headers
        ),
        404,
    )
    problem(
        await client.get(
            concept_url(job.id, concept), params={"version": 0}, headers=alice.headers
        ),
        422,
    )


async def test_concept_without_content_yet(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    body = (await client.get(concept_url(job.id, job.concept_ids[0]), headers=alice.headers)).json()
    assert body["content"]["tutorial"] == {
        "kind": "tutorial", "status": "queued", "version": 0, "versions": [], "error": None, "result": None
    }  # fmt: skip


async def test_concept_of_another_roadmap_is_404(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    one = await seed.job(alice, status=JobStatus.completed, concepts=1)
    other = await seed.job(alice, status=JobStatus.completed, concepts=1)
    problem(await client.get(concept_url(one.id, other.concept_ids[0]), headers=alice.headers), 404)
    problem(await client.get(concept_url(one.id, uuid.uuid4()), headers=alice.headers), 404)


async def test_regenerate(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=2, with_results=True)
    concept = job.concept_ids[1]
    response = await client.post(
        concept_url(job.id, concept, "/regenerate"),
        json={"kinds": ["tutorial", "quiz", "tutorial"], "instructions": "Use an STM32 board"},
        headers=alice.headers,
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["kinds"] == ["tutorial", "quiz"]
    assert body["status"] == "generating"
    assert (await seed.get_job(job.id)).status is JobStatus.generating
    items = {(i.concept_id, ContentKind(i.kind)): i for i in await seed.items(job.id)}
    assert items[(concept, ContentKind.tutorial)].status is ItemStatus.queued
    assert items[(concept, ContentKind.tutorial)].instructions == "Use an STM32 board"
    assert items[(concept, ContentKind.resources)].status is ItemStatus.succeeded
    assert items[(job.concept_ids[0], ContentKind.tutorial)].status is ItemStatus.succeeded
    tasks = await queued_tasks(redis, CONTENT_QUEUE)
    assert [(t.name, t.payload) for t in tasks] == [
        ("content.regenerate_concept", {"job_id": str(job.id), "concept_id": str(concept)})
    ]
    # The old version stays readable while the new one is generated.
    current = (await client.get(concept_url(job.id, concept), headers=alice.headers)).json()
    assert current["content"]["tutorial"]["status"] == "queued"
    assert current["content"]["tutorial"]["result"]["version"] == 1


async def test_regenerate_rejections(
    client: httpx.AsyncClient, alice: Account, redis: Redis, seed: Seeder
) -> None:
    queued = await seed.job(
        alice, status=JobStatus.awaiting_review, concepts=1, item_status=ItemStatus.pending
    )
    url = concept_url(queued.id, queued.concept_ids[0], "/regenerate")
    problem(await client.post(url, json={"kinds": ["tutorial"]}, headers=alice.headers), 409)
    problem(await client.post(url, json={"kinds": []}, headers=alice.headers), 422)
    problem(await client.post(url, json={"kinds": ["video"]}, headers=alice.headers), 422)
    problem(
        await client.post(
            url, json={"kinds": ["quiz"], "instructions": "x" * 2001}, headers=alice.headers
        ),
        422,
    )
    problem(
        await client.post(url, json={"kinds": ["quiz"], "version": 3}, headers=alice.headers), 422
    )
    problem(
        await client.post(
            concept_url(queued.id, uuid.uuid4(), "/regenerate"),
            json={"kinds": ["quiz"]},
            headers=alice.headers,
        ),
        404,
    )
    assert await queued_tasks(redis, CONTENT_QUEUE) == []


async def test_progress(client: httpx.AsyncClient, alice: Account, seed: Seeder) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=2, with_results=True)
    url = concept_url(job.id, job.concept_ids[0], "/progress")
    done = await client.put(url, json={"completed": True}, headers=alice.headers)
    assert done.status_code == 200, done.text
    first = done.json()
    assert first["completed"] is True
    assert first["completed_at"] is not None
    again = (await client.put(url, json={"completed": True}, headers=alice.headers)).json()
    assert again["completed_at"] == first["completed_at"]

    detail = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    concepts = detail["framework"]["stages"][0]["modules"][0]["concepts"]
    assert [c["completed"] for c in concepts] == [True, False]
    concept = (
        await client.get(concept_url(job.id, job.concept_ids[0]), headers=alice.headers)
    ).json()
    assert concept["completed"] is True

    undone = (await client.put(url, json={"completed": False}, headers=alice.headers)).json()
    assert undone["completed"] is False
    assert undone["completed_at"] is None
    problem(await client.put(url, json={"completed": "yes please"}, headers=alice.headers), 422)
    problem(await client.put(url, json={}, headers=alice.headers), 422)


async def test_quiz_attempt(client: httpx.AsyncClient, alice: Account, seed: Seeder) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=1, with_results=True)
    url = concept_url(job.id, job.concept_ids[0], "/quiz-attempts")
    response = await client.post(
        url, json={"answers": {"q1": [0], "q2": [1]}}, headers=alice.headers
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["score"] == 0.5
    assert (body["correct"], body["total"], body["quiz_version"]) == (1, 2, 1)
    assert [(r["question_id"], r["correct"], r["expected"]) for r in body["results"]] == [
        ("q1", True, [0]),
        ("q2", False, [0, 1]),
    ]
    perfect = await client.post(
        url, json={"answers": {"q1": [0], "q2": [1, 0]}}, headers=alice.headers
    )
    assert perfect.json()["score"] == 1.0
    empty = await client.post(url, json={"answers": {}}, headers=alice.headers)
    assert empty.json()["score"] == 0.0
    problem(await client.post(url, json={"answers": {"q1": [9]}}, headers=alice.headers), 422)
    problem(await client.post(url, json={"answers": {"q1": "0"}}, headers=alice.headers), 422)


async def test_quiz_attempt_without_quiz(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    url = concept_url(job.id, job.concept_ids[0], "/quiz-attempts")
    problem(await client.post(url, json={"answers": {"q1": [0]}}, headers=alice.headers), 409)
