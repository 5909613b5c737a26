"""The web UI in a real browser, against the real stack: a learner's whole path, found by
roles and labels (what a screen reader announces), with axe-core on every page."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import WebStack, axe_check, screenshot
from tests.support.sentinels import new_password

pytestmark = pytest.mark.slow
# Planning, one review round, a revision and the content of three concepts.
FLOW_TIMEOUT_MS = 120_000


def sign_up(page: Any) -> str:
    email = f"learner-{uuid.uuid4().hex[:10]}@example.com"
    page.goto("/sign-up")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(new_password())
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("heading", name="My roadmaps")).to_be_visible()
    return email


def test_a_learner_signs_up_creates_reviews_learns_and_signs_out(
    new_page: Any, web_stack: WebStack
) -> None:
    page = new_page()
    page.goto("/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    axe_check(page)
    screenshot(page, "sign-in")
    page.get_by_role("link", name="Sign up").first.click()
    expect(page.get_by_role("heading", name="Sign up")).to_be_visible()
    axe_check(page)

    # A password the API's policy refuses: its message next to the field.
    page.get_by_label("Email").fill(f"weak-{uuid.uuid4().hex[:8]}@example.com")
    page.get_by_label("Password").fill("short")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_label("Password")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#password-error")).to_contain_text("12 characters")

    sign_up(page)
    expect(page.get_by_text("You have no roadmaps yet")).to_be_visible()
    axe_check(page)

    # New roadmap: the API's validation errors next to the field that caused them.
    page.get_by_role("link", name="New roadmap").click()
    expect(page.get_by_role("heading", name="New roadmap")).to_be_visible()
    axe_check(page)
    page.get_by_label("Learning goal").fill("ab")
    page.get_by_label("Hours per week").fill("500")
    page.get_by_role("button", name="Create roadmap").click()
    expect(page.get_by_label("Learning goal")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Hours per week")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#goal-error")).to_contain_text("at least 3")
    axe_check(page)

    goal = f"Learn SQL joins in the browser {uuid.uuid4().hex[:6]}"
    page.get_by_label("Learning goal").fill(goal)
    page.get_by_label("Hours per week").fill("3")
    page.get_by_label("Review the plan first").check()
    screenshot(page, "new-roadmap")
    page.get_by_role("button", name="Create roadmap").click()

    # Live progress until the plan waits for review (the page follows the event stream).
    live = page.get_by_role("status").first
    expect(live).to_have_attribute("aria-live", "polite")
    expect(page.get_by_role("button", name="Approve")).to_be_visible(timeout=FLOW_TIMEOUT_MS)
    axe_check(page)
    screenshot(page, "review", page.get_by_role("region", name="Review the plan"))

    # Request changes without feedback: refused, the reason next to the Feedback box.
    page.get_by_role("button", name="Request changes").click()
    expect(page.get_by_label("Feedback")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Feedback").fill("More hands-on practice, please.")
    page.get_by_role("button", name="Request changes").click()
    history = page.get_by_role("region", name="Revision history")
    expect(history).to_contain_text("plan changes requested", timeout=FLOW_TIMEOUT_MS)
    expect(page.get_by_role("button", name="Approve")).to_be_visible(timeout=FLOW_TIMEOUT_MS)
    expect(history.get_by_text("Round 2")).to_be_visible(timeout=FLOW_TIMEOUT_MS)
    page.get_by_role("button", name="Approve").click()
    expect(live).to_contain_text("Completed", timeout=FLOW_TIMEOUT_MS)
    plan = page.get_by_role("region", name="Plan")
    expect(plan.get_by_role("link").first).to_be_visible()
    expect(page.get_by_role("region", name="Cost and token use")).to_contain_text("Model calls")
    axe_check(page)
    screenshot(page, "roadmap")

    # A concept: each is a link named by its title.
    first = plan.get_by_role("link").first
    title = first.inner_text().strip()
    first.click()
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible()
    axe_check(page)
    tutorial = page.locator("article.tutorial")
    expect(tutorial).to_contain_text("Hostile content")

    # The quiz: no answer shown until it is submitted, then the score and explanations.
    quiz = page.get_by_role("region", name="Quiz")
    expect(quiz.get_by_text("(right answer)")).to_have_count(0)
    for group in quiz.get_by_role("group").all():
        group.get_by_role("radio").or_(group.get_by_role("checkbox")).first.check()
    quiz.get_by_role("button", name="Submit answers").click()
    quiz = page.get_by_role("region", name="Quiz")
    expect(quiz.get_by_text(re.compile(r"Your score: \d+ of \d+"))).to_be_visible()
    expect(quiz.get_by_text("(right answer)").first).to_be_visible()
    axe_check(page)
    screenshot(page, "quiz", quiz)

    # The mentor: the answer streams into the page, then is shown whole.
    page.get_by_label("Ask the mentor").fill("How do I practise this concept?")
    page.get_by_role("button", name="Send").click()
    answer = page.locator("#answer")
    expect(answer).to_have_attribute("aria-busy", "false", timeout=FLOW_TIMEOUT_MS)
    expect(answer).to_contain_text("done")
    assert answer.locator("[data-chat-text]").inner_text().strip()
    axe_check(page)
    screenshot(page, "mentor", page.get_by_role("region", name="Mentor"))
    page.reload()
    mentor = page.get_by_role("region", name="Mentor")
    expect(mentor.get_by_text("How do I practise this concept?", exact=True)).to_be_visible()
    expect(page.locator("#answer")).to_have_count(0)  # the finished answer is in the list
    expect(mentor.get_by_role("listitem")).to_have_count(2)

    page.get_by_label("Your progress").select_option("done")
    page.get_by_role("button", name="Save progress").click()
    expect(page.get_by_label("Your progress")).to_have_value("done")
    page.get_by_role("link", name="Back to the roadmap").click()
    expect(page.get_by_text(re.compile(r"Your learning: 1 of \d+ concepts done"))).to_be_visible()

    page.get_by_role("link", name="Execution log").click()
    expect(page.get_by_role("heading", name="Execution log")).to_be_visible()
    expect(page.get_by_role("listitem").first).to_be_visible()
    axe_check(page)
    screenshot(page, "execution-log")

    page.get_by_role("link", name="My roadmaps").click()
    expect(
        page.get_by_role("link", name=re.compile("SQL joins|" + re.escape(goal)))
    ).to_be_visible()
    axe_check(page)
    screenshot(page, "my-roadmaps")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.goto("/roadmaps")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def test_hostile_markdown_renders_inert(new_page: Any, web_stack: WebStack) -> None:
    """The fake LLM ends every tutorial with a script, an onerror=, javascript: links and raw
    HTML; the concept page shows them as text, and none runs (the CSP is bypassed here, so
    the sanitizer alone has to hold)."""
    api, _ = web_stack.stack.new_user()
    job = api.create_roadmap(
        goal="Learn hostile markdown", level="beginner", weekly_hours=2, weeks=2
    )
    roadmap = api.wait(job.id, max_wait=FLOW_TIMEOUT_MS / 1000)
    assert roadmap.status == "completed", roadmap
    assert roadmap.framework is not None
    concept = roadmap.framework.stages[0].modules[0].concepts[0]

    page = new_page()
    token = api.token
    assert token is not None
    page.context.add_cookies([{"name": "rw_session", "value": token, "url": web_stack.url}])
    page.goto(f"/roadmaps/{job.id}/concepts/{concept.id}")
    tutorial = page.locator("article.tutorial")
    expect(tutorial).to_contain_text("window.__hostile")  # shown, as text
    assert page.evaluate("() => window.__hostile") is None
    assert tutorial.locator("script, iframe, [onerror], [onclick]").count() == 0
    hrefs = tutorial.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert not [h for h in hrefs if h and h.strip().lower().startswith("javascript")], hrefs
    sources = tutorial.locator("img").evaluate_all("els => els.map(e => e.getAttribute('src'))")
    assert not [s for s in sources if s and s.strip().lower().startswith("javascript")], sources
    axe_check(page)

    # Any window width: on a phone-sized window nothing runs off to the side.
    page.set_viewport_size({"width": 360, "height": 740})
    for path in (f"/roadmaps/{job.id}/concepts/{concept.id}", f"/roadmaps/{job.id}", "/roadmaps"):
        page.goto(path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, (path, overflow)


def test_another_users_roadmap_is_the_same_not_found_as_a_missing_one(
    new_page: Any, web_stack: WebStack
) -> None:
    owner, _ = web_stack.stack.new_user()
    job = owner.create_roadmap(goal="Learn privacy", level="beginner", weekly_hours=2, weeks=2)

    page = new_page()
    sign_up(page)
    theirs = page.goto(f"/roadmaps/{job.id}")
    assert theirs is not None
    assert theirs.status == 404
    theirs_text = page.get_by_role("main").inner_text()
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    axe_check(page)
    missing = page.goto(f"/roadmaps/{uuid.uuid4()}")
    assert missing is not None
    assert missing.status == 404
    assert page.get_by_role("main").inner_text() == theirs_text
    concept = page.goto(f"/roadmaps/{job.id}/log")
    assert concept is not None
    assert concept.status == 404
    assert page.get_by_role("main").inner_text() == theirs_text
