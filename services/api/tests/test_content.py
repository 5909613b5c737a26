"""A concept's content and versions, regeneration, learner progress and quiz attempts."""

from __future__ import annotations

import uuid
from typing import Any

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
    question = body["content"]["quiz"]["result"]["body"]["questions"][0]
    # The answers come with an attempt, never with the questions.
    assert question == {
        "id": "q1",
        "type": "single_choice",
        "prompt": "Which crate provides embedded-hal traits?",
        "options": ["embedded-hal", "tokio"],
    }
    assert (body["progress"], body["quiz_attempts"], body["best_quiz_score"]) == (
        "not_started",
        0,
        None,
    )
    resources = body["content"]["resources"]["result"]["body"]
    assert resources["search_provider"] == "brave"
    [resource] = resources["resources"]
    assert resource["link"]["status"] == "ok"
    assert resource["link"]["http_status"] == 200
    assert resource["link"]["checked_at"].startswith("2026-12-06T12:00:00")

    older = await client.get(
        concept_url(job.id, concept), params={"version": 1}, headers=alice.headers
    )
    assert "correct" not in older.text
    assert "explanation" not in older.text
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
    started = await client.put(url, json={"status": "in_progress"}, headers=alice.headers)
    assert started.status_code == 200, started.text
    assert (started.json()["status"], started.json()["completed_at"]) == ("in_progress", None)
    done = await client.put(url, json={"status": "done"}, headers=alice.headers)
    first = done.json()
    assert (first["status"], first["completed"]) == ("done", True)
    assert first["completed_at"] is not None
    again = (await client.put(url, json={"status": "done"}, headers=alice.headers)).json()
    assert again["completed_at"] == first["completed_at"]

    detail = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    concepts = detail["framework"]["stages"][0]["modules"][0]["concepts"]
    assert [(c["progress"], c["completed"]) for c in concepts] == [
        ("done", True),
        ("not_started", False),
    ]
    assert detail["learning"] == {
        "concepts": 2,
        "done": 1,
        "in_progress": 0,
        "completion": 0.5,
        "quizzes_attempted": 0,
        "average_best_score": None,
    }
    concept = (
        await client.get(concept_url(job.id, job.concept_ids[0]), headers=alice.headers)
    ).json()
    assert (concept["progress"], concept["completed"]) == ("done", True)

    undone = (await client.put(url, json={"status": "not_started"}, headers=alice.headers)).json()
    assert (undone["status"], undone["completed"], undone["completed_at"]) == (
        "not_started",
        False,
        None,
    )
    for bad in ({"status": "finished"}, {"completed": True}, {}, {"status": None}):
        problem(await client.put(url, json=bad, headers=alice.headers), 422)


async def test_quiz_attempt(client: httpx.AsyncClient, alice: Account, seed: Seeder) -> None:
    job = await seed.job(alice, status=JobStatus.completed, concepts=2, with_results=True)
    url = concept_url(job.id, job.concept_ids[0], "/quiz/attempts")
    # q1 is single choice (correct: 0), q2 multiple choice (correct: 0 and 1).
    response = await client.post(url, json={"answers": [0, [1]]}, headers=alice.headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["score"] == 0.5
    assert (body["correct"], body["total"], body["quiz_version"]) == (1, 2, 1)
    assert body["concept_id"] == str(job.concept_ids[0])
    assert [
        (r["question_id"], r["chosen"], r["correct"], r["correct_options"]) for r in body["results"]
    ] == [("q1", [0], True, [0]), ("q2", [1], False, [0, 1])]
    assert body["results"][1]["explanation"] == "The JVM is not a Rust target."
    perfect = await client.post(
        url, json={"answers": [[0], [1, 0]], "quiz_version": 1}, headers=alice.headers
    )
    assert perfect.status_code == 201, perfect.text
    assert perfect.json()["score"] == 1.0
    wrong = await client.post(url, json={"answers": [1, [2]]}, headers=alice.headers)
    assert wrong.json()["score"] == 0.0

    listed = (await client.get(url, headers=alice.headers)).json()
    assert [a["id"] for a in listed["items"]] == [
        wrong.json()["id"],
        perfect.json()["id"],
        body["id"],
    ]
    assert listed["items"][2] == body
    assert listed["next_cursor"] is None
    first_page = (await client.get(url, params={"limit": 2}, headers=alice.headers)).json()
    assert len(first_page["items"]) == 2
    rest = (
        await client.get(
            url, params={"limit": 2, "cursor": first_page["next_cursor"]}, headers=alice.headers
        )
    ).json()
    assert [a["id"] for a in rest["items"]] == [body["id"]]
    problem(await client.get(url, params={"cursor": "nope"}, headers=alice.headers), 400)

    detail = (await client.get(f"/api/v1/roadmaps/{job.id}", headers=alice.headers)).json()
    concepts = detail["framework"]["stages"][0]["modules"][0]["concepts"]
    assert [(c["quiz_attempts"], c["best_quiz_score"]) for c in concepts] == [(3, 1.0), (0, None)]
    assert (detail["learning"]["quizzes_attempted"], detail["learning"]["average_best_score"]) == (
        1,
        1.0,
    )
    concept = (
        await client.get(concept_url(job.id, job.concept_ids[0]), headers=alice.headers)
    ).json()
    assert (concept["quiz_attempts"], concept["best_quiz_score"]) == (3, 1.0)

    refusals: list[tuple[dict[str, Any], list[str | int]]] = [
        ({"answers": [0]}, ["body", "answers"]),  # one answer for two questions
        ({"answers": [0, 1, 0]}, ["body", "answers"]),
        ({"answers": [5, [0]]}, ["body", "answers", 0]),  # q1 has two options
        ({"answers": [[0, 1], [0]]}, ["body", "answers", 0]),  # q1 takes one option
        ({"answers": [0, [1, 1]]}, ["body", "answers", 1]),
    ]
    for bad, where in refusals:
        refused = problem(await client.post(url, json=bad, headers=alice.headers), 422)
        assert refused["errors"][0]["loc"] == where, (bad, refused)
    invalid: list[dict[str, Any]] = [
        {"answers": ["0", [0]]},
        {"answers": [True, [0]]},
        {"answers": []},
        {"answers": [8, [0]]},
        {"answers": {"q1": [0]}},
        {"answers": [0, [0]], "quiz_version": 0},
        {"answers": [0, [0]], "score": 1},
    ]
    for bad in invalid:
        problem(await client.post(url, json=bad, headers=alice.headers), 422)
    await seed.add_results(job.concept_ids[0])
    stale = problem(
        await client.post(
            url, json={"answers": [0, [0]], "quiz_version": 1}, headers=alice.headers
        ),
        409,
    )
    assert "latest version is 2" in stale["detail"]
    latest = await client.post(url, json={"answers": [0, [0]]}, headers=alice.headers)
    assert latest.json()["quiz_version"] == 2


async def test_quiz_attempt_without_quiz(
    client: httpx.AsyncClient, alice: Account, seed: Seeder
) -> None:
    job = await seed.job(alice, status=JobStatus.generating, concepts=1)
    url = concept_url(job.id, job.concept_ids[0], "/quiz/attempts")
    problem(await client.post(url, json={"answers": [0]}, headers=alice.headers), 409)
    assert (await client.get(url, headers=alice.headers)).json() == {
        "items": [],
        "next_cursor": None,
    }
